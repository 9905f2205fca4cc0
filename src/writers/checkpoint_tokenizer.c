/* The tokenizer files of a synthetic checkpoint (checkpoint_writer.h):
 *  - BPE: tokenizer.json as Hugging Face `tokenizers` saves a Llama-3-style byte-level BPE
 *    (model.vocab without the special tokens, which are "added_tokens"; merges as "a b"
 *    strings; the Llama 3 split regex), from the project's synthetic vocabulary;
 *  - SentencePiece: tokenizer.model, a ModelProto written field by field: pieces (1) of
 *    {piece (1), score (2), type (3)}, trainer_spec (2) {model_type (3) = BPE, vocab_size (4),
 *    byte_fallback (35), unk/bos/eos/pad ids (40..43)}, normalizer_spec (3) {name (1),
 *    add_dummy_prefix (3), remove_extra_whitespaces (4)}; <unk> <s> </s>, the 256 byte pieces,
 *    then normal pieces made from the synthetic vocabulary (space as U+2581), two fewer
 *    pieces than vocab_size so that a converter must pad (as 1bitLLM's 32000 pieces vs
 *    vocab_size 32002);
 *  - tokenizer_config.json (add_bos_token, bos/eos tokens, a chat template) and
 *    generation_config.json. */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "checkpoint_writer.h"
#include "json.h"

static const char llama3_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* Llama 3's template shape (header ids, eot), short enough to read in a test */
static const char llama_template[] =
    "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
    "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{% endif %}";

/* the 2B-4T's template (the one its GGUF carries) */
static const char b158_template[] =
    "{% for message in messages %}{% if loop.first %}{{ bos_token }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ 'Human: ' + message['content'] + "
    "'\\n\\nBITNETAssistant: ' + eos_token }}{% elif message['role'] == 'assistant' %}"
    "{{ message['content'] + eos_token }}{% endif %}{% endfor %}";

static const char spm_template[] =
    "{% for message in messages %}{% if loop.first %}{{ bos_token }}{% endif %}"
    "{{ message['role'] + ': ' + message['content'] + '\\n' }}{% endfor %}";

static int finish(bn_buf *b, bn_jw *w, const char *dir, const char *name, bn_err *err)
{
    bn_buf_append(b, "\n", 1);
    int rc = w->bad                 ? bn_fail(err, BN_E_INTERNAL, "%s: JSON writer misuse", name)
             : bn_buf_check(b, err) ? -1
                                    : bn_ckpt_write_file(dir, name, b->data, b->len, err);
    bn_buf_free(b);
    return rc;
}

static int write_tokenizer_json(const bn_synth_vocab *v, const char *dir, bn_err *err)
{
    bn_buf b = {0};
    bn_jw w = {.out = &b};
    bn_jw_obj(&w);
    bn_jw_key(&w, "version");
    bn_jw_str(&w, "1.0");
    bn_jw_key(&w, "truncation");
    bn_jw_null(&w);
    bn_jw_key(&w, "padding");
    bn_jw_null(&w);
    bn_jw_key(&w, "added_tokens");
    bn_jw_arr(&w);
    for (uint64_t i = 0; i < v->n_tokens; i++) {
        if (v->types[i] != 3)
            continue;
        bn_jw_obj(&w);
        bn_jw_key(&w, "id");
        bn_jw_int(&w, (int64_t)i);
        bn_jw_key(&w, "content");
        bn_jw_strn(&w, v->tokens[i].ptr, v->tokens[i].len);
        static const char *const flags[] = {"single_word", "lstrip", "rstrip", "normalized"};
        for (int f = 0; f < 4; f++) {
            bn_jw_key(&w, flags[f]);
            bn_jw_bool(&w, false);
        }
        bn_jw_key(&w, "special");
        bn_jw_bool(&w, true);
        bn_jw_end(&w);
    }
    bn_jw_end(&w);
    bn_jw_key(&w, "normalizer");
    bn_jw_null(&w);
    bn_jw_key(&w, "pre_tokenizer");
    bn_jw_obj(&w);
    bn_jw_key(&w, "type");
    bn_jw_str(&w, "Sequence");
    bn_jw_key(&w, "pretokenizers");
    bn_jw_arr(&w);
    bn_jw_obj(&w);
    bn_jw_key(&w, "type");
    bn_jw_str(&w, "Split");
    bn_jw_key(&w, "pattern");
    bn_jw_obj(&w);
    bn_jw_key(&w, "Regex");
    bn_jw_str(&w, llama3_regex);
    bn_jw_end(&w);
    bn_jw_key(&w, "behavior");
    bn_jw_str(&w, "Isolated");
    bn_jw_key(&w, "invert");
    bn_jw_bool(&w, false);
    bn_jw_end(&w);
    bn_jw_obj(&w);
    bn_jw_key(&w, "type");
    bn_jw_str(&w, "ByteLevel");
    bn_jw_key(&w, "add_prefix_space");
    bn_jw_bool(&w, false);
    bn_jw_key(&w, "trim_offsets");
    bn_jw_bool(&w, true);
    bn_jw_key(&w, "use_regex");
    bn_jw_bool(&w, false);
    bn_jw_end(&w);
    bn_jw_end(&w);
    bn_jw_end(&w);
    bn_jw_key(&w, "post_processor");
    bn_jw_null(&w);
    bn_jw_key(&w, "decoder");
    bn_jw_obj(&w);
    bn_jw_key(&w, "type");
    bn_jw_str(&w, "ByteLevel");
    bn_jw_end(&w);
    bn_jw_key(&w, "model");
    bn_jw_obj(&w);
    bn_jw_key(&w, "type");
    bn_jw_str(&w, "BPE");
    bn_jw_key(&w, "ignore_merges");
    bn_jw_bool(&w, true);
    bn_jw_key(&w, "vocab");
    bn_jw_obj(&w);
    for (uint64_t i = 0; i < v->n_tokens; i++) {
        if (v->types[i] == 3)
            continue;
        bn_jw_keyn(&w, v->tokens[i].ptr, v->tokens[i].len);
        bn_jw_int(&w, (int64_t)i);
    }
    bn_jw_end(&w);
    bn_jw_key(&w, "merges");
    bn_jw_arr(&w);
    for (uint64_t i = 0; i < v->n_merges; i++)
        bn_jw_strn(&w, v->merges[i].ptr, v->merges[i].len);
    bn_jw_end(&w);
    bn_jw_end(&w);
    bn_jw_end(&w);
    return finish(&b, &w, dir, "tokenizer.json", err);
}

