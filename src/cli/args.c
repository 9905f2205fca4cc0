/* bitnet-run flags: one table drives parsing, range checks and --help (llama-cli's dialect). */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef enum kind {
    K_FLAG,
    K_INT,
    K_FLOAT,
    K_STR,
    K_STOP
} kind;

typedef struct opt_def {
    const char *name, *alias; /* alias may be NULL */
    kind k;
    size_t off; /* field in cli_opts */
    const char *meta, *help;
    int set; /* K_INT / K_FLOAT: the bn_setting_id holding the range; -1 none */
    bool show_default;
} opt_def;

#define F(field) offsetof(cli_opts, field)

static const opt_def OPTS[] = {
    {"-m", "--model", K_STR, F(model), "FILE",
     "model GGUF (a vocab-only GGUF is enough for --tokenize/--detokenize)", -1, false},
    {"-p", "--prompt", K_STR, F(prompt), "TEXT",
     "prompt (special-token names are parsed, as llama-cli does)", -1, false},
    {"-f", "--file", K_STR, F(prompt_file), "FILE",
     "read the prompt from a file, - = standard input (one trailing newline dropped)", -1, false},
    {"-n", "--n-predict", K_INT, F(n_predict), "N",
     "tokens to generate, -1 = until a stop condition", BN_SET_N_PREDICT, true},
    {"-c", "--ctx-size", K_INT, F(n_ctx), "N", "context length, 0 = the model's (at most 4096)",
     BN_SET_N_CTX, true},
    {"-t", "--threads", K_INT, F(n_threads), "N", "threads, 0 = the CPUs this process may use",
     BN_SET_N_THREADS, true},
    {"-b", "--batch-size", K_INT, F(n_batch), "N",
     "prompt tokens evaluated together, 1 = token by token", BN_SET_N_BATCH, true},
    {"--temp", NULL, K_FLOAT, F(temp), "T", "temperature, 0 = greedy (argmax, lowest id on ties)",
     BN_SET_TEMP, true},
    {"--top-k", NULL, K_INT, F(top_k), "N", "keep the N most likely tokens, 0 = off", BN_SET_TOP_K,
     true},
    {"--top-p", NULL, K_FLOAT, F(top_p), "P", "keep the smallest set of mass >= P, 1 = off",
     BN_SET_TOP_P, true},
    {"--min-p", NULL, K_FLOAT, F(min_p), "P",
     "drop tokens below P x the best one's probability, 0 = off", BN_SET_MIN_P, true},
    {"--repeat-penalty", NULL, K_FLOAT, F(repeat_penalty), "X",
     "penalty for tokens in the last-n window, 1 = off", BN_SET_REPEAT_PENALTY, true},
    {"--repeat-last-n", NULL, K_INT, F(repeat_last_n), "N",
     "penalty window, 0 = off, -1 = the whole context", BN_SET_REPEAT_LAST_N, true},
    {"--presence-penalty", NULL, K_FLOAT, F(presence_penalty), "X",
     "subtracted once from every token in the last-n window, 0 = off", BN_SET_PRESENCE_PENALTY,
     true},
    {"--frequency-penalty", NULL, K_FLOAT, F(frequency_penalty), "X",
     "subtracted per occurrence in the last-n window, 0 = off", BN_SET_FREQUENCY_PENALTY, true},
    {"--seed", NULL, K_INT, F(seed), "N", "sampling seed, -1 = random", BN_SET_SEED, true},
    {"-cnv", "--conversation", K_FLAG, F(cnv), NULL,
     "chat interactively on stdin (-p or -sys = system prompt); Ctrl-C ends an answer, a second "
     "Ctrl-C exits",
     -1, false},
    {"-i", "--interactive", K_FLAG, F(cnv), NULL, "same as -cnv", -1, false},
    {"-no-cnv", "--no-conversation", K_FLAG, F(no_cnv), NULL,
     "no chat mode (overrides -cnv/-i; the default)", -1, false},
    {"-r", "--reverse-prompt", K_STOP, F(stop), "STR",
     "stop at STR and hand the turn back (in -cnv); as --stop, STR is not printed", -1, false},
    {"-e", "--escape", K_FLAG, F(escape), NULL,
     "process escapes (\\n, \\t, \\xHH, ...) in -p, -sys, --stop, -r", -1, false},
    {"-sys", "--system-prompt", K_STR, F(system), "TEXT",
     "system prompt; with -p alone, formats -p as a chat turn", -1, false},
    {"--stop", NULL, K_STOP, F(stop), "STR", "stop when the output contains STR (repeatable)", -1,
     false},
    {"--no-bos", NULL, K_FLAG, F(no_bos), NULL,
     "do not prepend BOS to the prompt (nor EOS after it, add_eos_token)", -1, false},
    {"--json", NULL, K_FLAG, F(json), NULL,
     "print one JSON object per answer on one line (prompt_tokens, tokens, text, stop_reason, "
     "seed, timings)",
     -1, false},
    {"--tokens", NULL, K_STR, F(tokens), "ID,...",
     "evaluate these token ids as the prompt (as given, no BOS)", -1, false},
    {"--dump-logits", NULL, K_STR, F(dump_logits), "FILE",
     "write the logits of every evaluated position (f32 LE rows of n_vocab)", -1, false},
    {"--tokenize", NULL, K_STR, F(tokenize), "TEXT",
     "print the ids of TEXT as a JSON array and exit", -1, false},
    {"--tokenize-file", NULL, K_STR, F(tokenize_file), "FILE", "same for the contents of FILE", -1,
     false},
    {"--detokenize", NULL, K_STR, F(detokenize), "ID,...", "print the bytes of these ids and exit",
     -1, false},
    {"--bos", NULL, K_FLAG, F(bos), NULL, "--tokenize: prepend BOS", -1, false},
    {"--special", NULL, K_FLAG, F(special), NULL, "--tokenize: parse special-token names", -1,
     false},
    {"--pre-tokenizer", NULL, K_STR, F(pre_tokenizer), "NAME",
     "llama3 (default, the model's), default (bitnet.cpp's, for parity) or falcon3", -1, false},
    {"--chat-template", NULL, K_STR, F(chat_template), "NAME",
     "bitnet, llama3, falcon3, chatml, zephyr or falcon_e (detected from the model)", -1, false},
    {"--inspect", NULL, K_FLAG, F(inspect), NULL, "print a model summary and exit", -1, false},
    {"--verbose", NULL, K_FLAG, F(verbose), NULL,
     "diagnostics on stderr (kernel path, seed, context, threads)", -1, false},
    {"-ngl", "--n-gpu-layers", K_INT, F(n_gpu_layers), "N",
     "accepted and ignored: this engine runs on the CPU", -1, false},
    {"--color", NULL, K_FLAG, F(color), NULL, "accepted and ignored (plain output)", -1, false},
    {"--mlock", NULL, K_FLAG, F(mlock), NULL,
     "accepted and ignored (the mapped model is not locked)", -1, false},
    {"--no-mmap", NULL, K_FLAG, F(no_mmap), NULL,
     "accepted and ignored (the model is always mapped)", -1, false},
    {"-h", "--help", K_FLAG, F(help), NULL, "this help", -1, false},
    {"--version", NULL, K_FLAG, F(version), NULL, "print the version", -1, false},
};
#undef F

