/*
 * nn_kernels.c -- loops of the normalisations, losses, dropout and
 * attention (nn_kernels.h).  The typed bodies are in nn_kernels_t.h,
 * included once for float32 and once for float64; this file holds what
 * both share and the entry points that pick one by dtype.
 *
 * Threads: a loop goes parallel above PF_GRAIN elements of work, over
 * rows, channels or fixed blocks.  Whatever is summed across threads is
 * summed per block (the blocks depend on the shape only) and the blocks
 * are folded in order, so results do not depend on the thread count.
 */
#include "nn_kernels.h"
#include "gemm.h"
#include "vmath.h"
#include "philox.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#pragma GCC diagnostic ignored "-Wfloat-equal"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(PYFRAME_SANITIZE)
#define PF_CLONES __attribute__((target_clones("default", "avx2", "avx512f")))
#else
#define PF_CLONES
#endif

/*
 * The helpers of the row workers are inlined into them, so that each target
 * clone of a worker gets its own vector code and no call through the
 * clone resolver per row (rows of attention are 128 long).
 */
#if defined(__GNUC__)
#define NK_INLINE static inline __attribute__((always_inline))
#else
#define NK_INLINE static inline
#endif

/*
 * Independent float64 accumulators of a sum: 32 lanes are four AVX-512 (or
 * eight AVX2) vectors, enough to hide the latency of the vector add; with
 * one vector the sums of a row ran at a third of the memory speed.
 */
#define NL 32
/* elements per block of a float32-lane sum (each lane adds NK_BLOCK / NL of them) */
#define NK_BLOCK 1024
/* rows a float32 partial of a weight gradient sums before it goes into float64 */
#define NK_FLUSH 128

/*
 * Threads for `work` elements split into `tasks` pieces: 1 below the grain,
 * and 1 inside a parallel region (attention runs whole batch entries per
 * thread and calls the row loops from there).
 */
static int nk_threads(int64_t work, int64_t tasks)
{
    if (work < PF_GRAIN || tasks < 2) {
        return 1;
    }
#ifdef _OPENMP
    if (omp_in_parallel()) {
        return 1;
    }
#endif
    int n = pf_get_num_threads();
    return tasks < n ? (int)tasks : n;
}

/*
 * Blocks of rows for sums across rows: about one per 16K elements, at most
 * 64, at most `rows`, and few enough that the partial sums (wlen2 values
 * per block) stay within 4M doubles.
 */
static int64_t nk_blocks(int64_t work, int64_t rows, int64_t wlen2)
{
    int64_t b = work / 16384;
    int64_t cap = wlen2 > 0 ? ((int64_t)1 << 22) / wlen2 : 64;
    b = b > 64 ? 64 : b;
    b = b > cap ? cap : b;
    b = b > rows ? rows : b;
    return b < 1 ? 1 : b;
}

/* dw[k] = sum over blocks of part[2 b wlen + k], db from part[(2 b + 1) wlen + k] */
static void nk_fold_parts(const double *part, int64_t nblk, int64_t wlen, double *dw, double *db)
{
    for (int64_t k = 0; k < wlen; k++) {
        double a = 0, b = 0;
        for (int64_t j = 0; j < nblk; j++) {
            a += part[2 * j * wlen + k];
            b += part[(2 * j + 1) * wlen + k];
        }
        if (dw != NULL) {
            dw[k] = a;
        }
        if (db != NULL) {
            db[k] = b;
        }
    }
}

/*
 * Per-channel coefficients of batch norm's map, in the compute dtype: the
 * two centres split hi + lo (split_mean), the three factors.
 */
enum { BN_UH, BN_UL, BN_A, BN_XH, BN_XL, BN_B, BN_D, BN_NCOEF };

static inline float vexp_f32(float x)
{
    return pf_expf(x);
}

static inline double vexp_f64(double x)
{
    return exp(x);
}

