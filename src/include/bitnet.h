/* bitnet.h: the public engine API — the one header bitnet-run, the Lambda loop and the
 * benchmarks include.
 *
 *   bn_engine  = a model file opened once: weights (mmap) + tokenizer. A vocab-only GGUF opens
 *                as a tokenizer-only engine (tokenize/detokenize work, sessions are refused).
 *   bn_session = one conversation: KV cache (n_ctx), thread pool, the token history.
 *   bn_generate = prompt (text, ids or chat messages) -> prefill -> sample/decode loop, with a
 *                callback per token receiving complete UTF-8 text, until a stop condition.
 *
 *   bn_err err;
 *   bn_engine *e = bn_engine_open("model.gguf", NULL, &err);
 *   bn_session *s = bn_session_create(e, NULL, &err);
 *   bn_generate_params g = bn_generate_default();
 *   g.prompt = "The capital of France is"; g.n_predict = 32; g.on_token = print_piece;
 *   bn_stats st; bn_generate(s, &g, &st, &err);
 *
 * Every function that can fail returns -1 or NULL and fills err with one line; nothing here
 * prints or exits. An engine may serve several sessions; a session is used by one thread at a
 * time. */
#ifndef BN_BITNET_H
#define BN_BITNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BN_VERSION "0.1.0"

/* ------------------------------------------------------------------ errors
 * Every call that can fail fills a bn_err: a code that callers map (exit status, error type)
 * and one line of text for people. The library's own error.h carries the same definition. */
#ifndef BN_ERR_TYPE_DEFINED
#define BN_ERR_TYPE_DEFINED
typedef enum bn_err_code {
    BN_OK = 0,
    BN_E_INPUT,        /* bad input: a setting out of range, a malformed request or prompt */
    BN_E_FORMAT,       /* a file is not what it claims: not a GGUF, corrupt, wrong shapes */
    BN_E_IO,           /* a file or connection could not be opened, read, written or mapped */
    BN_E_NOMEM,        /* an allocation failed */
    BN_E_CONTEXT_FULL, /* the prompt or conversation does not fit the context */
    BN_E_UNSUPPORTED,  /* well-formed but not supported (architecture, tensor type, ...) */
    BN_E_INTERNAL,     /* a broken invariant or a failed system call that is not I/O */
} bn_err_code;

typedef struct bn_err {
    bn_err_code code;
    char msg[512];
} bn_err;
#endif

/* "bad input", "format", "I/O", "out of memory", "context full", "unsupported", "internal". */
const char *bn_err_code_name(bn_err_code code);

/* ------------------------------------------------------------------ sampling and chat types */
/* The sampler's settings (llama.cpp's semantics; see bn_generate for the chain). */
typedef struct bn_sampling_params {
    float temp;            /* 0: greedy (ranges: bn_setting_get) */
    int32_t top_k;         /* 0 or -1: off (all tokens) */
    float top_p;           /* in (0, 1]; 1: off */
    float min_p;           /* in [0, 1]; 0: off */
    float repeat_penalty;  /* > 0; 1: off */
    int32_t repeat_last_n; /* tokens looked back for the penalties; 0: off, -1: whole context */
    /* OpenAI's penalties with llama.cpp's arithmetic over the same window: a token seen
     * count > 0 times loses count * frequency_penalty + presence_penalty from its logit. */
    float presence_penalty;  /* finite; 0: off */
    float frequency_penalty; /* finite; 0: off */
    uint64_t seed;
} bn_sampling_params;

/* llama-cli's defaults: temp 0.8, top-k 40, top-p 0.95, min-p 0.05, repeat penalty 1.0 over
 * the last 64 tokens, presence and frequency penalties 0, seed 0 (callers wanting a random seed pick one themselves). */
bn_sampling_params bn_sampling_default(void);

/* A seed nobody chose (time and pid through SplitMix64), below 2^53 (BN_SET_SEED's range). */
uint64_t bn_random_seed(void);

