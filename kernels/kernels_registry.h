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

#endif
