/* bitnet-run: llama-cli-style front end of the engine API. One mode per run: generate (text,
 * file, ids or chat), converse (-cnv), tokenize, detokenize, inspect. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* MAX_LINE: one -cnv turn; far more than a context of 4096 tokens can hold, and it keeps a
 * runaway line (a pasted file, a missing newline) from filling memory. */
enum {
    MAX_INPUT = 64 << 20,
    MAX_LINE = 1 << 20
};

static int fail(int code, const char *fmt, const char *a)
{
    fputs("bitnet-run: error: ", stderr);
    fprintf(stderr, fmt, a);
    fputc('\n', stderr);
    return code;
}

/* Sets e (code and message) for a failure of the CLI itself; returns -1. */
__attribute__((format(printf, 3, 4))) static int cli_err(bn_err *e, bn_err_code code,
                                                         const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    e->code = code;
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

/* The error's message on stderr; the exit status from its code. */
static int fail_err(const bn_err *e) { return fail(cli_exit_status(e->code), "%s", e->msg); }

/* Whole file into memory (NUL-terminated), refusing files over MAX_INPUT bytes; "-" is
 * standard input (as llama-cli's -f - ). */
static char *read_file(const char *path, size_t *len, bn_err *err)
{
    bool is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        cli_err(err, BN_E_IO, "cannot read '%s': %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            if (cap >= MAX_INPUT) {
                snprintf(err->msg, sizeof err->msg, "'%s' is larger than %d MiB", path,
                         MAX_INPUT >> 20);
                err->code = BN_E_INPUT;
                break;
            }
            char *b = realloc(buf, cap *= 2);
            if (!b)
                break;
            buf = b;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) {
            int bad = ferror(f), why = errno;
            if (!is_stdin)
                fclose(f);
            if (bad) {
                cli_err(err, BN_E_IO, "cannot read '%s': %s", path, strerror(why ? why : EIO));
                free(buf);
                return NULL;
            }
            buf[n] = 0;
            *len = n;
            return buf;
        }
    }
    if (err->code != BN_E_INPUT)
        cli_err(err, BN_E_NOMEM, "out of memory reading '%s'", path);
    free(buf);
    if (!is_stdin)
        fclose(f);
    return NULL;
}

static int run_tokenize(const cli_opts *o, const bn_engine *e)
{
    bn_err err = {0};
    size_t len = 0;
    char *file = NULL;
    const char *text = o->tokenize;
    if (o->tokenize_file) {
        if (!(file = read_file(o->tokenize_file, &len, &err)))
            return fail_err(&err);
        text = file;
    } else {
        len = strlen(text);
    }
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = bn_engine_tokenize(e, text, len, o->bos, o->special, &ids, &n, &err);
    free(file);
    if (rc)
        return fail_err(&err);
    int bad = 0;
    if (o->json)
        bad = cli_print_json_ids(ids, n);
    else
        cli_print_ids(stdout, ids, n);
    free(ids);
    return bad ? fail(CLI_FAIL, "%s", "cannot write the output") : CLI_OK;
}

static int run_detokenize(const cli_opts *o, const bn_engine *e)
{
    char msg[600] = "";
    bn_err err = {0};
    int32_t *ids = NULL;
    size_t n = 0, len = 0;
    if (cli_parse_ids(o->detokenize, &ids, &n, msg, sizeof msg))
        return fail(CLI_USAGE, "--detokenize: %s", msg);
    char *text = bn_engine_detokenize(e, ids, n, true, &len, &err);
    free(ids);
    if (!text)
        return fail_err(&err);
    int bad = o->json ? cli_print_json_text(text, len) : fwrite(text, 1, len, stdout) != len;
    free(text);
    return bad ? CLI_FAIL : CLI_OK;
}

/* Sampling and stop settings shared by every generation of this run. */
static bn_generate_params base_params(const cli_opts *o, uint64_t seed)
{
    bn_generate_params g = bn_generate_default();
    g.n_predict = (int32_t)o->n_predict;
    g.sampling.temp = o->temp;
    g.sampling.top_k = (int32_t)o->top_k;
    g.sampling.top_p = o->top_p;
    g.sampling.min_p = o->min_p;
    g.sampling.repeat_penalty = o->repeat_penalty;
    g.sampling.repeat_last_n = (int32_t)o->repeat_last_n;
    g.sampling.presence_penalty = o->presence_penalty;
    g.sampling.frequency_penalty = o->frequency_penalty;
    g.sampling.seed = seed;
    g.stop = o->stop;
    g.n_stop = o->n_stop;
    g.add_bos = !o->no_bos;
    g.parse_special = true; /* as llama-cli does for -p */
    g.on_token = o->json ? cli_watch_interrupt : cli_print_piece;
    return g;
}

