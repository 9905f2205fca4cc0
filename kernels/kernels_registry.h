/* Internal to kernels/: how each compiled path announces itself to dispatch.c. */
#ifndef BN_KERNELS_REGISTRY_H
#define BN_KERNELS_REGISTRY_H

#include "kernels.h"

typedef struct bn_kernel_path {
    const bn_kernels *kernels;
    int (*supported)(void); /* can the running CPU execute it? */
    int manual_only;        /* never picked automatically (only by name) */
} bn_kernel_path;

extern const bn_kernel_path bn_path_scalar;

#if defined(__aarch64__)
/* kernels/neon: plain Armv8.0 paths always; dotprod/i8mm paths need per-function target
 * attributes on NEON intrinsics, which clang before 16 ignores (arm_neon.h there guards the
 * intrinsics by the global -march), so such builds carry the Armv8.0 paths only. */
#if defined(__clang__) && __clang_major__ < 16
#define BN_NEON_HAVE_TARGET_ATTR 0
#else
#define BN_NEON_HAVE_TARGET_ATTR 1
#endif
extern const bn_kernel_path bn_path_neon;
extern const bn_kernel_path bn_path_neon_lut;
#if BN_NEON_HAVE_TARGET_ATTR
extern const bn_kernel_path bn_path_neon_dotprod;
extern const bn_kernel_path bn_path_neon_dotprod_rp;
extern const bn_kernel_path bn_path_neon_i8mm;
#endif
#endif

#endif
