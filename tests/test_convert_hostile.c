/* bitnet-convert on broken checkpoints: each gets one line on stderr naming the problem, exit
 * status 1, no output file and no crash (the test runs under ASan+UBSan). Every case starts
 * from a valid tiny checkpoint and breaks one thing. */
#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint_writer.h"

static char *dir;

static int setup(void **state)
{
    (void)state;
    bn_ckpt_params p;
    bn_err err = {0};
    bn_ckpt_defaults(&p);
    if (bn_synth_preset("tiny-llama", &p.shape, &err))
        return -1;
    dir = bn_test_tmpfile("-hostile");
    return bn_ckpt_write(&p, dir, &err);
}

static void rm_dir(const char *d)
{
    DIR *dd = opendir(d);
    if (!dd)
        return;
    for (struct dirent *de; (de = readdir(dd));) {
        if (de->d_name[0] == '.')
            continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", d, de->d_name);
        unlink(p);
    }
    closedir(dd);
    rmdir(d);
}

static int teardown(void **state)
{
    (void)state;
    rm_dir(dir);
    free(dir);
    return 0;
}

/* a copy of the valid checkpoint */
static char *copy(void)
{
    char *c = bn_test_tmpfile("-case");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", dir, c);
    assert_int_equal(system(cmd), 0);
    return c;
}

static char *path_in(const char *d, const char *name)
{
    char *p = malloc(strlen(d) + strlen(name) + 2);
    sprintf(p, "%s/%s", d, name);
    return p;
}

static void put(const char *d, const char *name, const void *data, size_t n)
{
    char *p = path_in(d, name);
    assert_int_equal(bn_test_write_file(p, data, n), 0);
    free(p);
}

/* replaces FROM by TO in FILE (a text file, or the JSON header of a safetensors file, whose
 * length is rewritten) */
static void edit(const char *d, const char *name, const char *from, const char *to)
{
    char *p = path_in(d, name);
    size_t n;
    uint8_t *b = bn_test_read_file(p, &n);
    assert_non_null(b);
    const int st = strstr(name, ".safetensors") != NULL;
    size_t hb = 0, hl = n;
    if (st) {
        uint64_t l = 0;
        for (int i = 0; i < 8; i++)
            l |= (uint64_t)b[i] << (8 * i);
        hb = 8;
        hl = (size_t)l;
    }
    char *h = strndup((const char *)b + hb, hl);
    char *at = strstr(h, from);
    if (!at)
        fail_msg("%s: no '%s'", name, from);
    const size_t nh = hl - strlen(from) + strlen(to);
    uint8_t *o = malloc(n - hl + nh + 8);
    size_t k = 0;
    if (st) {
        for (int i = 0; i < 8; i++)
            o[k++] = (uint8_t)((uint64_t)nh >> (8 * i));
    }
    memcpy(o + k, h, (size_t)(at - h));
    k += (size_t)(at - h);
    memcpy(o + k, to, strlen(to));
    k += strlen(to);
    memcpy(o + k, at + strlen(from), hl - (size_t)(at - h) - strlen(from));
    k += hl - (size_t)(at - h) - strlen(from);
    memcpy(o + k, b + hb + hl, n - hb - hl);
    k += n - hb - hl;
    assert_int_equal(bn_test_write_file(p, o, k), 0);
    free(o);
    free(h);
    free(b);
    free(p);
}

/* bitnet-convert on D: exit 1, one line containing WANT, no output */
static void expect_refused(char *d, const char *want)
{
    char *out = bn_test_tmpfile(".gguf");
    const char *argv[] = {"bitnet-convert", d, "-o", out, NULL};
    char *so = NULL, *se = NULL;
    int rc = bn_test_run(argv, NULL, &so, &se);
    if (rc != 1 || !strstr(se, want))
        fail_msg("exit %d, stderr '%s' (want exit 1 and '%s')", rc, se, want);
    assert_true(strncmp(se, "bitnet-convert: ", 16) == 0);
    assert_non_null(strchr(se, '\n'));
    assert_int_equal(strchr(se, '\n')[1], 0); /* one line */
    assert_int_equal(access(out, F_OK), -1);
    free(so);
    free(se);
    free(out);
    rm_dir(d);
    free(d);
}

static void valid_converts(void **state)
{
    (void)state;
    char *out = bn_test_tmpfile(".gguf");
    const char *argv[] = {"bitnet-convert", dir, "-o", out, "-q", NULL};
    char *se = NULL;
    assert_int_equal(bn_test_run(argv, NULL, NULL, &se), 0);
    assert_string_equal(se, "");
    assert_int_equal(access(out, F_OK), 0);
    unlink(out);
    free(out);
    free(se);
}

static void truncated_header(void **state)
{
    (void)state;
    char *d = copy();
    put(d, "model.safetensors", "\x10\0\0", 3);
    expect_refused(d, "truncated");
}

static void header_length_past_file(void **state)
{
    (void)state;
    char *d = copy();
    put(d, "model.safetensors", "\x00\x10\0\0\0\0\0\0{}", 10);
    expect_refused(d, "past the end of the file");
}

