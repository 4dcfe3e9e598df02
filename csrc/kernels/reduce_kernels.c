/*
 * reduce_kernels.c -- the loops behind the reductions, scans and softmax.
 *
 * Two ways through a reduction, chosen from the geometry alone:
 *
 *   rows     each output's region is cut into blocks of BLK elements (by
 *            logical position, so block boundaries depend only on the
 *            region's size).  A block is reduced with L independent lane
 *            accumulators (the loop GCC vectorises), the lanes are folded
 *            pairwise, and the blocks' partials are folded pairwise in
 *            block order.  A block that is one contiguous run of the
 *            compute dtype is read in place; any other block is gathered
 *            (and converted) into a stack buffer first.
 *
 *   columns  when the innermost kept dimension is the contiguous one (the
 *            "reduce the outer axis" case: sum over the batch), every
 *            reduced position contributes a whole contiguous row of
 *            outputs: acc[j] op= x[r, j], vectorised across j.  Rows are cut
 *            into chunks of CROWS (more when the rows are narrow, so that
 *            a chunk holds about BLK elements); each chunk's partial row is
 *            kept and the chunks are folded pairwise in chunk order.
 *
 * Short rows (under 32 elements) skip the lanes, and a whole range of them
 * goes to one kernel call.  argmax/argmin reduce a block to its max, then
 * look for its first occurrence while the block is in L1.
 *
 * Threads only decide who computes which block or chunk; the folding order
 * is fixed, so a result has the same bits on any thread count.
 */
#include "reduce_kernels.h"
#include "vmath.h"
#include <math.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#define THREAD_ID() omp_get_thread_num()
#define THREAD_COUNT() omp_get_num_threads()
#else
#define THREAD_ID() 0
#define THREAD_COUNT() 1
#endif

/* one macro body serves all three compute dtypes; x != x is the NaN test */
#pragma GCC diagnostic ignored "-Wfloat-equal"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(PYFRAME_SANITIZE)
#define PF_CLONES __attribute__((target_clones("default", "avx2", "avx512f")))
#else
#define PF_CLONES
#endif

#define BLK 4096        /* elements per block of the row path */
#define CROWS 128       /* reduced positions per chunk of the column path */
#define STRIP 512       /* outputs per task of the column path */
#define COLMIN 2        /* the column path needs at least this many contiguous outputs */

/* A partial result: a value of the compute dtype and, for arg kinds, its index. */
typedef struct {
    union {
        float f32;
        double f64;
        int64_t i64;
    } v;
    int64_t idx;
} slot;

/* The loops of one (kind, compute dtype), behind dtype-free signatures. */
typedef struct {
    /* reduce x[0..n) (n >= 1) into o; c points at the center (or is NULL) */
    void (*blk)(const void *x, int64_t n, const void *c, double p, slot *o);
    /* acc[j] op= x[r * pitch + j] for j < m, r < rows; row is the reduced position of
       x's first row (arg kinds) */
    void (*col)(void *acc, int64_t *ai, const void *x, int64_t m, int64_t rows, int64_t pitch,
                const void *cv, double p, int64_t row);
    /* acc[0..m) = the identity */
    void (*init)(void *acc, int64_t *ai, int64_t m);
    /* a = a op b, where b covers later positions than a */
    void (*comb)(slot *a, const slot *b);
    void (*vcomb)(void *a, int64_t *ai, const void *b, const int64_t *bi, int64_t m);
    /* out[o] = reduction of the short contiguous row x[o * pitch .. + n) (n < the lanes);
       NULL for the arg kinds */
    void (*rows)(const void *x, int64_t rows, int64_t n, int64_t pitch, const void *cv,
                 double p, void *out);
} rk_fns;

/* ------------------------------------------------------------ the lanes */

/* combining two accumulated values */
#define ADD(a, b) ((a) + (b))
#define MUL(a, b) ((a) * (b))
#define WADD(a, b) ((int64_t)((uint64_t)(a) + (uint64_t)(b)))      /* wraps, as NumPy */
#define WMUL(a, b) ((int64_t)((uint64_t)(a) * (uint64_t)(b)))
#define FMAX(a, b) ((((b) > (a)) | ((b) != (b))) ? (b) : (a))        /* NaN wins */
#define FMIN(a, b) ((((b) < (a)) | ((b) != (b))) ? (b) : (a))
#define IMAX(a, b) ((b) > (a) ? (b) : (a))
#define IMIN(a, b) ((b) < (a) ? (b) : (a))

/* mapping an element before it is accumulated; c is the center, p the power */
#define ID(v, c, p) (v)
#define NZ(v, c, p) ((v) != 0)
#define SQ(v, c, p) ((v) * (v))
#define ABSF(v, c, p) fabsf(v)
#define ABSD(v, c, p) fabs(v)
#define POWF(v, c, p) powf(fabsf(v), p)
#define POWD(v, c, p) pow(fabs(v), p)
#define SQDEV(v, c, p) (((v) - (c)) * ((v) - (c)))
#define EXPF(v, c, p) pf_expf((v) - (c))
#define EXPD(v, c, p) exp((v) - (c))

/*
 * A reduction kind K in dtype T (slot field F) with L lanes.  The block
 * loop keeps L accumulators (acc[j] takes elements j, j + L, ...), the
 * column loop one per output; MAP sees the center only where it names it.
 */
