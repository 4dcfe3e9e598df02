/*
 * gemm.c -- the batched matrix-product engine (gemm.h).
 *
 * float32 and float64 go to OpenBLAS (gemm, or gemv / dot for products
 * with a vector), one call per batch index, with the transposition flags
 * read off the strides so that a transposed operand is never copied.
 * Where the batch only walks down the rows of A (a stacked A times one B)
 * the whole batch is one taller GEMM.  Integers (and bool, as 0/1 values)
 * run pyframe's own loops with wrapping 64-bit arithmetic.  bfloat16 products
 * (A and B bfloat16, C float32) have their own kernels in gemm_bf16.c.
 *
 * Threads: OpenBLAS's own threads split a big product.  A batch of many
 * products is split over pyframe's threads instead, one whole GEMM per
 * batch index, with OpenBLAS switched to one thread for the duration so
 * that the two pools never run at once (measured: 2x on two cores for
 * batches of 16^3 to 64^3 products, 7x for 32 products of 128x64x128,
 * where OpenBLAS's per-call thread hand-off dominated).  pyframe's threads
 * also split the integer loops.
 */
#include "gemm.h"
#include <cblas.h>
#include <limits.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(PYFRAME_SANITIZE)
/* 64-bit integer multiplies vectorise only with AVX-512DQ (vpmullq) */
#define PF_INT_CLONES __attribute__((target_clones("default", "avx2", "arch=skylake-avx512")))
#else
#define PF_INT_CLONES
#endif

/* Multiply-adds below which the integer loops stay on one thread. */
#define INT_GRAIN (1 << 16)
/* Multiply-adds below which a batch of float products stays on one thread. */
#define BATCH_GRAIN (1 << 15)
/* Multiply-adds from which OpenBLAS spreads one product over its threads (64^3). */
#define BLAS_THREADED_WORK (1 << 18)

/* ------------------------------------------------------------- layouts */

/* Leading dimension if the matrix is row-major with contiguous rows, else -1. */
static int64_t rowmajor_ld(int64_t rows, int64_t cols, int64_t rs, int64_t cs)
{
    int64_t need = cols > 1 ? cols : 1;
    if (cols > 1 && cs != 1) {
        return -1;
    }
    if (rows <= 1) {
        return need;    /* one row: its stride is never used */
    }
    return rs >= need && rs <= INT_MAX ? rs : -1;
}

int pf_gemm_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs, int *trans, int *ld)
{
    int64_t l = rowmajor_ld(rows, cols, rs, cs);
    if (l > 0) {
        *trans = 0;
        *ld = (int)l;
        return 1;
    }
    /* column-major is the row-major layout of the transpose */
    l = rowmajor_ld(cols, rows, cs, rs);
    if (l > 0) {
        *trans = 1;
        *ld = (int)l;
        return 1;
    }
    return 0;
}

/* --------------------------------------------------- integer row loops */

/*
 * One row of C: c[j] = sum_p a[p] * b[p, j], in uint64_t so that overflow
 * wraps instead of being undefined.  With the rows of B and C contiguous,
 * a block of IB columns of C is held in registers across the whole sum
 * (vectorised), so C is written once instead of once per p.
 */
#define IB 32
static PF_INT_CLONES void int_row_contig(const int64_t *a, int64_t acs, const int64_t *b,
                                         int64_t brs, int64_t *restrict c, int64_t n, int64_t k)
{
    int64_t j0 = 0;
    for (; j0 + IB <= n; j0 += IB) {
        uint64_t acc[IB] = {0};
        for (int64_t p = 0; p < k; p++) {
            uint64_t av = (uint64_t)a[p * acs];
            const uint64_t *br = (const uint64_t *)(b + p * brs + j0);
            for (int jj = 0; jj < IB; jj++) {
                acc[jj] += av * br[jj];
            }
        }
        for (int jj = 0; jj < IB; jj++) {
            c[j0 + jj] = (int64_t)acc[jj];
        }
    }
    for (int64_t j = j0; j < n; j++) {
        uint64_t s = 0;
        for (int64_t p = 0; p < k; p++) {
            s += (uint64_t)a[p * acs] * (uint64_t)b[p * brs + j];
        }
        c[j] = (int64_t)s;
    }
}

