/* Chat template rendering: see chat.h for the exact bytes and why it is segmented. */
#include "chat.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct textbuf {
    char *p;
    size_t len, cap;
} textbuf;

static int tb_add(textbuf *b, const char *s, size_t n, bn_err *err)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *q = realloc(b->p, cap);
        if (!q)
            return bn_fail(err, BN_E_NOMEM, "chat: out of memory");
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

/* Emits the pending text (if any) and empties the buffer. */
static int tb_flush(textbuf *b, bn_chat_emit_fn emit, void *user)
{
    if (b->len == 0)
        return 0;
    int rc = emit(user, b->p, b->len, 0);
    b->len = 0;
    return rc;
}

/* The 2B-4T rule (chat.h). */
static int render_bitnet(const bn_chat_msg *msgs, size_t n, bn_chat_emit_fn emit, void *user,
                         textbuf *b, bn_err *err)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *role = msgs[i].role, *content = msgs[i].content;
        size_t clen = strlen(content);
        if (strcmp(role, "system") == 0) {
            rc = tb_add(b, "System: ", 8, err);
            if (!rc)
                rc = tb_add(b, content, clen, err);
        } else if (strcmp(role, "user") == 0) {
            rc = tb_add(b, "User: ", 6, err);
            if (!rc)
                rc = tb_add(b, content, clen, err);
            if (!rc)
                rc = tb_flush(b, emit, user);
            if (!rc)
                rc = emit(user, BN_CHAT_EOT, strlen(BN_CHAT_EOT), 1);
            if (!rc)
                rc = tb_add(b, "Assistant: ", 11, err);
        } else {
            rc = tb_add(b, content, clen, err);
        }
    }
    return rc;
}

typedef struct marker_out {
    bn_chat_has_token_fn has_token;
    bn_chat_emit_fn emit;
    void *user;
    textbuf *b;
    bn_err *err;
} marker_out;

/* A role marker: its own special segment when the vocabulary has it, else more text. */
static int marker(const marker_out *o, const char *name)
{
    const size_t len = strlen(name);
    if (o->has_token && !o->has_token(o->user, name, len))
        return tb_add(o->b, name, len, o->err);
    int rc = tb_flush(o->b, o->emit, o->user);
    return rc ? rc : o->emit(o->user, name, len, 1);
}

static int text(const marker_out *o, const char *s) { return tb_add(o->b, s, strlen(s), o->err); }

/* llama.cpp's trim(): ASCII whitespace off both ends. */
static int text_trimmed(const marker_out *o, const char *s)
{
    size_t a = 0, z = strlen(s);
    while (a < z && strchr(" \t\n\r\f\v", s[a]))
        a++;
    while (z > a && strchr(" \t\n\r\f\v", s[z - 1]))
        z--;
    return tb_add(o->b, s + a, z - a, o->err);
}

/* "<|" role "|>" as one marker (falcon3, zephyr). */
static int role_marker(const marker_out *o, const char *role)
{
    char name[32];
    snprintf(name, sizeof name, "<|%s|>", role);
    return marker(o, name);
}

static int render_marked(bn_chat_template t, const bn_chat_msg *msgs, size_t n, const marker_out *o)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *role = msgs[i].role, *c = msgs[i].content;
        switch (t) {
        case BN_CHAT_LLAMA3:
            if (!(rc = marker(o, "<|start_header_id|>")) && !(rc = text(o, role)) &&
                !(rc = marker(o, "<|end_header_id|>")) && !(rc = text(o, "\n\n")) &&
                !(rc = text_trimmed(o, c)))
                rc = marker(o, "<|eot_id|>");
            break;
        case BN_CHAT_FALCON3:
            if (!(rc = role_marker(o, role)) && !(rc = text(o, "\n")) && !(rc = text(o, c)))
                rc = text(o, "\n");
            break;
        case BN_CHAT_CHATML:
            if (!(rc = marker(o, "<|im_start|>")) && !(rc = text(o, role)) &&
                !(rc = text(o, "\n")) && !(rc = text(o, c)) && !(rc = marker(o, "<|im_end|>")))
                rc = text(o, "\n");
            break;
        case BN_CHAT_FALCON_E: /* no separator between role and content, as in the fork */
            if (!(rc = text(o, role)) && !(rc = text(o, c)))
                rc = text(o, "\n");
            break;
        default: /* zephyr */
            if (!(rc = role_marker(o, role)) && !(rc = text(o, "\n")) && !(rc = text(o, c)) &&
                !(rc = marker(o, "<|endoftext|>")))
                rc = text(o, "\n");
            break;
        }
    }
    if (rc || n == 0 || strcmp(msgs[n - 1].role, "user") != 0)
        return rc;
    /* the assistant prompt (add_ass) */
    switch (t) {
    case BN_CHAT_LLAMA3:
        if (!(rc = marker(o, "<|start_header_id|>")) && !(rc = text(o, "assistant")) &&
            !(rc = marker(o, "<|end_header_id|>")))
            rc = text(o, "\n\n");
        return rc;
    case BN_CHAT_CHATML: return (rc = marker(o, "<|im_start|>")) ? rc : text(o, "assistant\n");
    case BN_CHAT_FALCON_E: return text(o, "assistant\n");
    default: /* falcon3, zephyr */ return (rc = role_marker(o, "assistant")) ? rc : text(o, "\n");
    }
}

