/* What this build is (bitnet.h: bn_get_build_info): compiler, compile flags and the kernel
 * paths compiled in, so `bitnet-run --version` (and a container test) can show what a binary
 * got, e.g. whether an -mcpu setting reached the compiler. */
#include "bitnet.h"

#include "kernels.h"

#ifndef BN_BUILD_FLAGS
#define BN_BUILD_FLAGS "unknown"
#endif

#if defined(__clang__)
#define BN_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define BN_COMPILER "gcc " __VERSION__
#else
#define BN_COMPILER "unknown"
#endif

#if defined(__aarch64__)
#define BN_TARGET "aarch64"
#elif defined(__x86_64__)
#define BN_TARGET "x86_64"
#else
#define BN_TARGET "other"
#endif

void bn_get_build_info(bn_build_info *b)
{
    b->version = BN_VERSION;
    b->compiler = BN_COMPILER;
    b->flags = BN_BUILD_FLAGS;
    b->target = BN_TARGET;
    b->kernels = bn_kernels_all_names();
    b->kernels_auto = bn_kernels_get()->name;
}

int bn_kernel_supported(const char *name) { return bn_kernels_by_name(name) != NULL; }