/* One chat message; the text layer's chat.h carries the same definition. */
#ifndef BN_CHAT_MSG_DEFINED
#define BN_CHAT_MSG_DEFINED
typedef struct bn_chat_msg {
    const char *role;    /* "system", "user" or "assistant" */
    const char *content; /* UTF-8 */
} bn_chat_msg;
#endif

typedef struct bn_engine bn_engine;
typedef struct bn_session bn_session;

/* ------------------------------------------------------------------ engine */
typedef struct bn_open_opts {
    /* Pre-tokenizer: NULL or "llama3" (the model's training tokenizer, our default) or
     * "default" (llama.cpp's fallback that bitnet.cpp uses on the published file, for parity
     * runs; FORMAT.md 6.2). */
    const char *pre_tokenizer;
    /* Chat template: NULL = detected from the file's tokenizer.chat_template by its markers
     * (as llama.cpp does), or "bitnet", "llama3", "falcon3", "chatml", "zephyr", "falcon_e". A file
     * without a recognised template gets "bitnet" (architecture bitnet-b1.58) or "chatml"
     * (llama.cpp's default). */
    const char *chat_template;
} bn_open_opts;

/* opts may be NULL. NULL + err when the file is missing, unreadable, not a GGUF, or has
 * weights that do not form a valid model. */
bn_engine *bn_engine_open(const char *path, const bn_open_opts *opts, bn_err *err);
void bn_engine_free(bn_engine *e);

typedef struct bn_engine_info {
    bool has_weights;      /* false: vocab-only file (tokenizer only) */
    uint32_t n_vocab;      /* tokenizer vocabulary */
    int32_t bos, eos, eot; /* -1 when absent */
    /* hyper-parameters (0 when !has_weights) */
    uint32_t n_ctx_train, n_embd, n_layer, n_head, n_head_kv, n_ff;
    uint64_t n_params; /* weights counted from the tensor shapes */
    uint64_t file_size;
    const char *kernels; /* kernel path used by the weights ("scalar", "neon", ...) */
    double repack_ms;    /* its weight repacking at load (0: the path reads the file in place) */
    int repack_threads;
    const char *pre_tokenizer;
    const char *chat_template; /* the template chat messages are rendered with */
    const char *arch;          /* general.architecture ("bitnet-b1.58", "bitnet", "llama"); NULL
                              for a vocab-only file */
    double load_ms;            /* bn_engine_open wall time */
    const char *name;          /* general.name ("" when absent) */
    bool synthetic;            /* the name contains "synthetic": random weights, meaningless output
                              (entry points print BN_SYNTHETIC_WARNING) */
    /* LM head: "screened" (a compact copy screens the rows, exact logits for every token the
     * sampler can draw; requests that need the full distribution still take the full head) or
     * "full". BITNET_LM_HEAD=full|screened|screened-u6 pins it at open (and the copy's
     * format: int8, or 6-bit for greedy workloads); default screened. */
    const char *lm_head;
    const char *lm_compact;    /* the copy's rows: "int8" or "u6" (6-bit); NULL for "full" */
    double lm_build_ms;        /* building the compact copy (part of load_ms) */
    int lm_build_threads;      /* threads that built it */
    uint64_t lm_compact_bytes; /* its size */
    /* Bytes of weights one decode token reads, for bandwidth figures: the layers' matrices
     * (every one is read whole), and one row of the exact LM head (the full head reads
     * n_vocab rows; the screened one reads the compact copy and the rows it computes). */
    uint64_t decode_layer_bytes;
    uint64_t lm_head_row_bytes;
    /* The ternary weights copied onto transparent huge pages at load (faster decode; their
     * file pages are released, so RSS does not grow). BITNET_HUGEPAGES=0|1 pins it; default on
     * where the OS offers them and the kernel path reads the file in place. 0 ms: not copied. */
    double hugepage_copy_ms;
    int hugepage_copy_threads;
} bn_engine_info;

/* The one warning line every program prints for a synthetic model. */
#define BN_SYNTHETIC_WARNING "synthetic model (random weights): output is meaningless"

