/* bitnet-make-checkpoint: writes a synthetic Hugging Face checkpoint folder (config.json,
 * safetensors, tokenizer files; src/writers/checkpoint_writer.h) of the families bitnet-convert
 * reads, for a preset of bitnet-make-model or any shape. Byte-deterministic for given flags.
 * Exit 2 on bad usage, 1 when writing fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_writer.h"
#include "tool_args.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bitnet-make-checkpoint [--preset NAME] [--arch A] --out DIR [options]\n"
            "Writes a synthetic Hugging Face checkpoint folder with seeded weights.\n"
            "\n"
            "  --preset NAME      a bitnet-make-model preset (tiny, tiny-bitnet, tiny-llama,\n"
            "                     tiny-falcon3, 2b4t, bitnet-large, llama3-8b, falcon3-*)\n"
            "  --arch A           bitnet-b1.58 (BitNetForCausalLM, the 2B-4T), bitnet (1bitLLM\n"
            "                     BitnetForCausalLM) or llama (LlamaForCausalLM: Llama3-8B-1.58,\n"
            "                     Falcon3-1.58bit)\n"
            "  --dtype T          f32, f16 or bf16 (default bf16)\n"
            "  --ternary          linear weights m*{-1,0,+1} per tensor (default)\n"
            "  --full-precision   linear weights approximately normal (master weights)\n"
            "  --packed           U8 packed 2-bit codes + weight_scale (bitnet-b1.58, llama)\n"
            "  --shards N         N safetensors shards + model.safetensors.index.json\n"
            "  --tokenizer K      bpe (tokenizer.json, default) or spm (tokenizer.model)\n"
            "  --tied             llama: no lm_head.weight\n"
            "  --n-embd N --n-layer N --n-head N --n-head-kv N --n-ff N --n-vocab N --n-ctx N\n"
            "  --seed N --zero-frac X --rope-theta X --rms-eps X\n"
            "  -h, --help         this text\n");
}

static const char prog[] = "bitnet-make-checkpoint";

int main(int argc, char **argv)
{
    bn_ckpt_params p;
    bn_err err = {0};
    const char *preset = NULL, *out = NULL;
    bn_ckpt_defaults(&p);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--preset") == 0 && i + 1 < argc)
            preset = argv[i + 1];
    }
    if (preset && bn_synth_preset(preset, &p.shape, &err))
        return tool_bad(prog, "%s", err.msg);
    bn_synth_params *s = &p.shape;
    static const char *const u32_flags[] = {"--n-embd", "--n-layer", "--n-head", "--n-head-kv",
                                            "--n-ff",   "--n-vocab", "--n-ctx"};
    uint32_t *u32_fields[] = {&s->n_embd, &s->n_layer, &s->n_head, &s->n_head_kv,
                              &s->n_ff,   &s->n_vocab, &s->n_ctx};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int handled = 0;
        if (strcmp(a, "--ternary") == 0 || strcmp(a, "--full-precision") == 0) {
            p.ternary = a[2] == 't';
            continue;
        }
        if (strcmp(a, "--packed") == 0 || strcmp(a, "--tied") == 0) {
            *(a[2] == 'p' ? &p.packed : &s->tied) = 1;
            continue;
        }
        if (a[0] != '-' || a[1] != '-')
            return tool_bad(prog, "unexpected argument '%s'", a);
        if (!v)
            return tool_bad(prog, "%s needs a value", a);
        for (size_t k = 0; k < sizeof u32_flags / sizeof u32_flags[0]; k++)
            if (strcmp(a, u32_flags[k]) == 0) {
                uint64_t x;
                if (tool_parse_u64(v, UINT32_MAX, &x))
                    return tool_bad(prog, "%s: '%s' is not an unsigned 32-bit integer", a, v);
                *u32_fields[k] = (uint32_t)x;
                handled = 1;
            }
        uint64_t x;
        if (handled || strcmp(a, "--preset") == 0) {
        } else if (strcmp(a, "--out") == 0) {
            out = v;
        } else if (strcmp(a, "--seed") == 0) {
            if (tool_parse_u64(v, UINT64_MAX, &s->seed))
                return tool_bad(prog, "--seed: '%s' is not an unsigned integer", v);
        } else if (strcmp(a, "--shards") == 0) {
            if (tool_parse_u64(v, 99, &x) || x == 0)
                return tool_bad(prog, "--shards: '%s' is not in 1..99", v);
            p.shards = (int)x;
        } else if (strcmp(a, "--arch") == 0) {
            if (strlen(v) >= sizeof s->arch)
                return tool_bad(prog, "--arch: '%s' is too long", v);
            snprintf(s->arch, sizeof s->arch, "%s", v);
        } else if (strcmp(a, "--dtype") == 0) {
            if (strcmp(v, "f32") == 0)
                p.dtype = BN_CKPT_F32;
            else if (strcmp(v, "f16") == 0)
                p.dtype = BN_CKPT_F16;
            else if (strcmp(v, "bf16") == 0)
                p.dtype = BN_CKPT_BF16;
            else
                return tool_bad(prog, "--dtype: '%s' is not f32, f16 or bf16", v);
        } else if (strcmp(a, "--tokenizer") == 0) {
            if (strcmp(v, "bpe") != 0 && strcmp(v, "spm") != 0)
                return tool_bad(prog, "--tokenizer: '%s' is not bpe or spm", v);
            p.spm = v[0] == 's';
        } else {
            float *f = strcmp(a, "--zero-frac") == 0    ? &s->zero_frac
                       : strcmp(a, "--rope-theta") == 0 ? &s->rope_theta
                       : strcmp(a, "--rms-eps") == 0    ? &s->rms_eps
                                                        : NULL;
            if (!f)
                return tool_bad(prog, "unknown option '%s'", a);
            if (tool_parse_float(v, f))
                return tool_bad(prog, "%s: '%s' is not a number", a, v);
        }
        i++;
    }
    if (!out)
        return tool_bad(prog, "--out DIR is required");
    if (!preset &&
        (!s->n_embd || !s->n_layer || !s->n_head || !s->n_head_kv || !s->n_ff || !s->n_vocab))
        return tool_bad(prog,
                        "without --preset, --n-embd, --n-layer, --n-head, --n-head-kv, --n-ff and "
                        "--n-vocab are required");
    if (bn_ckpt_check(&p, &err))
        return tool_bad(prog, "%s", err.msg);
    if (bn_ckpt_write(&p, out, &err)) {
        fprintf(stderr, "bitnet-make-checkpoint: %s\n", err.msg);
        return 1;
    }
    return 0;
}