static void int_row(const int64_t *a, int64_t acs, const int64_t *b, int64_t brs, int64_t bcs,
                    int64_t *c, int64_t ccs, int64_t n, int64_t k)
{
    if (bcs == 1 && ccs == 1) {
        int_row_contig(a, acs, b, brs, c, n, k);
        return;
    }
    for (int64_t j = 0; j < n; j++) {
        uint64_t s = 0;
        for (int64_t p = 0; p < k; p++) {
            s += (uint64_t)a[p * acs] * (uint64_t)b[p * brs + j * bcs];
        }
        c[j * ccs] = (int64_t)s;
    }
}

void pf_gemm_batch_offsets(const pf_gemm *g, int64_t bi, int64_t *oa, int64_t *ob, int64_t *oc)
{
    int64_t a = 0, b = 0, c = 0;
    for (int d = g->nb - 1; d >= 0; d--) {
        int64_t i = bi % g->bshape[d];
        bi /= g->bshape[d];
        a += i * g->a.bstrides[d];
        b += i * g->b.bstrides[d];
        c += i * g->c.bstrides[d];
    }
    *oa = a;
    *ob = b;
    *oc = c;
}

static void run_int(const pf_gemm *g, int64_t nbatch)
{
    const int64_t m = g->m, n = g->n, k = g->k;
    const int64_t rows = nbatch * m;
    const int64_t *A = (const int64_t *)g->a.data, *B = (const int64_t *)g->b.data;
    int64_t *C = (int64_t *)g->c.data;
    int nth = pf_get_num_threads();
    int par = nth > 1 && rows > 1 && (double)rows * (double)n * (double)(k + 1) > INT_GRAIN;
    (void)nth;
    (void)par;
    #pragma omp parallel for num_threads(nth) if (par) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t oa, ob, oc, i = r % m;
        pf_gemm_batch_offsets(g, r / m, &oa, &ob, &oc);
        int_row(A + oa + i * g->a.rs, g->a.cs, B + ob, g->b.rs, g->b.cs, C + oc + i * g->c.rs,
                g->c.cs, n, k);
    }
}

/* ------------------------------------------------------------ floats */

static void zero_float(const pf_gemm *g, int64_t nbatch)
{
    int64_t isz = pf_dtypes[g->dtype].itemsize;
    for (int64_t bi = 0; bi < nbatch; bi++) {
        int64_t oa, ob, oc;
        pf_gemm_batch_offsets(g, bi, &oa, &ob, &oc);
        for (int64_t i = 0; i < g->m; i++) {
            char *row = g->c.data + (oc + i * g->c.rs) * isz;
            for (int64_t j = 0; j < g->n; j++) {
                memset(row + j * g->c.cs * isz, 0, (size_t)isz);
            }
        }
    }
}

/*
 * One product through OpenBLAS.  A matrix-vector product goes to gemv and
 * an inner product to dot: this OpenBLAS runs gemm with n == 1 or m == 1
 * up to ten times slower than gemv.  A vector's element stride follows
 * from its layout: along a transposed (column-major) operand's rows, or a
 * row-major one's columns, it is 1, else the leading dimension.
 */