enum {
    N_OPTS = sizeof OPTS / sizeof OPTS[0]
};

static void defaults(cli_opts *o)
{
    bn_sampling_params sp = bn_sampling_default();
    memset(o, 0, sizeof *o);
    o->n_predict = -1;
    o->n_ctx = 0;
    o->n_threads = 0;
    o->n_batch = 512;
    o->temp = sp.temp;
    o->top_k = sp.top_k;
    o->top_p = sp.top_p;
    o->min_p = sp.min_p;
    o->repeat_penalty = sp.repeat_penalty;
    o->repeat_last_n = sp.repeat_last_n;
    o->presence_penalty = sp.presence_penalty;
    o->frequency_penalty = sp.frequency_penalty;
    o->seed = -1;
    o->n_gpu_layers = -1;
}

static const opt_def *find_opt(const char *name, size_t len)
{
    for (size_t i = 0; i < N_OPTS; i++) {
        const opt_def *d = &OPTS[i];
        if ((strlen(d->name) == len && strncmp(d->name, name, len) == 0) ||
            (d->alias && strlen(d->alias) == len && strncmp(d->alias, name, len) == 0))
            return d;
    }
    return NULL;
}

/* The range lives in the engine's settings table; the message names this flag. */
static int range_check(const opt_def *d, const char *flag, double v, char *err, size_t errlen)
{
    if (d->set < 0)
        return 0;
    char label[80];
    bn_err e = {0};
    snprintf(label, sizeof label, "option '%s'", flag);
    if (bn_setting_check((bn_setting_id)d->set, v, label, &e) == 0)
        return 0;
    snprintf(err, errlen, "%s", e.msg);
    return -1;
}

