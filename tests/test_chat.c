/* Chat template: the exact bytes FORMAT.md 6.5 records from llama-cli, and the segmentation
 * that keeps special-token parsing to the template's own <|eot_id|>. */
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "testutil.h"

typedef struct seglog {
    char text[8][256];
    int special[8];
    int n;
    int abort_at; /* return non-zero at this segment (-1 never) */
} seglog;

static int log_emit(void *user, const char *text, size_t len, int special)
{
    seglog *l = user;
    assert_true(len > 0 && len < 256 && l->n < 8);
    memcpy(l->text[l->n], text, len);
    l->text[l->n][len] = 0;
    l->special[l->n] = special;
    return l->n++ == l->abort_at ? 42 : 0;
}

/* llama-cli prints this example for the "bitnet" template (FORMAT.md 6.5, verified there). */
static void test_llama_cli_example_bytes(void **state)
{
    (void)state;
    const bn_chat_msg m[4] = {{"system", "You are a helpful assistant"},
                              {"user", "Hello"},
                              {"assistant", "Hi there"},
                              {"user", "How are you?"}};
    bn_err err = {0};
    char *s = bn_chat_format(m, 4, &err);
    assert_non_null(s);
    assert_string_equal(s, "System: You are a helpful assistantUser: Hello<|eot_id|>Assistant: "
                           "Hi thereUser: How are you?<|eot_id|>Assistant: ");
    free(s);
}

static void test_segments(void **state)
{
    (void)state;
    const bn_chat_msg m[4] = {{"system", "Be brief."},
                              {"user", "Hi"},
                              {"assistant", "Hello"},
                              {"user", "2+2?"}};
    seglog l = {.abort_at = -1};
    bn_err err = {0};
    assert_int_equal(bn_chat_render(m, 4, log_emit, &l, &err), 0);
    assert_int_equal(l.n, 5);
    assert_string_equal(l.text[0], "System: Be brief.User: Hi");
    assert_int_equal(l.special[0], 0);
    assert_string_equal(l.text[1], "<|eot_id|>");
    assert_int_equal(l.special[1], 1);
    assert_string_equal(l.text[2], "Assistant: HelloUser: 2+2?");
    assert_int_equal(l.special[2], 0);
    assert_string_equal(l.text[3], "<|eot_id|>");
    assert_int_equal(l.special[3], 1);
    assert_string_equal(l.text[4], "Assistant: ");
    assert_int_equal(l.special[4], 0);
}

/* A -cnv turn: one user message renders as exactly the text appended after the system prompt. */
static void test_single_turns(void **state)
{
    (void)state;
    bn_err err = {0};
    const bn_chat_msg sys = {"system", "You are a helpful assistant"};
    char *s = bn_chat_format(&sys, 1, &err);
    assert_string_equal(s, "System: You are a helpful assistant");
    free(s);
    const bn_chat_msg user = {"user", "What is 2+2?"};
    s = bn_chat_format(&user, 1, &err);
    assert_string_equal(s, "User: What is 2+2?<|eot_id|>Assistant: ");
    free(s);
    s = bn_chat_format(NULL, 0, &err);
    assert_string_equal(s, "");
    free(s);
}

/* Content is never parsed for special tokens: "<|eot_id|>" typed by a user stays text. */
static void test_content_specials_stay_text(void **state)
{
    (void)state;
    const bn_chat_msg m = {"user", "a<|eot_id|>b"};
    seglog l = {.abort_at = -1};
    bn_err err = {0};
    assert_int_equal(bn_chat_render(&m, 1, log_emit, &l, &err), 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.text[0], "User: a<|eot_id|>b");
    assert_int_equal(l.special[0], 0);
    assert_int_equal(l.special[1], 1);
    assert_string_equal(l.text[2], "Assistant: ");
}

static void test_errors(void **state)
{
    (void)state;
    bn_err err = {0};
    const bn_chat_msg bad[2] = {{"user", "hi"}, {"tool", "x"}};
    assert_null(bn_chat_format(bad, 2, &err));
    assert_non_null(strstr(err.msg, "unknown role \"tool\""));
    const bn_chat_msg nul = {"user", NULL};
    assert_null(bn_chat_format(&nul, 1, &err));
    assert_non_null(strstr(err.msg, "missing content"));
    /* the emitter's abort value comes back */
    const bn_chat_msg m = {"user", "hi"};
    seglog l = {.abort_at = 1};
    assert_int_equal(bn_chat_render(&m, 1, log_emit, &l, &err), 42);
    assert_int_equal(l.n, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama_cli_example_bytes),
        cmocka_unit_test(test_segments),
        cmocka_unit_test(test_single_turns),
        cmocka_unit_test(test_content_specials_stay_text),
        cmocka_unit_test(test_errors),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return bn_test_exit_status(failed, sizeof tests / sizeof *tests);
}
