/* Tokenizer files -> tokenizer.ggml.* values (see vocab.h). */
#include "vocab.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "spm_model.h"

#define MAX_FILE  ((size_t)512 << 20)
#define MAX_VOCAB ((uint32_t)1 << 24)

static const char llama3_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

int bn_read_file(const char *dir, const char *name, char **data, size_t *len, int *found,
                 bn_err *err)
{
    char path[4096];
    *data = NULL;
    *len = 0;
    if (found)
        *found = 0;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return bn_fail(err, BN_E_INPUT, "%s: path too long", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT && found)
            return 0;
        return bn_fail(err, BN_E_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > MAX_FILE) {
        close(fd);
        return bn_fail(err, BN_E_INPUT, "%s: not a regular file of at most 512 MiB", path);
    }
    char *buf = malloc((size_t)sb.st_size + 1);
    if (!buf) {
        close(fd);
        return bn_fail(err, BN_E_NOMEM, "out of memory");
    }
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)sb.st_size - got);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    if (got != (size_t)sb.st_size) {
        free(buf);
        return bn_fail(err, BN_E_IO, "%s: read failed", path);
    }
    buf[got] = 0;
    *data = buf;
    *len = got;
    if (found)
        *found = 1;
    return 0;
}

static bn_json_doc *parse_json_file(const char *dir, const char *name, int *found, bn_err *err)
{
    char *text;
    size_t len;
    if (bn_read_file(dir, name, &text, &len, found, err) || (found && !*found))
        return NULL;
    bn_json_opts o = {.max_depth = 64, .max_size = MAX_FILE};
    bn_err jerr = {0};
    bn_json_doc *doc = bn_json_parse(text, len, &o, &jerr);
    free(text);
    if (!doc)
        bn_fail(err, BN_E_INPUT, "%s: %s", name, jerr.msg);
    return doc;
}

static int alloc_tokens(bn_vocab_out *v, size_t n, int scores, bn_err *err)
{
    v->n_tokens = n;
    v->tokens = calloc(n, sizeof *v->tokens);
    v->types = calloc(n, sizeof *v->types);
    v->scores = scores ? calloc(n, sizeof *v->scores) : NULL;
    if (!v->tokens || !v->types || (scores && !v->scores))
        return bn_fail(err, BN_E_NOMEM, "out of memory");
    return 0;
}

static int set_token(bn_vocab_out *v, size_t i, const char *s, size_t len, bn_err *err)
{
    if (memchr(s, 0, len))
        return bn_fail(err, BN_E_INPUT, "token %zu contains a NUL byte", i);
    v->tokens[i] = strndup(s, len);
    return v->tokens[i] ? 0 : bn_fail(err, BN_E_NOMEM, "out of memory");
}

/* ---------------------------------------------------------------- SentencePiece */

