/* gguf-inspect: prints a GGUF file's version, every metadata key with its type and value (long
 * arrays as their length and first elements), the tensor table and totals per type; --json
 * prints the same as one JSON object. Exit 1 when the file cannot be read, 2 on bad usage. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "escape.h"
#include "gguf.h"

enum {
    HEAD_NUMS = 8,
    HEAD_STRS = 5,
    MAX_TEXT_STR = 160
};

typedef struct type_total {
    uint64_t count, bytes;
} type_total;

/* ---------------------------------------------------------------- text output */

/* A string for a terminal: printable ASCII and UTF-8 as is, other bytes (controls, C1
 * controls, invalid UTF-8) escaped as \\xNN; with QUOTED, " and \\ are escaped too and \\n
 * spelled out. Returns the number of characters printed (for column padding). */
static size_t put_escaped(const char *s, uint64_t n, int quoted)
{
    size_t cols = 0;
    for (uint64_t i = 0; i < n;) {
        const unsigned char c = (unsigned char)s[i];
        size_t k = bn_printable_len(s + i, n - i);
        if (quoted && (c == '"' || c == '\\'))
            cols += (size_t)printf("\\%c", c);
        else if (quoted && c == '\n')
            cols += (size_t)printf("\\n");
        else if (k == 0)
            cols += (size_t)printf("\\x%02x", c);
        else {
            fwrite(s + i, 1, k, stdout);
            cols++;
            i += k;
            continue;
        }
        i++;
    }
    return cols;
}

/* A name (metadata key, tensor name) escaped, padded with spaces to WIDTH characters. */
static void put_name(const char *s, int width)
{
    for (size_t cols = put_escaped(s, strlen(s), 0); cols < (size_t)width; cols++)
        putchar(' ');
}

/* A quoted string value; strings longer than LIMIT bytes are cut (limit 0 = no cut), never
 * inside a UTF-8 character (a cut one would print as escapes). */
static void put_text_str(bn_gguf_str s, uint64_t limit)
{
    uint64_t n = 0;
    while (n < s.len && (!limit || n < limit)) {
        size_t k = bn_printable_len(s.ptr + n, s.len - n);
        n += k ? k : 1;
    }
    putchar('"');
    put_escaped(s.ptr, n, 1);
    putchar('"');
    if (n < s.len)
        printf("... (%" PRIu64 " bytes)", s.len);
}

static void put_number(const bn_gguf_kv *kv, bn_gguf_type t, uint64_t i, int json)
{
    const uint8_t *p = kv ? kv->arr_data : NULL;
    uint64_t u = 0;
    size_t sz = (t == BN_GGUF_U8 || t == BN_GGUF_I8 || t == BN_GGUF_BOOL)    ? 1
                : (t == BN_GGUF_U16 || t == BN_GGUF_I16)                     ? 2
                : (t == BN_GGUF_U32 || t == BN_GGUF_I32 || t == BN_GGUF_F32) ? 4
                                                                             : 8;
    for (size_t b = 0; b < sz; b++)
        u |= (uint64_t)p[i * sz + b] << (8 * b);
    double f = 0;
    switch (t) {
    case BN_GGUF_I8: printf("%d", (int8_t)u); return;
    case BN_GGUF_I16: printf("%d", (int16_t)u); return;
    case BN_GGUF_I32: printf("%" PRId32, (int32_t)u); return;
    case BN_GGUF_I64: printf("%" PRId64, (int64_t)u); return;
    case BN_GGUF_BOOL: fputs(u ? "true" : "false", stdout); return;
    case BN_GGUF_F32: {
        float x;
        uint32_t v = (uint32_t)u;
        memcpy(&x, &v, 4);
        f = x;
        break;
    }
    case BN_GGUF_F64: memcpy(&f, &u, 8); break;
    default: printf("%" PRIu64, u); return;
    }
    if (json && !isfinite(f))
        printf("\"%g\"", f); /* JSON has no NaN/Inf */
    else
        printf(t == BN_GGUF_F32 ? "%.9g" : "%.17g", f);
}

static void put_scalar(const bn_gguf_kv *kv, int json)
{
    double f = kv->num.f64;
    switch (kv->type) {
    case BN_GGUF_I8:
    case BN_GGUF_I16:
    case BN_GGUF_I32:
    case BN_GGUF_I64: printf("%" PRId64, kv->num.i64); break;
    case BN_GGUF_BOOL: fputs(kv->num.u64 ? "true" : "false", stdout); break;
    case BN_GGUF_F32:
    case BN_GGUF_F64:
        if (json && !isfinite(f))
            printf("\"%g\"", f);
        else
            printf(kv->type == BN_GGUF_F32 ? "%.9g" : "%.17g", f);
        break;
    default: printf("%" PRIu64, kv->num.u64); break;
    }
}

