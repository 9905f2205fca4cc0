#include "kernels.h"
#include "softmax_impl.h"

/* g = silu(g) * u with silu(x) = x / (1 + e^-x) and ggml's vectorised exp (ggml_vec_silu_f32
 * on the reference's AVX-512 build; every n_ff is a multiple of 16, so no lane takes libm). */
void bn_silu_mul_f32(float *restrict g, const float *restrict u, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const float x = g[i];
        g[i] = (x / (1.0f + bn_sm_expf(0.0f - x))) * u[i];
    }
}