static int load_spm(const char *dir, const bn_hf_config *c, bn_vocab_out *v, bn_err *err)
{
    char *buf;
    size_t len;
    if (bn_read_file(dir, "tokenizer.model", &buf, &len, NULL, err))
        return -1;
    bn_spm_model m;
    if (bn_spm_parse((const uint8_t *)buf, len, &m, err)) {
        free(buf);
        return -1;
    }
    int rc = -1;
    if (m.n > c->n_vocab) {
        bn_fail(err, BN_E_INPUT, "tokenizer.model has %zu pieces, more than vocab_size %u", m.n,
                c->n_vocab);
        goto done;
    }
    if (alloc_tokens(v, c->n_vocab, 1, err))
        goto done;
    v->model = "llama";
    snprintf(v->pre, sizeof v->pre, "default");
    for (size_t i = 0; i < m.n; i++) {
        const bn_spm_piece *p = &m.pieces[i];
        if (set_token(v, i, p->text, p->len, err))
            goto done;
        v->scores[i] = p->score;
        v->types[i] = p->type == 4 ? 1 : p->type; /* USER_DEFINED is not asked about */
    }
    /* added_tokens.json: each key not already a piece, in file order (its ids are not read),
     * score -1000, USER_DEFINED */
    size_t k = m.n;
    int found = 0;
    bn_json_doc *added = parse_json_file(dir, "added_tokens.json", &found, err);
    if (!added && found)
        goto done;
    if (added) {
        const bn_json *root = bn_json_root(added);
        if (root->type != BN_JSON_OBJECT) {
            bn_json_free(added);
            bn_fail(err, BN_E_INPUT, "added_tokens.json is not an object");
            goto done;
        }
        for (const bn_json *a = root->child; a; a = a->next) {
            int dup = 0;
            for (size_t i = 0; i < k && !dup; i++)
                dup = strlen(v->tokens[i]) == a->key_len &&
                      memcmp(v->tokens[i], a->key, a->key_len) == 0;
            if (dup)
                continue;
            if (k >= c->n_vocab) {
                bn_json_free(added);
                bn_fail(err, BN_E_INPUT,
                        "tokenizer.model and added_tokens.json hold more than vocab_size %u tokens",
                        c->n_vocab);
                goto done;
            }
            if (set_token(v, k, a->key, a->key_len, err)) {
                bn_json_free(added);
                goto done;
            }
            v->scores[k] = -1000.0f;
            v->types[k++] = 4;
        }
        bn_json_free(added);
    }
    for (size_t i = k; i < c->n_vocab; i++) {
        char pad[32];
        int n = snprintf(pad, sizeof pad, "[PAD%zu]", i - k + 1);
        if (set_token(v, i, pad, (size_t)n, err))
            goto done;
        v->scores[i] = -1000.0f;
        v->types[i] = 5;
    }
    rc = 0;
done:
    bn_spm_free(&m);
    free(buf);
    return rc;
}

/* ---------------------------------------------------------------- BPE */

static int recognise_pre(const bn_json *tok, const char *override, bn_vocab_out *v, bn_err *err)
{
    if (override) {
        snprintf(v->pre, sizeof v->pre, "%s", override);
        return 0;
    }
    const bn_json *pt = bn_json_get(tok, "pre_tokenizer");
    const bn_json *list = pt ? bn_json_get(pt, "pretokenizers") : NULL;
    for (const bn_json *p = list ? list->child : pt; p; p = list ? p->next : NULL) {
        const bn_json *type = bn_json_get(p, "type");
        const bn_json *pat = bn_json_get(p, "pattern");
        const bn_json *re = pat ? bn_json_get(pat, "Regex") : NULL;
        const bn_json *digits = bn_json_get(p, "individual_digits");
        if (type && type->type == BN_JSON_STRING && strcmp(type->str, "Split") == 0 && re &&
            re->type == BN_JSON_STRING && strcmp(re->str, llama3_regex) == 0) {
            snprintf(v->pre, sizeof v->pre, "llama-bpe");
            return 0;
        }
        if (type && type->type == BN_JSON_STRING && strcmp(type->str, "Digits") == 0 && digits &&
            digits->type == BN_JSON_BOOL && digits->boolean) {
            snprintf(v->pre, sizeof v->pre, "falcon3");
            return 0;
        }
    }
    return bn_fail(err, BN_E_UNSUPPORTED,
                   "tokenizer.json: BPE pre-tokenizer not recognised (Llama 3's split regex -> "
                   "llama-bpe, individual digits -> falcon3); name it with --pre NAME");
}

