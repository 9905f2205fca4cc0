/* bitnet-run internals: options (args.c), output helpers (output.c), modes (main.c). */
#ifndef BN_CLI_H
#define BN_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bitnet.h"

#define CLI_MAX_STOP 16

/* Exit statuses (README "bitnet-run", --help): 0 ok, 1 a file or I/O error (missing,
 * unreadable, not a GGUF, unsupported, a failed write), 2 usage and bad input (flags, values,
 * a prompt that does not fit the context), 3 out of memory, 130 stopped by Ctrl-C (128 +
 * SIGINT, as shells report it). */
enum {
    CLI_OK = 0,
    CLI_FAIL = 1,
    CLI_USAGE = 2,
    CLI_NOMEM = 3,
    CLI_INTERRUPTED = 130
};

/* The exit status for an error code (exit_status.c: the one place that maps codes). */
int cli_exit_status(bn_err_code code);

typedef struct cli_opts {
    const char *model, *prompt, *prompt_file, *system;
    int64_t n_predict;
    int64_t n_ctx;
    int64_t n_threads; /* 0 = bn_cpu_count() */
    int64_t n_batch;
    float temp, top_p, min_p, repeat_penalty, presence_penalty, frequency_penalty;
    int64_t top_k, repeat_last_n;
    int64_t seed; /* -1 = random */
    bool cnv, no_bos, json, bos, special, inspect, verbose, help, version;
    /* llama-cli habits: -no-cnv, -e (escapes in -p/-sys/--stop/-r), and flags accepted and
     * ignored (--verbose says so): -ngl (no GPU here), --color, --mlock, --no-mmap */
    bool no_cnv, escape, color, mlock, no_mmap;
    int64_t n_gpu_layers; /* -1 = not given */
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

/* ---- interrupt.c: SIGINT handling (see there). */
int cli_interrupt_install(void);
bool cli_interrupted(void);
void cli_interrupt_reset(void);
/* Between these calls (the -cnv prompt) a SIGINT exits with 130 at once, first ending the
 * prompt line with a newline when `newline` (not between JSON lines). */
void cli_interrupt_at_prompt(bool waiting, bool newline);

/* Replaces \n, \t, \r, \\, \", \', \a, \b, \f, \v, \e, \xHH and \NNN (octal) in s, in
 * place (llama-cli's -e); an unknown escape is kept as written. */
void cli_unescape(char *s);

/* ---- output.c */
/* Streams generated text to stdout as it becomes final (flushes after every piece). */
int cli_print_piece(void *user, int32_t id, const char *text, size_t len);

/* The --dump-logits file; errno_ keeps the first write error so the message can say why. */
typedef struct cli_logits_sink {
    FILE *f;
    int errno_;
} cli_logits_sink;

/* Writes rows of n_vocab little-endian float32 (user = cli_logits_sink *). */
int cli_write_logits(void *user, const float *logits, uint32_t n_vocab);

/* One line to stderr: load, prompt eval, generation, time to first token, peak RSS, stop. */
void cli_print_timings(const bn_stats *st);
/* The stop reason as printed: "interrupted" when Ctrl-C ended the answer. */
const char *cli_stop_name(const bn_stats *st);
/* Token callback for --json runs: prints nothing, stops on Ctrl-C. */
int cli_watch_interrupt(void *user, int32_t id, const char *text, size_t len);

/* The --json object for the last generation of s, on one line; seed NULL (greedy) = null. */
int cli_print_json(const bn_session *s, const bn_stats *st, const uint64_t *seed);
/* --tokenize --json: {"tokens":[...],"n_tokens":N}; --detokenize --json: {"text":"..."}. */
int cli_print_json_ids(const int32_t *ids, size_t n);
int cli_print_json_text(const char *text, size_t len);

/* A JSON array of ids on one line. */
void cli_print_ids(FILE *f, const int32_t *ids, size_t n);

/* Model summary for --inspect. */
void cli_print_inspect(FILE *f, const char *path, const bn_engine_info *info);

#endif