#define NK_CAT2(a, b) a##_##b
#define NK_CAT(a, b) NK_CAT2(a, b)
#define NK(name) NK_CAT(name, NK_SFX)

#define NK_T float
#define NK_SFX f32
#include "nn_kernels_t.h"
#undef NK_T
#undef NK_SFX

#define NK_T double
#define NK_SFX f64
#include "nn_kernels_t.h"
#undef NK_T
#undef NK_SFX

/* ------------------------------------------------------------ entry points */

#define IS64(dt) ((dt) == PF_FLOAT64)

void pf_rownorm_fwd(const pf_rownorm *P, pf_dtype dt, const void *x, const void *w,
                    const void *b, void *y)
{
    if (IS64(dt)) {
        rownorm_fwd_f64(P, x, w, b, y);
    }
    else {
        rownorm_fwd_f32(P, x, w, b, y);
    }
}

int pf_rownorm_bwd(const pf_rownorm *P, pf_dtype dt, const void *g, const void *x,
                   const void *w, void *dx, double *dw, double *db)
{
    return IS64(dt) ? rownorm_bwd_f64(P, g, x, w, dx, dw, db)
                    : rownorm_bwd_f32(P, g, x, w, dx, dw, db);
}

int pf_bn_stats(const pf_bn_geom *G, pf_dtype dt, const void *x, double *mean, double *var)
{
    int64_t C = G->C;
    double count = (double)(G->outer * G->inner);
    int rc = IS64(dt) ? bn_sums_f64(G, 0, x, NULL, NULL, mean, NULL)
                      : bn_sums_f32(G, 0, x, NULL, NULL, mean, NULL);
    if (rc < 0) {
        return -1;
    }
    for (int64_t c = 0; c < C; c++) {
        mean[c] /= count;
    }
    /* the second pass: squared deviations from the mean, never E[x^2] - E[x]^2 */
    rc = IS64(dt) ? bn_sums_f64(G, 1, x, NULL, mean, var, NULL)
                  : bn_sums_f32(G, 1, x, NULL, mean, var, NULL);
    if (rc < 0) {
        return -1;
    }
    for (int64_t c = 0; c < C; c++) {
        var[c] /= count;
    }
    return 0;
}

int pf_bn_grad_sums(const pf_bn_geom *G, pf_dtype dt, const void *g, const void *x,
                    const double *mean, double *sg, double *sgx)
{
    return IS64(dt) ? bn_sums_f64(G, 2, x, g, mean, sg, sgx)
                    : bn_sums_f32(G, 2, x, g, mean, sg, sgx);
}