static int load_merges(const bn_json *model, bn_vocab_out *v, bn_err *err)
{
    const bn_json *m = bn_json_get(model, "merges");
    if (!m || m->type != BN_JSON_ARRAY)
        return bn_fail(err, BN_E_INPUT, "tokenizer.json: model.merges is not an array");
    v->merges = calloc(m->len ? m->len : 1, sizeof *v->merges);
    if (!v->merges)
        return bn_fail(err, BN_E_NOMEM, "out of memory");
    for (const bn_json *e = m->child; e; e = e->next) {
        bn_buf b = {0};
        if (e->type == BN_JSON_STRING) {
            bn_buf_append(&b, e->str, e->len);
        } else if (e->type == BN_JSON_ARRAY && e->len == 2 && e->child->type == BN_JSON_STRING &&
                   e->child->next->type == BN_JSON_STRING) {
            for (const bn_json *part = e->child; part; part = part->next) {
                if (part != e->child)
                    bn_buf_append(&b, " ", 1);
                for (size_t k = 0; k < part->len; k++) /* ' ' -> U+0120 */
                    bn_buf_append(&b, part->str[k] == ' ' ? "\xC4\xA0" : &part->str[k],
                                  part->str[k] == ' ' ? 2 : 1);
            }
        } else {
            return bn_fail(err, BN_E_INPUT,
                           "tokenizer.json: merge %zu is neither \"a b\" nor [a, b]", v->n_merges);
        }
        if (bn_buf_check(&b, err))
            return -1;
        if (!b.data || memchr(b.data, 0, b.len)) {
            bn_buf_free(&b);
            return bn_fail(err, BN_E_INPUT, "tokenizer.json: merge %zu is empty or has a NUL",
                           v->n_merges);
        }
        v->merges[v->n_merges++] = b.data;
    }
    return 0;
}

static int load_bpe(const bn_json *tok, const bn_hf_config *c, const char *pre_override,
                    bn_vocab_out *v, bn_err *err)
{
    const bn_json *model = bn_json_get(tok, "model");
    const bn_json *type = model ? bn_json_get(model, "type") : NULL;
    const bn_json *vocab = model ? bn_json_get(model, "vocab") : NULL;
    const bn_json *added = bn_json_get(tok, "added_tokens");
    if (!type || type->type != BN_JSON_STRING || strcmp(type->str, "BPE") != 0)
        return bn_fail(err, BN_E_UNSUPPORTED, "tokenizer.json: model.type is not \"BPE\"");
    if (!vocab || vocab->type != BN_JSON_OBJECT)
        return bn_fail(err, BN_E_INPUT, "tokenizer.json: model.vocab is not an object");
    /* a SentencePiece-style BPE (Mistral, Llama 2 as tokenizer.json) is not byte-level: the
     * reference reads it through LlamaHfVocab, which we do not have */
    const bn_json *fallback = bn_json_get(model, "byte_fallback");
    const bn_json *dec = bn_json_get(tok, "decoder");
    const bn_json *dec_type = dec ? bn_json_get(dec, "type") : NULL;
    if ((fallback && fallback->type == BN_JSON_BOOL && fallback->boolean) || !dec_type ||
        dec_type->type != BN_JSON_STRING || strcmp(dec_type->str, "ByteLevel") != 0)
        return bn_fail(err, BN_E_UNSUPPORTED,
                       "tokenizer.json: not a byte-level BPE (byte_fallback, or a decoder other "
                       "than ByteLevel); such tokenizers convert from tokenizer.model");
    if (added && added->type != BN_JSON_ARRAY)
        return bn_fail(err, BN_E_INPUT, "tokenizer.json: added_tokens is not an array");
    if (c->n_vocab > MAX_VOCAB)
        return bn_fail(err, BN_E_INPUT, "vocab_size %u is too large", c->n_vocab);
    v->model = "gpt2";
    if (recognise_pre(tok, pre_override, v, err))
        return -1;
    const int b158 = c->family == BN_FAM_B158;
    size_t n_added = 0;
    if (added)
        for (const bn_json *a = added->child; a; a = a->next) {
            const bn_json *id = bn_json_get(a, "id"), *content = bn_json_get(a, "content");
            int64_t x;
            if (!id || !content || content->type != BN_JSON_STRING ||
                bn_json_int_in(id, 0, MAX_VOCAB, &x))
                return bn_fail(err, BN_E_INPUT,
                               "tokenizer.json: added_tokens[%zu] needs an id and a content",
                               n_added);
            n_added++;
        }
    /* b1.58: the count is base + added (not in the base); others: vocab_size */
    size_t n = c->n_vocab;
    if (alloc_tokens(v, n, b158, err))
        return -1;
    for (const bn_json *e = vocab->child; e; e = e->next) {
        int64_t id;
        if (bn_json_int_in(e, 0, MAX_VOCAB, &id))
            return bn_fail(err, BN_E_INPUT, "tokenizer.json: the id of a vocab entry is not an id");
        if ((uint64_t)id >= n)
            return bn_fail(err, BN_E_INPUT, "tokenizer.json: token id %lld >= vocab_size %zu",
                           (long long)id, n);
        if (v->tokens[id])
            return bn_fail(err, BN_E_INPUT, "tokenizer.json: two tokens have id %lld",
                           (long long)id);
        if (set_token(v, (size_t)id, e->key, e->key_len, err))
            return -1;
        v->types[id] = 1;
    }
    const size_t n_base = vocab->len;
    size_t next_added = n_base;
    if (added)
        for (const bn_json *a = added->child; a; a = a->next) {
            const bn_json *content = bn_json_get(a, "content"),
                          *special = bn_json_get(a, "special");
            int64_t id;
            bn_json_int_in(bn_json_get(a, "id"), 0, MAX_VOCAB, &id);
            if ((uint64_t)id >= n)
                return bn_fail(err, BN_E_INPUT,
                               "tokenizer.json: added token id %lld >= vocab_size %zu",
                               (long long)id, n);
            const int is_special = special && special->type == BN_JSON_BOOL && special->boolean;
            if (v->tokens[id]) {
                if (strcmp(v->tokens[id], content->str) != 0)
                    return bn_fail(err, BN_E_INPUT, "tokenizer.json: added token id %lld is taken",
                                   (long long)id);
                if (!b158) /* in the vocab and added: the added rule wins */
                    v->types[id] = is_special ? 3 : 4;
                continue;
            }
            if (b158 && (uint64_t)id != next_added++)
                return bn_fail(err, BN_E_INPUT,
                               "tokenizer.json: added token ids must follow the vocabulary (%lld)",
                               (long long)id);
            if (set_token(v, (size_t)id, content->str, content->len, err))
                return -1;
            v->types[id] = b158 || is_special ? 3 : 4;
            if (b158)
                v->scores[id] = -1000.0f;
        }
    for (size_t i = 0; i < n; i++) {
        if (v->tokens[i])
            continue;
        if (b158)
            return bn_fail(err, BN_E_INPUT,
                           "vocab size mismatch: config.json has %u, tokenizer.json %zu tokens",
                           c->n_vocab, next_added);
        char pad[32];
        int k = snprintf(pad, sizeof pad, "[PAD%zu]", i);
        if (set_token(v, i, pad, (size_t)k, err))
            return -1;
        v->types[i] = 4;
    }
    return load_merges(model, v, err);
}