static int set_value(cli_opts *o, const opt_def *d, const char *flag, const char *val, char *err,
                     size_t errlen)
{
    char *field = (char *)o + d->off;
    char *end = NULL;
    errno = 0;
    switch (d->k) {
    case K_FLAG: *(bool *)field = true; return 0;
    case K_STR: *(const char **)field = val; return 0;
    case K_STOP:
        if (o->n_stop == CLI_MAX_STOP) {
            snprintf(err, errlen, "at most %d --stop strings", CLI_MAX_STOP);
            return -1;
        }
        if (!*val) {
            snprintf(err, errlen, "option '%s' needs a non-empty string", flag);
            return -1;
        }
        o->stop[o->n_stop++] = val;
        return 0;
    case K_INT: {
        long long v = strtoll(val, &end, 10);
        if (end == val || *end) {
            snprintf(err, errlen, "option '%s' expects an integer, got '%s'", flag, val);
            return -1;
        }
        /* out of long long's range: still a number, so the range is the message */
        double dv = errno == ERANGE ? strtod(val, NULL) : (double)v;
        if (errno != ERANGE && (long long)dv != v) /* above 2^53: rounding must not bring it
                                                       back into range */
            dv = nextafter(dv, v > 0 ? INFINITY : -INFINITY);
        if (range_check(d, flag, dv, err, errlen))
            return -1;
        if (errno == ERANGE) {
            snprintf(err, errlen, "option '%s' expects a 64-bit integer, got '%s'", flag, val);
            return -1;
        }
        *(int64_t *)field = v;
        return 0;
    }
    case K_FLOAT: {
        /* strtod, not strtof: a value below float's normal range (1e-38) is a number, and
         * the range check decides about it */
        double v = strtod(val, &end);
        if (end == val || *end || isnan(v)) {
            snprintf(err, errlen, "option '%s' expects a number, got '%s'", flag, val);
            return -1;
        }
        if (range_check(d, flag, v, err, errlen))
            return -1;
        if (v != 0 && (float)v == 0.0f) {
            snprintf(err, errlen, "option '%s': '%s' rounds to 0 as a float", flag, val);
            return -1;
        }
        *(float *)field = (float)v;
        return 0;
    }
    }
    return -1;
}

int cli_parse(int argc, char **argv, cli_opts *o, char *err, size_t errlen)
{
    defaults(o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        const opt_def *d = find_opt(a, nlen);
        if (!d) {
            snprintf(err, errlen, "unknown option '%.*s' (see --help)", (int)nlen, a);
            return -1;
        }
        char flag[64];
        snprintf(flag, sizeof flag, "%.*s", (int)nlen, a);
        const char *val = NULL;
        if (d->k == K_FLAG) {
            if (eq) {
                snprintf(err, errlen, "option '%s' takes no value", flag);
                return -1;
            }
        } else if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            snprintf(err, errlen, "option '%s' needs a value (%s)", flag, d->meta);
            return -1;
        }
        if (set_value(o, d, flag, val, err, errlen))
            return -1;
    }
    if (o->no_cnv)
        o->cnv = false;
    if (o->escape) { /* the strings are argv's own, which C lets a program modify */
        if (o->prompt)
            cli_unescape((char *)o->prompt);
        if (o->system)
            cli_unescape((char *)o->system);
        for (size_t i = 0; i < o->n_stop; i++)
            cli_unescape((char *)o->stop[i]);
    }
    if (o->pre_tokenizer && strcmp(o->pre_tokenizer, "llama3") != 0 &&
        strcmp(o->pre_tokenizer, "llama-bpe") != 0 && strcmp(o->pre_tokenizer, "default") != 0 &&
        strcmp(o->pre_tokenizer, "falcon3") != 0) {
        snprintf(err, errlen,
                 "option '--pre-tokenizer' must be llama3, default or falcon3, got '%s'",
                 o->pre_tokenizer);
        return -1;
    }
    static const char *const templates[] = {"bitnet", "llama3", "falcon3",
                                            "chatml", "zephyr", "falcon_e"};
    bool known = !o->chat_template;
    for (size_t i = 0; i < sizeof templates / sizeof *templates && !known; i++)
        known = strcmp(o->chat_template, templates[i]) == 0;
    if (!known) {
        snprintf(err, errlen,
                 "option '--chat-template' must be bitnet, llama3, falcon3, chatml, "
                 "zephyr or falcon_e, got '%s'",
                 o->chat_template);
        return -1;
    }
    return 0;
}