static void header_not_json(void **state)
{
    (void)state;
    char *d = copy();
    edit(d, "model.safetensors", "\"lm_head.weight\":{", "\"lm_head.weight\":{{");
    expect_refused(d, "header: byte");
}

static void offsets_outside_data(void **state)
{
    (void)state;
    char *d = copy();
    edit(d, "model.safetensors", "\"data_offsets\":[0,262144]",
         "\"data_offsets\":[90000000,90262144]");
    expect_refused(d, "outside the data section");
}

static void overlapping_tensors(void **state)
{
    (void)state;
    char *d = copy();
    edit(d, "model.safetensors", "\"data_offsets\":[262144,524288]",
         "\"data_offsets\":[131072,393216]");
    expect_refused(d, "overlap");
}

static void size_disagrees_with_dtype(void **state)
{
    (void)state;
    char *d = copy();
    edit(d, "model.safetensors", "\"dtype\":\"BF16\"", "\"dtype\":\"F32\"");
    expect_refused(d, "data bytes for");
}

static void unsupported_dtype(void **state)
{
    (void)state;
    char *d = copy();
    edit(d, "model.safetensors", "\"dtype\":\"BF16\"", "\"dtype\":\"I16\"");
    expect_refused(d, "dtype I16 is not F32, F16 or BF16");
}

static void shape_disagrees_with_config(void **state)
{
    (void)state;
    char *d = copy();
    edit(d, "config.json", "\"intermediate_size\":768", "\"intermediate_size\":640");
    expect_refused(d, "ffn_down.weight): expected 256x640 from config.json, got 256x768");
}

static void missing_tensor(void **state)
{
    (void)state;
    char *d = copy();
    /* renamed to a name the converter skips, so the projection is simply absent */
    edit(d, "model.safetensors", "model.layers.1.self_attn.v_proj.weight",
         "model.layers.1.self_attn.rotary_emb.inv_freq");
    expect_refused(d, "missing tensor model.layers.1.self_attn.v_proj.weight");
}

static void unknown_tensor(void **state)
{
    (void)state;
    char *d = copy();
    edit(d, "model.safetensors", "model.layers.1.self_attn.v_proj.weight",
         "model.layers.1.self_attn.w_proj.weight");
    expect_refused(d, "model.layers.1.self_attn.w_proj.weight cannot be mapped");
}

static void unknown_architecture(void **state)
{
    (void)state;
    char *d = copy();
    edit(d, "config.json", "LlamaForCausalLM", "GPT2LMHeadModel");
    expect_refused(d, "architecture 'GPT2LMHeadModel' is not supported");
}

static void malformed_tokenizer_json(void **state)
{
    (void)state;
    char *d = copy();
    edit(d, "tokenizer.json", "\"merges\":[", "\"merges\":[[");
    expect_refused(d, "tokenizer.json");
}

static void malformed_generation_config(void **state)
{
    (void)state;
    char *d = copy();
    edit(d, "generation_config.json", "\"do_sample\":false", "\"do_sample\":");
    expect_refused(d, "generation_config.json");
    d = copy();
    edit(d, "generation_config.json", "\"eos_token_id\":", "\"eos_token_id\":\"x\",\"y\":");
    expect_refused(d, "generation_config.json: eos_token_id must be a token id");
}

static void tokenizer_json_not_byte_level(void **state)
{
    (void)state;
    char *d = copy();
    edit(d, "tokenizer.json", "\"decoder\":{\"type\":\"ByteLevel\"}",
         "\"decoder\":{\"type\":\"Metaspace\"}");
    expect_refused(d, "tokenizer.json: not a byte-level BPE");
}

static void malformed_tokenizer_model(void **state)
{
    (void)state;
    char *d = copy();
    /* a length-delimited field 1 whose length runs past the end */
    put(d, "tokenizer.model", "\x0a\x7f\x0a\x03<s>", 7);
    expect_refused(d, "tokenizer.model: malformed protobuf");
}

static void missing_config(void **state)
{
    (void)state;
    char *d = copy();
    char *p = path_in(d, "config.json");
    unlink(p);
    free(p);
    expect_refused(d, "config.json: cannot open");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_converts),
        cmocka_unit_test(truncated_header),
        cmocka_unit_test(header_length_past_file),
        cmocka_unit_test(header_not_json),
        cmocka_unit_test(offsets_outside_data),
        cmocka_unit_test(overlapping_tensors),
        cmocka_unit_test(size_disagrees_with_dtype),
        cmocka_unit_test(unsupported_dtype),
        cmocka_unit_test(shape_disagrees_with_config),
        cmocka_unit_test(missing_tensor),
        cmocka_unit_test(unknown_tensor),
        cmocka_unit_test(unknown_architecture),
        cmocka_unit_test(malformed_tokenizer_json),
        cmocka_unit_test(malformed_generation_config),
        cmocka_unit_test(tokenizer_json_not_byte_level),
        cmocka_unit_test(malformed_tokenizer_model),
        cmocka_unit_test(missing_config),
    };
    return bn_test_exit_status(cmocka_run_group_tests(tests, setup, teardown),
                               sizeof tests / sizeof *tests);
}
