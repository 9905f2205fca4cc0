/* safetensors reader (see safetensors.h). */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"

/* Far above any real header (the 2B-4T's is ~40 KB; a 70B model's ~100 KB) */
#define MAX_HEADER ((uint64_t)64 << 20)
#define MAX_NAME   512

static const struct {
    const char *name;
    bn_st_dtype dtype;
    size_t size;
} dtypes[] = {
    {"F32", BN_ST_F32, 4},    {"F16", BN_ST_F16, 2},       {"BF16", BN_ST_BF16, 2},
    {"U8", BN_ST_U8, 1},      {"F64", BN_ST_OTHER, 8},     {"I64", BN_ST_OTHER, 8},
    {"U64", BN_ST_OTHER, 8},  {"I32", BN_ST_OTHER, 4},     {"U32", BN_ST_OTHER, 4},
    {"I16", BN_ST_OTHER, 2},  {"U16", BN_ST_OTHER, 2},     {"I8", BN_ST_OTHER, 1},
    {"BOOL", BN_ST_OTHER, 1}, {"F8_E4M3", BN_ST_OTHER, 1}, {"F8_E5M2", BN_ST_OTHER, 1},
};

size_t bn_st_dtype_size(bn_st_dtype t) { return t == BN_ST_F32 ? 4 : t == BN_ST_U8 ? 1 : 2; }

static int parse_tensor(const bn_json *v, const char *label, uint64_t data_size, bn_st_tensor *t,
                        bn_err *err)
{
    const char *name = v->key;
    if (v->key_len == 0 || v->key_len > MAX_NAME || strlen(name) != v->key_len)
        return bn_fail(err, BN_E_FORMAT,
                       "%s: tensor name of %zu bytes is empty, too long or has a NUL", label,
                       v->key_len);
    if (v->type != BN_JSON_OBJECT)
        return bn_fail(err, BN_E_FORMAT, "%s: tensor '%s': expected an object, got %s", label, name,
                       bn_json_type_name(v->type));
    const bn_json *dt = bn_json_get(v, "dtype"), *shape = bn_json_get(v, "shape"),
                  *off = bn_json_get(v, "data_offsets");
    if (!dt || dt->type != BN_JSON_STRING)
        return bn_fail(err, BN_E_FORMAT, "%s: tensor '%s': missing or non-string dtype", label,
                       name);
    size_t es = 0;
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(dt->str, dtypes[i].name) == 0) {
            t->dtype = dtypes[i].dtype;
            es = dtypes[i].size;
            snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dtypes[i].name);
        }
    if (!es)
        return bn_fail(err, BN_E_FORMAT, "%s: tensor '%s': unknown dtype '%s'", label, name,
                       dt->str);
    if (!shape || shape->type != BN_JSON_ARRAY || shape->len > BN_ST_MAX_DIMS)
        return bn_fail(err, BN_E_FORMAT,
                       "%s: tensor '%s': shape must be an array of at most %d sizes", label, name,
                       BN_ST_MAX_DIMS);
    uint64_t n = 1;
    t->n_dims = (uint32_t)shape->len;
    uint32_t d = 0;
    for (const bn_json *s = shape->child; s; s = s->next, d++) {
        int64_t x;
        if (bn_json_int_in(s, 0, INT64_MAX, &x))
            return bn_fail(err, BN_E_FORMAT, "%s: tensor '%s': shape[%u] is not a size", label,
                           name, d);
        t->shape[d] = (uint64_t)x;
        if (x && n > UINT64_MAX / (uint64_t)x)
            return bn_fail(err, BN_E_FORMAT, "%s: tensor '%s': shape overflows", label, name);
        n *= (uint64_t)x;
    }
    if (n > UINT64_MAX / es)
        return bn_fail(err, BN_E_FORMAT, "%s: tensor '%s': shape overflows", label, name);
    int64_t b, e;
    if (!off || off->type != BN_JSON_ARRAY || off->len != 2 ||
        bn_json_int_in(off->child, 0, INT64_MAX, &b) ||
        bn_json_int_in(off->child->next, 0, INT64_MAX, &e))
        return bn_fail(err, BN_E_FORMAT, "%s: tensor '%s': data_offsets must be [begin, end]",
                       label, name);
    if (b > e || (uint64_t)e > data_size)
        return bn_fail(
            err, BN_E_FORMAT,
            "%s: tensor '%s': data_offsets [%lld, %lld] outside the data section of %llu bytes",
            label, name, (long long)b, (long long)e, (unsigned long long)data_size);
    if ((uint64_t)(e - b) != n * es)
        return bn_fail(err, BN_E_FORMAT, "%s: tensor '%s': %lld data bytes for %llu elements of %s",
                       label, name, (long long)(e - b), (unsigned long long)n, t->dtype_name);
    t->n_elements = n;
    t->nbytes = (uint64_t)(e - b);
    t->data = (const uint8_t *)(uintptr_t)(uint64_t)b; /* offset for now, made a pointer later */
    return 0;
}

static int cmp_offset(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const bn_st_tensor *)a)->data,
              y = (uintptr_t)((const bn_st_tensor *)b)->data;
    return x < y ? -1 : x > y;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const bn_st_tensor *)a)->name, ((const bn_st_tensor *)b)->name);
}

