/* A SentencePiece model end to end through bitnet-run (through bn_test_run, so also under
 * qemu): the tiny `bitnet` preset with tests/data/spm-vocab.gguf, prompt text in, text out,
 * equal to what the reference's llama-cli printed for the same file (tests/data/README.md);
 * tokenize/detokenize round trip; --inspect names no pre-tokenizer and the ChatML fallback;
 * a -cnv turn gives the reference's ids of the ChatML rendering. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "synthetic_model.h"
#include "testutil.h"

static char *model;

static int setup(void **state)
{
    (void)state;
    bn_err err = {0};
    bn_synth_params p;
    model = bn_test_tmpfile("-spm.gguf");
    char *vocab = bn_test_data("spm-vocab.gguf");
    if (bn_synth_preset("tiny-bitnet", &p, &err))
        return -1;
    p.vocab_gguf = vocab;
    p.n_vocab = 0; /* the vocabulary's size */
    int rc = bn_synth_write(&p, model, &err);
    if (rc)
        fprintf(stderr, "writing the model: %s\n", err.msg);
    free(vocab);
    return rc;
}

static int teardown(void **state)
{
    (void)state;
    unlink(model);
    free(model);
    return 0;
}

/* llama-cli -m tiny-bitnet-spm.gguf -p "Hello world, this is a test." -n 16 --temp 0 -t 1 -b 1
 * printed the prompt back (" Hello world, this is a test.") and then these bytes. */
static const char REF_CONTINUATION[] = "ic Whry,...`icic\xd7\xa2"
                                       "ffn](#am ranGE](#map ar work";

static void test_generate_matches_reference(void **state)
{
    (void)state;
    const char *argv[] = {"bitnet-run", "-m", model,    "-p", "Hello world, this is a test.",
                          "-n",         "16", "--temp", "0",  "-t",
                          "1",          "-b", "1",      NULL};
    char *out = NULL, *err = NULL;
    int rc = bn_test_run(argv, NULL, &out, &err);
    if (rc != 0)
        fail_msg("exit %d: %s", rc, err);
    size_t n = strlen(REF_CONTINUATION);
    if (strncmp(out, REF_CONTINUATION, n) != 0 || strcmp(out + n, "\n") != 0)
        fail_msg("generated '%s', the reference printed '%s'", out, REF_CONTINUATION);
    assert_non_null(strstr(err, "prompt 9 tokens")); /* BOS + 8 pieces */
    free(out);
    free(err);
}

static void test_tokenize_round_trip(void **state)
{
    (void)state;
    /* "Hello world" is [2313, 1585] in the reference's llama-tokenize (tokenize-spm.jsonl) */
    const char *tok[] = {"bitnet-run", "-m", model, "--tokenize", "Hello world", NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(bn_test_run(tok, NULL, &out, &err), 0);
    assert_string_equal(out, "[2313, 1585]\n");
    free(out);
    free(err);
    /* the prefix space is dropped again; after BOS it stays (llama_detokenize) */
    const char *detok[] = {"bitnet-run", "-m", model, "--detokenize", "2313,1585", NULL};
    assert_int_equal(bn_test_run(detok, NULL, &out, &err), 0);
    assert_string_equal(out, "Hello world");
    free(out);
    free(err);
}

static void test_inspect_and_chat(void **state)
{
    (void)state;
    const char *insp[] = {"bitnet-run", "-m", model, "--inspect", NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(bn_test_run(insp, NULL, &out, &err), 0);
    assert_non_null(strstr(out, "pre_tokenizer: none (SentencePiece)\n"));
    assert_non_null(strstr(out, "chat_template: chatml\n")); /* the file has no template */
    assert_non_null(strstr(out, "eot: 4\n"));                /* "<|im_end|>", by its text */
    free(out);
    free(err);
    /* the turn after the BOS: llama-tokenize of the ChatML rendering
       "<|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\n" gives BOS and these
       (each text after a control token gets its own prefix space) */
    const char *cnv[] = {"bitnet-run", "-m",     model, "-cnv", "--json", "-n",
                         "1",          "--temp", "0",   "-t",   "1",      NULL};
    assert_int_equal(bn_test_run(cnv, "hi there\n", &out, &err), 0);
    const char *want = "{\"prompt_tokens\":[3,877,265,17,2847,2843,1452,4,2835,17,3,2072,17],";
    if (strncmp(out, want, strlen(want)) != 0)
        fail_msg("chat turn: '%s', want it to start with '%s'", out, want);
    free(out);
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_matches_reference),
        cmocka_unit_test(test_tokenize_round_trip),
        cmocka_unit_test(test_inspect_and_chat),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    return bn_test_exit_status(failed, sizeof tests / sizeof *tests);
}
