/* A per-token cycle model for Graviton (Neoverse N1 / V1 / V2): one decode token of the 2B-4T
 * shape, added up from the per-weight (per-element) cycles of every kernel the token runs, next
 * to the DRAM bound of the bytes it reads, as predicted tok/s for 1, 2 and 6 vCPUs (Lambda
 * 2048 / 3538 / 10240 MB: Lambda gives one vCPU per 1769 MB).
 *
 *   bench-cycles [-c CTX,...] [-r EXACT_ROWS]     (defaults: 0,512,2048 and 650)
 *
 * Where the numbers come from (kept here so the table can be re-derived and updated):
 * - ternary matmul, LM head f16 and int8 passes: bench/neon-measure.sh (llvm-mca on the hot
 *   loops, i.e. the in-core, L1-resident bound; README "NEON kernels");
 * - attention uses the same f16 dot product as the LM head (scores q.K and probs.V, f16 x f16
 *   per element); its softmax and the norms, RoPE, squared ReLU and activation quantization are
 *   element-wise loops that neon-measure does not time: an ESTIMATE of 4 cycles per element
 *   (exp: 20) on every core, stated as such (they are < 2% of a token);
 * - the screened head's selection (two passes over the rows' bounds, double arithmetic) is an
 *   ESTIMATE of 2 x 12 cycles per row;
 * - DRAM: 20.9 GB/s for one Graviton2 core (../shared/arm/reference-kernels.md), and the same per
 *   core for V1 / V2 (conservative), scaling linearly up to 6 cores;
 * - clocks: Graviton2 2.5 GHz, Graviton3 2.6 GHz, Graviton4 2.8 GHz.
 * The compute time is split perfectly over the vCPUs (the kernels split by rows); the token
 * takes max(compute, DRAM) (roofline): an upper bound on speed, not a measurement. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    N_CORES = 3
};
static const char *const core_name[N_CORES] = {"N1 (Graviton2, Lambda)", "V1 (Graviton3)",
                                               "V2 (Graviton4)"};
static const double ghz[N_CORES] = {2.5, 2.6, 2.8};
static const double dram_gbs_per_core = 20.9;

/* cycles per weight from bench/neon-measure.sh (decode, 1 activation row) */
typedef struct ternary_cost {
    const char *path;
    double qkvo[N_CORES]; /* 2560 x M shapes */
    double down[N_CORES]; /* 6912 x 2560 */
} ternary_cost;
static const ternary_cost ternary[] = {
    {"neon-dotprod (in place)", {0.0667, 0.0334, 0.0328}, {0.0642, 0.0322, 0.0319}},
    {"neon-dotprod-rp (repacked)", {0.0564, 0.0283, 0.0276}, {0.0555, 0.0278, 0.0275}},
};
static const double f16_dot[N_CORES] = {0.426, 0.209, 0.209}; /* LM head, attention */
static double i8_dot[N_CORES] = {0.0, 0.0, 0.0};              /* set in main (measured) */
static const double elementwise = 4.0, exp_cost = 20.0, select_per_row = 24.0;

/* 2B-4T */
static const double n_embd = 2560, n_ff = 6912, n_layer = 30, kv_dim = 640, n_head = 20,
                    head_dim = 128, n_vocab = 128256;

typedef struct token_cost {
    double ternary, head, attention, other; /* cycles */
    double bytes;
} token_cost;