/* ---------------------------------------------------------------- special tokens */

static void add_special(bn_vocab_out *v, int type, uint32_t id, int range_check)
{
    for (int i = 0; i < v->n_special; i++)
        if (v->special_type[i] == type)
            return;
    if (range_check && id >= v->n_tokens)
        return;
    v->special_type[v->n_special] = type;
    v->special_id[v->n_special++] = id;
}

static int load_special(const char *dir, const bn_json *tok, const bn_hf_config *c, bn_vocab_out *v,
                        bn_err *err)
{
    const int range_check = strcmp(v->model, "llama") == 0 || c->family == BN_FAM_B158;
    int found;
    bn_json_doc *doc = parse_json_file(dir, "tokenizer_config.json", &found, err);
    if (!doc && found)
        return -1;
    const bn_json *tc = doc ? bn_json_root(doc) : NULL;
    const bn_json *added = tok ? bn_json_get(tok, "added_tokens") : NULL;
    int rc = -1;
    if (tc && tc->type != BN_JSON_OBJECT) {
        bn_fail(err, BN_E_INPUT, "tokenizer_config.json is not an object");
        goto done;
    }
    if (tc) {
        const bn_json *t = bn_json_get(tc, "chat_template");
        if (t && t->type == BN_JSON_STRING) {
            if (memchr(t->str, 0, t->len)) {
                bn_fail(err, BN_E_INPUT, "tokenizer_config.json: chat_template has a NUL");
                goto done;
            }
            v->chat_template = strdup(t->str);
            if (!v->chat_template) {
                bn_fail(err, BN_E_NOMEM, "out of memory");
                goto done;
            }
        } else if (t && t->type != BN_JSON_NULL) {
            bn_fail(err, BN_E_UNSUPPORTED,
                    "tokenizer_config.json: chat_template is not a string (named templates are not "
                    "supported)");
            goto done;
        }
        const bn_json *aps = bn_json_get(tc, "add_prefix_space");
        if (aps && aps->type == BN_JSON_BOOL) {
            v->add_prefix_space.has = true;
            v->add_prefix_space.v = aps->boolean;
        }
        for (int i = 0; i < 7; i++) {
            char key[32];
            snprintf(key, sizeof key, "add_%s_token", bn_special_type(i));
            const bn_json *a = bn_json_get(tc, key);
            if (a && a->type == BN_JSON_BOOL && i < 2) {
                bn_opt_u32 *dst = i == 0 ? &v->add_bos : &v->add_eos;
                dst->has = true;
                dst->v = a->boolean;
            }
            snprintf(key, sizeof key, "%s_token", bn_special_type(i));
            const bn_json *e = bn_json_get(tc, key);
            if (e && e->type == BN_JSON_OBJECT)
                e = bn_json_get(e, "content");
            if (!e || e->type != BN_JSON_STRING || !added)
                continue;
            for (const bn_json *a2 = added->child; a2; a2 = a2->next) {
                const bn_json *content = bn_json_get(a2, "content");
                int64_t id;
                if (content && content->type == BN_JSON_STRING &&
                    strcmp(content->str, e->str) == 0 &&
                    bn_json_int_in(bn_json_get(a2, "id"), 0, UINT32_MAX, &id) == 0) {
                    add_special(v, i, (uint32_t)id, range_check);
                    break;
                }
            }
        }
    }
    for (int i = 0; i < 7; i++)
        if (c->special[i].has)
            add_special(v, i, c->special[i].v, range_check);
    rc = 0;
done:
    bn_json_free(doc);
    return rc;
}

