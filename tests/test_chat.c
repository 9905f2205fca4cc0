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
    const bn_chat_msg m[4] = {
        {"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello"}, {"user", "2+2?"}};
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

/* Detection by markers, in llama.cpp's order (src/llama.cpp llama_chat_apply_template). */
static void test_detect(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bn_chat_template want;
    } cases[] = {
        /* fragments of the real templates */
        {"{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
         "'<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}",
         BN_CHAT_LLAMA3},
        {"{{ '<|system|>\n' + content }}{{ '<|user|>\n' }}{% if add_generation_prompt %}"
         "{{ '<|assistant|>\n' }}{% endif %}",
         BN_CHAT_FALCON3},
        {"{{ '<|im_start|>' + message['role'] + '\n' }}", BN_CHAT_CHATML},
        {"{{ '<|user|>\n' + message['content'] + eos_token }}", BN_CHAT_ZEPHYR},
        {"... '\\n\\nBITNETAssistant: ' + eos_token ...", BN_CHAT_BITNET},
        /* chatml wins over everything, as in llama.cpp */
        {"<|im_start|><|start_header_id|><|end_header_id|>BITNET", BN_CHAT_CHATML},
        /* phi3 and llama2 are not ours */
        {"<|assistant|> <|end|> <|user|>", BN_CHAT_UNKNOWN},
        {"[INST] <|user|>", BN_CHAT_UNKNOWN},
        /* falcon_e is a name only: llama.cpp's branch needs tmpl == "falcon_e" */
        {"falcon_e {{ message['role'] + message['content'] }} assistant user", BN_CHAT_UNKNOWN},
        {"{{ messages }}", BN_CHAT_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (bn_chat_detect(cases[i].text, strlen(cases[i].text)) != cases[i].want)
            fail_msg("case %zu: detected %s, want %s", i,
                     bn_chat_template_name(bn_chat_detect(cases[i].text, strlen(cases[i].text))),
                     bn_chat_template_name(cases[i].want));
    assert_int_equal(bn_chat_detect(NULL, 0), BN_CHAT_UNKNOWN);
    bn_chat_template t;
    assert_int_equal(bn_chat_template_from_name("falcon3", &t), 0);
    assert_int_equal(t, BN_CHAT_FALCON3);
    assert_int_equal(bn_chat_template_from_name("falcon_e", &t), 0);
    assert_int_equal(t, BN_CHAT_FALCON_E);
    assert_string_equal(bn_chat_template_name(BN_CHAT_FALCON_E), "falcon_e");
    assert_int_equal(bn_chat_template_from_name("falcon-e", &t), -1);
    assert_int_equal(bn_chat_template_from_name("jinja", &t), -1);
}

/* falcon_e has no marker: a turn is one plain-text segment, even where the vocabulary has
 * tokens spelled like its role names. */
static int has_every_token(void *user, const char *name, size_t len)
{
    (void)user, (void)name, (void)len;
    return 1;
}

static void test_falcon_e_is_plain_text(void **state)
{
    (void)state;
    const bn_chat_msg m[2] = {{"system", "Be brief."}, {"user", "<|im_start|>hi"}};
    seglog l = {.abort_at = -1};
    bn_err err = {0};
    assert_int_equal(
        bn_chat_render_with(BN_CHAT_FALCON_E, m, 2, has_every_token, log_emit, &l, &err), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.text[0], "systemBe brief.\nuser<|im_start|>hi\nassistant\n");
    assert_int_equal(l.special[0], 0);
    /* a system message alone (how -cnv starts) gets no assistant prompt */
    l = (seglog){.abort_at = -1};
    assert_int_equal(
        bn_chat_render_with(BN_CHAT_FALCON_E, m, 1, has_every_token, log_emit, &l, &err), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.text[0], "systemBe brief.\n");
}

/* The bytes of llama.cpp's built-in rules; the assistant prompt only after a user message. */
static void test_render_each_template(void **state)
{
    (void)state;
    const bn_chat_msg m[3] = {{"system", "Be brief."}, {"user", "  Hi\n"}, {"assistant", "Hello"}};
    const bn_chat_msg q = {"user", "2+2?"};
    static const struct {
        bn_chat_template t;
        const char *conversation, *question;
    } cases[] = {
        {BN_CHAT_LLAMA3,
         "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
         "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
         "<|start_header_id|>assistant<|end_header_id|>\n\nHello<|eot_id|>",
         "<|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|>"
         "<|start_header_id|>assistant<|end_header_id|>\n\n"},
        {BN_CHAT_FALCON3, "<|system|>\nBe brief.\n<|user|>\n  Hi\n\n<|assistant|>\nHello\n",
         "<|user|>\n2+2?\n<|assistant|>\n"},
        {BN_CHAT_CHATML,
         "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n  Hi\n<|im_end|>\n"
         "<|im_start|>assistant\nHello<|im_end|>\n",
         "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"},
        {BN_CHAT_ZEPHYR,
         "<|system|>\nBe brief.<|endoftext|>\n<|user|>\n  Hi\n<|endoftext|>\n"
         "<|assistant|>\nHello<|endoftext|>\n",
         "<|user|>\n2+2?<|endoftext|>\n<|assistant|>\n"},
        {BN_CHAT_BITNET, "System: Be brief.User:   Hi\n<|eot_id|>Assistant: Hello",
         "User: 2+2?<|eot_id|>Assistant: "},
        /* the fork's falcon_e branch: role and content with nothing between them */
        {BN_CHAT_FALCON_E, "systemBe brief.\nuser  Hi\n\nassistantHello\n",
         "user2+2?\nassistant\n"},
    };
    bn_err err = {0};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *s = bn_chat_format_with(cases[i].t, m, 3, &err);
        assert_non_null(s);
        if (strcmp(s, cases[i].conversation))
            fail_msg("%s: got \"%s\"", bn_chat_template_name(cases[i].t), s);
        free(s);
        s = bn_chat_format_with(cases[i].t, &q, 1, &err);
        assert_non_null(s);
        if (strcmp(s, cases[i].question))
            fail_msg("%s: got \"%s\"", bn_chat_template_name(cases[i].t), s);
        free(s);
    }
    assert_null(bn_chat_format_with(BN_CHAT_UNKNOWN, &q, 1, &err));
}

