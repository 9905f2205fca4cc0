/* A small deterministic PRNG (xoshiro256** seeded through splitmix64) for synthetic data:
 * the same stream on every platform and libc, unlike rand(). Not for cryptography. */
#ifndef BN_RNG_H
#define BN_RNG_H

#include <stdint.h>

typedef struct bn_rng {
    uint64_t s[4];
} bn_rng;

static inline uint64_t bn_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline void bn_rng_seed(bn_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = bn_splitmix64(&seed);
}

static inline uint64_t bn_rng_next(bn_rng *r)
{
    uint64_t *s = r->s;
    uint64_t x = s[1] * 5, result = ((x << 7) | (x >> 57)) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return result;
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double bn_rng_uniform(bn_rng *r)
{
    return (double)(bn_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform integer in [0, n) (n > 0; the tiny modulo bias is irrelevant for test data). */
static inline uint64_t bn_rng_below(bn_rng *r, uint64_t n) { return bn_rng_next(r) % n; }

#endif
