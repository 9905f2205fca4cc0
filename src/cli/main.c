/* bitnet-run: llama-cli-style front end of the engine API. One mode per run: generate (text,
 * file, ids or chat), converse (-cnv), tokenize, detokenize, inspect. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

enum { MAX_INPUT = 64 << 20 };

static int fail(int code, const char *fmt, const char *a)
{
    fputs("bitnet-run: error: ", stderr);
    fprintf(stderr, fmt, a);
    fputc('\n', stderr);
    return code;
}

/* Whole file into memory (NUL-terminated), refusing files over MAX_INPUT bytes. */
static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read '%s'", path);
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            if (cap >= MAX_INPUT) {
                snprintf(err, errlen, "'%s' is larger than %d MiB", path, MAX_INPUT >> 20);
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
            int bad = ferror(f);
            fclose(f);
            if (bad) {
                snprintf(err, errlen, "cannot read '%s'", path);
                free(buf);
                return NULL;
            }
            buf[n] = 0;
            *len = n;
            return buf;
        }
    }
    if (!buf || !err[0])
        snprintf(err, errlen, "out of memory reading '%s'", path);
    free(buf);
    fclose(f);
    return NULL;
}

static int run_tokenize(const cli_opts *o, const bn_engine *e)
{
    char msg[600] = "";
    bn_err err = {0};
    size_t len = 0;
    char *file = NULL;
    const char *text = o->tokenize;
    if (o->tokenize_file) {
        if (!(file = read_file(o->tokenize_file, &len, msg, sizeof msg)))
            return fail(CLI_USAGE, "%s", msg);
        text = file;
    } else {
        len = strlen(text);
    }
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = bn_engine_tokenize(e, text, len, o->bos, o->special, &ids, &n, &err);
    free(file);
    if (rc)
        return fail(CLI_FAIL, "%s", err.msg);
    cli_print_ids(stdout, ids, n);
    free(ids);
    return CLI_OK;
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
        return fail(CLI_USAGE, "%s", err.msg);
    int bad = fwrite(text, 1, len, stdout) != len;
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
    g.sampling.seed = seed;
    g.stop = o->stop;
    g.n_stop = o->n_stop;
    g.add_bos = !o->no_bos;
    g.parse_special = true; /* as llama-cli does for -p */
    g.on_token = o->json ? NULL : cli_print_piece;
    return g;
}

static int finish_turn(const cli_opts *o, bn_session *s, const bn_stats *st, uint64_t seed)
{
    if (o->json) {
        if (cli_print_json(s, st, seed))
            return fail(CLI_FAIL, "%s", "cannot write the JSON output");
    } else if (isatty(STDOUT_FILENO)) {
        fputc('\n', stdout);
    }
    fflush(stdout);
    cli_print_timings(st);
    return CLI_OK;
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
        return fail(CLI_USAGE, "%s", err.msg);
    char *line = NULL;
    size_t cap = 0;
    int rc = CLI_OK;
    for (;;) {
        if (!o->json) {
            fputs("\n> ", stdout);
            fflush(stdout);
        }
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0)
            break;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        if (n == 0)
            continue;
        bn_chat_msg user = {"user", line};
        g = base_params(o, seed);
        g.messages = &user;
        g.n_messages = 1;
        g.append = true;
        if (bn_generate(s, &g, &st, &err)) {
            rc = fail(CLI_USAGE, "%s", err.msg);
            break;
        }
        if ((rc = finish_turn(o, s, &st, seed)) != CLI_OK)
            break;
        if (st.stop_reason == BN_STOP_CONTEXT_FULL) {
            fprintf(stderr, "bitnet-run: the context is full (%u positions); ending the "
                            "conversation\n", bn_session_n_ctx(s));
            break;
        }
    }
    free(line);
    return rc;
}

static int run_generate(const cli_opts *o, bn_engine *e)
{
    char msg[600] = "";
    bn_err err = {0};
    if (!o->prompt && !o->prompt_file && !o->tokens && !o->cnv)
        return fail(CLI_USAGE, "%s", "nothing to do: give -p, -f, --tokens or -cnv (see --help)");
    bn_session_params sp = {(uint32_t)o->n_ctx, (int)o->n_threads, (uint32_t)o->n_batch};
    bn_session *s = bn_session_create(e, &sp, &err);
    if (!s)
        return fail(CLI_USAGE, "%s", err.msg);
    uint64_t seed = o->seed < 0 ? bn_random_seed() : (uint64_t)o->seed;
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
    int rc = CLI_USAGE;
    if (o->prompt_file) {
        if (!(file_text = read_file(o->prompt_file, &len, msg, sizeof msg)))
            goto out;
        if (len > 0 && file_text[len - 1] == '\n') /* as llama-cli */
            file_text[--len] = 0;
    }
    const char *text = o->prompt ? o->prompt : file_text;
    if (o->tokens) {
        if (cli_parse_ids(o->tokens, &ids, &n_ids, msg, sizeof msg)) {
            snprintf(msg + strlen(msg), sizeof msg - strlen(msg), " (--tokens)");
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
            snprintf(msg, sizeof msg, "cannot write '%s'", o->dump_logits);
            goto out;
        }
        g.on_logits = cli_write_logits;
        g.user = dump;
    }
    bn_stats st;
    if (bn_generate(s, &g, &st, &err)) {
        snprintf(msg, sizeof msg, "%s", err.msg);
        goto out;
    }
    if (dump) {
        int bad = fclose(dump) != 0;
        dump = NULL;
        if (bad) {
            snprintf(msg, sizeof msg, "cannot write '%s'", o->dump_logits);
            rc = CLI_FAIL;
            goto out;
        }
    }
    rc = finish_turn(o, s, &st, seed);
out:
    if (rc == CLI_USAGE || (rc == CLI_FAIL && msg[0]))
        fail(rc, "%s", msg);
    if (dump)
        fclose(dump);
    free(file_text);
    free(ids);
    bn_session_free(s);
    return rc;
}

int main(int argc, char **argv)
{
    cli_opts o;
    char msg[600] = "";
    if (cli_parse(argc, argv, &o, msg, sizeof msg))
        return fail(CLI_USAGE, "%s", msg);
    if (o.help) {
        cli_usage(stdout);
        return CLI_OK;
    }
    if (o.version) {
        printf("bitnet-run %s\n", BN_VERSION);
        return CLI_OK;
    }
    if (!o.model)
        return fail(CLI_USAGE, "%s", "no model: give -m FILE (see --help)");
    int n_tool = !!o.tokenize + !!o.tokenize_file + !!o.detokenize + o.inspect;
    int n_prompt = !!o.prompt + !!o.prompt_file + !!o.tokens;
    if (n_tool > 1)
        return fail(CLI_USAGE, "%s", "give only one of --tokenize, --tokenize-file, --detokenize, --inspect");
    if (n_prompt > 1)
        return fail(CLI_USAGE, "%s", "give only one of -p, -f, --tokens");

    bn_err err = {0};
    bn_open_opts oo = {.pre_tokenizer = o.pre_tokenizer, .chat_template = o.chat_template};
    bn_engine *e = bn_engine_open(o.model, &oo, &err);
    if (!e)
        return fail(CLI_USAGE, "%s", err.msg);
    bn_engine_info info;
    bn_engine_get_info(e, &info);
    if (o.verbose)
        fprintf(stderr, "bitnet-run: %s: kernels %s, pre-tokenizer %s, loaded in %.1f ms\n",
                o.model, info.kernels, info.pre_tokenizer, info.load_ms);
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
