/* SentencePiece ModelProto reader (see spm_model.h). */
#include "spm_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define MAX_PIECES ((size_t)1 << 24)

typedef struct cursor {
    const uint8_t *p, *end;
} cursor;

static int varint(cursor *c, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (c->p >= c->end)
            return -1;
        const uint8_t b = *c->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1; /* more than 10 bytes */
}

/* Reads one field's key and, for LEN fields, its bounds; skips other wire types' payloads
 * into *val. Returns -1 on malformed input. */
static int field(cursor *c, uint32_t *num, int *wire, cursor *sub, uint64_t *val)
{
    uint64_t key;
    if (varint(c, &key) || (key >> 3) == 0 || (key >> 3) > 0x1fffffff)
        return -1;
    *num = (uint32_t)(key >> 3);
    *wire = (int)(key & 7);
    switch (*wire) {
    case 0: return varint(c, val);
    case 1:
        if (c->end - c->p < 8)
            return -1;
        c->p += 8;
        return 0;
    case 5:
        if (c->end - c->p < 4)
            return -1;
        memcpy(val, c->p, 4); /* the low 4 bytes on a little-endian host */
        *val &= 0xffffffffu;
        c->p += 4;
        return 0;
    case 2: {
        uint64_t n;
        if (varint(c, &n) || n > (uint64_t)(c->end - c->p))
            return -1;
        sub->p = c->p;
        sub->end = c->p + n;
        c->p += n;
        return 0;
    }
    default: /* groups (3, 4) and reserved wire types: never in a ModelProto */ return -1;
    }
}

static int parse_piece(cursor c, size_t index, bn_spm_piece *pc, bn_err *err)
{
    pc->text = NULL;
    pc->len = 0;
    pc->score = 0.0f;
    pc->type = 1;
    int have_text = 0;
    while (c.p < c.end) {
        uint32_t num;
        int wire;
        cursor sub = {0};
        uint64_t val = 0;
        if (field(&c, &num, &wire, &sub, &val))
            return bn_fail(err, BN_E_FORMAT, "tokenizer.model: piece %zu: malformed field", index);
        if (num == 1 && wire == 2) {
            pc->text = (const char *)sub.p;
            pc->len = (size_t)(sub.end - sub.p);
            have_text = 1;
        } else if (num == 2 && wire == 5) {
            uint32_t u = (uint32_t)val;
            memcpy(&pc->score, &u, 4);
        } else if (num == 3 && wire == 0) {
            if (val < 1 || val > 6)
                return bn_fail(err, BN_E_FORMAT, "tokenizer.model: piece %zu: unknown type %llu",
                               index, (unsigned long long)val);
            pc->type = (int)val;
        } else if (num <= 3) {
            return bn_fail(err, BN_E_FORMAT,
                           "tokenizer.model: piece %zu: field %u has wire type %d", index, num,
                           wire);
        }
    }
    if (!have_text || pc->len == 0)
        return bn_fail(err, BN_E_FORMAT, "tokenizer.model: piece %zu has no text", index);
    if (bn_json_utf8_prefix(pc->text, pc->len) != pc->len)
        return bn_fail(err, BN_E_FORMAT, "tokenizer.model: piece %zu is not valid UTF-8", index);
    return 0;
}

int bn_spm_parse(const uint8_t *buf, size_t size, bn_spm_model *m, bn_err *err)
{
    memset(m, 0, sizeof *m);
    cursor c = {buf, buf + size};
    size_t cap = 0;
    while (c.p < c.end) {
        uint32_t num;
        int wire;
        cursor sub = {0};
        uint64_t val = 0;
        if (field(&c, &num, &wire, &sub, &val)) {
            bn_spm_free(m);
            return bn_fail(
                err, BN_E_FORMAT,
                "tokenizer.model: malformed protobuf at byte %zu (not a SentencePiece model?)",
                (size_t)(c.p - buf));
        }
        if (num != 1)
            continue;
        if (wire != 2 || m->n >= MAX_PIECES) {
            bn_spm_free(m);
            return bn_fail(err, BN_E_FORMAT, "tokenizer.model: bad pieces field");
        }
        if (m->n == cap) {
            cap = cap ? cap * 2 : 1024;
            bn_spm_piece *p = realloc(m->pieces, cap * sizeof *p);
            if (!p) {
                bn_spm_free(m);
                return bn_fail(err, BN_E_NOMEM, "out of memory");
            }
            m->pieces = p;
        }
        if (parse_piece(sub, m->n, &m->pieces[m->n], err)) {
            bn_spm_free(m);
            return -1;
        }
        m->n++;
    }
    if (m->n == 0)
        return bn_fail(err, BN_E_FORMAT, "tokenizer.model: no pieces");
    return 0;
}

void bn_spm_free(bn_spm_model *m)
{
    free(m->pieces);
    m->pieces = NULL;
    m->n = 0;
}