/* ---------------------------------------------------------------- protobuf */

static void varint(bn_buf *b, uint64_t v)
{
    uint8_t tmp[10];
    int n = 0;
    do {
        tmp[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            tmp[n] |= 0x80;
        n++;
    } while (v);
    bn_buf_append(b, tmp, (size_t)n);
}

static void field_varint(bn_buf *b, unsigned field, uint64_t v)
{
    varint(b, (uint64_t)field << 3);
    varint(b, v);
}

static void field_bytes(bn_buf *b, unsigned field, const void *p, size_t n)
{
    varint(b, (uint64_t)field << 3 | 2);
    varint(b, n);
    bn_buf_append(b, p, n);
}

static void field_float(bn_buf *b, unsigned field, float f)
{
    varint(b, (uint64_t)field << 3 | 5);
    bn_buf_append(b, &f, 4); /* little-endian hosts only, as the GGUF writer */
}

static void piece(bn_buf *out, const char *s, size_t n, float score, int type)
{
    bn_buf m = {0};
    field_bytes(&m, 1, s, n);
    field_float(&m, 2, score);
    if (type != 1) /* NORMAL is the default and omitted, as protobuf does */
        field_varint(&m, 3, (uint64_t)type);
    field_bytes(out, 1, m.data ? m.data : "", m.len);
    out->oom |= m.oom;
    bn_buf_free(&m);
}

/* A GPT-2 byte-level token back to bytes, then spaces as U+2581; 0 when it does not make a
 * valid, new piece. */
static size_t spm_text(const bn_gguf_str *t, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < t->len;) {
        const uint8_t c = (uint8_t)t->ptr[i];
        unsigned cp;
        if (c < 0x80) {
            cp = c;
            i++;
        } else if ((c & 0xE0) == 0xC0 && i + 1 < t->len) {
            cp = (unsigned)(c & 0x1F) << 6 | ((uint8_t)t->ptr[i + 1] & 0x3F);
            i += 2;
        } else {
            return 0;
        }
        /* GPT-2: Ġ (U+0120) is the space; other remapped code points are control bytes */
        if (cp == 0x120) {
            if (n + 3 > cap)
                return 0;
            memcpy(out + n, "\xE2\x96\x81", 3);
            n += 3;
        } else if (cp >= 0x21 && cp < 0x7f) {
            if (n + 1 > cap)
                return 0;
            out[n++] = (char)cp;
        } else {
            return 0; /* keep the pieces plain ASCII: always valid UTF-8 */
        }
    }
    return n;
}