#define RED(K, T, F, L, IDENT, MAP, COMB)                                                   \
    static PF_CLONES T K##_##F##_blk(const T *x, int64_t n, T c, T p)                        \
    {                                                                                       \
        if (n < L) {                                                                        \
            /* short regions (many small outputs): no lanes to set up and fold */           \
            T r = IDENT;                                                                    \
            for (int64_t i = 0; i < n; i++) {                                               \
                T v = x[i];                                                                 \
                T mv = MAP(v, c, p);                                                        \
                r = COMB(r, mv);                                                            \
            }                                                                               \
            (void)c, (void)p;                                                               \
            return r;                                                                       \
        }                                                                                   \
        T acc[L];                                                                           \
        for (int j = 0; j < L; j++) {                                                       \
            acc[j] = IDENT;                                                                 \
        }                                                                                   \
        int64_t i = 0;                                                                      \
        for (; i + L <= n; i += L) {                                                        \
            for (int j = 0; j < L; j++) {                                                   \
                T v = x[i + j];                                                             \
                T mv = MAP(v, c, p);                                                        \
                acc[j] = COMB(acc[j], mv);                                                  \
            }                                                                               \
        }                                                                                   \
        T tail = IDENT;                                                                     \
        for (; i < n; i++) {                                                                \
            T v = x[i];                                                                     \
            T mv = MAP(v, c, p);                                                            \
            tail = COMB(tail, mv);                                                          \
        }                                                                                   \
        for (int w = L / 2; w > 0; w /= 2) {                                                \
            for (int j = 0; j < w; j++) {                                                   \
                acc[j] = COMB(acc[j], acc[j + w]);                                          \
            }                                                                               \
        }                                                                                   \
        (void)c, (void)p;                                                                   \
        return COMB(acc[0], tail);                                                          \
    }                                                                                       \
    static PF_CLONES void K##_##F##_colk(T *restrict acc, const T *restrict x, int64_t m,   \
                                         int64_t rows, int64_t pitch, const T *cv, T p)     \
    {                                                                                       \
        if (pitch == m && m < 32 && rows * m >= 64) {                                       \
            /* few outputs, rows back to back: k rows at a time as one flat run of        \
               k * m lanes, lane q * m + j feeding output j */                              \
            int64_t k = 64 / m, lm = k * m, i = 0, nel = rows * m;                          \
            T a2[64], c2[64];                                                               \
            for (int64_t j = 0; j < lm; j++) {                                              \
                a2[j] = IDENT;                                                              \
                c2[j] = cv != NULL ? cv[j % m] : (T)0;                                      \
            }                                                                               \
            for (; i + lm <= nel; i += lm) {                                                \
                for (int64_t j = 0; j < lm; j++) {                                          \
                    T v = x[i + j];                                                         \
                    T mv = MAP(v, c2[j], p);                                                \
                    a2[j] = COMB(a2[j], mv);                                                \
                }                                                                           \
            }                                                                               \
            for (int64_t q = 0; q < k; q++) {                                               \
                for (int64_t j = 0; j < m; j++) {                                           \
                    acc[j] = COMB(acc[j], a2[q * m + j]);                                   \
                }                                                                           \
            }                                                                               \
            (void)c2;                                                                       \
            x += i;                                                                         \
            rows -= i / m;                                                                  \
        }                                                                                   \
        for (int64_t r = 0; r < rows; r++) {                                                \
            const T *xr = x + r * pitch;                                                    \
            for (int64_t j = 0; j < m; j++) {                                               \
                T v = xr[j];                                                                \
                T mv = MAP(v, cv[j], p);                                                    \
                acc[j] = COMB(acc[j], mv);                                                  \
            }                                                                               \
        }                                                                                   \
        (void)cv, (void)p;                                                                  \
    }                                                                                       \
    static PF_CLONES void K##_##F##_rowsk(const T *x, int64_t rows, int64_t n,              \
                                          int64_t pitch, const T *cv, T p, T *out)          \
    {                                                                                       \
        for (int64_t o = 0; o < rows; o++) {                                                \
            const T *xr = x + o * pitch;                                                    \
            T r = IDENT;                                                                    \
            for (int64_t i = 0; i < n; i++) {                                               \
                T v = xr[i];                                                                \
                T mv = MAP(v, cv[o], p);                                                    \
                r = COMB(r, mv);                                                            \
            }                                                                               \
            out[o] = r;                                                                     \
        }                                                                                   \
        (void)cv, (void)p;                                                                  \
    }                                                                                       \
    static void K##_##F##_r(const void *x, int64_t rows, int64_t n, int64_t pitch,          \
                            const void *cv, double p, void *out)                            \
    {                                                                                       \
        K##_##F##_rowsk((const T *)x, rows, n, pitch, (const T *)cv, (T)p, (T *)out);       \
    }                                                                                       \
    static void K##_##F##_b(const void *x, int64_t n, const void *c, double p, slot *o)     \
    {                                                                                       \
        o->v.F = K##_##F##_blk((const T *)x, n, c != NULL ? *(const T *)c : (T)0, (T)p);    \
        o->idx = 0;                                                                         \
    }                                                                                       \
    static void K##_##F##_c(void *acc, int64_t *ai, const void *x, int64_t m, int64_t rows, \
                            int64_t pitch, const void *cv, double p, int64_t row)           \
    {                                                                                       \
        (void)ai, (void)row;                                                                \
        K##_##F##_colk((T *)acc, (const T *)x, m, rows, pitch, (const T *)cv, (T)p);        \
    }                                                                                       \
    static void K##_##F##_i(void *acc, int64_t *ai, int64_t m)                              \
    {                                                                                       \
        (void)ai;                                                                           \
        for (int64_t j = 0; j < m; j++) {                                                   \
            ((T *)acc)[j] = IDENT;                                                          \
        }                                                                                   \
    }                                                                                       \
    static void K##_##F##_s(slot *a, const slot *b) { a->v.F = COMB(a->v.F, b->v.F); }     \
    static void K##_##F##_v(void *a, int64_t *ai, const void *b, const int64_t *bi,         \
                            int64_t m)                                                      \
    {                                                                                       \
        (void)ai, (void)bi;                                                                 \
        T *x = a;                                                                           \
        const T *y = b;                                                                     \
        for (int64_t j = 0; j < m; j++) {                                                   \
            x[j] = COMB(x[j], y[j]);                                                        \
        }                                                                                   \
    }

/* v replaces the best so far b (strictly better: the first occurrence stays) */
#define FBETTER_MAX(v, b) (((v) > (b)) | (((v) != (v)) & ((b) == (b))))
#define FBETTER_MIN(v, b) (((v) < (b)) | (((v) != (v)) & ((b) == (b))))
#define IBETTER_MAX(v, b) ((v) > (b))
#define IBETTER_MIN(v, b) ((v) < (b))

/*
 * argmax / argmin.  A block is reduced to its max (the vectorised loop,
 * NaN winning), then searched for the first element equal to it (or the
 * first NaN) while it is still in L1.  The column loop keeps each output's
 * best value and the first row that reached it; -1 marks "nothing yet".
 */
