/* bitnet-run internals: options (args.c), output helpers (output.c), modes (main.c). */
#ifndef BN_CLI_H
#define BN_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bitnet.h"

#define CLI_MAX_STOP 16

/* Exit codes: 0 ok, 1 runtime failure (I/O, memory), 2 bad input (flags, files, prompt). */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

typedef struct cli_opts {
    const char *model, *prompt, *prompt_file, *system;
    int64_t n_predict;
    int64_t n_ctx;
    int64_t n_threads; /* 0 = bn_cpu_count() */
    int64_t n_batch;
    float temp, top_p, min_p, repeat_penalty;
    int64_t top_k, repeat_last_n;
    int64_t seed; /* -1 = random */
    bool cnv, no_bos, json, bos, special, inspect, verbose, help, version;
    const char *stop[CLI_MAX_STOP];
    size_t n_stop;
    const char *tokens;      /* --tokens "1,2,3" (parsed by cli_parse_ids) */
    const char *dump_logits; /* file */
    const char *tokenize, *tokenize_file, *detokenize;
    const char *pre_tokenizer;
    const char *chat_template;
} cli_opts;

/* Fills o from argv (defaults first). 0 or -1 with a one-line message in err. */
int cli_parse(int argc, char **argv, cli_opts *o, char *err, size_t errlen);
void cli_usage(FILE *f);

/* "1,2,3" / "[1, 2, 3]" -> malloc'd ids. 0 or -1 with a message. */
int cli_parse_ids(const char *s, int32_t **ids, size_t *n, char *err, size_t errlen);

/* ---- output.c */
/* Streams generated text to stdout as it becomes final (flushes after every piece). */
int cli_print_piece(void *user, int32_t id, const char *text, size_t len);

/* Writes rows of n_vocab little-endian float32 to an open file (user = FILE *). */
int cli_write_logits(void *user, const float *logits, uint32_t n_vocab);

/* One line to stderr: load, prompt eval, generation, time to first token, peak RSS, stop. */
void cli_print_timings(const bn_stats *st);

/* The --json object for the last generation of s. */
int cli_print_json(const bn_session *s, const bn_stats *st, uint64_t seed);

/* A JSON array of ids on one line. */
void cli_print_ids(FILE *f, const int32_t *ids, size_t n);

/* Model summary for --inspect. */
void cli_print_inspect(FILE *f, const char *path, const bn_engine_info *info);

#endif