static int write_tokenizer_model(const bn_synth_vocab *v, uint32_t n_pieces, const char *dir,
                                 bn_err *err)
{
    bn_buf b = {0};
    uint32_t k = 0;
    piece(&b, "<unk>", 5, 0.0f, 2);
    piece(&b, "<s>", 3, 0.0f, 3);
    piece(&b, "</s>", 4, 0.0f, 3);
    k = 3;
    for (int c = 0; c < 256; c++, k++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", c);
        piece(&b, s, 6, 0.0f, 6);
    }
    /* normal pieces: the vocabulary's merged tokens, then numbered fillers */
    for (uint64_t i = 256; i < v->n_tokens && k < n_pieces; i++) {
        char s[256];
        size_t n = v->types[i] == 1 ? spm_text(&v->tokens[i], s, sizeof s) : 0;
        if (n < 2)
            continue;
        piece(&b, s, n, -(float)(k - 259), 1);
        k++;
    }
    for (uint32_t f = 0; k < n_pieces; f++, k++) {
        char s[32];
        int n = snprintf(s, sizeof s, "\xE2\x96\x81zz%u", f);
        piece(&b, s, (size_t)n, -(float)(k - 259), 1);
    }
    bn_buf t = {0};
    field_varint(&t, 3, 2); /* model_type BPE */
    field_varint(&t, 4, n_pieces);
    field_varint(&t, 35, 1);                                    /* byte_fallback */
    field_varint(&t, 40, 0);                                    /* unk_id */
    field_varint(&t, 41, 1);                                    /* bos_id */
    field_varint(&t, 42, 2);                                    /* eos_id */
    field_varint(&t, 43, (uint64_t)-1 & 0xffffffffffffffffull); /* pad_id = -1 */
    field_bytes(&b, 2, t.data, t.len);
    b.oom |= t.oom;
    bn_buf_free(&t);
    bn_buf n = {0};
    field_bytes(&n, 1, "identity", 8);
    field_varint(&n, 3, 1); /* add_dummy_prefix */
    field_varint(&n, 4, 0); /* remove_extra_whitespaces */
    field_bytes(&b, 3, n.data, n.len);
    b.oom |= n.oom;
    bn_buf_free(&n);
    int rc = bn_buf_check(&b, err) ? -1
                                   : bn_ckpt_write_file(dir, "tokenizer.model", b.data, b.len, err);
    bn_buf_free(&b);
    return rc;
}

/* ---------------------------------------------------------------- configs */

static int write_tokenizer_config(const bn_ckpt_params *p, const bn_synth_vocab *v, const char *dir,
                                  bn_err *err)
{
    bn_buf b = {0};
    bn_jw w = {.out = &b};
    bn_jw_obj(&w);
    bn_jw_key(&w, "add_bos_token");
    bn_jw_bool(&w, true);
    bn_jw_key(&w, "add_eos_token");
    bn_jw_bool(&w, false);
    bn_jw_key(&w, "bos_token");
    if (p->spm)
        bn_jw_str(&w, "<s>");
    else
        bn_jw_strn(&w, v->tokens[v->bos].ptr, v->tokens[v->bos].len);
    bn_jw_key(&w, "eos_token");
    if (p->spm)
        bn_jw_str(&w, "</s>");
    else
        bn_jw_strn(&w, v->tokens[v->eos].ptr, v->tokens[v->eos].len);
    bn_jw_key(&w, "chat_template");
    bn_jw_str(&w, p->spm                                       ? spm_template
                  : strcmp(p->shape.arch, "bitnet-b1.58") == 0 ? b158_template
                                                               : llama_template);
    bn_jw_key(&w, "clean_up_tokenization_spaces");
    bn_jw_bool(&w, true);
    bn_jw_key(&w, "model_max_length");
    bn_jw_int(&w, p->shape.n_ctx);
    bn_jw_key(&w, "tokenizer_class");
    bn_jw_str(&w, p->spm ? "LlamaTokenizer" : "PreTrainedTokenizerFast");
    bn_jw_end(&w);
    return finish(&b, &w, dir, "tokenizer_config.json", err);
}

static int write_generation_config(const bn_ckpt_params *p, const bn_synth_vocab *v,
                                   const char *dir, bn_err *err)
{
    bn_buf b = {0};
    bn_jw w = {.out = &b};
    bn_jw_obj(&w);
    bn_jw_key(&w, "_from_model_config");
    bn_jw_bool(&w, true);
    bn_jw_key(&w, "bos_token_id");
    bn_jw_int(&w, p->spm ? 1 : v->bos);
    bn_jw_key(&w, "eos_token_id");
    bn_jw_int(&w, p->spm ? 2 : v->eos);
    bn_jw_key(&w, "do_sample");
    bn_jw_bool(&w, false);
    bn_jw_end(&w);
    return finish(&b, &w, dir, "generation_config.json", err);
}

int bn_ckpt_write_tokenizer(const bn_ckpt_params *p, const char *dir, bn_err *err)
{
    bn_synth_vocab v;
    if (bn_synth_vocab_make(p->shape.n_vocab, p->shape.seed, &v, err))
        return -1;
    int rc = p->spm ? write_tokenizer_model(&v, p->shape.n_vocab - 2, dir, err)
                    : write_tokenizer_json(&v, dir, err);
    if (rc == 0)
        rc = write_tokenizer_config(p, &v, dir, err);
    if (rc == 0)
        rc = write_generation_config(p, &v, dir, err);
    bn_synth_vocab_free(&v);
    return rc;
}