void bn_engine_get_info(const bn_engine *e, bn_engine_info *info);

/* Tokenizes text[0..len). add_bos is llama.cpp's add_special: prepend BOS, and append EOS when
 * the file's tokenizer.ggml.add_eos_token is true; parse_special turns the names of special
 * tokens ("<|eot_id|>") into their ids (otherwise they are plain text). *ids is malloc'd
 * (free() it); 0 on success. (bn_tokenize/bn_detokenize in tokenizer.h are the tokenizer's
 * own; these are the engine's, with its pre-tokenizer choice.) */
int bn_engine_tokenize(const bn_engine *e, const char *text, size_t len, bool add_bos,
                       bool parse_special, int32_t **ids, size_t *n_ids, bn_err *err);

/* Decodes ids to bytes (malloc'd, NUL-terminated, *len bytes; may contain any byte). Special
 * tokens render as their names when special_names, else as nothing (as llama-cli prints).
 * NULL + err when an id is out of range. */
char *bn_engine_detokenize(const bn_engine *e, const int32_t *ids, size_t n, bool special_names,
                           size_t *len, bn_err *err);

/* ------------------------------------------------------------------ session */
typedef struct bn_session_params {
    uint32_t n_ctx;   /* KV cache positions; 0 = min(context_length of the file, 4096) */
    int n_threads;    /* 0 = bn_cpu_count() (the CPUs this process may use) */
    uint32_t n_batch; /* most prompt tokens evaluated together; 0 = 512; 1 = token by token */
} bn_session_params;

/* p may be NULL (all defaults). Refuses a tokenizer-only engine. */
bn_session *bn_session_create(bn_engine *e, const bn_session_params *p, bn_err *err);
void bn_session_free(bn_session *s);
/* Forgets the conversation (the KV cache is reused from position 0). */
void bn_session_reset(bn_session *s);
uint32_t bn_session_n_ctx(const bn_session *s);
int bn_session_n_threads(const bn_session *s);

/* ------------------------------------------------------------------ generation */
typedef enum bn_stop_reason {
    BN_STOP_NONE = 0,     /* still running / not started */
    BN_STOP_EOS,          /* sampled the end-of-text token */
    BN_STOP_EOT,          /* sampled the end-of-turn token (<|eot_id|>) */
    BN_STOP_LENGTH,       /* n_predict tokens generated */
    BN_STOP_STRING,       /* generated text hit one of the stop strings */
    BN_STOP_CONTEXT_FULL, /* no position left in the KV cache */
    BN_STOP_CALLBACK,     /* on_token returned non-zero */
} bn_stop_reason;

/* "eos", "eot", "length", "stop_string", "context_full", "callback" ("none"). */
const char *bn_stop_reason_name(bn_stop_reason r);

typedef struct bn_stats {
    double load_ms;         /* the engine's */
    uint32_t prompt_tokens; /* tokens of this call's prompt */
    uint32_t prompt_eval;   /* of which evaluated (the rest reused from the KV cache) */
    double prompt_ms, prompt_tok_s;
    uint32_t gen_tokens;      /* tokens sampled (an end-of-generation token included) */
    uint32_t gen_eval;        /* tokens evaluated during generation (gen_tokens - 1, usually) */
    double gen_ms, gen_tok_s; /* decode time and gen_eval / decode time */
    double ttft_ms;           /* start of bn_generate to the first sampled token */
    bn_stop_reason stop_reason;
    int stop_index; /* BN_STOP_STRING: which stop string; else -1 */
    /* LM head: evaluations (rows of logits), of which screened, and the rows computed
     * exactly summed over all of them (n_vocab for a full one) */
    uint32_t lm_evals, lm_screened;
    uint64_t lm_rows;
} bn_stats;

