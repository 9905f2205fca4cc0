/* libFuzzer target for the SentencePiece tokenizer.model reader: whatever the input, parsing
 * returns pieces or an error; every accepted piece lies inside the input, is non-empty valid
 * UTF-8 and has a known type. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "spm_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint64_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    bn_spm_model m;
    bn_err err;
    if (bn_spm_parse(buf, size, &m, &err) == 0) {
        for (size_t i = 0; i < m.n; i++) {
            const bn_spm_piece *p = &m.pieces[i];
            if ((const uint8_t *)p->text < buf || (const uint8_t *)p->text + p->len > buf + size ||
                p->len == 0 || bn_json_utf8_prefix(p->text, p->len) != p->len || p->type < 1 ||
                p->type > 6)
                abort();
            sink += (uint8_t)p->text[p->len - 1] + (uint64_t)(p->score == p->score);
        }
        bn_spm_free(&m);
    }
    free(buf);
    return 0;
}
