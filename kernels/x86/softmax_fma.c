/* The scalar softmax body compiled with FMA enabled, so that its fmaf calls become single
 * instructions instead of libm calls (same operations, same bits: see softmax_impl.h). */
#include "scalar/softmax_impl.h"
#include "x86.h"

__attribute__((target("fma"))) void bn_x86_fma_softmax(float *a, size_t n) { bn_sm_softmax(a, n); }