static void print_text(const char *path, const bn_gguf *g)
{
    printf("%s: GGUF v%u, %" PRIu64 " metadata keys, %" PRIu64 " tensors, alignment %u, "
           "%zu bytes\n",
           path, g->version, g->n_kv, g->n_tensors, g->alignment, g->size);
    printf("\nmetadata:\n");
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const bn_gguf_kv *kv = &g->kv[i];
        printf("  %3" PRIu64 "  ", i);
        put_name(kv->key, 48);
        putchar(' ');
        if (kv->type == BN_GGUF_STRING) {
            printf("%-14s ", "string");
            put_text_str(kv->str, MAX_TEXT_STR);
        } else if (kv->type == BN_GGUF_ARRAY) {
            char t[32];
            snprintf(t, sizeof t, "%s[%" PRIu64 "]", bn_gguf_type_name(kv->arr_type), kv->arr_len);
            printf("%-14s [", t);
            uint64_t head = kv->arr_type == BN_GGUF_STRING ? HEAD_STRS : HEAD_NUMS;
            for (uint64_t j = 0; j < kv->arr_len && j < head; j++) {
                printf("%s", j ? ", " : "");
                if (kv->arr_type == BN_GGUF_STRING)
                    put_text_str(kv->arr_strs[j], 40);
                else
                    put_number(kv, kv->arr_type, j, 0);
            }
            printf("%s]", kv->arr_len > head ? ", ..." : "");
        } else {
            printf("%-14s ", bn_gguf_type_name(kv->type));
            put_scalar(kv, 0);
        }
        putchar('\n');
    }
    printf("\ntensors:\n  %4s  %-32s %-5s %-22s %14s %14s\n", "#", "name", "type", "dims", "offset",
           "bytes");
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const bn_gguf_tensor *t = &g->tensors[i];
        char dims[96];
        int w = snprintf(dims, sizeof dims, "[");
        for (uint32_t d = 0; d < t->n_dims && w > 0 && (size_t)w < sizeof dims; d++)
            w += snprintf(dims + w, sizeof dims - (size_t)w, "%s%" PRIu64, d ? ", " : "", t->ne[d]);
        if (w > 0 && (size_t)w < sizeof dims)
            snprintf(dims + w, sizeof dims - (size_t)w, "]");
        printf("  %4" PRIu64 "  ", i);
        put_name(t->name, 32);
        printf(" %-5s %-22s %14" PRIu64 " %14" PRIu64 "\n", bn_ggml_type_name(t->type), dims,
               t->offset, t->nbytes);
    }
}

/* ---------------------------------------------------------------- JSON output */

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 when invalid. */
static int utf8_len(const unsigned char *p, uint64_t n)
{
    unsigned c = p[0];
    int len = c < 0x80                 ? 1
              : c >= 0xC2 && c <= 0xDF ? 2
              : c >= 0xE0 && c <= 0xEF ? 3
              : c >= 0xF0 && c <= 0xF4 ? 4
                                       : 0;
    if (!len || (uint64_t)len > n)
        return 0;
    for (int i = 1; i < len; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F) || (c == 0xF0 && p[1] < 0x90) ||
        (c == 0xF4 && p[1] > 0x8F))
        return 0; /* overlong, surrogate or > U+10FFFF */
    return len;
}

/* A JSON string; bytes that are not valid UTF-8 become \u00XX (the byte's Latin-1 reading),
 * so the output is always valid JSON. */
static void put_json_str(const char *s, uint64_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    putchar('"');
    for (uint64_t i = 0; i < len;) {
        unsigned c = p[i];
        int k = utf8_len(p + i, len - i);
        if (c == '"' || c == '\\') {
            printf("\\%c", c);
        } else if (c == '\n') {
            fputs("\\n", stdout);
        } else if (c == '\t') {
            fputs("\\t", stdout);
        } else if (c < 0x20 || c == 0x7f || k == 0) {
            printf("\\u%04x", c);
        } else {
            fwrite(p + i, 1, (size_t)k, stdout);
            i += (uint64_t)k;
            continue;
        }
        i++;
    }
    putchar('"');
}