int bn_chat_render_with(bn_chat_template t, const bn_chat_msg *msgs, size_t n,
                        bn_chat_has_token_fn has_token, bn_chat_emit_fn emit, void *user,
                        bn_err *err)
{
    if (t == BN_CHAT_UNKNOWN)
        return bn_fail(err, BN_E_INPUT, "no chat template");
    for (size_t i = 0; i < n; i++) {
        const char *role = msgs[i].role;
        if (!role || !msgs[i].content)
            return bn_fail(err, BN_E_INPUT, "chat message %zu: missing %s", i,
                           role ? "content" : "role");
        if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant"))
            return bn_fail(err, BN_E_INPUT,
                           "chat message %zu: unknown role \"%.40s\" (system, user or assistant)",
                           i, role);
    }
    textbuf b = {0};
    int rc;
    if (t == BN_CHAT_BITNET) {
        rc = render_bitnet(msgs, n, emit, user, &b, err);
    } else {
        marker_out o = {has_token, emit, user, &b, err};
        rc = render_marked(t, msgs, n, &o);
    }
    if (rc == 0)
        rc = tb_flush(&b, emit, user);
    free(b.p);
    return rc;
}

int bn_chat_render(const bn_chat_msg *msgs, size_t n, bn_chat_emit_fn emit, void *user, bn_err *err)
{
    return bn_chat_render_with(BN_CHAT_BITNET, msgs, n, NULL, emit, user, err);
}

static const char *const template_names[] = {"",       "bitnet", "llama3",  "falcon3",
                                             "chatml", "zephyr", "falcon_e"};

const char *bn_chat_template_name(bn_chat_template t)
{
    return (size_t)t < sizeof template_names / sizeof *template_names ? template_names[t] : "";
}

int bn_chat_template_from_name(const char *name, bn_chat_template *out)
{
    for (size_t i = 1; i < sizeof template_names / sizeof *template_names; i++)
        if (strcmp(name, template_names[i]) == 0) {
            *out = (bn_chat_template)i;
            return 0;
        }
    return -1;
}

static bool contains(const char *s, size_t n, const char *needle)
{
    const size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(s + i, needle, k) == 0)
            return true;
    return false;
}

bn_chat_template bn_chat_detect(const char *s, size_t n)
{
    if (!s)
        return BN_CHAT_UNKNOWN;
    if (contains(s, n, "<|im_start|>"))
        return BN_CHAT_CHATML;
    if (contains(s, n, "[INST]") || (contains(s, n, "<|assistant|>") && contains(s, n, "<|end|>")))
        return BN_CHAT_UNKNOWN; /* llama2/mistral, phi3: not the models this engine runs */
    if (contains(s, n, "<|assistant|>") && contains(s, n, "<|user|>"))
        return BN_CHAT_FALCON3;
    if (contains(s, n, "<|user|>"))
        return BN_CHAT_ZEPHYR;
    if (contains(s, n, "<|start_header_id|>") && contains(s, n, "<|end_header_id|>"))
        return BN_CHAT_LLAMA3;
    if (contains(s, n, "BITNET"))
        return BN_CHAT_BITNET;
    return BN_CHAT_UNKNOWN;
}

typedef struct concat {
    textbuf out;
    bn_err *err;
} concat;

static int concat_emit(void *user, const char *text, size_t len, int special)
{
    concat *c = user;
    (void)special;
    return tb_add(&c->out, text, len, c->err);
}

char *bn_chat_format_with(bn_chat_template t, const bn_chat_msg *msgs, size_t n, bn_err *err)
{
    concat c = {.err = err};
    if (tb_add(&c.out, "", 0, err) || bn_chat_render_with(t, msgs, n, NULL, concat_emit, &c, err)) {
        free(c.out.p);
        return NULL;
    }
    return c.out.p;
}

char *bn_chat_format(const bn_chat_msg *msgs, size_t n, bn_err *err)
{
    return bn_chat_format_with(BN_CHAT_BITNET, msgs, n, err);
}