int pf_bn_map(const pf_bn_geom *G, pf_dtype dt, const void *u, const double *um,
              const double *A, const void *x, const double *xm, const double *B,
              const double *D, void *out)
{
    double *zeros = NULL;
    if (um == NULL || xm == NULL || B == NULL || D == NULL) {
        zeros = calloc((size_t)(G->C > 0 ? G->C : 1), sizeof(double));
        if (zeros == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        um = um != NULL ? um : zeros;
        xm = xm != NULL ? xm : zeros;
        B = B != NULL ? B : zeros;
        D = D != NULL ? D : zeros;
    }
    int rc = IS64(dt) ? bn_map_f64(G, u, um, A, x, xm, B, D, out)
                      : bn_map_f32(G, u, um, A, x, xm, B, D, out);
    free(zeros);
    return rc;
}

int pf_xent_fwd(const pf_xent *P, pf_dtype dt, const void *x, double *loss, double *wrow)
{
    if (IS64(dt)) {
        xent_fwd_f64(P, x, loss, wrow);
    }
    else {
        xent_fwd_f32(P, x, loss, wrow);
    }
    return 0;
}

void pf_xent_bwd(const pf_xent *P, pf_dtype dt, const void *x, double scale, const double *srow,
                 void *dx)
{
    if (IS64(dt)) {
        xent_bwd_f64(P, x, scale, srow, dx);
    }
    else {
        xent_bwd_f32(P, x, scale, srow, dx);
    }
}

void pf_xent_target_dist(const pf_xent *P, pf_dtype dt, void *q)
{
    if (IS64(dt)) {
        xent_target_dist_f64(P, q);
    }
    else {
        xent_target_dist_f32(P, q);
    }
}

void pf_nll_fwd(const pf_xent *P, pf_dtype dt, const void *x, double *loss, double *wrow)
{
    if (IS64(dt)) {
        nll_fwd_f64(P, x, loss, wrow);
    }
    else {
        nll_fwd_f32(P, x, loss, wrow);
    }
}

double pf_ewloss_run(pf_ewloss kind, pf_dtype dt, const void *x, const void *t, const void *w,
                     const void *pw, int64_t n, double prm, void *out)
{
    return IS64(dt) ? ewloss_f64(kind, x, t, w, pw, n, prm, out)
                    : ewloss_f32(kind, x, t, w, pw, n, prm, out);
}

void pf_dropout_mask(pf_dtype dt, void *out, int64_t n, double p, uint64_t seed,
                     uint64_t offset)
{
    if (IS64(dt)) {
        dropout_mask_f64(out, n, p, seed, offset);
    }
    else {
        dropout_mask_f32(out, n, p, seed, offset);
    }
}

void pf_attn_softmax(const pf_attn *P, pf_dtype dt, void *s, int dropout)
{
    if (IS64(dt)) {
        attn_softmax_f64(P, s, dropout);
    }
    else {
        attn_softmax_f32(P, s, dropout);
    }
}

void pf_attn_softmax_bwd(const pf_attn *P, pf_dtype dt, const void *prob, void *dp)
{
    if (IS64(dt)) {
        attn_softmax_bwd_f64(P, prob, dp);
    }
    else {
        attn_softmax_bwd_f32(P, prob, dp);
    }
}

void pf_attn_dropout_apply(const pf_attn *P, pf_dtype dt, const void *prob, void *out)
{
    if (IS64(dt)) {
        attn_dropout_apply_f64(P, prob, out);
    }
    else {
        attn_dropout_apply_f32(P, prob, out);
    }
}

/* ------------------------------------------------------------ attention driver */

/*
 * c[i] (m, n) = op(a[i]) op(b[i]) for i < nb over contiguous buffers: a is
 * stored (m, k), or (k, m) when ta; b (k, n), or (n, k) when tb.
 */
static void flat_gemm(pf_dtype dt, int64_t nb, int64_t m, int64_t n, int64_t k, const char *a,
                      int ta, const char *b, int tb, char *c)
{
    if (nb == 0 || m == 0 || n == 0) {
        return;
    }
    pf_gemm g;
    memset(&g, 0, sizeof(g));
    g.dtype = dt;
    g.nb = 1;
    g.bshape[0] = nb;
    g.m = m;
    g.n = n;
    g.k = k;
    g.a = (pf_gemm_mat){(char *)a, {m * k}, ta ? 1 : k, ta ? m : 1};
    g.b = (pf_gemm_mat){(char *)b, {k * n}, tb ? 1 : n, tb ? k : 1};
    g.c = (pf_gemm_mat){c, {m * n}, n, 1};
    pf_gemm_run(&g);
}

/* entries [b0, b0 + c) of the batch: the forward with scratch s (c, L, S) */
static void attn_fwd_block(const pf_attn *P, pf_dtype dt, int64_t E, int64_t Ev, const char *q,
                           const char *k, const char *v, char *out, char *s, int64_t b0,
                           int64_t c)
{
    int64_t isz = pf_dtypes[dt].itemsize, L = P->L, S = P->S;
    pf_attn K = *P;
    K.b0 = b0;
    K.nb = c;
    flat_gemm(dt, c, L, S, E, q + b0 * L * E * isz, 0, k + b0 * S * E * isz, 1, s);
    pf_attn_softmax(&K, dt, s, P->dropout_p > 0);
    flat_gemm(dt, c, L, Ev, S, s, 0, v + b0 * S * Ev * isz, 0, out + b0 * L * Ev * isz);
}

/*
 * The backward of entries [b0, b0 + c): p, dp (and pd with dropout) are
 * (c, L, S) scratch; dp may be the caller's dmask rows.  dq, dk, dv may be
 * NULL.  dq and dk come out without the scale.
 */
static void attn_bwd_block(const pf_attn *P, pf_dtype dt, int64_t E, int64_t Ev, const char *q,
                           const char *k, const char *v, const char *g, char *dq, char *dk,
                           char *dv, char *p, char *dp, char *pd, int64_t b0, int64_t c)
{
    int64_t isz = pf_dtypes[dt].itemsize, L = P->L, S = P->S;
    pf_attn K = *P;
    K.b0 = b0;
    K.nb = c;
    flat_gemm(dt, c, L, S, E, q + b0 * L * E * isz, 0, k + b0 * S * E * isz, 1, p);
    pf_attn_softmax(&K, dt, p, 0);
    flat_gemm(dt, c, L, S, Ev, g + b0 * L * Ev * isz, 0, v + b0 * S * Ev * isz, 1, dp);
    if (dv != NULL) {
        if (P->dropout_p > 0) {
            pf_attn_dropout_apply(&K, dt, p, pd);
        }
        flat_gemm(dt, c, S, Ev, L, P->dropout_p > 0 ? pd : p, 1, g + b0 * L * Ev * isz, 0,
                  dv + b0 * S * Ev * isz);
    }
    pf_attn_softmax_bwd(&K, dt, p, dp);
    if (dq != NULL) {
        flat_gemm(dt, c, L, E, S, dp, 0, k + b0 * S * E * isz, 0, dq + b0 * L * E * isz);
    }
    if (dk != NULL) {
        flat_gemm(dt, c, S, E, L, dp, 1, q + b0 * L * E * isz, 0, dk + b0 * S * E * isz);
    }
}

/*
 * Whole batch entries per thread when there are at least as many entries
 * as threads and an entry's scores are moderate: one parallel region,
 * OpenBLAS switched to one thread meanwhile (as gemm.c does for batches).
 * Otherwise chunks of entries in sequence whose scores stay in L2, each
 * step threaded on its own (OpenBLAS's threads in the products).
 */
static int attn_threads(const pf_attn *P)
{
    int nth = pf_get_num_threads();
#ifdef _OPENMP
    if (omp_in_parallel()) {
        return 1;
    }
#endif
    if (nth <= 1 || P->nb < nth || P->L * P->S > ((int64_t)1 << 20) ||
        P->nb * P->L * P->S < PF_GRAIN) {
        return 1;
    }
    return nth;
}

static int64_t attn_chunk(const pf_attn *P, pf_dtype dt)
{
    /* about 512 KB of scores per chunk */
    int64_t per = P->L * P->S * pf_dtypes[dt].itemsize;
    int64_t cnt = per > 0 ? ((int64_t)512 << 10) / per : P->nb;
    cnt = cnt > P->nb ? P->nb : cnt;
    return cnt < 1 ? 1 : cnt;
}

static void scale_buffer(pf_dtype dt, char *x, int64_t n, double s)
{
    if (dt == PF_FLOAT64) {
        for (int64_t i = 0; i < n; i++) {
            ((double *)x)[i] *= s;
        }
    }
    else {
        float f = (float)s;
        for (int64_t i = 0; i < n; i++) {
            ((float *)x)[i] *= f;
        }
    }
}

int pf_attn_forward(const pf_attn *P, pf_dtype dt, int64_t E, int64_t Ev, const void *q,
                    const void *k, const void *v, void *out)
{
    int64_t isz = pf_dtypes[dt].itemsize, LS = P->L * P->S;
    if (P->nb == 0 || P->L == 0 || Ev == 0) {
        return 0;
    }
    if (P->S == 0) {
        /* nothing to attend to: every row gives zeros */
        memset(out, 0, (size_t)(P->nb * P->L * Ev * isz));
        return 0;
    }
    int nth = attn_threads(P);
    int64_t cnt = nth > 1 ? 1 : attn_chunk(P, dt);
    char *s = malloc((size_t)((nth > 1 ? nth : cnt) * LS * isz));
    if (s == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_BEGIN_ALLOW_THREADS
    if (nth > 1) {
        scipy_openblas_set_num_threads(1);
        #pragma omp parallel for num_threads(nth) schedule(static)
        for (int64_t b = 0; b < P->nb; b++) {
#ifdef _OPENMP
            char *mine = s + omp_get_thread_num() * LS * isz;
#else
            char *mine = s;
#endif
            attn_fwd_block(P, dt, E, Ev, q, k, v, out, mine, b, 1);
        }
        scipy_openblas_set_num_threads(pf_get_num_threads());
    }
    else {
        for (int64_t b0 = 0; b0 < P->nb; b0 += cnt) {
            attn_fwd_block(P, dt, E, Ev, q, k, v, out, s, b0,
                           P->nb - b0 < cnt ? P->nb - b0 : cnt);
        }
    }
    Py_END_ALLOW_THREADS
    free(s);
    return 0;
}

int pf_attn_backward(const pf_attn *P, pf_dtype dt, int64_t E, int64_t Ev, const void *q,
                     const void *k, const void *v, const void *g, void *dq, void *dk, void *dv,
                     void *dmask)
{
    int64_t isz = pf_dtypes[dt].itemsize, LS = P->L * P->S, nb = P->nb;
    void *outs[3] = {dq, dk, dv};
    int64_t sizes[3] = {nb * P->L * E, nb * P->S * E, nb * P->S * Ev};
    for (int i = 0; i < 3; i++) {
        if (outs[i] != NULL) {
            memset(outs[i], 0, (size_t)(sizes[i] * isz));
        }
    }
    if (dmask != NULL) {
        memset(dmask, 0, (size_t)(nb * LS * isz));
    }
    if (nb == 0 || LS == 0) {
        return 0;
    }
    int nth = attn_threads(P);
    int64_t cnt = nth > 1 ? 1 : attn_chunk(P, dt), slots = nth > 1 ? nth : 1;
    int nbuf = 2 + (P->dropout_p > 0 && dv != NULL);
    char *s = malloc((size_t)(slots * nbuf * cnt * LS * isz));
    if (s == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_BEGIN_ALLOW_THREADS
    if (nth > 1) {
        scipy_openblas_set_num_threads(1);
        #pragma omp parallel for num_threads(nth) schedule(static)
        for (int64_t b = 0; b < nb; b++) {
#ifdef _OPENMP
            char *mine = s + omp_get_thread_num() * nbuf * LS * isz;
#else
            char *mine = s;
#endif
            char *dp = dmask != NULL ? (char *)dmask + b * LS * isz : mine + LS * isz;
            attn_bwd_block(P, dt, E, Ev, q, k, v, g, dq, dk, dv, mine, dp,
                           mine + 2 * LS * isz, b, 1);
        }
        scipy_openblas_set_num_threads(pf_get_num_threads());
    }
    else {
        for (int64_t b0 = 0; b0 < nb; b0 += cnt) {
            int64_t c = nb - b0 < cnt ? nb - b0 : cnt;
            char *dp = dmask != NULL ? (char *)dmask + b0 * LS * isz : s + cnt * LS * isz;
            attn_bwd_block(P, dt, E, Ev, q, k, v, g, dq, dk, dv, s, dp, s + 2 * cnt * LS * isz,
                           b0, c);
        }
    }
    Py_END_ALLOW_THREADS
    if (dq != NULL) {
        scale_buffer(dt, dq, sizes[0], P->scale);
    }
    if (dk != NULL) {
        scale_buffer(dt, dk, sizes[1], P->scale);
    }
    free(s);
    return 0;
}