/* Per-token callback. id = the sampled token, or -1 for one final call that flushes text held
 * back. text[0..len) = the output text that became final with this token: always complete
 * UTF-8 characters (bytes of a split character are held until it completes), never part of a
 * stop string (text that might begin one is held until it cannot), possibly empty, possibly
 * including text held from earlier tokens. End-of-generation tokens produce no text.
 * Return non-zero to stop (stop reason "callback"). */
typedef int (*bn_token_fn)(void *user, int32_t id, const char *text, size_t len);

/* Called with the logits of every evaluated position, in order (prompt positions first, then
 * one row per generated token that was fed back). Return non-zero to abort with an error
 * (code BN_E_IO: the callback's job is writing the rows somewhere).
 * Setting it disables KV-cache reuse between calls (every prompt position is evaluated). */
typedef int (*bn_logits_fn)(void *user, const float *logits, uint32_t n_vocab);

/* Prompt evaluation progress: called before each chunk of BN_PREFILL_CHUNK tokens (done of
 * total evaluated so far; done = 0 first, before any work) and once with done = total. Return
 * non-zero to stop: bn_generate then returns 0 with stop reason "callback", no token sampled
 * and no part of the prompt kept in the KV cache. Lets a caller with a deadline give up
 * between chunks instead of after the whole prompt. */
typedef int (*bn_prefill_fn)(void *user, size_t done, size_t total);
#define BN_PREFILL_CHUNK 32
/* One token and its probability: the softmax (over the whole vocabulary) of the logits the
 * sampler saw for that position, after the penalties and before top-k/top-p/temperature. */
typedef struct bn_token_prob {
    int32_t id;
    float prob;
} bn_token_prob;

/* Called once per sampled token, before on_token: the chosen token's probability and the
 * n_probs most likely tokens (descending probability, lower id first on ties). Return
 * non-zero to abort with an error. */
typedef int (*bn_probs_fn)(void *user, bn_token_prob chosen, const bn_token_prob *top, size_t n);

#define BN_MAX_PROBS 100

typedef struct bn_generate_params {
    /* The prompt: exactly one of these three. */
    const char *prompt;        /* text */
    const int32_t *prompt_ids; /* token ids, evaluated as given (no BOS added) */
    size_t n_prompt_ids;
    const bn_chat_msg *messages; /* chat messages, rendered with the model's template */
    size_t n_messages;

    bool add_bos;       /* text and messages: prepend BOS, and end with EOS when the file's
                           add_eos_token is true, as llama.cpp's add_special (default true;
                           ignored when append) */
    bool parse_special; /* text: special-token names become ids (default false). Messages
                           always parse only the template's own special token. */
    bool append;        /* continue the conversation: the last sampled token (if not yet fed)
                           is evaluated first, then the new prompt; only new tokens are
                           evaluated (-cnv). Otherwise the prompt starts at position 0, reusing
                           the longest common prefix already in the KV cache. */
    int32_t n_predict;  /* most tokens to sample; -1 = until another stop condition */
    bn_sampling_params sampling;
    const char *const *stop; /* stop strings (not included in the output text) */
    size_t n_stop;
    bn_token_fn on_token;
    bn_logits_fn on_logits;
    bn_prefill_fn on_prefill; /* optional; evaluation in chunks of BN_PREFILL_CHUNK when set */
    int32_t n_probs;          /* on_probs: how many top tokens (0..BN_MAX_PROBS) */
    bn_probs_fn on_probs;
    void *user; /* passed to every callback */
} bn_generate_params;

/* add_bos true, n_predict -1, llama-cli's sampling defaults, everything else empty. */
bn_generate_params bn_generate_default(void);

/* Runs one request. stats may be NULL. -1 + err on bad input (BN_E_INPUT: a setting out of
 * range, a vocabulary id out of range), a prompt that does not fit (BN_E_CONTEXT_FULL: "prompt
 * is 5000 tokens but the context holds only 4096"), or a failing logits callback; stop
 * conditions are not errors. */
int bn_generate(bn_session *s, const bn_generate_params *p, bn_stats *stats, bn_err *err);