int bn_vocab_load(const char *dir, const bn_hf_config *c, const char *pre_override, bn_vocab_out *v,
                  bn_err *err)
{
    memset(v, 0, sizeof *v);
    int have_spm = 0, have_json = 0;
    char path[4096];
    struct stat sb;
    snprintf(path, sizeof path, "%s/tokenizer.model", dir);
    have_spm = stat(path, &sb) == 0;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    have_json = stat(path, &sb) == 0;
    /* llama: SentencePiece first, then BPE (the reference's order); bitnet: SentencePiece
     * (the reference knows no other; we also take tokenizer.json); b1.58: BPE */
    const int use_spm = c->family == BN_FAM_B158 ? 0 : have_spm;
    if (!use_spm && !have_json)
        return bn_fail(err, BN_E_INPUT, "%s: no %s", dir,
                       c->family == BN_FAM_B158 ? "tokenizer.json"
                                                : "tokenizer.model or tokenizer.json");
    bn_json_doc *doc = NULL;
    const bn_json *tok = NULL;
    if (have_json) { /* SpecialVocab reads its added_tokens for SentencePiece too */
        doc = parse_json_file(dir, "tokenizer.json", NULL, err);
        if (!doc)
            return -1;
        tok = bn_json_root(doc);
        if (tok->type != BN_JSON_OBJECT) {
            bn_json_free(doc);
            return bn_fail(err, BN_E_INPUT, "tokenizer.json is not an object");
        }
    }
    int rc = use_spm ? load_spm(dir, c, v, err) : load_bpe(tok, c, pre_override, v, err);
    if (rc == 0)
        rc = load_special(dir, tok, c, v, err);
    bn_json_free(doc);
    if (rc)
        bn_vocab_free(v);
    return rc;
}

void bn_vocab_free(bn_vocab_out *v)
{
    for (size_t i = 0; v->tokens && i < v->n_tokens; i++)
        free(v->tokens[i]);
    for (size_t i = 0; v->merges && i < v->n_merges; i++)
        free(v->merges[i]);
    free(v->tokens);
    free(v->types);
    free(v->scores);
    free(v->merges);
    free(v->chat_template);
    memset(v, 0, sizeof *v);
}