void cli_usage(FILE *f)
{
    cli_opts d;
    defaults(&d);
    fprintf(f, "usage: bitnet-run -m MODEL [-p PROMPT | -f FILE | --tokens IDS | -cnv] [options]\n"
               "       bitnet-run -m MODEL --tokenize TEXT | --detokenize IDS | --inspect\n\n"
               "Runs a BitNet b1.58 GGUF model (i2_s) on the CPU. Text streams to stdout;\n"
               "diagnostics and a timings line go to stderr. Ctrl-C stops the answer (the\n"
               "timings are printed; status 130).\n\n"
               "Exit status: 0 done; 1 a file or I/O error (model missing, unreadable, not a\n"
               "GGUF, unsupported; a failed write); 2 usage or bad input (flags, values, a\n"
               "vocab-only model for generation, a prompt longer than the context); 3 out of\n"
               "memory; 130 stopped by Ctrl-C.\n\n");
    for (size_t i = 0; i < N_OPTS; i++) {
        const opt_def *o = &OPTS[i];
        char names[64];
        snprintf(names, sizeof names, "%s%s%s%s%s", o->name, o->alias ? ", " : "",
                 o->alias ? o->alias : "", o->meta ? " " : "", o->meta ? o->meta : "");
        fprintf(f, "  %-28s %s", names, o->help);
        if (o->set >= 0) {
            char range[64];
            fprintf(f, "; range %s", bn_setting_range((bn_setting_id)o->set, range, sizeof range));
        }
        if (o->show_default) {
            const char *field = (const char *)&d + o->off;
            if (o->k == K_INT)
                fprintf(f, " (default: %lld)", (long long)*(const int64_t *)field);
            else
                fprintf(f, " (default: %g)", (double)*(const float *)field);
        }
        fputc('\n', f);
    }
    fprintf(f,
            "\nSampling chain (llama.cpp's order): repeat penalty -> top-k -> top-p -> min-p ->\n"
            "temperature -> softmax -> draw (SplitMix64 seeded by --seed); --temp 0 = greedy.\n");
}

int cli_parse_ids(const char *s, int32_t **ids, size_t *n, char *err, size_t errlen)
{
    size_t cap = 16, cnt = 0;
    int32_t *v = malloc(cap * sizeof *v);
    if (!v) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const char *p = s;
    while (*p == ' ' || *p == '[')
        p++;
    while (*p && *p != ']') {
        char *end = NULL;
        errno = 0;
        long long x = strtoll(p, &end, 10);
        if (end == p || errno == ERANGE || x < 0 || x > 2147483647) {
            snprintf(err, errlen, "bad token id list at '%.20s' (expected ids like 1,2,3)", p);
            free(v);
            return -1;
        }
        if (cnt == cap) {
            int32_t *w = realloc(v, (cap *= 2) * sizeof *v);
            if (!w) {
                free(v);
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            v = w;
        }
        v[cnt++] = (int32_t)x;
        p = end;
        while (*p == ' ')
            p++;
        if (*p == ',') {
            p++;
            while (*p == ' ')
                p++;
            if (!*p || *p == ']') {
                snprintf(err, errlen, "bad token id list: trailing comma");
                free(v);
                return -1;
            }
        } else if (*p && *p != ']') {
            snprintf(err, errlen, "bad token id list at '%.20s' (expected ids like 1,2,3)", p);
            free(v);
            return -1;
        }
    }
    if (*p == ']')
        p++;
    while (*p == ' ' || *p == '\n')
        p++;
    if (*p || cnt == 0) {
        snprintf(err, errlen, cnt ? "bad token id list: text after ']'" : "empty token id list");
        free(v);
        return -1;
    }
    *ids = v;
    *n = cnt;
    return 0;
}