static token_cost one_token(int core, int path, int screened, double ctx, double exact_rows)
{
    token_cost t = {0};
    const double w_qkvo = n_embd * (n_embd + 2 * kv_dim + n_embd), w_gu = 2 * n_embd * n_ff;
    const double w_down = n_ff * n_embd;
    t.ternary = n_layer *
                ((w_qkvo + w_gu) * ternary[path].qkvo[core] + w_down * ternary[path].down[core]);
    t.bytes = n_layer * (w_qkvo + w_gu + w_down) / 4.0;
    const double head_w = n_vocab * n_embd;
    if (screened) {
        t.head = head_w * i8_dot[core] + exact_rows * n_embd * f16_dot[core] +
                 n_vocab * select_per_row;
        t.bytes += head_w + n_vocab * 16 + exact_rows * n_embd * 2;
    } else {
        t.head = head_w * f16_dot[core];
        t.bytes += head_w * 2;
    }
    /* attention over ctx+1 positions (padded to 32): q.K and probs.V, f16, plus softmax */
    const double pos = ((ctx + 1 + 31) / 32) * 32;
    t.attention = n_layer * (2 * n_head * head_dim * pos * f16_dot[core] + n_head * pos * exp_cost);
    t.bytes += n_layer * 2 * kv_dim * pos * 2;
    /* norms (4 per layer), quantization (4 inputs), RoPE, relu^2*up, residual adds */
    const double per_layer = 3 * n_embd + n_ff + 4 * n_embd + n_ff + 2 * n_embd + n_ff +
                             (n_head + 2 * kv_dim / head_dim) * head_dim;
    t.other = (n_layer * per_layer + n_embd) * elementwise;
    return t;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench-cycles [-c CTX,...] [-r EXACT_ROWS] [-i N1,V1,V2]\n"
            "  -i: int8 LM-head pass, cycles per weight (bench/neon-measure.sh -p lmhead-i8)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    double ctxs[8] = {0, 512, 2048};
    int n_ctx = 3;
    double exact_rows = 650;
    /* bench/neon-measure.sh -p lmhead-i8 (neon-dotprod path, 2560 x 2048 rows) */
    i8_dot[0] = 0.0397, i8_dot[1] = 0.0318, i8_dot[2] = 0.0266;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (!strcmp(argv[i], "-c")) {
            n_ctx = 0;
            for (char *t = strtok(argv[++i], ","); t && n_ctx < 8; t = strtok(NULL, ","))
                ctxs[n_ctx++] = atof(t);
        } else if (!strcmp(argv[i], "-r")) {
            exact_rows = atof(argv[++i]);
        } else if (!strcmp(argv[i], "-i")) {
            if (sscanf(argv[++i], "%lf,%lf,%lf", &i8_dot[0], &i8_dot[1], &i8_dot[2]) != 3)
                usage();
        } else {
            usage();
        }
    }
    static const int vcpus[3] = {1, 2, 6};
    for (int pass = 0; pass < 2; pass++) { /* JSON lines, then the table */
        if (pass == 1)
            printf(
                "\n| core | ternary path | LM head | ctx | Mcycles: ternary / head / attention / "
                "other | MB read | DRAM-bound tok/s (1 vCPU) | predicted tok/s 1 / 2 / 6 "
                "vCPUs |\n|---|---|---|---|---|---|---|---|\n");
        for (int core = 0; core < N_CORES; core++)
            for (int path = 0; path < 2; path++)
                for (int scr = 0; scr < 2; scr++)
                    for (int ci = 0; ci < n_ctx; ci++) {
                        token_cost t = one_token(core, path, scr, ctxs[ci], exact_rows);
                        const double cyc = t.ternary + t.head + t.attention + t.other;
                        double tok[3];
                        for (int v = 0; v < 3; v++) {
                            const double compute_s = cyc / (ghz[core] * 1e9 * vcpus[v]);
                            const double dram_s = t.bytes / (dram_gbs_per_core * 1e9 * vcpus[v]);
                            tok[v] = 1.0 / (compute_s > dram_s ? compute_s : dram_s);
                        }
                        if (pass == 0)
                            printf("{\"bench\":\"cycle-model\",\"core\":\"%s\",\"ternary\":\"%s\","
                                   "\"lm_head\":\"%s\",\"ctx\":%.0f,\"mcycles\":%.2f,"
                                   "\"mbytes\":%.1f,\"tok_s_1\":%.2f,\"tok_s_2\":%.2f,"
                                   "\"tok_s_6\":%.2f}\n",
                                   core_name[core], ternary[path].path, scr ? "screened" : "full",
                                   ctxs[ci], cyc / 1e6, t.bytes / 1e6, tok[0], tok[1], tok[2]);
                        else
                            printf("| %s | %s | %s | %.0f | %.1f / %.1f / %.1f / %.1f | %.0f | "
                                   "%.1f | %.1f / %.1f / %.1f |\n",
                                   core_name[core], ternary[path].path,
                                   scr ? "screened" : "full f16", ctxs[ci], t.ternary / 1e6,
                                   t.head / 1e6, t.attention / 1e6, t.other / 1e6, t.bytes / 1e6,
                                   dram_gbs_per_core * 1e9 / t.bytes, tok[0], tok[1], tok[2]);
                    }
    }
    return 0;
}