static int finish_turn(const cli_opts *o, bn_session *s, const bn_stats *st, uint64_t seed)
{
    if (o->json) {
        if (cli_print_json(s, st, o->temp > 0 ? &seed : NULL))
            return fail(CLI_FAIL, "%s", "cannot write the JSON output");
    } else {
        /* the answer ends with a newline, on a terminal and in a file or pipe alike, so
         * `bitnet-run ... > out.txt` gives a proper text file */
        size_t len = 0;
        const char *text = bn_session_output_text(s, &len);
        if (len == 0 || text[len - 1] != '\n' || isatty(STDOUT_FILENO))
            fputc('\n', stdout);
    }
    fflush(stdout);
    cli_print_timings(st);
    if (o->verbose)
        fprintf(
            stderr,
            "bitnet-run: LM head: %u evaluations, %u screened, %.1f exact rows per evaluation\n",
            st->lm_evals, st->lm_screened, st->lm_evals ? (double)st->lm_rows / st->lm_evals : 0.0);
    return CLI_OK;
}

typedef enum line_status {
    LINE_OK,
    LINE_EOF,
    LINE_TOO_LONG,
    LINE_NUL
} line_status;

/* One line of f without its line ending into buf (MAX_LINE + 1 bytes, NUL-terminated). A line
 * that is too long or holds a NUL byte is read to its end and refused, so that the next line
 * starts a fresh turn. */
