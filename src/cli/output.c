/* bitnet-run output: streamed text on stdout, the JSON object, the logits dump, the timings
 * line and the model summary. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "json.h"

int cli_print_piece(void *user, int32_t id, const char *text, size_t len)
{
    (void)user;
    (void)id;
    if (len && fwrite(text, 1, len, stdout) != len)
        return 1; /* stdout closed (e.g. | head): stop generating */
    return fflush(stdout) != 0 || cli_interrupted();
}

int cli_watch_interrupt(void *user, int32_t id, const char *text, size_t len)
{
    (void)user;
    (void)id;
    (void)text;
    (void)len;
    return cli_interrupted();
}

const char *cli_stop_name(const bn_stats *st)
{
    if (st->stop_reason == BN_STOP_CALLBACK && cli_interrupted())
        return "interrupted";
    return bn_stop_reason_name(st->stop_reason);
}

static int little_endian(void)
{
    const uint32_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static int write_rows(FILE *f, const float *logits, uint32_t n_vocab)
{
    if (little_endian())
        return fwrite(logits, sizeof *logits, n_vocab, f) != n_vocab;
    for (uint32_t i = 0; i < n_vocab; i++) {
        uint8_t b[4];
        memcpy(b, &logits[i], 4);
        const uint8_t r[4] = {b[3], b[2], b[1], b[0]};
        if (fwrite(r, 1, 4, f) != 4)
            return 1;
    }
    return 0;
}

int cli_write_logits(void *user, const float *logits, uint32_t n_vocab)
{
    cli_logits_sink *sink = user;
    errno = 0;
    if (write_rows(sink->f, logits, n_vocab) == 0)
        return 0;
    sink->errno_ = errno ? errno : EIO;
    return 1;
}

void cli_print_timings(const bn_stats *st)
{
    fprintf(stderr,
            "bitnet-run: load %.1f ms | prompt %u tokens (%u evaluated) %.1f ms, %.1f tok/s | "
            "generation %u tokens (%u evaluated) %.1f ms, %.1f tok/s | first token %.1f ms | "
            "peak RSS %.1f MiB | stop: %s\n",
            st->load_ms, st->prompt_tokens, st->prompt_eval, st->prompt_ms, st->prompt_tok_s,
            st->gen_tokens, st->gen_eval, st->gen_ms, st->gen_tok_s, st->ttft_ms,
            (double)bn_peak_rss_kib() / 1024.0, cli_stop_name(st));
}

static void jw_ids(bn_jw *w, const int32_t *ids, size_t n)
{
    bn_jw_arr(w);
    for (size_t i = 0; i < n; i++)
        bn_jw_int(w, ids[i]);
    bn_jw_end(w);
}

/* One finished JSON object on stdout as a line; frees the buffer. -1 when writing it (or
 * building it) failed. */
static int put_json_line(const bn_jw *w, bn_buf *b)
{
    int rc = (w->bad || b->oom) ? -1 : 0;
    if (rc == 0 && (fwrite(b->data, 1, b->len, stdout) != b->len || fputc('\n', stdout) == EOF))
        rc = -1;
    bn_buf_free(b);
    return rc;
}

int cli_print_json(const bn_session *s, const bn_stats *st, const uint64_t *seed)
{
    bn_buf b = {0};
    bn_jw w = {.out = &b};
    size_t n = 0, len = 0;
    bn_jw_obj(&w);
    bn_jw_key(&w, "prompt_tokens");
    const int32_t *ids = bn_session_prompt_ids(s, &n);
    jw_ids(&w, ids, n);
    bn_jw_key(&w, "tokens");
    ids = bn_session_output_ids(s, &n);
    jw_ids(&w, ids, n);
    bn_jw_key(&w, "text");
    const char *text = bn_session_output_text(s, &len);
    bn_jw_strn(&w, text, len);
    bn_jw_key(&w, "stop_reason");
    bn_jw_str(&w, cli_stop_name(st));
    bn_jw_key(&w, "seed");
    if (seed)
        bn_jw_int(&w, (int64_t)*seed);
    else
        bn_jw_null(&w); /* greedy: no draw used a seed */
    bn_jw_key(&w, "timings");
    bn_jw_obj(&w);
    bn_jw_key(&w, "load_ms");
    bn_jw_num(&w, st->load_ms);
    bn_jw_key(&w, "prompt_eval_tokens");
    bn_jw_int(&w, st->prompt_eval);
    bn_jw_key(&w, "prompt_ms");
    bn_jw_num(&w, st->prompt_ms);
    bn_jw_key(&w, "prompt_tok_s");
    bn_jw_num(&w, st->prompt_tok_s);
    bn_jw_key(&w, "gen_tokens");
    bn_jw_int(&w, st->gen_tokens);
    bn_jw_key(&w, "gen_eval_tokens");
    bn_jw_int(&w, st->gen_eval);
    bn_jw_key(&w, "gen_ms");
    bn_jw_num(&w, st->gen_ms);
    bn_jw_key(&w, "gen_tok_s");
    bn_jw_num(&w, st->gen_tok_s);
    bn_jw_key(&w, "ttft_ms");
    bn_jw_num(&w, st->ttft_ms);
    bn_jw_key(&w, "peak_rss_kib");
    bn_jw_int(&w, (int64_t)bn_peak_rss_kib());
    bn_jw_end(&w);
    bn_jw_end(&w);
    return put_json_line(&w, &b);
}

int cli_print_json_ids(const int32_t *ids, size_t n)
{
    bn_buf b = {0};
    bn_jw w = {.out = &b};
    bn_jw_obj(&w);
    bn_jw_key(&w, "tokens");
    jw_ids(&w, ids, n);
    bn_jw_key(&w, "n_tokens");
    bn_jw_int(&w, (int64_t)n);
    bn_jw_end(&w);
    return put_json_line(&w, &b);
}

int cli_print_json_text(const char *text, size_t len)
{
    bn_buf b = {0};
    bn_jw w = {.out = &b};
    bn_jw_obj(&w);
    bn_jw_key(&w, "text");
    bn_jw_strn(&w, text, len);
    bn_jw_end(&w);
    return put_json_line(&w, &b);
}

void cli_print_ids(FILE *f, const int32_t *ids, size_t n)
{
    fputc('[', f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, i ? ", %d" : "%d", ids[i]);
    fputs("]\n", f);
}

void cli_print_inspect(FILE *f, const char *path, const bn_engine_info *in)
{
    fprintf(f, "file: %s\n", path);
    fprintf(f, "size: %llu bytes\n", (unsigned long long)in->file_size);
    fprintf(f, "weights: %s\n", in->has_weights ? "yes" : "no (vocab-only)");
    if (in->has_weights) {
        fprintf(f, "parameters: %llu\n", (unsigned long long)in->n_params);
        fprintf(f, "n_embd: %u\nn_layer: %u\nn_head: %u\nn_head_kv: %u\nn_ff: %u\n", in->n_embd,
                in->n_layer, in->n_head, in->n_head_kv, in->n_ff);
        fprintf(f, "context_length: %u\n", in->n_ctx_train);
        fprintf(f, "kernels: %s\n", in->kernels);
    }
    fprintf(f, "n_vocab: %u\nbos: %d\neos: %d\neot: %d\n", in->n_vocab, in->bos, in->eos, in->eot);
    fprintf(f, "pre_tokenizer: %s\n", in->pre_tokenizer);
    fprintf(f, "chat_template: %s\n", in->chat_template);
    if (in->arch)
        fprintf(f, "architecture: %s\n", in->arch);
    fprintf(f, "load_ms: %.1f\n", in->load_ms);
}
