/* config.json -> bn_hf_config (see hf_config.h). */
#include "hf_config.h"

#include <stdio.h>
#include <string.h>

static const char *const special_types[7] = {"bos", "eos", "unk", "sep", "pad", "cls", "mask"};

const char *bn_special_type(int i) { return i >= 0 && i < 7 ? special_types[i] : "?"; }

static const struct {
    const char *cls;
    bn_family family;
    const char *gguf;
} families[] = {
    {"BitnetForCausalLM", BN_FAM_BITNET, "bitnet"},
    {"LlamaForCausalLM", BN_FAM_LLAMA, "llama"},
    {"LLaMAForCausalLM", BN_FAM_LLAMA, "llama"},
    {"MistralForCausalLM", BN_FAM_LLAMA, "llama"},
    /* the reference's 2B-4T route (convert-ms-to-gguf-bitnet.py) names it "bitnet-25"; the
     * published GGUF says "bitnet-b1.58": the same graph in the reference, and both load here */
    {"BitNetForCausalLM", BN_FAM_B158, "bitnet-25"},
};

/* the first of KEYS present (the reference's find_hparam) */
static const bn_json *find(const bn_json *root, const char *const *keys)
{
    for (; *keys; keys++) {
        const bn_json *v = bn_json_get(root, *keys);
        if (v)
            return v;
    }
    return NULL;
}

static int get_u32(const bn_json *root, const char *const *keys, int required, bn_opt_u32 *out,
                   bn_err *err)
{
    const bn_json *v = find(root, keys);
    out->has = false;
    if (!v || (v->type == BN_JSON_NULL && !required)) {
        if (required)
            return bn_fail(err, BN_E_INPUT, "config.json: missing %s", keys[0]);
        return 0;
    }
    int64_t x;
    if (bn_json_int_in(v, 0, UINT32_MAX, &x))
        return bn_fail(err, BN_E_INPUT, "config.json: %s is not a 32-bit size", keys[0]);
    out->has = true;
    out->v = (uint32_t)x;
    return 0;
}

static int get_f64(const bn_json *root, const char *key, bn_opt_f64 *out, bn_err *err)
{
    const bn_json *v = bn_json_get(root, key);
    out->has = false;
    if (!v || v->type == BN_JSON_NULL)
        return 0;
    if (v->type != BN_JSON_NUMBER)
        return bn_fail(err, BN_E_INPUT, "config.json: %s is not a number", key);
    out->has = true;
    out->v = v->num;
    return 0;
}

int bn_hf_config_parse(const char *text, size_t len, bn_hf_config *c, bn_err *err)
{
    memset(c, 0, sizeof *c);
    bn_err jerr = {0};
    bn_json_doc *doc = bn_json_parse(text, len, NULL, &jerr);
    if (!doc)
        return bn_fail(err, BN_E_INPUT, "config.json: %s", jerr.msg);
    const bn_json *root = bn_json_root(doc);
    int rc = -1;
    const bn_json *arch = bn_json_get(root, "architectures");
    if (root->type != BN_JSON_OBJECT || !arch || arch->type != BN_JSON_ARRAY || !arch->child ||
        arch->child->type != BN_JSON_STRING) {
        bn_fail(err, BN_E_INPUT, "config.json: no \"architectures\": [\"...\"]");
        goto done;
    }
    snprintf(c->arch_class, sizeof c->arch_class, "%s", arch->child->str);
    c->gguf_arch = NULL;
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        if (strcmp(arch->child->str, families[i].cls) == 0) {
            c->family = families[i].family;
            c->gguf_arch = families[i].gguf;
        }
    if (!c->gguf_arch) {
        bn_fail(err, BN_E_UNSUPPORTED,
                "config.json: architecture '%s' is not supported (BitnetForCausalLM, "
                "LlamaForCausalLM, BitNetForCausalLM)",
                arch->child->str);
        goto done;
    }
    static const char *const k_layer[] = {"n_layers", "num_hidden_layers", "n_layer", NULL};
    static const char *const k_embd[] = {"hidden_size", "n_embd", NULL};
    static const char *const k_head[] = {"num_attention_heads", "n_head", NULL};
    static const char *const k_kv[] = {"num_key_value_heads", NULL};
    static const char *const k_ff[] = {"intermediate_size", "n_inner", NULL};
    static const char *const k_ctx[] = {"max_position_embeddings", "n_ctx", NULL};
    static const char *const k_vocab[] = {"vocab_size", NULL};
    static const char *const k_hd[] = {"head_dim", NULL};
    bn_opt_u32 x;
    if (get_u32(root, k_layer, 1, &x, err))
        goto done;
    c->n_layer = x.v;
    if (get_u32(root, k_embd, 1, &x, err))
        goto done;
    c->n_embd = x.v;
    if (get_u32(root, k_head, 1, &x, err))
        goto done;
    c->n_head = x.v;
    if (get_u32(root, k_vocab, 1, &x, err))
        goto done;
    c->n_vocab = x.v;
    if (get_u32(root, k_kv, 0, &c->n_head_kv, err) || get_u32(root, k_ff, 0, &c->n_ff, err) ||
        get_u32(root, k_ctx, 0, &c->n_ctx, err) || get_u32(root, k_hd, 0, &c->head_dim, err) ||
        get_f64(root, "rope_theta", &c->rope_theta, err) ||
        get_f64(root, "rms_norm_eps", &c->rms_eps, err))
        goto done;
    for (int i = 0; i < 7; i++) {
        char key[32];
        snprintf(key, sizeof key, "%s_token_id", special_types[i]);
        const bn_json *v = bn_json_get(root, key);
        int64_t id; /* the reference takes ints only; lists (several eos) are ignored */
        if (v && v->type == BN_JSON_NUMBER && v->is_int &&
            bn_json_int_in(v, 0, UINT32_MAX, &id) == 0) {
            c->special[i].has = true;
            c->special[i].v = (uint32_t)id;
        }
    }
    const bn_json *tie = bn_json_get(root, "tie_word_embeddings");
    c->tied = tie && tie->type == BN_JSON_BOOL ? tie->boolean : true; /* transformers' default */
    const bn_json *rs = bn_json_get(root, "rope_scaling");
    if (rs && rs->type == BN_JSON_OBJECT) {
        const bn_json *t = bn_json_get(rs, "type"), *f = bn_json_get(rs, "factor");
        if (t && t->type == BN_JSON_STRING && strcmp(t->str, "linear") == 0 && f &&
            f->type == BN_JSON_NUMBER) {
            c->rope_linear_factor.has = true;
            c->rope_linear_factor.v = f->num;
        }
    }
    if (c->n_layer < 1 || c->n_layer > 4096 || c->n_embd == 0 || c->n_head == 0 ||
        c->n_embd % c->n_head || c->n_vocab == 0 ||
        (c->n_head_kv.has && (c->n_head_kv.v == 0 || c->n_head % c->n_head_kv.v))) {
        bn_fail(err, BN_E_INPUT,
                "config.json: implausible shape (layers %u, hidden %u, heads %u/%u, vocab %u)",
                c->n_layer, c->n_embd, c->n_head, c->n_head_kv.has ? c->n_head_kv.v : c->n_head,
                c->n_vocab);
        goto done;
    }
    rc = 0;
done:
    bn_json_free(doc);
    return rc;
}