int bn_st_parse(bn_safetensors *st, const uint8_t *buf, size_t size, const char *label, int file,
                bn_err *err)
{
    if (size < 8)
        return bn_fail(err, BN_E_FORMAT, "%s: truncated: %zu bytes, no header length", label, size);
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++)
        hl |= (uint64_t)buf[i] << (8 * i);
    if (hl > size - 8)
        return bn_fail(err, BN_E_FORMAT,
                       "%s: header length %llu is past the end of the file (%zu bytes)", label,
                       (unsigned long long)hl, size);
    if (hl > MAX_HEADER || hl < 2)
        return bn_fail(err, BN_E_FORMAT, "%s: header length %llu is not plausible", label,
                       (unsigned long long)hl);
    bn_json_opts o = {.max_depth = 8, .max_size = (size_t)hl};
    bn_err jerr = {0};
    /* the header may end with spaces (padding to 8 bytes); JSON allows trailing whitespace */
    bn_json_doc *doc = bn_json_parse((const char *)buf + 8, (size_t)hl, &o, &jerr);
    if (!doc)
        return bn_fail(err, BN_E_FORMAT, "%s: header: %s", label, jerr.msg);
    const bn_json *root = bn_json_root(doc);
    int rc = -1;
    bn_st_tensor *tmp = NULL;
    if (root->type != BN_JSON_OBJECT) {
        bn_fail(err, BN_E_FORMAT, "%s: header is not a JSON object", label);
        goto done;
    }
    const uint64_t data_size = size - 8 - hl;
    tmp = calloc(root->len ? root->len : 1, sizeof *tmp);
    if (!tmp) {
        bn_fail(err, BN_E_NOMEM, "out of memory");
        goto done;
    }
    size_t n = 0;
    for (const bn_json *v = root->child; v; v = v->next) {
        if (strcmp(v->key, "__metadata__") == 0)
            continue;
        if (parse_tensor(v, label, data_size, &tmp[n], err))
            goto done;
        tmp[n].name = strdup(v->key);
        if (!tmp[n].name) {
            bn_fail(err, BN_E_NOMEM, "out of memory");
            goto done;
        }
        tmp[n].file = file;
        n++;
    }
    /* no two tensors share a byte */
    qsort(tmp, n, sizeof *tmp, cmp_offset);
    uint64_t end = 0;
    const char *prev = NULL;
    for (size_t i = 0; i < n; i++) {
        const uint64_t b = (uint64_t)(uintptr_t)tmp[i].data;
        if (tmp[i].nbytes && prev && b < end) {
            bn_fail(err, BN_E_FORMAT, "%s: tensors '%s' and '%s' overlap", label, prev,
                    tmp[i].name);
            goto done;
        }
        if (tmp[i].nbytes && b + tmp[i].nbytes > end) {
            end = b + tmp[i].nbytes;
            prev = tmp[i].name;
        }
        tmp[i].data = buf + 8 + hl + b;
    }
    qsort(tmp, n, sizeof *tmp, cmp_name);
    bn_st_tensor *all = realloc(st->tensors, (st->n_tensors + n + 1) * sizeof *all);
    if (!all) {
        bn_fail(err, BN_E_NOMEM, "out of memory");
        goto done;
    }
    st->tensors = all;
    memcpy(all + st->n_tensors, tmp, n * sizeof *tmp);
    st->n_tensors += n;
    free(tmp);
    tmp = NULL;
    rc = 0;
done:
    if (tmp) {
        for (size_t i = 0; i < root->len; i++)
            free(tmp[i].name);
        free(tmp);
    }
    bn_json_free(doc);
    return rc;
}

int bn_st_open(bn_safetensors *st, const char *path, bn_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return bn_fail(err, BN_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return bn_fail(err, BN_E_IO, "%s: not a regular file", path);
    }
    bn_st_file *files = realloc(st->files, (size_t)(st->n_files + 1) * sizeof *files);
    if (!files) {
        close(fd);
        return bn_fail(err, BN_E_NOMEM, "out of memory");
    }
    st->files = files;
    bn_st_file *f = &files[st->n_files];
    memset(f, 0, sizeof *f);
    f->size = (size_t)sb.st_size;
    if (f->size) {
        void *p = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            return bn_fail(err, BN_E_IO, "%s: mmap failed: %s", path, strerror(errno));
        }
        f->map = p;
    }
    close(fd);
    f->path = strdup(path);
    st->n_files++;
    if (!f->path)
        return bn_fail(err, BN_E_NOMEM, "out of memory");
    return bn_st_parse(st, f->map, f->size, path, st->n_files - 1, err);
}

void bn_st_close(bn_safetensors *st)
{
    for (size_t i = 0; i < st->n_tensors; i++)
        free(st->tensors[i].name);
    for (int i = 0; i < st->n_files; i++) {
        if (st->files[i].map)
            munmap(st->files[i].map, st->files[i].size);
        free(st->files[i].path);
    }
    free(st->tensors);
    free(st->files);
    memset(st, 0, sizeof *st);
}

void bn_st_release_range(const bn_st_tensor *t, uint64_t begin, uint64_t end)
{
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t b = ((uintptr_t)(t->data + begin) + page - 1) & ~(page - 1),
                    e = (uintptr_t)(t->data + end) & ~(page - 1);
    if (e > b)
        madvise((void *)b, e - b, MADV_DONTNEED);
}

void bn_st_release(const bn_st_tensor *t) { bn_st_release_range(t, 0, t->nbytes); }

const bn_st_tensor *bn_st_find(const bn_safetensors *st, const char *name)
{
    for (size_t i = 0; i < st->n_tensors; i++)
        if (strcmp(st->tensors[i].name, name) == 0)
            return &st->tensors[i];
    return NULL;
}
