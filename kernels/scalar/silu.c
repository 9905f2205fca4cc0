#include "kernels.h"
#include "softmax_impl.h"

/* g = silu(g) * u: the body is shared with the x86 copy compiled with FMA (softmax_impl.h). */
void bn_silu_mul_f32(float *restrict g, const float *restrict u, size_t n)
{
    bn_sm_silu_mul(g, u, n);
}
