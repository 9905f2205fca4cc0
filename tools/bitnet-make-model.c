/* bitnet-make-model: writes a synthetic GGUF of any architecture bitnet.cpp runs ("bitnet-b1.58"
 * with the structure of the published 2B-4T file, "bitnet", "llama"; src/writers/synthetic_model.h)
 * for a preset or any shape. Exit 2 on bad usage, 1 when
 * writing fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "synthetic_model.h"
#include "tool_args.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bitnet-make-model [--preset NAME] --out FILE [options]\n"
            "Writes a synthetic BitNet b1.58 GGUF (same keys, tensor names, types, order and\n"
            "I2_S packing as the published 2B-4T file) with seeded random weights.\n"
            "\n"
            "  --preset NAME      tiny (~200 KB), tiny-a, tiny-b (shapes of the reference's\n"
            "                     golden models), 2b4t (the real shape, ~1.19 GB); other\n"
            "                     families: tiny-bitnet, tiny-llama, tiny-falcon3 and the real\n"
            "                     shapes bitnet-large, bitnet-3b, llama3-8b, falcon3-1b,\n"
            "                     falcon3-3b, falcon3-7b, falcon3-10b, falcon-e-1b\n"
            "  --arch A           bitnet-b1.58 (default), bitnet (1bitLLM) or llama (Llama3,\n"
            "                     Falcon3)\n"
            "  --tied             llama: no output.weight (the LM head is token_embd)\n"
            "  --add-eos          tokenizer.ggml.add_eos_token = true (EOS ends each prompt)\n"
            "  --f32              write the converter's F32 file (before llama-quantize I2_S)\n"
            "  --pre NAME         tokenizer.ggml.pre (llama presets: llama-bpe / falcon3 /\n"
            "                     falcon_e)\n"
            "  --out FILE         output path (required)\n"
            "  --vocab-gguf FILE  copy tokens/token_type/merges/bos/eos from this GGUF (e.g.\n"
            "                     the Llama-3 vocabulary); otherwise a synthetic byte-level BPE\n"
            "                     vocabulary of --n-vocab tokens is generated (also for 2b4t:\n"
            "                     128256 made-up tokens, not Llama 3's)\n"
            "  --n-embd N --n-layer N --n-head N --n-head-kv N --n-ff N --n-vocab N --n-ctx N\n"
            "                     shape (override the preset; required without one)\n"
            "  --seed N           PRNG seed (default: the preset's, else 0)\n"
            "  --zero-frac X      share of zero ternary weights, [0, 1) (default 0.35)\n"
            "  --out-gain X       extra gain of attn_output/ffn_down scales (default 1)\n"
            "  --embd-std X       std of token_embd values (default 1.5/sqrt(n_embd))\n"
            "  --rope-theta X     (default 500000)   --rms-eps X (default 1e-5)\n"
            "  --name S           general.name\n"
            "  -q, --quiet        no summary line on stderr\n"
            "  -h, --help         this text\n");
}

static const char prog[] = "bitnet-make-model";

int main(int argc, char **argv)
{
    bn_synth_params p;
    bn_err err = {0};
    const char *preset = NULL, *out = NULL;
    int quiet = 0;
    /* first pass: the preset, so that shape flags override it wherever they appear */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--preset") == 0 && i + 1 < argc)
            preset = argv[i + 1];
    }
    if (preset) {
        if (bn_synth_preset(preset, &p, &err))
            return tool_bad(prog, "%s", err.msg);
    } else {
        bn_synth_defaults(&p);
    }
    static const char *const u32_flags[] = {"--n-embd", "--n-layer", "--n-head", "--n-head-kv",
                                            "--n-ff",   "--n-vocab", "--n-ctx"};
    uint32_t *u32_fields[] = {&p.n_embd, &p.n_layer, &p.n_head, &p.n_head_kv,
                              &p.n_ff,   &p.n_vocab, &p.n_ctx};
    int vocab_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int handled = 0;
        if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            quiet = 1;
            continue;
        }
        if (strcmp(a, "--tied") == 0 || strcmp(a, "--f32") == 0) {
            *(a[2] == 't' ? &p.tied : &p.f32) = 1;
            continue;
        }
        if (strcmp(a, "--add-eos") == 0) {
            p.add_eos = 1;
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
                if (u32_fields[k] == &p.n_vocab)
                    vocab_given = 1;
                handled = 1;
            }
        if (handled) {
        } else if (strcmp(a, "--preset") == 0) {
        } else if (strcmp(a, "--out") == 0) {
            out = v;
        } else if (strcmp(a, "--vocab-gguf") == 0) {
            p.vocab_gguf = v;
        } else if (strcmp(a, "--seed") == 0) {
            if (tool_parse_u64(v, UINT64_MAX, &p.seed))
                return tool_bad(prog, "--seed: '%s' is not an unsigned integer", v);
        } else if (strcmp(a, "--arch") == 0 || strcmp(a, "--pre") == 0) {
            char *dst = a[2] == 'a' ? p.arch : p.pre;
            if (strlen(v) >= sizeof p.arch)
                return tool_bad(prog, "%s: '%s' is too long", a, v);
            snprintf(dst, sizeof p.arch, "%s", v);
        } else if (strcmp(a, "--name") == 0) {
            if (strlen(v) >= sizeof p.name)
                return tool_bad(prog, "--name: '%s' is too long", v);
            snprintf(p.name, sizeof p.name, "%s", v);
        } else {
            float *f = strcmp(a, "--zero-frac") == 0    ? &p.zero_frac
                       : strcmp(a, "--out-gain") == 0   ? &p.out_gain
                       : strcmp(a, "--embd-std") == 0   ? &p.embd_std
                       : strcmp(a, "--rope-theta") == 0 ? &p.rope_theta
                       : strcmp(a, "--rms-eps") == 0    ? &p.rms_eps
                                                        : NULL;
            if (!f)
                return tool_bad(prog, "unknown option '%s'", a);
            if (tool_parse_float(v, f))
                return tool_bad(prog, "%s: '%s' is not a number", a, v);
        }
        i++;
    }
    if (!out)
        return tool_bad(prog, "--out FILE is required");
    /* a vocabulary file sets the vocabulary size unless --n-vocab insists on one */
    if (p.vocab_gguf && !vocab_given)
        p.n_vocab = 0;
    if (!preset && (!p.n_embd || !p.n_layer || !p.n_head || !p.n_head_kv || !p.n_ff ||
                    (!p.n_vocab && !p.vocab_gguf)))
        return tool_bad(prog,
                        "without --preset, --n-embd, --n-layer, --n-head, --n-head-kv, --n-ff and "
                        "--n-vocab (or --vocab-gguf) are required");
    if (bn_synth_check(&p, &err))
        return tool_bad(prog, "%s", err.msg);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (bn_synth_write(&p, out, &err)) {
        fprintf(stderr, "bitnet-make-model: %s\n", err.msg);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (!quiet) {
        const int llama = strcmp(p.arch, "llama") == 0;
        const unsigned n_tensors = 2 + (llama ? 9 : 11) * p.n_layer + (llama && !p.tied);
        FILE *f = fopen(out, "rb");
        long size = -1;
        if (f && fseek(f, 0, SEEK_END) == 0)
            size = ftell(f);
        if (f)
            fclose(f);
        fprintf(stderr,
                "wrote %s: %ld bytes, %u tensors, n_embd %u, n_layer %u, heads %u/%u, n_ff %u, "
                "seed %llu, %s%s, %.2f s\n",
                out, size, n_tensors, p.n_embd, p.n_layer, p.n_head, p.n_head_kv, p.n_ff,
                (unsigned long long)p.seed, p.arch, p.f32 ? " F32" : "",
                (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
    }
    return 0;
}