static void print_json(const char *path, const bn_gguf *g, const type_total *totals,
                       uint64_t total_bytes)
{
    printf("{\"file\":");
    put_json_str(path, strlen(path));
    printf(",\"version\":%u,\"file_size\":%zu,\"alignment\":%u,\"n_kv\":%" PRIu64
           ",\"n_tensors\":%" PRIu64 ",\"metadata\":[",
           g->version, g->size, g->alignment, g->n_kv, g->n_tensors);
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const bn_gguf_kv *kv = &g->kv[i];
        printf("%s{\"key\":", i ? "," : "");
        put_json_str(kv->key, strlen(kv->key));
        printf(",\"type\":\"%s\"", bn_gguf_type_name(kv->type));
        if (kv->type == BN_GGUF_STRING) {
            printf(",\"value\":");
            put_json_str(kv->str.ptr, kv->str.len);
        } else if (kv->type == BN_GGUF_ARRAY) {
            printf(",\"elem_type\":\"%s\",\"len\":%" PRIu64 ",\"head\":[",
                   bn_gguf_type_name(kv->arr_type), kv->arr_len);
            uint64_t head = kv->arr_type == BN_GGUF_STRING ? HEAD_STRS : HEAD_NUMS;
            for (uint64_t j = 0; j < kv->arr_len && j < head; j++) {
                printf("%s", j ? "," : "");
                if (kv->arr_type == BN_GGUF_STRING)
                    put_json_str(kv->arr_strs[j].ptr, kv->arr_strs[j].len);
                else
                    put_number(kv, kv->arr_type, j, 1);
            }
            printf("]");
        } else {
            printf(",\"value\":");
            put_scalar(kv, 1);
        }
        printf("}");
    }
    printf("],\"tensors\":[");
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const bn_gguf_tensor *t = &g->tensors[i];
        printf("%s{\"name\":", i ? "," : "");
        put_json_str(t->name, strlen(t->name));
        printf(",\"type\":\"%s\",\"dims\":[", bn_ggml_type_name(t->type));
        for (uint32_t d = 0; d < t->n_dims; d++)
            printf("%s%" PRIu64, d ? "," : "", t->ne[d]);
        printf("],\"offset\":%" PRIu64 ",\"bytes\":%" PRIu64 "}", t->offset, t->nbytes);
    }
    printf("],\"totals\":{\"by_type\":{");
    int first = 1;
    for (uint32_t t = 0; t < 64; t++)
        if (totals[t].count) {
            printf("%s\"%s\":{\"count\":%" PRIu64 ",\"bytes\":%" PRIu64 "}", first ? "" : ",",
                   bn_ggml_type_name(t), totals[t].count, totals[t].bytes);
            first = 0;
        }
    printf("},\"tensor_bytes\":%" PRIu64 ",\"data_size\":%" PRIu64 ",\"data_offset\":%" PRIu64
           "}}\n",
           total_bytes, g->data_size, g->data_offset);
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("usage: gguf-inspect [--json] FILE\n"
                   "Prints a GGUF file's version, metadata (type and value of every key; long\n"
                   "arrays as their length and first elements), tensor table (name, type, dims,\n"
                   "offset relative to the data section, bytes) and totals per tensor type.\n"
                   "  --json   the same as one JSON object\n");
            return 0;
        }
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "gguf-inspect: unknown option '%s' (see --help)\n", argv[i]);
            return 2;
        } else if (path) {
            fprintf(stderr, "gguf-inspect: one FILE only (got '%s' and '%s')\n", path, argv[i]);
            return 2;
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        fprintf(stderr, "usage: gguf-inspect [--json] FILE\n");
        return 2;
    }
    bn_err err = {0};
    bn_gguf *g = bn_gguf_open(path, &err);
    if (!g) {
        fprintf(stderr, "gguf-inspect: %s\n", err.msg);
        return 1;
    }
    /* the reader only accepts known types, whose ids are below 64 */
    type_total totals[64] = {{0}};
    uint64_t total_bytes = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const bn_gguf_tensor *t = &g->tensors[i];
        totals[t->type & 63].count++;
        totals[t->type & 63].bytes += t->nbytes;
        total_bytes += t->nbytes;
    }
    if (json) {
        print_json(path, g, totals, total_bytes);
    } else {
        print_text(path, g);
        printf("\ntotals:\n");
        for (uint32_t t = 0; t < 64; t++)
            if (totals[t].count)
                printf("  %-5s %6" PRIu64 " tensors %16" PRIu64 " bytes\n", bn_ggml_type_name(t),
                       totals[t].count, totals[t].bytes);
        printf("  all   %6" PRIu64 " tensors %16" PRIu64 " bytes (%.2f MiB tensor data)\n",
               g->n_tensors, total_bytes, (double)total_bytes / (1024.0 * 1024.0));
        printf("  data offset %" PRIu64 ", data section %" PRIu64 " bytes, file %zu bytes\n",
               g->data_offset, g->data_size, g->size);
    }
    bn_gguf_close(g);
    return fflush(stdout) == 0 ? 0 : 1;
}
