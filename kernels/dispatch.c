/* Picks the kernel path once: BITNET_KERNELS when set (an unknown or unsupported name falls
 * back to automatic choice, and bn_kernels_select() reports it), else the best path this CPU
 * supports. Paths register here; each SIMD path says whether the running CPU can use it.
 *
 * The active table is published atomically (release store, acquire load), so a thread that
 * calls bn_kernels_get() while another pins a path with bn_kernels_select() sees either table,
 * complete, never a torn or stale-initialised pointer. */
#include "kernels.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kernels_registry.h"
#if defined(__x86_64__)
#include "x86/x86.h"
#endif

/* In order of preference: automatic choice takes the first supported one. */
static const bn_kernel_path *const paths[] = {
#if defined(__aarch64__)
#if BN_NEON_HAVE_TARGET_ATTR
    &bn_path_neon_i8mm,       /* i8mm: its prefill wins; decode as neon-dotprod */
    &bn_path_neon_dotprod_rp, /* dotprod without i8mm (Graviton2, Lambda): decode 0.056 vs
                                 0.067 N1 cycles per weight, prefill the same */
    &bn_path_neon_dotprod,
#endif
    &bn_path_neon_lut, /* manual only */
    &bn_path_neon,
#endif
#if defined(__x86_64__)
    &bn_path_avx512vnni,
    &bn_path_avx2,
#endif
    &bn_path_scalar,
};
enum {
    n_paths = sizeof paths / sizeof paths[0]
};

static int scalar_supported(void) { return 1; }
const bn_kernel_path bn_path_scalar = {&bn_kernels_scalar, scalar_supported, 0};

static _Atomic(const bn_kernels *) active;
static pthread_once_t active_once = PTHREAD_ONCE_INIT;

const bn_kernels *bn_kernels_by_name(const char *name)
{
    for (int i = 0; i < n_paths; i++)
        if (strcmp(paths[i]->kernels->name, name) == 0)
            return paths[i]->supported() ? paths[i]->kernels : NULL;
    return NULL;
}

const char *const *bn_kernels_all_names(void)
{
    static const char *names[n_paths + 1];
    for (int i = 0; i < n_paths; i++)
        names[i] = paths[i]->kernels->name;
    names[n_paths] = NULL;
    return names;
}

static const bn_kernels *automatic_choice(void)
{
    const char *env = getenv("BITNET_KERNELS");
    const bn_kernels *k;
    if (env && *env && (k = bn_kernels_by_name(env)))
        return k;
    /* the first supported path not marked test-only, in table order */
    for (int i = 0; i < n_paths; i++)
        if (!paths[i]->manual_only && paths[i]->supported())
            return paths[i]->kernels;
    return &bn_kernels_scalar;
}

static void choose(void)
{
    atomic_store_explicit(&active, automatic_choice(), memory_order_release);
}

const bn_kernels *bn_kernels_get(void)
{
    pthread_once(&active_once, choose);
    return atomic_load_explicit(&active, memory_order_acquire);
}

int bn_kernels_select(const char *name)
{
    const bn_kernels *k = bn_kernels_by_name(name);
    pthread_once(&active_once, choose); /* so a later first get() cannot undo the pin */
    if (!k)
        return -1;
    atomic_store_explicit(&active, k, memory_order_release);
    return 0;
}
