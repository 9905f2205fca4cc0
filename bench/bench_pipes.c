/* Instruction throughput of the x86 core the kernels run on: how many 512-bit multiplies
 * (vpdpbusd, vpmaddubsw, vfmadd, vdpbf16ps), additions and loads one thread issues per cycle,
 * alone and mixed. This is the ceiling of prefill (README "Prefill at one thread"): a ternary
 * product is one int8 multiply-add, so products per cycle <= 64 x the vpdpbusd zmm rate.
 *
 *   bench-pipes [-s SECONDS per probe (0.2)]
 *
 * Each probe is a loop of hand-written instructions on 12 independent registers (inline asm,
 * so the compiler cannot spill or fold them), timed on the thread's CPU clock. The cycle
 * count comes from a chain of dependent scalar additions (one per cycle on every x86 core of
 * the last decade): "GHz" is that chain's rate. Needs AVX-512 F/BW/VNNI (skipped otherwise);
 * vdpbf16ps only with AVX-512 BF16. */
#include "bench_clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)

#define ZERO_ALL                                                            \
    "vpxord %%zmm0, %%zmm0, %%zmm0\n vpxord %%zmm1, %%zmm1, %%zmm1\n"       \
    "vpxord %%zmm4, %%zmm4, %%zmm4\n vpxord %%zmm5, %%zmm5, %%zmm5\n"       \
    "vpxord %%zmm6, %%zmm6, %%zmm6\n vpxord %%zmm7, %%zmm7, %%zmm7\n"       \
    "vpxord %%zmm8, %%zmm8, %%zmm8\n vpxord %%zmm9, %%zmm9, %%zmm9\n"       \
    "vpxord %%zmm10, %%zmm10, %%zmm10\n vpxord %%zmm11, %%zmm11, %%zmm11\n" \
    "vpxord %%zmm12, %%zmm12, %%zmm12\n vpxord %%zmm13, %%zmm13, %%zmm13\n" \
    "vpxord %%zmm14, %%zmm14, %%zmm14\n vpxord %%zmm15, %%zmm15, %%zmm15\n"

/* One probe: `n` iterations of a 12-instruction body (an asm string over zmm4..zmm15, zmm0 and
 * zmm1 as inputs, %1 a 1 KiB buffer). Each body is its own function: asm bodies must be
 * string literals. */