static void blas_call(pf_dtype dt, int ta, int tb, int64_t m, int64_t n, int64_t k, const char *a,
                      int lda, const char *b, int ldb, char *c, int ldc)
{
    enum CBLAS_TRANSPOSE fa = ta ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE fb = tb ? CblasTrans : CblasNoTrans;
    int f32 = dt == PF_FLOAT32;
    if (m == 1 && n == 1) {
        int inca = ta ? lda : 1, incb = tb ? 1 : ldb;
        if (f32) {
            *(float *)c = scipy_cblas_sdot((blasint)k, (const float *)a, inca, (const float *)b,
                                           incb);
        }
        else {
            *(double *)c = scipy_cblas_ddot((blasint)k, (const double *)a, inca,
                                            (const double *)b, incb);
        }
        return;
    }
    if (n == 1 || m == 1) {
        /* y = A x (n == 1), or y = B^T x (m == 1) with B's storage read either way */
        const char *mat = n == 1 ? a : b, *x = n == 1 ? b : a;
        int ld = n == 1 ? lda : ldb;
        int rowmajor = n == 1 ? !ta : tb;   /* is the stored matrix the one to apply? */
        int64_t rows = n == 1 ? m : n, cols = k;
        int incx = n == 1 ? (tb ? 1 : ldb) : (ta ? lda : 1);
        int incy = n == 1 ? ldc : 1;
        enum CBLAS_TRANSPOSE t = rowmajor ? CblasNoTrans : CblasTrans;
        blasint M = (blasint)(rowmajor ? rows : cols), N = (blasint)(rowmajor ? cols : rows);
        if (f32) {
            scipy_cblas_sgemv(CblasRowMajor, t, M, N, 1.0f, (const float *)mat, ld,
                              (const float *)x, incx, 0.0f, (float *)c, incy);
        }
        else {
            scipy_cblas_dgemv(CblasRowMajor, t, M, N, 1.0, (const double *)mat, ld,
                              (const double *)x, incx, 0.0, (double *)c, incy);
        }
        return;
    }
    if (f32) {
        scipy_cblas_sgemm(CblasRowMajor, fa, fb, (blasint)m, (blasint)n, (blasint)k, 1.0f,
                          (const float *)a, lda, (const float *)b, ldb, 0.0f, (float *)c, ldc);
    }
    else {
        scipy_cblas_dgemm(CblasRowMajor, fa, fb, (blasint)m, (blasint)n, (blasint)k, 1.0,
                          (const double *)a, lda, (const double *)b, ldb, 0.0, (double *)c, ldc);
    }
}

int pf_gemm_stacked_rows(const pf_gemm *g, const pf_gemm_mat *x, int64_t *rows, int64_t *rs)
{
    int64_t st = 0, sz = 1;
    int have = 0;
    if (g->m > 1) {
        st = x->rs;
        sz = g->m;
        have = 1;
    }
    for (int d = g->nb - 1; d >= 0; d--) {
        if (g->bshape[d] == 1) {
            continue;
        }
        if (!have) {
            st = x->bstrides[d];
            sz = g->bshape[d];
            have = 1;
            continue;
        }
        if (x->bstrides[d] != st * sz) {
            return 0;
        }
        sz *= g->bshape[d];
    }
    *rows = sz;
    *rs = st;
    return have;
}

static int try_fold(const pf_gemm *g, int64_t nbatch, int tb, int ldb)
{
    if (nbatch <= 1) {
        return 0;
    }
    for (int d = 0; d < g->nb; d++) {
        if (g->bshape[d] > 1 && g->b.bstrides[d] != 0) {
            return 0;
        }
    }
    int64_t rows, rsa, rowsc, rsc;
    if (!pf_gemm_stacked_rows(g, &g->a, &rows, &rsa) ||
        !pf_gemm_stacked_rows(g, &g->c, &rowsc, &rsc) ||
        rows > PF_GEMM_MAX_DIM) {
        return 0;
    }
    int64_t lda = rowmajor_ld(rows, g->k, rsa, g->a.cs);
    int64_t ldc = rowmajor_ld(rows, g->n, rsc, g->c.cs);
    if (lda < 0 || ldc < 0) {
        return 0;
    }
    blas_call(g->dtype, 0, tb, rows, g->n, g->k, g->a.data, (int)lda, g->b.data, ldb, g->c.data,
              (int)ldc);
    return 1;
}

/*
 * How many threads split a batch of float products (1: none, the loop
 * stays on the calling thread and OpenBLAS threads each product).  Ours
 * win when there are at least as many products as threads, or when each
 * product is below the size OpenBLAS itself would spread over threads.
 */
static int batch_threads(const pf_gemm *g, int64_t nbatch)
{
    int nth = pf_get_num_threads();
    double per = (double)g->m * (double)g->n * (double)g->k;
    if (nth <= 1 || nbatch < 2 || per * (double)nbatch < BATCH_GRAIN) {
        return 1;
    }
    if (nbatch < nth) {
        return per >= BLAS_THREADED_WORK ? 1 : (int)nbatch;
    }
    return nth;
}