/* The examples the reference's llama-cli prints for each template (`llama-cli -m M
 * --chat-template NAME -cnv`: "chat template example", the same four messages as above). */
static void test_llama_cli_examples_each_template(void **state)
{
    (void)state;
    const bn_chat_msg m[4] = {{"system", "You are a helpful assistant"},
                              {"user", "Hello"},
                              {"assistant", "Hi there"},
                              {"user", "How are you?"}};
    static const struct {
        bn_chat_template t;
        const char *want;
    } cases[] = {
        {BN_CHAT_LLAMA3,
         "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|>"
         "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
         "<|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>"
         "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>"
         "<|start_header_id|>assistant<|end_header_id|>\n\n"},
        {BN_CHAT_FALCON3,
         "<|system|>\nYou are a helpful assistant\n<|user|>\nHello\n<|assistant|>\n"
         "Hi there\n<|user|>\nHow are you?\n<|assistant|>\n"},
        {BN_CHAT_CHATML,
         "<|im_start|>system\nYou are a helpful "
         "assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
         "<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n"
         "<|im_start|>assistant\n"},
        {BN_CHAT_ZEPHYR,
         "<|system|>\nYou are a helpful assistant<|endoftext|>\n<|user|>\nHello<|endoftext|>\n"
         "<|assistant|>\nHi there<|endoftext|>\n<|user|>\nHow are "
         "you?<|endoftext|>\n<|assistant|>\n"},
    };
    bn_err err = {0};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *s = bn_chat_format_with(cases[i].t, m, 4, &err);
        assert_non_null(s);
        if (strcmp(s, cases[i].want))
            fail_msg("%s: got \"%s\"", bn_chat_template_name(cases[i].t), s);
        free(s);
    }
}

/* A marker the vocabulary lacks is text, merged with its neighbours into one segment. */
static int only_im_start(void *user, const char *name, size_t len)
{
    (void)user;
    return len == 12 && memcmp(name, "<|im_start|>", 12) == 0;
}

static void test_missing_markers_are_text(void **state)
{
    (void)state;
    const bn_chat_msg q = {"user", "hi"};
    seglog l = {.abort_at = -1};
    bn_err err = {0};
    assert_int_equal(bn_chat_render_with(BN_CHAT_CHATML, &q, 1, only_im_start, log_emit, &l, &err),
                     0);
    assert_int_equal(l.n, 4);
    assert_string_equal(l.text[0], "<|im_start|>");
    assert_int_equal(l.special[0], 1);
    assert_string_equal(l.text[1], "user\nhi<|im_end|>\n");
    assert_int_equal(l.special[1], 0);
    assert_string_equal(l.text[2], "<|im_start|>");
    assert_int_equal(l.special[2], 1);
    assert_string_equal(l.text[3], "assistant\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama_cli_example_bytes),
        cmocka_unit_test(test_segments),
        cmocka_unit_test(test_single_turns),
        cmocka_unit_test(test_content_specials_stay_text),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_detect),
        cmocka_unit_test(test_render_each_template),
        cmocka_unit_test(test_llama_cli_examples_each_template),
        cmocka_unit_test(test_missing_markers_are_text),
        cmocka_unit_test(test_falcon_e_is_plain_text),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return bn_test_exit_status(failed, sizeof tests / sizeof *tests);
}