/* Results of the last bn_generate (valid until the next call on the session): the prompt ids
 * as evaluated (BOS included), the sampled ids, and the output text (all text passed to
 * on_token, NUL-terminated). */
const int32_t *bn_session_prompt_ids(const bn_session *s, size_t *n);
const int32_t *bn_session_output_ids(const bn_session *s, size_t *n);
const char *bn_session_output_text(const bn_session *s, size_t *len);

/* ------------------------------------------------------------------ settings and their ranges
 * One table holds the range of every numeric setting; the library checks its params against
 * it, and entry points (CLI flags, Lambda event fields, HTTP routes) parse syntax only, then
 * ask bn_setting_check with their own name for the setting, so every error names the same
 * range ("option '--top-p' must be in (0, 1] (1 = off), got 1.5"). New settings (presence
 * and frequency penalties, ...) get a new id before BN_SET_COUNT. */
typedef enum bn_setting_id {
    BN_SET_N_PREDICT, /* bn_generate_params.n_predict */
    BN_SET_TEMP,      /* bn_sampling_params.temp ... */
    BN_SET_TOP_K,
    BN_SET_TOP_P,
    BN_SET_MIN_P,
    BN_SET_REPEAT_PENALTY,
    BN_SET_REPEAT_LAST_N,
    BN_SET_PRESENCE_PENALTY,
    BN_SET_FREQUENCY_PENALTY,
    BN_SET_N_PROBS, /* bn_generate_params.n_probs */
    BN_SET_SEED,    /* entry points: -1 = pick one with bn_random_seed */
    BN_SET_N_CTX,   /* bn_session_params.n_ctx ... */
    BN_SET_N_THREADS,
    BN_SET_N_BATCH,
    BN_SET_COUNT
} bn_setting_id;

typedef struct bn_setting {
    bn_setting_id id;
    const char *name; /* the params field: "top_p" */
    bool integer;     /* only whole numbers */
    double lo, hi;    /* inclusive range, except lo when lo_open */
    bool lo_open;
    const char *meaning; /* special values: "1 = off" */
} bn_setting;

/* NULL for an unknown id. */
const bn_setting *bn_setting_get(bn_setting_id id);
/* The range as people read it, "(0, 1]" or "[-1, 2147483647]", written into buf. */
const char *bn_setting_range(bn_setting_id id, char *buf, size_t n);
/* 0 when v is in range (and whole for an integer setting); else -1 + err (BN_E_INPUT)
 * "LABEL must be in RANGE (MEANING), got V"; label NULL = the setting's name. */
int bn_setting_check(bn_setting_id id, double v, const char *label, bn_err *err);
/* Every field against the table (bn_generate and bn_session_create call these too). */
int bn_sampling_params_check(const bn_sampling_params *p, bn_err *err);
int bn_generate_params_check(const bn_generate_params *p, bn_err *err);
int bn_session_params_check(const bn_session_params *p, bn_err *err);

/* ------------------------------------------------------------------ build */
typedef struct bn_build_info {
    const char *version;        /* BN_VERSION */
    const char *compiler;       /* "gcc 12.2.0" */
    const char *flags;          /* the C flags the library was compiled with ("-O3 -Wall ...") */
    const char *target;         /* "x86_64", "aarch64" */
    const char *const *kernels; /* every kernel path compiled in, NULL-terminated */
    const char *kernels_auto;   /* the path this CPU gets (or BITNET_KERNELS pins) */
} bn_build_info;

void bn_get_build_info(bn_build_info *b);
/* 1 when this CPU can run the kernel path NAME, else 0 (also for unknown names). */
int bn_kernel_supported(const char *name);

/* ------------------------------------------------------------------ process helpers */
/* Peak resident set size of this process in KiB (getrusage), 0 when unknown. */
uint64_t bn_peak_rss_kib(void);
/* Monotonic clock in milliseconds. */
double bn_now_ms(void);
/* CPUs this process may run on (sched_getaffinity), at least 1. */
int bn_cpu_count(void);

#endif