#define PROBE(name, body)                                                                         \
    static void name(long n, const void *buf)                                                     \
    {                                                                                             \
        __asm__ volatile(ZERO_ALL "1:\n" body "dec %0\n jnz 1b\n"                                 \
                         : "+r"(n)                                                                \
                         : "r"(buf)                                                               \
                         : "xmm0", "xmm1", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",        \
                           "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory"); \
    }

#define SIX(op, a, b, r0, r1, r2, r3, r4, r5)                                                   \
    op " " a ", " b ", %%zmm" r0 "\n" op " " a ", " b ", %%zmm" r1 "\n" op " " a ", " b         \
       ", %%zmm" r2 "\n" op " " a ", " b ", %%zmm" r3 "\n" op " " a ", " b ", %%zmm" r4 "\n" op \
       " " a ", " b ", %%zmm" r5 "\n"
#define LO(op, a, b) SIX(op, a, b, "4", "5", "6", "7", "8", "9")
#define HI(op, a, b) SIX(op, a, b, "10", "11", "12", "13", "14", "15")

PROBE(probe_dpbusd, LO("vpdpbusd", "%%zmm0", "%%zmm1") HI("vpdpbusd", "%%zmm0", "%%zmm1"))
PROBE(probe_maddubs, LO("vpmaddubsw", "%%zmm0", "%%zmm1") HI("vpmaddubsw", "%%zmm0", "%%zmm1"))
PROBE(probe_fma, LO("vfmadd231ps", "%%zmm0", "%%zmm1") HI("vfmadd231ps", "%%zmm0", "%%zmm1"))
PROBE(probe_bf16, LO("vdpbf16ps", "%%zmm0", "%%zmm1") HI("vdpbf16ps", "%%zmm0", "%%zmm1"))
PROBE(probe_paddw, LO("vpaddw", "%%zmm0", "%%zmm1") HI("vpaddw", "%%zmm0", "%%zmm1"))
PROBE(probe_dpbusd_maddubs, LO("vpdpbusd", "%%zmm0", "%%zmm1") HI("vpmaddubsw", "%%zmm0", "%%zmm1"))
PROBE(probe_dpbusd_fma, LO("vpdpbusd", "%%zmm0", "%%zmm1") HI("vfmadd231ps", "%%zmm0", "%%zmm1"))
PROBE(probe_dpbusd_paddw, LO("vpdpbusd", "%%zmm0", "%%zmm1") HI("vpaddw", "%%zmm0", "%%zmm1"))
/* loads: 12 different 64-byte lines of an L1-resident buffer, added into 12 registers */
PROBE(probe_load_zmm, "vpaddw 0(%1), %%zmm4, %%zmm4\n vpaddw 64(%1), %%zmm5, %%zmm5\n"
                      "vpaddw 128(%1), %%zmm6, %%zmm6\n vpaddw 192(%1), %%zmm7, %%zmm7\n"
                      "vpaddw 256(%1), %%zmm8, %%zmm8\n vpaddw 320(%1), %%zmm9, %%zmm9\n"
                      "vpaddw 384(%1), %%zmm10, %%zmm10\n vpaddw 448(%1), %%zmm11, %%zmm11\n"
                      "vpaddw 512(%1), %%zmm12, %%zmm12\n vpaddw 576(%1), %%zmm13, %%zmm13\n"
                      "vpaddw 640(%1), %%zmm14, %%zmm14\n vpaddw 704(%1), %%zmm15, %%zmm15\n")
PROBE(probe_load_ymm, "vpaddw 0(%1), %%ymm4, %%ymm4\n vpaddw 64(%1), %%ymm5, %%ymm5\n"
                      "vpaddw 128(%1), %%ymm6, %%ymm6\n vpaddw 192(%1), %%ymm7, %%ymm7\n"
                      "vpaddw 256(%1), %%ymm8, %%ymm8\n vpaddw 320(%1), %%ymm9, %%ymm9\n"
                      "vpaddw 384(%1), %%ymm10, %%ymm10\n vpaddw 448(%1), %%ymm11, %%ymm11\n"
                      "vpaddw 512(%1), %%ymm12, %%ymm12\n vpaddw 576(%1), %%ymm13, %%ymm13\n"
                      "vpaddw 640(%1), %%ymm14, %%ymm14\n vpaddw 704(%1), %%ymm15, %%ymm15\n")

/* twelve dependent additions: one per cycle */
static void chain_add(long n, const void *buf)
{
    (void)buf;
    long x = 0;
    __asm__ volatile("1:\n"
                     ".rept 12\n add $1, %1\n .endr\n"
                     "dec %0\n jnz 1b\n"
                     : "+r"(n), "+r"(x)
                     :
                     : "cc");
}

typedef struct probe {
    const char *name;
    void (*run)(long n, const void *buf);
    int needs_bf16;
} probe;

/* instructions (12 per iteration) per second, the best of three runs of ~`seconds` */
static double rate(void (*run)(long, const void *), const void *buf, double seconds)
{
    long n = 1000;
    for (;;) { /* calibrate */
        double a = bench_clock_s(CLOCK_THREAD_CPUTIME_ID);
        run(n, buf);
        double t = bench_clock_s(CLOCK_THREAD_CPUTIME_ID) - a;
        if (t > seconds / 10 || n > (1L << 40))
            break;
        n *= 4;
    }
    long iters = n * 10;
    double best = 0;
    for (int r = 0; r < 3; r++) {
        double a = bench_clock_s(CLOCK_THREAD_CPUTIME_ID);
        run(iters, buf);
        double t = bench_clock_s(CLOCK_THREAD_CPUTIME_ID) - a;
        if (t > 0 && 12.0 * (double)iters / t > best)
            best = 12.0 * (double)iters / t;
    }
    return best;
}

int main(int argc, char **argv)
{
    double seconds = 0.2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-s") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: bench-pipes [-s SECONDS]\n");
            return 2;
        }
    }
    if (seconds <= 0 || seconds > 60) {
        fprintf(stderr, "usage: bench-pipes [-s SECONDS]\n");
        return 2;
    }
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512vnni")) {
        printf("bench-pipes: SKIPPED (needs AVX-512 F/BW/VNNI)\n");
        return 77;
    }
    const int has_bf16 = __builtin_cpu_supports("avx512bf16");
    static const probe probes[] = {
        {"vpdpbusd zmm", probe_dpbusd, 0},
        {"vpmaddubsw zmm", probe_maddubs, 0},
        {"vfmadd231ps zmm", probe_fma, 0},
        {"vdpbf16ps zmm", probe_bf16, 1},
        {"vpaddw zmm", probe_paddw, 0},
        {"6 vpdpbusd + 6 vpmaddubsw", probe_dpbusd_maddubs, 0},
        {"6 vpdpbusd + 6 vfmadd231ps", probe_dpbusd_fma, 0},
        {"6 vpdpbusd + 6 vpaddw", probe_dpbusd_paddw, 0},
        {"vpaddw zmm, [mem] (64 B loads)", probe_load_zmm, 0},
        {"vpaddw ymm, [mem] (32 B loads)", probe_load_ymm, 0},
    };
    static _Alignas(64) unsigned char buf[1024];
    const double hz = rate(chain_add, buf, seconds);
    printf("{\"bench\":\"x86_pipes\",\"probe\":\"dependent add chain\",\"ghz\":%.3f}\n", hz / 1e9);
    double dpbusd = 0;
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        if (probes[i].needs_bf16 && !has_bf16)
            continue;
        const double r = rate(probes[i].run, buf, seconds);
        if (probes[i].run == probe_dpbusd)
            dpbusd = r;
        printf("{\"bench\":\"x86_pipes\",\"probe\":\"%s\",\"per_ns\":%.3f,\"per_cycle\":%.3f}\n",
               probes[i].name, r / 1e9, r / hz);
    }
    printf("\nint8 products per cycle through vpdpbusd zmm: %.1f (%.3g per second)\n",
           64.0 * dpbusd / hz, 64.0 * dpbusd);
    return 0;
}

#else

int main(void)
{
    printf("bench-pipes: SKIPPED (x86_64 only)\n");
    return 77;
}

#endif
