/* A reader of SentencePiece's tokenizer.model (a protobuf ModelProto), just the part a GGUF
 * vocabulary needs: the pieces (field 1), each {piece (1, string), score (2, float), type (3,
 * enum: 1 NORMAL, 2 UNKNOWN, 3 CONTROL, 4 USER_DEFINED, 5 UNUSED, 6 BYTE)}. Other fields
 * (trainer_spec, normalizer_spec, ...) are skipped by wire type. Hostile input: every varint,
 * length and field is checked against the buffer; pieces must be valid UTF-8 and have a known
 * type; a malformed file is one error line. Piece texts are views into BUF. */
#ifndef BN_SPM_MODEL_H
#define BN_SPM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct bn_spm_piece {
    const char *text; /* not NUL-terminated */
    size_t len;
    float score; /* 0 when absent */
    int type;    /* 1 when absent */
} bn_spm_piece;

typedef struct bn_spm_model {
    bn_spm_piece *pieces;
    size_t n;
} bn_spm_model;

int bn_spm_parse(const uint8_t *buf, size_t size, bn_spm_model *m, bn_err *err);
void bn_spm_free(bn_spm_model *m);

#endif