static line_status read_line(FILE *f, char *buf, size_t *len)
{
    size_t n = 0;
    int c, nul = 0, too_long = 0;
    while ((c = getc(f)) != EOF && c != '\n') {
        if (c == 0)
            nul = 1;
        else if (n < MAX_LINE)
            buf[n++] = (char)c;
        else
            too_long = 1;
    }
    if (c == EOF && n == 0 && !nul && !too_long)
        return LINE_EOF;
    while (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = 0;
    *len = n;
    return too_long ? LINE_TOO_LONG : nul ? LINE_NUL : LINE_OK;
}

/* -cnv: system prompt first (BOS + "System: ..."), then one user turn per stdin line; the KV
 * cache is kept, so each turn evaluates only its own tokens (plus the previous turn's last
 * sampled token, fed first). */
static int run_conversation(const cli_opts *o, bn_session *s, uint64_t seed)
{
    bn_err err = {0};
    bn_stats st;
    const char *sys = o->system ? o->system : o->prompt;
    bn_chat_msg first = {"system", sys};
    bn_generate_params g = base_params(o, seed);
    g.messages = &first;
    g.n_messages = sys ? 1 : 0;
    g.n_predict = 0;
    if (bn_generate(s, &g, &st, &err))
        return fail_err(&err);
    char *line = malloc((size_t)MAX_LINE + 1);
    if (!line)
        return fail(CLI_NOMEM, "%s", "out of memory for the input line");
    int rc = CLI_OK;
    for (;;) {
        if (!o->json) {
            fputs("\n> ", stdout);
            fflush(stdout);
        }
        errno = 0;
        cli_interrupt_at_prompt(true, !o->json);
        if (cli_interrupted()) { /* Ctrl-C came between the answer and the prompt */
            if (!o->json)
                fputc('\n', stdout);
            rc = CLI_INTERRUPTED;
            break;
        }
        size_t n;
        line_status ls = read_line(stdin, line, &n);
        cli_interrupt_at_prompt(false, !o->json);
        if (ferror(stdin) && errno == EINTR && cli_interrupted()) { /* Ctrl-C at the prompt */
            if (!o->json)
                fputc('\n', stdout);
            rc = CLI_INTERRUPTED;
            break;
        }
        if (ls == LINE_EOF)
            break;
        if (ls == LINE_TOO_LONG || ls == LINE_NUL) { /* this turn only; the chat goes on */
            fprintf(stderr, "bitnet-run: error: %s; line skipped\n",
                    ls == LINE_NUL ? "input line contains a NUL byte"
                                   : "input line longer than 1 MiB (1048576 bytes)");
            continue;
        }
        if (n == 0)
            continue;
        bn_chat_msg user = {"user", line};
        g = base_params(o, seed);
        g.messages = &user;
        g.n_messages = 1;
        g.append = true;
        if (bn_generate(s, &g, &st, &err)) {
            rc = fail_err(&err);
            break;
        }
        if ((rc = finish_turn(o, s, &st, seed)) != CLI_OK)
            break;
        cli_interrupt_reset(); /* Ctrl-C ended this answer only; the next one is fresh */
        if (st.stop_reason == BN_STOP_CONTEXT_FULL) {
            fprintf(stderr,
                    "bitnet-run: the context is full (%u positions); ending the "
                    "conversation\n",
                    bn_session_n_ctx(s));
            break;
        }
    }
    free(line);
    return rc;
}

static int run_generate(const cli_opts *o, bn_engine *e)
{
    bn_err err = {0};
    if (!o->prompt && !o->prompt_file && !o->tokens && !o->cnv)
        return fail(CLI_USAGE, "%s", "nothing to do: give -p, -f, --tokens or -cnv (see --help)");
    bn_session_params sp = {(uint32_t)o->n_ctx, (int)o->n_threads, (uint32_t)o->n_batch};
    bn_session *s = bn_session_create(e, &sp, &err);
    if (!s)
        return fail_err(&err);
    uint64_t seed = o->seed < 0 ? bn_random_seed() : (uint64_t)o->seed;
    bn_engine_info info;
    bn_engine_get_info(e, &info);
    if (info.n_ctx_train && bn_session_n_ctx(s) > info.n_ctx_train) /* as llama.cpp: allowed */
        fprintf(stderr,
                "bitnet-run: warning: context %u is larger than the model's training "
                "context %u; positions past it give unreliable output\n",
                bn_session_n_ctx(s), info.n_ctx_train);
    if (cli_interrupt_install())
        fprintf(stderr, "bitnet-run: warning: Ctrl-C handler not installed; Ctrl-C ends the "
                        "process without the timings line\n");
    if (o->verbose)
        fprintf(stderr, "bitnet-run: context %u, threads %d, batch %lld, seed %llu\n",
                bn_session_n_ctx(s), bn_session_n_threads(s), (long long)o->n_batch,
                (unsigned long long)seed);
    if (o->cnv) {
        int rc = run_conversation(o, s, seed);
        bn_session_free(s);
        return rc;
    }

    bn_generate_params g = base_params(o, seed);
    char *file_text = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0, len = 0;
    bn_chat_msg chat[2];
    FILE *dump = NULL;
    cli_logits_sink sink = {0};
    int rc = -1; /* -1: err says what failed */
    if (o->prompt_file) {
        if (!(file_text = read_file(o->prompt_file, &len, &err)))
            goto out;
        if (len > 0 && file_text[len - 1] == '\n') /* as llama-cli */
            file_text[--len] = 0;
        const char *nul = memchr(file_text, 0, len);
        if (nul) { /* the prompt is a C string: it would end there without a word */
            cli_err(&err, BN_E_INPUT, "'%s' contains a NUL byte at offset %zu (prompts are text)",
                    o->prompt_file, (size_t)(nul - file_text));
            goto out;
        }
    }
    const char *text = o->prompt ? o->prompt : file_text;
    if (o->tokens) {
        char why[400];
        if (cli_parse_ids(o->tokens, &ids, &n_ids, why, sizeof why)) {
            cli_err(&err, BN_E_INPUT, "%s (--tokens)", why);
            goto out;
        }
        g.prompt_ids = ids;
        g.n_prompt_ids = n_ids;
    } else if (o->system) {
        chat[0] = (bn_chat_msg){"system", o->system};
        chat[1] = (bn_chat_msg){"user", text};
        g.messages = chat;
        g.n_messages = 2;
    } else {
        g.prompt = text;
    }
    if (o->dump_logits) {
        if (!(dump = fopen(o->dump_logits, "wb"))) {
            cli_err(&err, BN_E_IO, "cannot write '%s': %s", o->dump_logits, strerror(errno));
            goto out;
        }
        sink.f = dump;
        g.on_logits = cli_write_logits;
        g.user = &sink;
    }
    bn_stats st;
    if (bn_generate(s, &g, &st, &err)) {
        if (sink.errno_) /* the engine only knows that the callback failed; we know why */
            cli_err(&err, BN_E_IO, "--dump-logits: cannot write '%s': %s", o->dump_logits,
                    strerror(sink.errno_));
        goto out;
    }
    if (dump) {
        errno = 0;
        int bad = fclose(dump) != 0;
        dump = NULL;
        if (bad) {
            cli_err(&err, BN_E_IO, "--dump-logits: cannot write '%s': %s", o->dump_logits,
                    strerror(errno ? errno : EIO));
            goto out;
        }
    }
    rc = finish_turn(o, s, &st, seed);
    if (rc == CLI_OK && cli_interrupted())
        rc = CLI_INTERRUPTED; /* the answer so far and the timings are printed; say why */
out:
    if (rc < 0)
        rc = fail_err(&err);
    if (dump)
        fclose(dump);
    free(file_text);
    free(ids);
    bn_session_free(s);
    return rc;
}

/* Version, compiler, flags and kernel paths (the ones this CPU can run marked), so a user
 * or the container test can check what a binary was built with. */
static void print_version(void)
{
    bn_build_info b;
    bn_get_build_info(&b);
    printf("bitnet-run %s\ncompiler: %s\ntarget: %s\nflags: %s\nkernels:", b.version, b.compiler,
           b.target, b.flags);
    for (const char *const *k = b.kernels; *k; k++)
        printf(" %s%s", *k, bn_kernel_supported(*k) ? "" : "(not on this CPU)");
    printf("\nkernels chosen: %s\n", b.kernels_auto);
}

/* The model is mmap'd: a file truncated or overwritten in place while we run makes the next
 * read of a vanished page raise SIGBUS. The weights are gone; say so in one line and exit. */
static void on_sigbus(int sig)
{
    (void)sig;
    static const char line[] = "bitnet-run: error: model file changed while in use (SIGBUS "
                               "reading the mapped model)\n";
    ssize_t w = write(STDERR_FILENO, line, sizeof line - 1);
    (void)w;
    _exit(CLI_FAIL);
}

int main(int argc, char **argv)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigbus;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
    cli_opts o;
    char msg[600] = "";
    if (cli_parse(argc, argv, &o, msg, sizeof msg))
        return fail(CLI_USAGE, "%s", msg);
    if (o.help) {
        cli_usage(stdout);
        return CLI_OK;
    }
    if (o.version) {
        print_version();
        return CLI_OK;
    }
    if (!o.model)
        return fail(CLI_USAGE, "%s", "no model: give -m FILE (see --help)");
    int n_tool = !!o.tokenize + !!o.tokenize_file + !!o.detokenize + o.inspect;
    int n_prompt = !!o.prompt + !!o.prompt_file + !!o.tokens;
    if (n_tool > 1)
        return fail(CLI_USAGE, "%s",
                    "give only one of --tokenize, --tokenize-file, --detokenize, --inspect");
    if (n_prompt > 1)
        return fail(CLI_USAGE, "%s", "give only one of -p, -f, --tokens");

    bn_err err = {0};
    bn_open_opts oo = {.pre_tokenizer = o.pre_tokenizer, .chat_template = o.chat_template};
    bn_engine *e = bn_engine_open(o.model, &oo, &err);
    if (!e)
        return fail_err(&err);
    bn_engine_info info;
    bn_engine_get_info(e, &info);
    if (info.synthetic && !o.tokenize && !o.tokenize_file && !o.detokenize)
        fprintf(stderr, "bitnet-run: warning: %s: %s (general.name \"%s\")\n", o.model,
                BN_SYNTHETIC_WARNING, info.name);
    if (o.verbose) {
        fprintf(stderr,
                "bitnet-run: %s: kernels %s (repacked in %.1f ms on %d threads), pre-tokenizer %s, "
                "loaded in %.1f ms, LM head %s (compact copy %.1f MiB built in %.1f ms on %d "
                "threads)\n",
                o.model, info.kernels, info.repack_ms, info.repack_threads, info.pre_tokenizer,
                info.load_ms, info.lm_head, (double)info.lm_compact_bytes / (1024.0 * 1024.0),
                info.lm_build_ms, info.lm_build_threads);
        if (o.n_gpu_layers >= 0)
            fprintf(stderr, "bitnet-run: -ngl %lld ignored: this engine runs on the CPU only\n",
                    (long long)o.n_gpu_layers);
        if (o.color || o.mlock || o.no_mmap)
            fprintf(stderr,
                    "bitnet-run: ignored:%s%s%s (plain output; the model is always "
                    "mapped, not locked)\n",
                    o.color ? " --color" : "", o.mlock ? " --mlock" : "",
                    o.no_mmap ? " --no-mmap" : "");
    }
    int rc;
    if (o.inspect) {
        cli_print_inspect(stdout, o.model, &info);
        rc = CLI_OK;
    } else if (o.tokenize || o.tokenize_file) {
        rc = run_tokenize(&o, e);
    } else if (o.detokenize) {
        rc = run_detokenize(&o, e);
    } else {
        rc = run_generate(&o, e);
    }
    bn_engine_free(e);
    return rc;
}