static void run_float(const pf_gemm *g, int64_t nbatch)
{
    int ta, tb, tc, lda, ldb, ldc;
    /* the caller guarantees these layouts; C is row-major here */
    if (!pf_gemm_layout(g->m, g->k, g->a.rs, g->a.cs, &ta, &lda) ||
        !pf_gemm_layout(g->k, g->n, g->b.rs, g->b.cs, &tb, &ldb) ||
        !pf_gemm_layout(g->m, g->n, g->c.rs, g->c.cs, &tc, &ldc) || tc) {
        return;
    }
    if (try_fold(g, nbatch, tb, ldb)) {
        return;
    }
    int64_t isz = pf_dtypes[g->dtype].itemsize;
    int nth = batch_threads(g, nbatch);
    if (nth > 1) {
        /*
         * Many products of moderate size: our threads split the batch and
         * each runs whole GEMMs.  OpenBLAS's own threads are switched off
         * meanwhile, so every call runs single-threaded in the thread that
         * makes it and the two pools never compete for the cores.
         */
        scipy_openblas_set_num_threads(1);
        #pragma omp parallel for num_threads(nth) schedule(static)
        for (int64_t bi = 0; bi < nbatch; bi++) {
            int64_t oa, ob, oc;
            pf_gemm_batch_offsets(g, bi, &oa, &ob, &oc);
            blas_call(g->dtype, ta, tb, g->m, g->n, g->k, g->a.data + oa * isz, lda,
                      g->b.data + ob * isz, ldb, g->c.data + oc * isz, ldc);
        }
        scipy_openblas_set_num_threads(pf_get_num_threads());
        return;
    }
    int64_t idx[PF_MAX_DIMS] = {0};
    const char *pa = g->a.data, *pb = g->b.data;
    char *pc = g->c.data;
    for (int64_t bi = 0; bi < nbatch; bi++) {
        blas_call(g->dtype, ta, tb, g->m, g->n, g->k, pa, lda, pb, ldb, pc, ldc);
        /* step the batch multi-index, carrying into outer dimensions */
        for (int d = g->nb - 1; d >= 0; d--) {
            if (++idx[d] < g->bshape[d]) {
                pa += g->a.bstrides[d] * isz;
                pb += g->b.bstrides[d] * isz;
                pc += g->c.bstrides[d] * isz;
                break;
            }
            pa -= (g->bshape[d] - 1) * g->a.bstrides[d] * isz;
            pb -= (g->bshape[d] - 1) * g->b.bstrides[d] * isz;
            pc -= (g->bshape[d] - 1) * g->c.bstrides[d] * isz;
            idx[d] = 0;
        }
    }
}

void pf_gemm_transpose(const pf_gemm *g, pf_gemm *t)
{
    *t = *g;
    t->m = g->n;
    t->n = g->m;
    t->a = g->b;
    t->b = g->a;
    t->a.rs = g->b.cs;
    t->a.cs = g->b.rs;
    t->b.rs = g->a.cs;
    t->b.cs = g->a.rs;
    t->c.rs = g->c.cs;
    t->c.cs = g->c.rs;
}

int64_t pf_gemm_run(const pf_gemm *g)
{
    if (g->dtype == PF_BFLOAT16) {
        return pf_gemm_bf16_run(g);
    }
    int64_t nbatch = pf_numel(g->bshape, g->nb);
    if (nbatch == 0 || g->m == 0 || g->n == 0) {
        return 0;
    }
    if (g->dtype == PF_INT64) {
        run_int(g, nbatch);     /* k == 0 writes zeros there */
        return 0;
    }
    if (g->k == 0) {
        zero_float(g, nbatch);
        return 0;
    }
    if (rowmajor_ld(g->m, g->n, g->c.rs, g->c.cs) < 0) {
        pf_gemm t;
        pf_gemm_transpose(g, &t);
        run_float(&t, nbatch);
        return 0;
    }
    run_float(g, nbatch);
    return 0;
}
