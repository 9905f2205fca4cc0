/* Golden-file reader over the product's JSON parser (src/json): the fields of bn_golden, with
 * their shapes checked against each other. Numbers go through strtod then to float, as the
 * reference's values were printed (FORMAT.md 8). */
#include "golden.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "json_data.h"
#include "testutil.h"

typedef struct reader {
    char *msg;
    size_t msg_len;
} reader;

static int golden_fail(reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int golden_fail(reader *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, r->msg_len, fmt, ap);
    va_end(ap);
    return -1;
}

/* A member that must be an array (of any length). */
static const bn_json *array(reader *r, const bn_json *root, const char *key)
{
    const bn_json *a = bn_json_get(root, key);
    if (!a || a->type != BN_JSON_ARRAY) {
        golden_fail(r, "field \"%s\": expected an array", key);
        return NULL;
    }
    return a;
}

/* A non-negative integer member. */
static int u32_field(reader *r, const bn_json *root, const char *key, uint32_t *out)
{
    int64_t v;
    if (bn_json_int_in(bn_json_get(root, key), 0, UINT32_MAX, &v))
        return golden_fail(r, "field \"%s\": expected a non-negative integer", key);
    *out = (uint32_t)v;
    return 0;
}

/* An array of int32 ids (allocated for at least one element). */
static int ids_field(reader *r, const bn_json *root, const char *key, int32_t **out, size_t *n)
{
    if (bn_test_json_ids(bn_json_get(root, key), out, n))
        return golden_fail(r, "field \"%s\": expected an array of int32 ids", key);
    return 0;
}

/* Numbers of one array into out[0..a->len). */
static int floats_into(reader *r, const char *key, size_t row, const bn_json *a, float *out)
{
    size_t i = 0;
    for (const bn_json *v = a->child; v; v = v->next, i++) {
        if (v->type != BN_JSON_NUMBER)
            return golden_fail(r, "field \"%s\" row %zu [%zu]: expected a number", key, row, i);
        out[i] = (float)v->num;
    }
    return 0;
}

static int floats_field(reader *r, const bn_json *root, const char *key, float **out, size_t *n)
{
    const bn_json *a = array(r, root, key);
    if (!a)
        return -1;
    if (!(*out = malloc((a->len ? a->len : 1) * sizeof **out)))
        return golden_fail(r, "out of memory");
    *n = a->len;
    return floats_into(r, key, 0, a, *out);
}

/* An array of rows of cols numbers each, row-major. */
static int matrix_field(reader *r, const bn_json *root, const char *key, size_t rows, size_t cols,
                        float **out)
{
    const bn_json *a = array(r, root, key);
    if (!a)
        return -1;
    if (a->len != rows)
        return golden_fail(r, "field \"%s\": %zu rows, expected %zu", key, a->len, rows);
    if (!(*out = malloc((rows * cols > 0 ? rows * cols : 1) * sizeof **out)))
        return golden_fail(r, "out of memory");
    size_t i = 0;
    for (const bn_json *row = a->child; row; row = row->next, i++) {
        if (row->type != BN_JSON_ARRAY || row->len != cols)
            return golden_fail(r, "field \"%s\" row %zu: expected %zu numbers", key, i, cols);
        if (floats_into(r, key, i, row, *out + i * cols))
            return -1;
    }
    return 0;
}

static int read_fields(reader *r, const bn_json *root, bn_golden *g)
{
    if (!root || root->type != BN_JSON_OBJECT)
        return golden_fail(r, "expected an object");
    if (u32_field(r, root, "n_vocab", &g->n_vocab) ||
        (bn_json_get(root, "n_batch") && u32_field(r, root, "n_batch", &g->n_batch)))
        return -1;
    if (g->n_vocab == 0)
        return golden_fail(r, "n_vocab is 0");
    if (ids_field(r, root, "prompt_ids", &g->prompt_ids, &g->n_prompt) ||
        ids_field(r, root, "greedy_ids", &g->greedy_ids, &g->n_greedy) ||
        matrix_field(r, root, "prompt_logits", g->n_prompt, g->n_vocab, &g->prompt_logits) ||
        matrix_field(r, root, "greedy_logits", g->n_greedy, g->n_vocab, &g->greedy_logits))
        return -1;
    if (bn_json_get(root, "greedy_top2_margin")) {
        size_t n = 0;
        if (floats_field(r, root, "greedy_top2_margin", &g->greedy_margin, &n))
            return -1;
        if (n != g->n_greedy)
            return golden_fail(r, "%zu margins for %zu greedy ids", n, g->n_greedy);
    }
    return 0;
}

int bn_golden_load(const char *path, bn_golden *g, char *msg, size_t msg_len)
{
    memset(g, 0, sizeof *g);
    size_t len;
    char *text = (char *)bn_test_read_file(path, &len);
    if (!text) {
        snprintf(msg, msg_len, "%s: cannot read", path);
        return -1;
    }
    bn_err err = {0};
    bn_json_opts opts = {.max_size = (size_t)256 << 20}; /* golden files of real models */
    bn_json_doc *doc = bn_json_parse(text, len, &opts, &err);
    free(text);
    if (!doc) {
        snprintf(msg, msg_len, "%s: %s", path, err.msg);
        return -1;
    }
    char why[400] = "";
    reader r = {why, sizeof why};
    int rc = read_fields(&r, bn_json_root(doc), g);
    bn_json_free(doc);
    if (rc) {
        snprintf(msg, msg_len, "%s: %s", path, why);
        bn_golden_free(g);
    }
    return rc;
}

void bn_golden_free(bn_golden *g)
{
    free(g->prompt_ids);
    free(g->greedy_ids);
    free(g->prompt_logits);
    free(g->greedy_logits);
    free(g->greedy_margin);
    memset(g, 0, sizeof *g);
}
