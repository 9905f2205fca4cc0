/* Chat template rendering: see chat.h for the exact bytes and why it is segmented. */
#include "chat.h"

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

int bn_chat_render(const bn_chat_msg *msgs, size_t n, bn_chat_emit_fn emit, void *user,
                   bn_err *err)
{
    textbuf b = {0};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *role = msgs[i].role, *content = msgs[i].content;
        if (!role || !content) {
            rc = bn_fail(err, BN_E_INPUT, "chat message %zu: missing %s", i, role ? "content" : "role");
            break;
        }
        size_t clen = strlen(content);
        if (strcmp(role, "system") == 0) {
            rc = tb_add(&b, "System: ", 8, err);
            if (!rc)
                rc = tb_add(&b, content, clen, err);
        } else if (strcmp(role, "user") == 0) {
            rc = tb_add(&b, "User: ", 6, err);
            if (!rc)
                rc = tb_add(&b, content, clen, err);
            if (!rc)
                rc = tb_flush(&b, emit, user);
            if (!rc)
                rc = emit(user, BN_CHAT_EOT, strlen(BN_CHAT_EOT), 1);
            if (!rc)
                rc = tb_add(&b, "Assistant: ", 11, err);
        } else if (strcmp(role, "assistant") == 0) {
            rc = tb_add(&b, content, clen, err);
        } else {
            rc = bn_fail(err, BN_E_INPUT, "chat message %zu: unknown role \"%.40s\" (system, user or assistant)",
                         i, role);
        }
    }
    if (rc == 0)
        rc = tb_flush(&b, emit, user);
    free(b.p);
    return rc;
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

char *bn_chat_format(const bn_chat_msg *msgs, size_t n, bn_err *err)
{
    concat c = {.err = err};
    if (tb_add(&c.out, "", 0, err) || bn_chat_render(msgs, n, concat_emit, &c, err)) {
        free(c.out.p);
        return NULL;
    }
    return c.out.p;
}