#define ARG(K, T, F, EXT, BETTER)                                                           \
    static PF_CLONES void K##_##F##_ablk(const T *x, int64_t n, T *bv, int64_t *bi)         \
    {                                                                                       \
        T m = EXT##_##F##_blk(x, n, 0, 0);                                                  \
        int isn = m != m;                                                                   \
        for (int64_t i0 = 0; i0 < n; i0 += 64) {                                            \
            int64_t e = n - i0 < 64 ? n : i0 + 64;                                          \
            int hit = 0;                                                                    \
            if (isn) {                                                                      \
                for (int64_t i = i0; i < e; i++) {                                          \
                    hit |= x[i] != x[i];                                                    \
                }                                                                           \
            }                                                                               \
            else {                                                                          \
                for (int64_t i = i0; i < e; i++) {                                          \
                    hit |= x[i] == m;                                                       \
                }                                                                           \
            }                                                                               \
            for (int64_t i = i0; hit && i < e; i++) {                                       \
                if (isn ? x[i] != x[i] : x[i] == m) {                                       \
                    *bv = x[i];                                                             \
                    *bi = i;                                                                \
                    return;                                                                 \
                }                                                                           \
            }                                                                               \
        }                                                                                   \
        *bv = m;                                                                            \
        *bi = 0;                                                                            \
    }                                                                                       \
    static PF_CLONES void K##_##F##_acol(T *restrict bv, int64_t *restrict bi,              \
                                         const T *restrict x, int64_t m, int64_t rows,      \
                                         int64_t pitch, int64_t row0)                       \
    {                                                                                       \
        for (int64_t r = 0; r < rows; r++) {                                                \
            const T *xr = x + r * pitch;                                                    \
            for (int64_t j = 0; j < m; j++) {                                               \
                T v = xr[j];                                                                \
                int take = (bi[j] < 0) | BETTER(v, bv[j]);                                  \
                bv[j] = take ? v : bv[j];                                                   \
                bi[j] = take ? row0 + r : bi[j];                                            \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
    static void K##_##F##_b(const void *x, int64_t n, const void *c, double p, slot *o)     \
    {                                                                                       \
        (void)c, (void)p;                                                                   \
        K##_##F##_ablk((const T *)x, n, &o->v.F, &o->idx);                                  \
    }                                                                                       \
    static void K##_##F##_c(void *acc, int64_t *ai, const void *x, int64_t m, int64_t rows, \
                            int64_t pitch, const void *cv, double p, int64_t row)           \
    {                                                                                       \
        (void)cv, (void)p;                                                                  \
        K##_##F##_acol((T *)acc, ai, (const T *)x, m, rows, pitch, row);                    \
    }                                                                                       \
    static void K##_##F##_i(void *acc, int64_t *ai, int64_t m)                              \
    {                                                                                       \
        for (int64_t j = 0; j < m; j++) {                                                   \
            ((T *)acc)[j] = 0;                                                              \
            ai[j] = -1;                                                                     \
        }                                                                                   \
    }                                                                                       \
    static void K##_##F##_s(slot *a, const slot *b)                                         \
    {                                                                                       \
        if (b->idx >= 0 && (a->idx < 0 || BETTER(b->v.F, a->v.F))) {                        \
            *a = *b;                                                                        \
        }                                                                                   \
    }                                                                                       \
    static void K##_##F##_v(void *a, int64_t *ai, const void *b, const int64_t *bi,         \
                            int64_t m)                                                      \
    {                                                                                       \
        T *x = a;                                                                           \
        const T *y = b;                                                                     \
        for (int64_t j = 0; j < m; j++) {                                                   \
            if (bi[j] >= 0 && (ai[j] < 0 || BETTER(y[j], x[j]))) {                          \
                x[j] = y[j];                                                                \
                ai[j] = bi[j];                                                              \
            }                                                                               \
        }                                                                                   \
    }

/* float32: 64 lanes (8 AVX2 or 4 AVX-512 registers of independent sums) */
RED(sum, float, f32, 64, 0.0f, ID, ADD)
RED(prod, float, f32, 64, 1.0f, ID, MUL)
RED(max, float, f32, 64, -INFINITY, ID, FMAX)
RED(min, float, f32, 64, INFINITY, ID, FMIN)
RED(all, float, f32, 64, 1.0f, NZ, IMIN)
RED(any, float, f32, 64, 0.0f, NZ, IMAX)
RED(sumabs, float, f32, 64, 0.0f, ABSF, ADD)
RED(sumsq, float, f32, 64, 0.0f, SQ, ADD)
RED(maxabs, float, f32, 64, -INFINITY, ABSF, FMAX)
RED(minabs, float, f32, 64, INFINITY, ABSF, FMIN)
RED(nnz, float, f32, 64, 0.0f, NZ, ADD)
RED(sumpow, float, f32, 64, 0.0f, POWF, ADD)
RED(sumsqdev, float, f32, 64, 0.0f, SQDEV, ADD)
RED(sumexp, float, f32, 64, 0.0f, EXPF, ADD)
ARG(argmax, float, f32, max, FBETTER_MAX)
ARG(argmin, float, f32, min, FBETTER_MIN)

RED(sum, double, f64, 32, 0.0, ID, ADD)
RED(prod, double, f64, 32, 1.0, ID, MUL)
RED(max, double, f64, 32, -INFINITY, ID, FMAX)
RED(min, double, f64, 32, INFINITY, ID, FMIN)
RED(all, double, f64, 32, 1.0, NZ, IMIN)
RED(any, double, f64, 32, 0.0, NZ, IMAX)
RED(sumabs, double, f64, 32, 0.0, ABSD, ADD)
RED(sumsq, double, f64, 32, 0.0, SQ, ADD)
RED(maxabs, double, f64, 32, -INFINITY, ABSD, FMAX)
RED(minabs, double, f64, 32, INFINITY, ABSD, FMIN)
RED(nnz, double, f64, 32, 0.0, NZ, ADD)
RED(sumpow, double, f64, 32, 0.0, POWD, ADD)
RED(sumsqdev, double, f64, 32, 0.0, SQDEV, ADD)
RED(sumexp, double, f64, 32, 0.0, EXPD, ADD)
ARG(argmax, double, f64, max, FBETTER_MAX)
ARG(argmin, double, f64, min, FBETTER_MIN)

RED(sum, int64_t, i64, 32, 0, ID, WADD)
RED(prod, int64_t, i64, 32, 1, ID, WMUL)
RED(max, int64_t, i64, 32, INT64_MIN, ID, IMAX)
RED(min, int64_t, i64, 32, INT64_MAX, ID, IMIN)
RED(all, int64_t, i64, 32, 1, NZ, IMIN)
RED(any, int64_t, i64, 32, 0, NZ, IMAX)
ARG(argmax, int64_t, i64, max, IBETTER_MAX)
ARG(argmin, int64_t, i64, min, IBETTER_MIN)

#define FNS(K, F) {K##_##F##_b, K##_##F##_c, K##_##F##_i, K##_##F##_s, K##_##F##_v, K##_##F##_r}
#define AFNS(K, F) {K##_##F##_b, K##_##F##_c, K##_##F##_i, K##_##F##_s, K##_##F##_v, NULL}
#define FNS3(K) {FNS(K, f32), FNS(K, f64), FNS(K, i64)}
#define FNS2(K) {FNS(K, f32), FNS(K, f64), {NULL, NULL, NULL, NULL, NULL, NULL}}

/* [kind][float32, float64, int64]; the float-only kinds never see int64 */
static const rk_fns kernels[PF_RK_COUNT][3] = {
    [PF_RK_SUM] = FNS3(sum),
    [PF_RK_PROD] = FNS3(prod),
    [PF_RK_MAX] = FNS3(max),
    [PF_RK_MIN] = FNS3(min),
    [PF_RK_ALL] = FNS3(all),
    [PF_RK_ANY] = FNS3(any),
    [PF_RK_SUMABS] = FNS2(sumabs),
    [PF_RK_SUMSQ] = FNS2(sumsq),
    [PF_RK_MAXABS] = FNS2(maxabs),
    [PF_RK_MINABS] = FNS2(minabs),
    [PF_RK_NNZ] = FNS2(nnz),
    [PF_RK_SUMPOW] = FNS2(sumpow),
    [PF_RK_SUMSQDEV] = FNS2(sumsqdev),
    [PF_RK_SUMEXP] = FNS2(sumexp),
    [PF_RK_ARGMAX] = {AFNS(argmax, f32), AFNS(argmax, f64), AFNS(argmax, i64)},
    [PF_RK_ARGMIN] = {AFNS(argmin, f32), AFNS(argmin, f64), AFNS(argmin, i64)},
};

static int comp_index(pf_dtype d)
{
    return d == PF_FLOAT32 ? 0 : d == PF_FLOAT64 ? 1 : 2;
}

/* ------------------------------------------------------------ geometry */

static void push_dim(int *nd, int64_t *shape, int64_t *stride, int64_t sz, int64_t st)
{
    if (sz == 1) {
        return;
    }
    /* row-major order is kept: the previous dimension steps over this one exactly */
    if (*nd > 0 && stride[*nd - 1] == st * sz) {
        shape[*nd - 1] *= sz;
        stride[*nd - 1] = st;
        return;
    }
    shape[*nd] = sz;
    stride[*nd] = st;
    (*nd)++;
}

void pf_rgeom_build(pf_rgeom *g, const PfTensor *x, const int *mask)
{
    g->base = pf_tensor_data(x);
    g->dtype = x->dtype;
    g->knd = g->rnd = 0;
    g->outer = g->n = 1;
    for (int d = 0; d < x->ndim; d++) {
        if (mask[d]) {
            g->n *= x->shape[d];
            push_dim(&g->rnd, g->rshape, g->rstride, x->shape[d], x->strides[d]);
        }
        else {
            g->outer *= x->shape[d];
            push_dim(&g->knd, g->kshape, g->kstride, x->shape[d], x->strides[d]);
        }
    }
    if (g->rnd == 0) {
        g->rshape[0] = 1;
        g->rstride[0] = 0;
        g->rnd = 1;
    }
    if (g->knd == 0) {
        g->kshape[0] = 1;
        g->kstride[0] = 0;
        g->knd = 1;
    }
}

/* element offset of row-major position r of (nd, shape, stride) */
static int64_t flat_offset(int64_t r, int nd, const int64_t *shape, const int64_t *stride)
{
    int64_t off = 0;
    for (int d = nd - 1; d >= 0; d--) {
        off += (r % shape[d]) * stride[d];
        r /= shape[d];
    }
    return off;
}

/*
 * Positions [lo, lo + len) of the reduced region at `base` as `len`
 * contiguous values of `comp`: in place when they are, else gathered and
 * converted into buf (room for len values of 8 bytes).
 */
static const char *block_ptr(const pf_rgeom *g, const char *base, pf_dtype comp, int64_t lo,
                             int64_t len, char *buf)
{
    int nd = g->rnd;
    int64_t isz = pf_dtypes[g->dtype].itemsize, csz = pf_dtypes[comp].itemsize;
    int64_t last = g->rshape[nd - 1], st = g->rstride[nd - 1];
    int64_t idx[PF_MAX_DIMS];
    int64_t rem = lo;
    for (int d = nd - 1; d >= 0; d--) {
        idx[d] = rem % g->rshape[d];
        rem /= g->rshape[d];
    }
    int same = g->dtype == comp && st == 1;
    if (same && idx[nd - 1] + len <= last) {
        int64_t off = 0;
        for (int d = 0; d < nd; d++) {
            off += idx[d] * g->rstride[d];
        }
        return base + off * isz;
    }
    pf_loop cast = pf_cast_loops[g->dtype][comp];
    int64_t done = 0;
    while (done < len) {
        int64_t off = 0;
        for (int d = 0; d < nd; d++) {
            off += idx[d] * g->rstride[d];
        }
        int64_t cnt = last - idx[nd - 1];
        cnt = cnt < len - done ? cnt : len - done;
        if (same) {
            memcpy(buf + done * csz, base + off * isz, (size_t)(cnt * csz));
        }
        else {
            char *args[2] = {(char *)base + off * isz, buf + done * csz};
            int64_t cst[2] = {st * isz, csz};
            cast(args, cst, cnt, NULL);
        }
        done += cnt;
        idx[nd - 1] = 0;
        for (int d = nd - 2; d >= 0; d--) {
            if (++idx[d] < g->rshape[d]) {
                break;
            }
            idx[d] = 0;
        }
    }
    return buf;
}

/* fold s[0..nb) pairwise, in position order, into s[0] */
static void combine_tree(const rk_fns *k, slot *s, int64_t nb)
{
    for (int64_t w = 1; w < nb; w *= 2) {
        for (int64_t i = 0; i + w < nb; i += 2 * w) {
            k->comb(&s[i], &s[i + w]);
        }
    }
}

/* a multi-index over (nd, shape) stepped forward by one */
static void step_index(int64_t *idx, int nd, const int64_t *shape)
{
    for (int d = nd - 1; d >= 0; d--) {
        if (++idx[d] < shape[d]) {
            return;
        }
        idx[d] = 0;
    }
}

static void start_index(int64_t *idx, int64_t r, int nd, const int64_t *shape)
{
    for (int d = nd - 1; d >= 0; d--) {
        idx[d] = r % shape[d];
        r /= shape[d];
    }
}

static int64_t index_offset(const int64_t *idx, int nd, const int64_t *stride)
{
    int64_t off = 0;
    for (int d = 0; d < nd; d++) {
        off += idx[d] * stride[d];
    }
    return off;
}

/*
 * Work split into ranges: fn(ctx, lo, hi, t) runs on `count` items in
 * contiguous static ranges, one per thread, or once on the caller when
 * `par` is 0 -- an OpenMP region costs hundreds of nanoseconds even with
 * if(0), which is most of a small reduction.
 */
typedef void (*range_fn)(void *ctx, int64_t lo, int64_t hi, int t);

static void split(int64_t count, int par, range_fn fn, void *ctx)
{
    if (!par || count <= 1) {
        fn(ctx, 0, count, 0);
        return;
    }
    int nth = pf_get_num_threads();
    if ((int64_t)nth > count) {
        nth = (int)count;      /* thread ids stay below count: per-thread buffers need no more */
    }
    #pragma omp parallel num_threads(nth)
    {
        int t = THREAD_ID(), nt = THREAD_COUNT();
        int64_t lo = count * t / nt, hi = count * (t + 1) / nt;
        if (lo < hi) {
            fn(ctx, lo, hi, t);
        }
    }
}

/* partial slots: on the stack when few, else from the heap */
#define STACK_SLOTS 64

static slot *slots_get(int64_t n, slot *stack)
{
    if (n <= STACK_SLOTS) {
        return stack;
    }
    slot *s = malloc(sizeof(slot) * (size_t)n);
    if (s == NULL) {
        PyErr_NoMemory();
    }
    return s;
}

static void slots_put(slot *s, slot *stack)
{
    if (s != stack) {
        free(s);
    }
}

/* ------------------------------------------------------------ row path */

typedef struct {
    const pf_rgeom *g;
    const rk_fns *k;
    pf_dtype comp;
    int64_t csz, isz;
    double p;
    const char *center;
    char *out;
    int64_t *idx;
    int arg;
    int direct;         /* the region is one contiguous run of comp: no gathering */
    int64_t nb;         /* blocks per output */
    slot *parts;        /* nb slots per thread, or nb for the output being split */
    const char *base;   /* by-block split: the output's region and center */
    const void *c;
} row_job;

static void row_block(const row_job *J, const char *base, const void *c, int64_t b, slot *dst,
                      char *buf)
{
    int64_t lo = b * BLK;
    int64_t len = J->g->n - lo < BLK ? J->g->n - lo : BLK;
    const char *ptr = J->direct ? base + lo * J->isz : block_ptr(J->g, base, J->comp, lo, len, buf);
    J->k->blk(ptr, len, c, J->p, dst);
    if (J->arg) {
        dst->idx += lo;
    }
}

static void row_store(const row_job *J, int64_t o, const slot *s)
{
    memcpy(J->out + o * J->csz, &s->v, (size_t)J->csz);
    if (J->arg) {
        J->idx[o] = s->idx;
    }
}

/* outputs [lo, hi), one after the other, with thread t's slots */
static void row_range(void *ctx, int64_t lo, int64_t hi, int t)
{
    const row_job *J = ctx;
    const pf_rgeom *g = J->g;
    slot *parts = J->parts + (int64_t)t * J->nb;
    _Alignas(64) char buf[BLK * 8];
    int64_t ki[PF_MAX_DIMS];
    start_index(ki, lo, g->knd, g->kshape);
    for (int64_t o = lo; o < hi; o++) {
        const char *base = g->base + index_offset(ki, g->knd, g->kstride) * J->isz;
        const void *c = J->center != NULL ? J->center + o * J->csz : NULL;
        for (int64_t b = 0; b < J->nb; b++) {
            row_block(J, base, c, b, &parts[b], buf);
        }
        combine_tree(J->k, parts, J->nb);
        row_store(J, o, &parts[0]);
        step_index(ki, g->knd, g->kshape);
    }
}

/* blocks [lo, hi) of one output */
static void row_blocks(void *ctx, int64_t lo, int64_t hi, int t)
{
    const row_job *J = ctx;
    _Alignas(64) char buf[BLK * 8];
    (void)t;
    for (int64_t b = lo; b < hi; b++) {
        row_block(J, J->base, J->c, b, &J->parts[b], buf);
    }
}

/* many short contiguous rows: one kernel call per range instead of one per output */
static void row_short(void *ctx, int64_t lo, int64_t hi, int t)
{
    const row_job *J = ctx;
    const pf_rgeom *g = J->g;
    (void)t;
    J->k->rows(g->base + lo * g->kstride[0] * J->isz, hi - lo, g->n, g->kstride[0],
               J->center != NULL ? J->center + lo * J->csz : NULL, J->p, J->out + lo * J->csz);
}

static int run_rows(row_job *J)
{
    const pf_rgeom *g = J->g;
    int nth = pf_get_num_threads();
    int par = nth > 1 && g->outer * g->n >= PF_GRAIN;
    if (!par) {
        nth = 1;
    }
    if (J->direct && J->k->rows != NULL && g->n < 32 && g->knd == 1) {
        split(g->outer, par, row_short, J);
        return 0;
    }
    /* few big outputs: the threads share each output's blocks instead */
    int by_block = par && J->nb > 1 && g->outer < 4 * (int64_t)nth;
    int64_t users = g->outer < nth ? g->outer : nth;
    slot stack[STACK_SLOTS];
    slot *parts = slots_get(J->nb * (by_block ? 1 : users), stack);
    if (parts == NULL) {
        return -1;
    }
    J->parts = parts;
    if (by_block) {
        int64_t ki[PF_MAX_DIMS];
        start_index(ki, 0, g->knd, g->kshape);
        for (int64_t o = 0; o < g->outer; o++) {
            J->base = g->base + index_offset(ki, g->knd, g->kstride) * J->isz;
            J->c = J->center != NULL ? J->center + o * J->csz : NULL;
            split(J->nb, 1, row_blocks, J);
            combine_tree(J->k, parts, J->nb);
            row_store(J, o, &parts[0]);
            step_index(ki, g->knd, g->kshape);
        }
    }
    else {
        split(g->outer, par, row_range, J);
    }
    slots_put(parts, stack);
    return 0;
}

/* --------------------------------------------------------- column path */

typedef struct {
    const pf_rgeom *g;
    const rk_fns *k;
    pf_dtype comp;
    double p;
    const char *center;
    char *vals;         /* nchunk partial rows of outer values */
    int64_t *ids;
    int arg;
    int64_t m, outer, nstrip, nchunk, crows, csz, isz;
    int64_t w;          /* folding: the distance between partner chunks */
    int64_t npiece;
} col_job;

#define PIECE 4096      /* outputs per folding task */

/* tasks (o2, strip, chunk) in [lo, hi) */
static void col_tasks(void *ctx, int64_t lo, int64_t hi, int t)
{
    const col_job *J = ctx;
    const pf_rgeom *g = J->g;
    int knd = g->knd, rnd = g->rnd;
    int64_t m = J->m, csz = J->csz, isz = J->isz;
    int64_t rlast = g->rshape[rnd - 1], rpitch = g->rstride[rnd - 1];
    int convert = g->dtype != J->comp;
    pf_loop cast = pf_cast_loops[g->dtype][J->comp];
    _Alignas(64) char buf[STRIP * 8];
    (void)t;
    for (int64_t task = lo; task < hi; task++) {
        int64_t c = task % J->nchunk, s = (task / J->nchunk) % J->nstrip;
        int64_t o2 = task / (J->nchunk * J->nstrip);
        int64_t col0 = s * STRIP;
        int64_t w = m - col0 < STRIP ? m - col0 : STRIP;
        int64_t o = o2 * m + col0;
        char *acc = J->vals + (c * J->outer + o) * csz;
        int64_t *ai = J->arg ? J->ids + c * J->outer + o : NULL;
        const char *cv = J->center != NULL ? J->center + o * csz : NULL;
        const char *base = g->base + (flat_offset(o2, knd - 1, g->kshape, g->kstride) + col0) * isz;
        int64_t r = c * J->crows, r1 = r + J->crows < g->n ? r + J->crows : g->n;
        int64_t ri[PF_MAX_DIMS];
        start_index(ri, r, rnd, g->rshape);
        J->k->init(acc, ai, w);
        while (r < r1) {
            /* a run of rows along the innermost reduced dimension goes in one call */
            const char *ptr = base + index_offset(ri, rnd, g->rstride) * isz;
            int64_t run = rlast - ri[rnd - 1];
            run = run < r1 - r ? run : r1 - r;
            if (convert) {
                char *args[2] = {(char *)ptr, buf};
                int64_t cst[2] = {isz, csz};
                cast(args, cst, w, NULL);
                ptr = buf;
                run = 1;
            }
            J->k->col(acc, ai, ptr, w, run, rpitch, cv, J->p, r);
            r += run;
            ri[rnd - 1] += run - 1;
            step_index(ri, rnd, g->rshape);
        }
    }
}

/* folding tasks (pair, piece) in [lo, hi) at distance J->w */
static void col_fold(void *ctx, int64_t lo, int64_t hi, int t)
{
    const col_job *J = ctx;
    int64_t outer = J->outer, csz = J->csz;
    (void)t;
    for (int64_t task = lo; task < hi; task++) {
        int64_t i = (task / J->npiece) * 2 * J->w, q = (task % J->npiece) * PIECE;
        int64_t len = outer - q < PIECE ? outer - q : PIECE;
        int64_t a = i * outer + q, b = (i + J->w) * outer + q;
        J->k->vcomb(J->vals + a * csz, J->arg ? J->ids + a : NULL, J->vals + b * csz,
                    J->arg ? J->ids + b : NULL, len);
    }
}

static int run_cols(const pf_rgeom *g, const rk_fns *k, pf_dtype comp, double p,
                    const char *center, char *out, int64_t *idx, int arg)
{
    col_job J = {g, k, comp, p, center, out, idx, arg, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    J.m = g->kshape[g->knd - 1];
    J.outer = g->outer;
    J.nstrip = (J.m + STRIP - 1) / STRIP;
    /* narrow rows: longer chunks, so that a task's fixed costs are spread over ~BLK elements */
    J.crows = BLK / J.m > CROWS ? BLK / J.m : CROWS;
    J.nchunk = (g->n + J.crows - 1) / J.crows;
    J.csz = pf_dtypes[comp].itemsize;
    J.isz = pf_dtypes[g->dtype].itemsize;
    if (J.nchunk > 1) {
        J.vals = malloc((size_t)(J.nchunk * J.outer * J.csz));
        J.ids = arg ? malloc(sizeof(int64_t) * (size_t)(J.nchunk * J.outer)) : NULL;
        if (J.vals == NULL || (arg && J.ids == NULL)) {
            free(J.vals);
            free(J.ids);
            PyErr_NoMemory();
            return -1;
        }
    }
    int par = pf_get_num_threads() > 1 && g->outer * g->n >= PF_GRAIN;
    split(J.outer / J.m * J.nstrip * J.nchunk, par, col_tasks, &J);
    if (J.nchunk > 1) {
        /*
         * Fold the chunks' partial rows pairwise, in chunk order.  This is
         * 1/crows of the work and stays on one thread: a parallel region per
         * level costs more than it saves, most of all on a busy machine.
         */
        J.npiece = (J.outer + PIECE - 1) / PIECE;
        for (J.w = 1; J.w < J.nchunk; J.w *= 2) {
            int64_t npair = (J.nchunk - J.w + 2 * J.w - 1) / (2 * J.w);
            col_fold(&J, 0, npair * J.npiece, 0);
        }
        memcpy(out, J.vals, (size_t)(J.outer * J.csz));
        if (arg) {
            memcpy(idx, J.ids, sizeof(int64_t) * (size_t)J.outer);
        }
        free(J.vals);
        free(J.ids);
    }
    return 0;
}

int pf_reduce_run(const pf_rgeom *g, pf_rkind kind, pf_dtype comp, double p, const void *center,
                  void *out, int64_t *idx, const char *op)
{
    (void)op;
    if (g->outer == 0 || g->n == 0) {
        return 0;
    }
    const rk_fns *k = &kernels[kind][comp_index(comp)];
    int arg = kind == PF_RK_ARGMAX || kind == PF_RK_ARGMIN;
    if (k->blk == NULL) {
        return PF_ERRI(PyExc_RuntimeError, "%s: internal error: no reduction loop for %s", op,
                       pf_dtypes[comp].name);
    }
    if (g->kstride[g->knd - 1] == 1 && g->kshape[g->knd - 1] >= COLMIN &&
        g->rstride[g->rnd - 1] != 1) {
        return run_cols(g, k, comp, p, center, out, idx, arg);
    }
    int direct = g->rnd == 1 && g->rstride[0] == 1 && g->dtype == comp;
    row_job J = {g, k, comp, pf_dtypes[comp].itemsize, pf_dtypes[g->dtype].itemsize, p, center,
                 out, idx, arg, direct, (g->n + BLK - 1) / BLK, NULL, NULL, NULL};
    return run_rows(&J);
}

/* ------------------------------------------------------------ finishing */

#define FINISH(T, SQRT, POW, LOG)                                                           \
    {                                                                                       \
        T *x = v;                                                                           \
        const T *c = aux;                                                                   \
        switch (f) {                                                                        \
        case PF_RF_SCALE:                                                                   \
            for (int64_t i = 0; i < count; i++) {                                           \
                x[i] = (T)((double)x[i] / a);                                               \
            }                                                                               \
            break;                                                                          \
        case PF_RF_SQRT:                                                                    \
            for (int64_t i = 0; i < count; i++) {                                           \
                x[i] = SQRT(x[i]);                                                          \
            }                                                                               \
            break;                                                                          \
        case PF_RF_SCALE_SQRT:                                                              \
            for (int64_t i = 0; i < count; i++) {                                           \
                x[i] = (T)sqrt((double)x[i] / a);                                           \
            }                                                                               \
            break;                                                                          \
        case PF_RF_ROOT:                                                                    \
            for (int64_t i = 0; i < count; i++) {                                           \
                x[i] = POW(x[i], (T)(1.0 / a));                                             \
            }                                                                               \
            break;                                                                          \
        case PF_RF_CENTER:                                                                  \
            for (int64_t i = 0; i < count; i++) {                                           \
                x[i] = isfinite(x[i]) ? x[i] : (T)0;                                        \
            }                                                                               \
            break;                                                                          \
        case PF_RF_LOG_ADD:                                                                 \
            for (int64_t i = 0; i < count; i++) {                                           \
                x[i] = LOG(x[i]) + c[i];                                                    \
            }                                                                               \
            break;                                                                          \
        }                                                                                   \
    }

void pf_reduce_finish(pf_rfinish f, pf_dtype comp, void *v, const void *aux, int64_t count,
                      double a)
{
    if (comp == PF_FLOAT32) {
        FINISH(float, sqrtf, powf, logf)
    }
    else {
        FINISH(double, sqrt, pow, log)
    }
}

/* ------------------------------------------------------------ softmax */

/*
 * A row is done in three passes over its blocks: the max m; the sum s of
 * exp(x - m) (softmax stores those exponentials in y on the way); then
 * y *= 1 / s, or y = (x - m) - log s.  Sums fold per block and then
 * pairwise, as the reductions do.
 */
#define SOFTMAX(F, T, L, EXP, LOG)                                                          \
    static PF_CLONES T sm_expstore_##F(const T *x, T *y, int64_t n, T m)                    \
    {                                                                                       \
        T acc[L];                                                                           \
        for (int j = 0; j < L; j++) {                                                       \
            acc[j] = 0;                                                                     \
        }                                                                                   \
        int64_t i = 0;                                                                      \
        for (; i + L <= n; i += L) {                                                        \
            for (int j = 0; j < L; j++) {                                                   \
                T e = EXP(x[i + j] - m);                                                    \
                y[i + j] = e;                                                               \
                acc[j] += e;                                                                \
            }                                                                               \
        }                                                                                   \
        T tail = 0;                                                                         \
        for (; i < n; i++) {                                                                \
            T e = EXP(x[i] - m);                                                            \
            y[i] = e;                                                                       \
            tail += e;                                                                      \
        }                                                                                   \
        for (int w = L / 2; w > 0; w /= 2) {                                                \
            for (int j = 0; j < w; j++) {                                                   \
                acc[j] += acc[j + w];                                                       \
            }                                                                               \
        }                                                                                   \
        return acc[0] + tail;                                                               \
    }                                                                                       \
    static PF_CLONES void sm_scale_##F(T *y, int64_t n, T inv)                              \
    {                                                                                       \
        for (int64_t i = 0; i < n; i++) {                                                   \
            y[i] *= inv;                                                                    \
        }                                                                                   \
    }                                                                                       \
    static PF_CLONES void sm_logout_##F(const T *x, T *y, int64_t n, T m, T ls)             \
    {                                                                                       \
        for (int64_t i = 0; i < n; i++) {                                                   \
            y[i] = (x[i] - m) - ls;                                                         \
        }                                                                                   \
    }                                                                                       \
    /* pass 0: max of block b; 1: its exp-sum; 2: its output */                             \
    static void sm_block_##F(const T *x, T *y, int64_t n, int64_t b, int pass, int is_log,  \
                             T m, T s, slot *part)                                          \
    {                                                                                       \
        int64_t lo = b * BLK, len = n - lo < BLK ? n - lo : BLK;                            \
        if (pass == 0) {                                                                    \
            part->v.F = max_##F##_blk(x + lo, len, 0, 0);                                   \
        }                                                                                   \
        else if (pass == 1) {                                                               \
            part->v.F = is_log ? sumexp_##F##_blk(x + lo, len, m, 0)                        \
                               : sm_expstore_##F(x + lo, y + lo, len, m);                   \
        }                                                                                   \
        else if (is_log) {                                                                  \
            sm_logout_##F(x + lo, y + lo, len, m, LOG(s));                                  \
        }                                                                                   \
        else {                                                                              \
            sm_scale_##F(y + lo, len, (T)1 / s);                                            \
        }                                                                                   \
    }

SOFTMAX(f32, float, 64, pf_expf, logf)
SOFTMAX(f64, double, 32, exp, log)

/*
 * Softmax along a strided axis: a strip of w adjacent outputs (contiguous,
 * row pitch `pitch`) walks the n rows three times, vectorised across the
 * strip.  Each column's max and sum run in row order (the sum in chunks of
 * CROWS rows), whatever the strip width or thread.
 */
#define SMCOL(F, T, EXP, LOG)                                                               \
    static PF_CLONES void smc_max_##F(T *restrict m, const T *restrict x, int64_t w)        \
    {                                                                                       \
        for (int64_t j = 0; j < w; j++) {                                                   \
            m[j] = FMAX(m[j], x[j]);                                                        \
        }                                                                                   \
    }                                                                                       \
    static PF_CLONES void smc_exp_##F(T *restrict s, T *y, const T *x, const T *restrict m, \
                                      int64_t w, int store)                                 \
    {                                                                                       \
        if (store) {                                                                        \
            for (int64_t j = 0; j < w; j++) {                                               \
                T e = EXP(x[j] - m[j]);                                                     \
                y[j] = e;                                                                   \
                s[j] += e;                                                                  \
            }                                                                               \
        }                                                                                   \
        else {                                                                              \
            for (int64_t j = 0; j < w; j++) {                                               \
                s[j] += EXP(x[j] - m[j]);                                                   \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
    static PF_CLONES void smc_out_##F(T *y, const T *x, const T *restrict m,                \
                                      const T *restrict f, int64_t w, int is_log)           \
    {                                                                                       \
        if (is_log) {                                                                       \
            for (int64_t j = 0; j < w; j++) {                                               \
                y[j] = (x[j] - m[j]) - f[j];                                                \
            }                                                                               \
        }                                                                                   \
        else {                                                                              \
            for (int64_t j = 0; j < w; j++) {                                               \
                y[j] *= f[j];                                                               \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
    static void smc_task_##F(const T *x, T *y, int64_t n, int64_t pitch, int64_t w,         \
                             int is_log)                                                    \
    {                                                                                       \
        _Alignas(64) T m[STRIP];                                                            \
        _Alignas(64) T s[STRIP];                                                            \
        _Alignas(64) T part[STRIP];                                                         \
        for (int64_t j = 0; j < w; j++) {                                                   \
            m[j] = -INFINITY;                                                               \
            s[j] = 0;                                                                       \
        }                                                                                   \
        for (int64_t r = 0; r < n; r++) {                                                   \
            smc_max_##F(m, x + r * pitch, w);                                               \
        }                                                                                   \
        for (int64_t r0 = 0; r0 < n; r0 += CROWS) {                                         \
            int64_t r1 = n - r0 < CROWS ? n : r0 + CROWS;                                   \
            for (int64_t j = 0; j < w; j++) {                                               \
                part[j] = 0;                                                                \
            }                                                                               \
            for (int64_t r = r0; r < r1; r++) {                                             \
                smc_exp_##F(part, y + r * pitch, x + r * pitch, m, w, !is_log);             \
            }                                                                               \
            for (int64_t j = 0; j < w; j++) {                                               \
                s[j] += part[j];                                                            \
            }                                                                               \
        }                                                                                   \
        for (int64_t j = 0; j < w; j++) {                                                   \
            s[j] = is_log ? LOG(s[j]) : (T)1 / s[j];                                        \
        }                                                                                   \
        for (int64_t r = 0; r < n; r++) {                                                   \
            smc_out_##F(y + r * pitch, x + r * pitch, m, s, w, is_log);                     \
        }                                                                                   \
    }

SMCOL(f32, float, pf_expf, logf)
SMCOL(f64, double, exp, log)

static void sm_block(pf_dtype comp, const void *x, void *y, int64_t n, int64_t b, int pass,
                     int is_log, const slot *ms, slot *part)
{
    if (comp == PF_FLOAT32) {
        sm_block_f32(x, y, n, b, pass, is_log, ms[0].v.f32, ms[1].v.f32, part);
    }
    else {
        sm_block_f64(x, y, n, b, pass, is_log, ms[0].v.f64, ms[1].v.f64, part);
    }
}

/* one row, serially; parts has room for nb slots */
static void sm_row(pf_dtype comp, const char *x, char *y, int64_t n, int64_t nb, int is_log,
                   slot *parts)
{
    const rk_fns *kmax = &kernels[PF_RK_MAX][comp_index(comp)];
    const rk_fns *ksum = &kernels[PF_RK_SUM][comp_index(comp)];
    slot ms[2] = {{{0}, 0}, {{0}, 0}};
    for (int pass = 0; pass < 3; pass++) {
        for (int64_t b = 0; b < nb; b++) {
            sm_block(comp, x, y, n, b, pass, is_log, ms, &parts[b]);
        }
        if (pass < 2) {
            combine_tree(pass == 0 ? kmax : ksum, parts, nb);
            ms[pass] = parts[0];
        }
    }
}

typedef struct {
    const char *x;
    char *y;
    int64_t n, post, nb, csz, nstrip;
    pf_dtype comp;
    int is_log, pass;
    slot *parts;
    slot ms[2];         /* by-block split: the row's max and sum so far */
} sm_job;

/* rows [lo, hi) with thread t's slots */
static void sm_rows(void *ctx, int64_t lo, int64_t hi, int t)
{
    const sm_job *J = ctx;
    for (int64_t r = lo; r < hi; r++) {
        sm_row(J->comp, J->x + r * J->n * J->csz, J->y + r * J->n * J->csz, J->n, J->nb,
               J->is_log, J->parts + (int64_t)t * J->nb);
    }
}

/* blocks [lo, hi) of one row (J->x, J->y), pass J->pass */
static void sm_blocks(void *ctx, int64_t lo, int64_t hi, int t)
{
    const sm_job *J = ctx;
    (void)t;
    for (int64_t b = lo; b < hi; b++) {
        sm_block(J->comp, J->x, J->y, J->n, b, J->pass, J->is_log, J->ms, &J->parts[b]);
    }
}

/* strip tasks (pre index, strip) in [lo, hi) of the column softmax */
static void sm_strips(void *ctx, int64_t lo, int64_t hi, int t)
{
    const sm_job *J = ctx;
    (void)t;
    for (int64_t task = lo; task < hi; task++) {
        int64_t p = task / J->nstrip, col0 = (task % J->nstrip) * STRIP;
        int64_t w = J->post - col0 < STRIP ? J->post - col0 : STRIP;
        int64_t at = (p * J->n * J->post + col0) * J->csz;
        if (J->comp == PF_FLOAT32) {
            smc_task_f32((const float *)(J->x + at), (float *)(J->y + at), J->n, J->post, w,
                         J->is_log);
        }
        else {
            smc_task_f64((const double *)(J->x + at), (double *)(J->y + at), J->n, J->post, w,
                         J->is_log);
        }
    }
}

int pf_softmax(const void *x, void *y, int64_t pre, int64_t n, int64_t post, pf_dtype comp,
               int is_log, const char *op)
{
    (void)op;
    if (pre == 0 || n == 0 || post == 0) {
        return 0;
    }
    sm_job J = {x, y, n, post, (n + BLK - 1) / BLK, pf_dtypes[comp].itemsize,
                (post + STRIP - 1) / STRIP, comp, is_log, 0, NULL, {{{0}, 0}, {{0}, 0}}};
    int nth = pf_get_num_threads();
    int par = nth > 1 && pre * n * post >= PF_GRAIN;
    if (post > 1) {
        /*
         * The axis is not innermost: strips of STRIP columns walk its rows.
         * Narrower strips would keep a strip's rows in L2 across the three
         * passes, but touch a new page per row and lost more to the TLB and
         * the per-row calls than they saved (measured on 4096 x 4096).
         */
        split(pre * J.nstrip, par, sm_strips, &J);
        return 0;
    }
    if (!par) {
        nth = 1;
    }
    /* few long rows: the threads share each row's blocks, pass by pass */
    int by_block = par && J.nb > 1 && pre < 4 * (int64_t)nth;
    int64_t users = pre < nth ? pre : nth;
    slot stack[STACK_SLOTS];
    J.parts = slots_get(J.nb * (by_block ? 1 : users), stack);
    if (J.parts == NULL) {
        return -1;
    }
    if (by_block) {
        const rk_fns *kmax = &kernels[PF_RK_MAX][comp_index(comp)];
        const rk_fns *ksum = &kernels[PF_RK_SUM][comp_index(comp)];
        for (int64_t r = 0; r < pre; r++) {
            J.x = (const char *)x + r * n * J.csz;
            J.y = (char *)y + r * n * J.csz;
            for (J.pass = 0; J.pass < 3; J.pass++) {
                split(J.nb, 1, sm_blocks, &J);
                if (J.pass < 2) {
                    combine_tree(J.pass == 0 ? kmax : ksum, J.parts, J.nb);
                    J.ms[J.pass] = J.parts[0];
                }
            }
        }
    }
    else {
        split(pre, par, sm_rows, &J);
    }
    slots_put(J.parts, stack);
    return 0;
}

/* ------------------------------------------------------------ scans */

#define SCAN(F, T, OP)                                                                      \
    /* rows of width w, pitch `pitch`: y[r, :] = y[r - 1, :] op x[r, :], vectorised */      \
    static PF_CLONES void scan_rows_##F(T *y, const T *x, int64_t n, int64_t pitch,         \
                                        int64_t w)                                          \
    {                                                                                       \
        for (int64_t j = 0; j < w; j++) {                                                   \
            y[j] = x[j];                                                                    \
        }                                                                                   \
        for (int64_t r = 1; r < n; r++) {                                                   \
            const T *xr = x + r * pitch;                                                    \
            const T *yq = y + (r - 1) * pitch;                                              \
            T *yr = y + r * pitch;                                                          \
            for (int64_t j = 0; j < w; j++) {                                               \
                yr[j] = OP(yq[j], xr[j]);                                                   \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
    static void scan_line_##F(T *y, const T *x, int64_t n)                                  \
    {                                                                                       \
        T acc = x[0];                                                                       \
        y[0] = acc;                                                                         \
        for (int64_t i = 1; i < n; i++) {                                                   \
            acc = OP(acc, x[i]);                                                            \
            y[i] = acc;                                                                     \
        }                                                                                   \
    }

SCAN(sum_f32, float, ADD)
SCAN(sum_f64, double, ADD)
SCAN(sum_i64, int64_t, WADD)
SCAN(prod_f32, float, MUL)
SCAN(prod_f64, double, MUL)
SCAN(prod_i64, int64_t, WMUL)

/* one (pre index, strip) of a scan; post == 1 is a plain running sum */
static void scan_task(int ci, char *y, const char *x, int64_t n, int64_t post, int64_t w)
{
    if (post == 1) {
        switch (ci) {
        case 0: scan_line_sum_f32((float *)y, (const float *)x, n); break;
        case 1: scan_line_sum_f64((double *)y, (const double *)x, n); break;
        case 2: scan_line_sum_i64((int64_t *)y, (const int64_t *)x, n); break;
        case 3: scan_line_prod_f32((float *)y, (const float *)x, n); break;
        case 4: scan_line_prod_f64((double *)y, (const double *)x, n); break;
        default: scan_line_prod_i64((int64_t *)y, (const int64_t *)x, n); break;
        }
        return;
    }
    switch (ci) {
    case 0: scan_rows_sum_f32((float *)y, (const float *)x, n, post, w); break;
    case 1: scan_rows_sum_f64((double *)y, (const double *)x, n, post, w); break;
    case 2: scan_rows_sum_i64((int64_t *)y, (const int64_t *)x, n, post, w); break;
    case 3: scan_rows_prod_f32((float *)y, (const float *)x, n, post, w); break;
    case 4: scan_rows_prod_f64((double *)y, (const double *)x, n, post, w); break;
    default: scan_rows_prod_i64((int64_t *)y, (const int64_t *)x, n, post, w); break;
    }
}

typedef struct {
    const char *x;
    char *y;
    int64_t n, post, nstrip, csz;
    int ci;
} scan_job;

/* tasks (pre index, strip of post) in [lo, hi); positions along the axis run in order */
static void scan_tasks(void *ctx, int64_t lo, int64_t hi, int t)
{
    const scan_job *J = ctx;
    (void)t;
    for (int64_t task = lo; task < hi; task++) {
        int64_t p = task / J->nstrip, col0 = (task % J->nstrip) * STRIP;
        int64_t w = J->post - col0 < STRIP ? J->post - col0 : STRIP;
        int64_t at = (p * J->n * J->post + col0) * J->csz;
        scan_task(J->ci, J->y + at, J->x + at, J->n, J->post, w);
    }
}

void pf_scan(const void *x, void *y, int64_t pre, int64_t n, int64_t post, pf_dtype comp,
             int prod)
{
    if (pre == 0 || n == 0 || post == 0) {
        return;
    }
    scan_job J = {x, y, n, post, (post + STRIP - 1) / STRIP, pf_dtypes[comp].itemsize,
                  comp_index(comp) + (prod ? 3 : 0)};
    int par = pf_get_num_threads() > 1 && pre * n * post >= PF_GRAIN;
    split(pre * J.nstrip, par, scan_tasks, &J);
}
