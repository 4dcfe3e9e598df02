/*
 * conv.c -- convolution kernels (conv.h): the forward product, the input
 * gradient (transposed convolution) and the weight gradient, each as
 * im2col + OpenBLAS GEMM.
 *
 * Two paths, chosen by the caller from the input's layout:
 *
 * - rows (channels-last input, NHWC memory): the output pixels of the
 *   whole batch are one flattened range, cut into chunks whose im2col
 *   block (one row per pixel, taps x channels long) fits in L2.  Each
 *   chunk is one GEMM per group, (pixels x K) (K x O/groups), written
 *   straight into the NHWC output; a channels-last input's rows are
 *   contiguous runs of channels, so im2col is a run of memcpy-like copies
 *   and the input itself is never copied as a whole.
 * - cols (any other layout, NCHW included): per image (and range of its
 *   pixels), the classic channel-major im2col (one row per channel and
 *   tap, pixels along it) and one GEMM per group, (O/groups x K) (K x
 *   pixels), written straight into the NCHW output.
 *
 * A 1x1 convolution with stride 1 and no padding reads the input (and
 * writes the input gradient) in place as the GEMM operand: a plain GEMM
 * with no im2col, in either layout, whenever BLAS can read the view.
 *
 * Threads: with work enough for more than one thread the chunks are split
 * over pyframe's OpenMP threads, each running whole single-threaded GEMMs
 * on its own scratch (OpenBLAS is switched to one thread for the duration,
 * so the two pools never run at once).  The input gradient scatters into
 * overlapping windows, so its threads split whole images; with fewer
 * images than threads it runs the chunks in order and lets OpenBLAS thread
 * each GEMM instead.  The weight gradient sums per-thread partial products
 * in thread order at the end.
 */
#include "conv.h"
#include "gemm.h"
#include <cblas.h>
#include <limits.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Target bytes of one im2col chunk: it and its GEMM's output stay in L2. */
#define COL_BYTES (384 * 1024)
/* Multiply-adds below which a convolution stays on one thread. */
#define PAR_WORK (1 << 18)

typedef struct cinfo cinfo;

/* The typed loops of conv_loops.h, one table per element type. */
typedef struct {
    void (*im2col_rows)(const cinfo *, const pf_nd4 *, int64_t, int64_t, char *);
    void (*col2im_rows)(const cinfo *, const char *, int64_t, int64_t, const pf_nd4 *);
    void (*im2col_cols)(const cinfo *, const pf_nd4 *, int64_t, int64_t, int64_t, char *);
    void (*col2im_cols)(const cinfo *, const char *, int64_t, int64_t, int64_t, const pf_nd4 *);
    void (*pack_pixels)(const pf_nd4 *, int64_t, int64_t, int64_t, int64_t, int64_t, int,
                        char *);
    void (*pack_weight)(const cinfo *, const pf_nd4 *, int, char *);
    void (*unpack_weight_rows)(const cinfo *, const char *, char *);
    void (*bias_rows)(char *, int64_t, int64_t, const char *, int64_t);
    void (*bias_cols)(char *, int64_t, int64_t, int64_t, const char *, int64_t);
    void (*add_into)(char *, const char *, int64_t);
} conv_loops;

/* Sizes derived once from the geometry. */
struct cinfo {
    const pf_conv_geom *g;
    pf_dtype dt;
    const conv_loops *L;
    int64_t isz;
    int64_t cg, og;         /* channels per group, in and out */
    int64_t kg, K;          /* im2col columns per group (KH*KW*cg) and in all */
    int64_t P, NP;          /* output pixels per image and in the batch */
    int pointwise;          /* 1x1, stride 1, no padding: the input is its own im2col */
};

#define T float
#define TS f32
#include "conv_loops.h"
#undef T
#undef TS
#define T double
#define TS f64
#include "conv_loops.h"
#undef T
#undef TS

static void info_init(cinfo *ci, const pf_conv_geom *g, pf_dtype dt)
{
    ci->g = g;
    ci->dt = dt;
    ci->L = dt == PF_FLOAT32 ? &conv_loops_f32 : &conv_loops_f64;
    ci->isz = pf_dtypes[dt].itemsize;
    ci->cg = g->c / g->groups;
    ci->og = g->o / g->groups;
    ci->kg = g->kh * g->kw * ci->cg;
    ci->K = ci->kg * g->groups;
    ci->P = g->oh * g->ow;
    ci->NP = g->n * ci->P;
    ci->pointwise = g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 &&
                    g->pw == 0 && g->oh == g->h && g->ow == g->w;
}

void pf_conv_out_strides(const int64_t *shape, int channels_last, int64_t *s)
{
    if (channels_last) {
        s[1] = 1;
        s[3] = shape[1];
        s[2] = shape[3] * shape[1];
        s[0] = shape[2] * s[2];
    }
    else {
        s[3] = 1;
        s[2] = shape[3];
        s[1] = shape[2] * shape[3];
        s[0] = shape[1] * s[1];
    }
}

/* ------------------------------------------------------------- matrices */

/* A matrix operand: element pointer and strides of its rows and columns. */
typedef struct {
    char *p;
    int64_t rs, cs;
} mat;

static mat mat_t(mat m)
{
    return (mat){m.p, m.cs, m.rs};
}

static mat mat_at(mat m, int64_t isz, int64_t r, int64_t c)
{
    return (mat){m.p + (r * m.rs + c * m.cs) * isz, m.rs, m.cs};
}

/*
 * C (m x n, row-major, leading dimension ldc) = A (m x k) B (k x n), or
 * C += A B when accumulate.  A and B must be readable by BLAS as they lie
 * (pf_gemm_layout): every caller passes contiguous scratch or a view it
 * checked with pixel_view.
 */
static void mm(pf_dtype dt, int64_t m, int64_t n, int64_t k, mat a, mat b, int accumulate,
               char *c, int64_t ldc)
{
    int ta, tb, lda, ldb;
    if (m == 0 || n == 0) {
        return;
    }
    if (!pf_gemm_layout(m, k, a.rs, a.cs, &ta, &lda) ||
        !pf_gemm_layout(k, n, b.rs, b.cs, &tb, &ldb)) {
        return;     /* unreachable: the callers only pass readable operands */
    }
    enum CBLAS_TRANSPOSE fa = ta ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE fb = tb ? CblasTrans : CblasNoTrans;
    if (dt == PF_FLOAT32) {
        scipy_cblas_sgemm(CblasRowMajor, fa, fb, (blasint)m, (blasint)n, (blasint)k, 1.0f,
                          (const float *)a.p, lda, (const float *)b.p, ldb,
                          accumulate ? 1.0f : 0.0f, (float *)c, (blasint)ldc);
    }
    else {
        scipy_cblas_dgemm(CblasRowMajor, fa, fb, (blasint)m, (blasint)n, (blasint)k, 1.0,
                          (const double *)a.p, lda, (const double *)b.p, ldb,
                          accumulate ? 1.0 : 0.0, (double *)c, (blasint)ldc);
    }
}

/*
 * Pixels [p0, p1) of the flattened (n, h, w) space of t (N, C, H, W) as a
 * (p1 - p0) x C matrix without copying: possible when stepping from one
 * pixel to the next moves by the same stride over the whole range (rows of
 * an image, and images, follow each other evenly) and BLAS can read the
 * result.  Returns 1 and sets *m, else 0.
 */
static int pixel_view(const pf_nd4 *t, int64_t isz, int64_t C, int64_t H, int64_t W,
                      int64_t p0, int64_t p1, mat *m)
{
    int64_t P = H * W, sn = t->s[0], sh = t->s[2], sw = t->s[3];
    /* the stride of a size-1 dimension is never used: give it the even value */
    if (W == 1) {
        sw = sh;
    }
    if (H == 1) {
        sh = W * sw;
    }
    if (P == 1) {
        sw = sh = sn;
    }
    if ((p0 / W != (p1 - 1) / W && sh != W * sw) || (p0 / P != (p1 - 1) / P && sn != H * sh)) {
        return 0;
    }
    int64_t n = p0 / P, h = p0 % P / W, w = p0 % W;
    int ta, ld;
    *m = (mat){t->data + (n * t->s[0] + h * t->s[2] + w * t->s[3]) * isz, sw, t->s[1]};
    return pf_gemm_layout(p1 - p0, C, m->rs, m->cs, &ta, &ld);
}

/* The pixels [p0, p1) of t as a matrix: a view when possible, else packed into buf. */
static mat pixel_operand(const cinfo *ci, const pf_nd4 *t, int64_t C, int64_t H, int64_t W,
                         int64_t p0, int64_t p1, int pixel_major, char *buf)
{
    mat m;
    if (pixel_view(t, ci->isz, C, H, W, p0, p1, &m)) {
        return m;
    }
    ci->L->pack_pixels(t, C, H, W, p0, p1, pixel_major, buf);
    return pixel_major ? (mat){buf, C, 1} : (mat){buf, 1, p1 - p0};
}

/* ------------------------------------------------------------- threads */

/* Threads for `units` independent pieces of `work` multiply-adds in all (1: none). */
static int threads_for(double work, int64_t units)
{
    int nth = pf_get_num_threads();
    if (nth <= 1 || units < 2 || work < PAR_WORK) {
        return 1;
    }
    return units < nth ? (int)units : nth;
}

static int thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Rows per chunk of a pixel-major im2col with K columns, split further for nth threads. */
static int64_t chunk_rows(int64_t K, int64_t isz, int64_t total, int nth)
{
    int64_t r = COL_BYTES / (K * isz);
    if (r < 32) {
        r = 32;     /* GEMMs thinner than this waste more than the cache saves */
    }
    if (nth > 1 && r * nth > total) {
        r = (total + nth - 1) / nth;
    }
    return r < 1 ? 1 : r;
}

static void *scratch(size_t bytes)
{
    size_t b = bytes < PF_ALIGN ? PF_ALIGN : (bytes + PF_ALIGN - 1) / PF_ALIGN * PF_ALIGN;
    return aligned_alloc(PF_ALIGN, b);
}

/* Run body(ctx, unit) for every unit, over nth OpenMP threads with single-threaded BLAS. */
typedef void (*unit_fn)(void *ctx, int64_t unit, int tid);

static void run_units(unit_fn body, void *ctx, int64_t units, int nth)
{
    if (nth <= 1) {
        for (int64_t u = 0; u < units; u++) {
            body(ctx, u, 0);
        }
        return;
    }
    scipy_openblas_set_num_threads(1);
    #pragma omp parallel for num_threads(nth) schedule(static)
    for (int64_t u = 0; u < units; u++) {
        body(ctx, u, thread_id());
    }
    scipy_openblas_set_num_threads(pf_get_num_threads());
}

/* ------------------------------------------------------------- forward */

typedef struct {
    const cinfo *ci;
    const pf_nd4 *x, *y;
    const char *wp;         /* packed weight */
    const char *bias;
    int64_t bstride;
    int64_t chunk;          /* pixels per unit */
    char *scr;              /* per-thread scratch, scr_each bytes apart */
    size_t scr_each;
} fwd_job;

/* rows: unit u is pixels [u*chunk, ...) of the batch */
static void fwd_rows_unit(void *vjob, int64_t u, int tid)
{
    const fwd_job *jb = vjob;
    const cinfo *ci = jb->ci;
    const pf_conv_geom *g = ci->g;
    int64_t isz = ci->isz, p0 = u * jb->chunk;
    int64_t p1 = p0 + jb->chunk < ci->NP ? p0 + jb->chunk : ci->NP;
    char *buf = jb->scr + (size_t)tid * jb->scr_each;
    mat a;
    if (!(ci->pointwise && pixel_view(jb->x, isz, g->c, g->h, g->w, p0, p1, &a))) {
        ci->L->im2col_rows(ci, jb->x, p0, p1, buf);
        a = (mat){buf, ci->K, 1};
    }
    char *yc = jb->y->data + p0 * g->o * isz;
    for (int64_t gr = 0; gr < g->groups; gr++) {
        mat w = {(char *)jb->wp + gr * ci->kg * ci->og * isz, ci->og, 1};
        mm(ci->dt, p1 - p0, ci->og, ci->kg, mat_at(a, isz, 0, gr * ci->kg), w, 0,
           yc + gr * ci->og * isz, g->o);
    }
    if (jb->bias != NULL) {
        ci->L->bias_rows(yc, p1 - p0, g->o, jb->bias, jb->bstride);
    }
}

/* cols: unit u is pixels [q0, q1) of image u / per, per = ceil(P / chunk) */
static void fwd_cols_unit(void *vjob, int64_t u, int tid)
{
    const fwd_job *jb = vjob;
    const cinfo *ci = jb->ci;
    const pf_conv_geom *g = ci->g;
    int64_t isz = ci->isz, per = (ci->P + jb->chunk - 1) / jb->chunk;
    int64_t n = u / per, q0 = u % per * jb->chunk;
    int64_t q1 = q0 + jb->chunk < ci->P ? q0 + jb->chunk : ci->P, L = q1 - q0;
    char *buf = jb->scr + (size_t)tid * jb->scr_each;
    mat b;
    if (ci->pointwise && pixel_view(jb->x, isz, g->c, g->h, g->w, n * ci->P + q0,
                                    n * ci->P + q1, &b)) {
        b = mat_t(b);   /* (C x L) */
    }
    else {
        ci->L->im2col_cols(ci, jb->x, n, q0, q1, buf);
        b = (mat){buf, L, 1};
    }
    char *yc = jb->y->data + (n * jb->y->s[0] + q0) * isz;
    for (int64_t gr = 0; gr < g->groups; gr++) {
        mat w = {(char *)jb->wp + gr * ci->og * ci->kg * isz, ci->kg, 1};
        mm(ci->dt, ci->og, L, ci->kg, w, mat_at(b, isz, gr * ci->kg, 0), 0,
           yc + gr * ci->og * ci->P * isz, ci->P);
    }
    if (jb->bias != NULL) {
        ci->L->bias_cols(yc, g->o, L, ci->P, jb->bias, jb->bstride);
    }
}

/* Is w (O, Cg, KH, KW) contiguous, so that it is its own cols-path operand? */
static int weight_contiguous(const cinfo *ci, const pf_nd4 *w)
{
    const pf_conv_geom *g = ci->g;
    int64_t kk = g->kh * g->kw;
    return (g->kw == 1 || w->s[3] == 1) && (g->kh == 1 || w->s[2] == g->kw) &&
           (ci->cg == 1 || w->s[1] == kk) && (g->o == 1 || w->s[0] == ci->kg);
}

int pf_conv_forward(const pf_conv_geom *g, pf_dtype dt, int rows, const pf_nd4 *x,
                    const pf_nd4 *w, const char *bias, int64_t bias_stride, const pf_nd4 *y)
{
    cinfo ci;
    info_init(&ci, g, dt);
    if (ci.NP == 0 || g->o == 0) {
        return 0;
    }
    double work = (double)ci.NP * (double)ci.kg * (double)g->o;
    char *wp = NULL, *scr = NULL;
    int rc = -1;
    if (rows || !weight_contiguous(&ci, w)) {
        if ((wp = scratch((size_t)(g->o * ci.kg * ci.isz))) == NULL) {
            goto done;
        }
        ci.L->pack_weight(&ci, w, rows, wp);
    }
    fwd_job jb = {&ci, x, y, wp != NULL ? wp : w->data, bias, bias_stride, 0, NULL, 0};
    int64_t units;
    int nth;
    if (rows) {
        nth = threads_for(work, ci.NP / 32);
        jb.chunk = chunk_rows(ci.K, ci.isz, ci.NP, nth);
        units = (ci.NP + jb.chunk - 1) / jb.chunk;
    }
    else {
        /* pixels of one image per unit; more units than images when the images are big */
        nth = threads_for(work, ci.NP / 32);
        int64_t c = COL_BYTES / (ci.K * ci.isz);
        c = c < 32 ? 32 : c;
        if (nth > 1 && g->n < nth) {
            int64_t split = (ci.P * g->n + nth - 1) / nth;
            c = c < split ? c : split;
        }
        jb.chunk = c < ci.P ? c : ci.P;
        units = g->n * ((ci.P + jb.chunk - 1) / jb.chunk);
    }
    nth = units < nth ? (int)units : nth;
    jb.scr_each = (size_t)(jb.chunk * ci.K * ci.isz + PF_ALIGN) / PF_ALIGN * PF_ALIGN;
    if ((scr = scratch(jb.scr_each * (size_t)nth)) == NULL) {
        goto done;
    }
    jb.scr = scr;
    run_units(rows ? fwd_rows_unit : fwd_cols_unit, &jb, units, nth);
    rc = 0;
done:
    free(wp);
    free(scr);
    return rc;
}

/* -------------------------------------------------------- input gradient */

typedef struct {
    const cinfo *ci;
    const pf_nd4 *gy, *gx;
    const char *wp;
    int64_t chunk;          /* pixels per GEMM */
    int64_t per;            /* images per unit (0: units are pixel chunks, pointwise) */
    char *scr;
    size_t scr_each;
    size_t gcol_bytes;      /* the first part of each scratch; gy packing after it */
} igrad_job;

/* rows: the gradient of pixels [p0, p1) (chunked) added into gx */
static void igrad_rows_range(const igrad_job *jb, int64_t p0, int64_t p1, char *buf)
{
    const cinfo *ci = jb->ci;
    const pf_conv_geom *g = ci->g;
    int64_t isz = ci->isz;
    for (int64_t a = p0; a < p1; a += jb->chunk) {
        int64_t b = a + jb->chunk < p1 ? a + jb->chunk : p1;
        mat gy = pixel_operand(ci, jb->gy, g->o, g->oh, g->ow, a, b, 1, buf + jb->gcol_bytes);
        char *dst = ci->pointwise ? jb->gx->data + a * g->c * isz : buf;
        int64_t ld = ci->pointwise ? g->c : ci->K;
        for (int64_t gr = 0; gr < g->groups; gr++) {
            /* packed w_g is (kg x og) row-major; its transpose is (og x kg) */
            mat wt = {(char *)jb->wp + gr * ci->kg * ci->og * isz, 1, ci->og};
            mm(ci->dt, b - a, ci->kg, ci->og, mat_at(gy, isz, 0, gr * ci->og), wt, 0,
               dst + gr * ci->kg * isz, ld);
        }
        if (!ci->pointwise) {
            ci->L->col2im_rows(ci, buf, a, b, jb->gx);
        }
    }
}

static void igrad_rows_unit(void *vjob, int64_t u, int tid)
{
    const igrad_job *jb = vjob;
    const cinfo *ci = jb->ci;
    char *buf = jb->scr + (size_t)tid * jb->scr_each;
    if (jb->per == 0) {
        int64_t p0 = u * jb->chunk, p1 = p0 + jb->chunk < ci->NP ? p0 + jb->chunk : ci->NP;
        igrad_rows_range(jb, p0, p1, buf);
        return;
    }
    int64_t n0 = u * jb->per, n1 = n0 + jb->per < ci->g->n ? n0 + jb->per : ci->g->n;
    memset(jb->gx->data + n0 * jb->gx->s[0] * ci->isz, 0,
           (size_t)((n1 - n0) * jb->gx->s[0] * ci->isz));
    igrad_rows_range(jb, n0 * ci->P, n1 * ci->P, buf);
}

/* cols: unit u is `per` whole images */
static void igrad_cols_unit(void *vjob, int64_t u, int tid)
{
    const igrad_job *jb = vjob;
    const cinfo *ci = jb->ci;
    const pf_conv_geom *g = ci->g;
    int64_t isz = ci->isz, P = ci->P;
    char *buf = jb->scr + (size_t)tid * jb->scr_each;
    int64_t n0 = u * jb->per, n1 = n0 + jb->per < g->n ? n0 + jb->per : g->n;
    for (int64_t n = n0; n < n1; n++) {
        char *gxn = jb->gx->data + n * jb->gx->s[0] * isz;
        if (!ci->pointwise) {
            memset(gxn, 0, (size_t)(jb->gx->s[0] * isz));
        }
        for (int64_t q0 = 0; q0 < P; q0 += jb->chunk) {
            int64_t q1 = q0 + jb->chunk < P ? q0 + jb->chunk : P, L = q1 - q0;
            mat gy = mat_t(pixel_operand(ci, jb->gy, g->o, g->oh, g->ow, n * P + q0, n * P + q1,
                                         0, buf + jb->gcol_bytes));   /* (O x L) */
            char *dst = ci->pointwise ? gxn + q0 * isz : buf;
            int64_t ld = ci->pointwise ? P : L;
            for (int64_t gr = 0; gr < g->groups; gr++) {
                /* w_g is (og x kg) row-major; its transpose is (kg x og) */
                mat wt = {(char *)jb->wp + gr * ci->og * ci->kg * isz, 1, ci->kg};
                mm(ci->dt, ci->kg, L, ci->og, wt, mat_at(gy, isz, gr * ci->og, 0), 0,
                   dst + gr * ci->kg * ld * isz, ld);
            }
            if (!ci->pointwise) {
                ci->L->col2im_cols(ci, buf, n, q0, q1, jb->gx);
            }
        }
    }
}

int pf_conv_input_grad(const pf_conv_geom *g, pf_dtype dt, int rows, const pf_nd4 *gy,
                       const pf_nd4 *w, const pf_nd4 *gx)
{
    cinfo ci;
    info_init(&ci, g, dt);
    if (g->n == 0 || g->c == 0) {
        return 0;
    }
    if (ci.NP == 0 || g->o == 0) {
        memset(gx->data, 0, (size_t)(g->n * gx->s[0] * ci.isz));
        return 0;
    }
    double work = (double)ci.NP * (double)ci.kg * (double)g->o;
    char *wp = NULL, *scr = NULL;
    int rc = -1;
    if (rows || !weight_contiguous(&ci, w)) {
        if ((wp = scratch((size_t)(g->o * ci.kg * ci.isz))) == NULL) {
            goto done;
        }
        ci.L->pack_weight(&ci, w, rows, wp);
    }
    igrad_job jb = {&ci, gy, gx, wp != NULL ? wp : w->data, 0, 0, NULL, 0, 0};
    int64_t units;
    int nth;
    if (rows && ci.pointwise) {
        /* every gx pixel is written by exactly one chunk: chunks are independent */
        nth = threads_for(work, ci.NP / 32);
        jb.chunk = chunk_rows(ci.K > g->o ? ci.K : g->o, ci.isz, ci.NP, nth);
        units = (ci.NP + jb.chunk - 1) / jb.chunk;
    }
    else {
        /* windows overlap: each thread owns whole images */
        nth = threads_for(work, g->n);
        jb.per = (g->n + nth - 1) / nth;
        units = (g->n + jb.per - 1) / jb.per;
        jb.chunk = chunk_rows(ci.K > g->o ? ci.K : g->o, ci.isz, rows ? ci.NP : ci.P, 1);
        if (!rows && jb.chunk > ci.P) {
            jb.chunk = ci.P;
        }
    }
    nth = units < nth ? (int)units : nth;
    jb.gcol_bytes = (size_t)(jb.chunk * ci.K * ci.isz + PF_ALIGN) / PF_ALIGN * PF_ALIGN;
    jb.scr_each = jb.gcol_bytes +
                  (size_t)(jb.chunk * g->o * ci.isz + PF_ALIGN) / PF_ALIGN * PF_ALIGN;
    if ((scr = scratch(jb.scr_each * (size_t)nth)) == NULL) {
        goto done;
    }
    jb.scr = scr;
    run_units(rows ? igrad_rows_unit : igrad_cols_unit, &jb, units, nth);
    rc = 0;
done:
    free(wp);
    free(scr);
    return rc;
}

/* ------------------------------------------------------- weight gradient */

typedef struct {
    const cinfo *ci;
    const pf_nd4 *x, *gy;
    int64_t chunk;          /* pixels per GEMM */
    int64_t units;
    int nth;
    char *part0;            /* thread 0's partial sum */
    char *parts;            /* the others', acc_each bytes apart */
    size_t acc_each;
    char *scr;
    size_t scr_each;
    size_t col_bytes;       /* the first part of each scratch; gy packing after it */
} wgrad_job;

static char *partial(const wgrad_job *jb, int64_t t)
{
    return t == 0 ? jb->part0 : jb->parts + (size_t)(t - 1) * jb->acc_each;
}

/* rows: thread t sums units t, t + nth, ... of pixel chunks into its partial (groups, og, kg) */
static void wgrad_rows_thread(void *vjob, int64_t t, int tid)
{
    const wgrad_job *jb = vjob;
    const cinfo *ci = jb->ci;
    const pf_conv_geom *g = ci->g;
    int64_t isz = ci->isz;
    char *buf = jb->scr + (size_t)tid * jb->scr_each, *acc = partial(jb, t);
    int first = 1;
    for (int64_t u = t; u < jb->units; u += jb->nth, first = 0) {
        int64_t p0 = u * jb->chunk, p1 = p0 + jb->chunk < ci->NP ? p0 + jb->chunk : ci->NP;
        mat col;
        if (!(ci->pointwise && pixel_view(jb->x, isz, g->c, g->h, g->w, p0, p1, &col))) {
            ci->L->im2col_rows(ci, jb->x, p0, p1, buf);
            col = (mat){buf, ci->K, 1};
        }
        mat gy = pixel_operand(ci, jb->gy, g->o, g->oh, g->ow, p0, p1, 1, buf + jb->col_bytes);
        for (int64_t gr = 0; gr < g->groups; gr++) {
            mm(ci->dt, ci->og, ci->kg, p1 - p0, mat_t(mat_at(gy, isz, 0, gr * ci->og)),
               mat_at(col, isz, 0, gr * ci->kg), !first,
               acc + gr * ci->og * ci->kg * isz, ci->kg);
        }
    }
}

/* cols: thread t sums units t, t + nth, ... (image, pixel range) into its partial (O, kg) */
static void wgrad_cols_thread(void *vjob, int64_t t, int tid)
{
    const wgrad_job *jb = vjob;
    const cinfo *ci = jb->ci;
    const pf_conv_geom *g = ci->g;
    int64_t isz = ci->isz, per = (ci->P + jb->chunk - 1) / jb->chunk;
    char *buf = jb->scr + (size_t)tid * jb->scr_each, *acc = partial(jb, t);
    int first = 1;
    for (int64_t u = t; u < jb->units; u += jb->nth, first = 0) {
        int64_t n = u / per, q0 = u % per * jb->chunk;
        int64_t q1 = q0 + jb->chunk < ci->P ? q0 + jb->chunk : ci->P, L = q1 - q0;
        int64_t p0 = n * ci->P + q0, p1 = n * ci->P + q1;
        mat colt;   /* (K x L) */
        if (ci->pointwise && pixel_view(jb->x, isz, g->c, g->h, g->w, p0, p1, &colt)) {
            colt = mat_t(colt);
        }
        else {
            ci->L->im2col_cols(ci, jb->x, n, q0, q1, buf);
            colt = (mat){buf, L, 1};
        }
        mat gy = mat_t(pixel_operand(ci, jb->gy, g->o, g->oh, g->ow, p0, p1, 0,
                                     buf + jb->col_bytes));    /* (O x L) */
        for (int64_t gr = 0; gr < g->groups; gr++) {
            mm(ci->dt, ci->og, ci->kg, L, mat_at(gy, isz, gr * ci->og, 0),
               mat_t(mat_at(colt, isz, gr * ci->kg, 0)), !first,
               acc + gr * ci->og * ci->kg * isz, ci->kg);
        }
    }
}

int pf_conv_weight_grad(const pf_conv_geom *g, pf_dtype dt, int rows, const pf_nd4 *x,
                        const pf_nd4 *gy, const pf_nd4 *gw)
{
    cinfo ci;
    info_init(&ci, g, dt);
    int64_t wn = g->o * ci.kg;
    size_t wbytes = (size_t)(wn * ci.isz);
    if (wbytes == 0) {
        return 0;
    }
    if (ci.NP == 0) {
        memset(gw->data, 0, wbytes);
        return 0;
    }
    double work = (double)ci.NP * (double)ci.kg * (double)g->o;
    int64_t cmax = ci.K > g->o ? ci.K : g->o;
    wgrad_job jb = {&ci, x, gy, 0, 0, 1, NULL, NULL, 0, NULL, 0, 0};
    int nth = threads_for(work, ci.NP / 32);
    if (rows) {
        jb.chunk = chunk_rows(cmax, ci.isz, ci.NP, nth);
        jb.units = (ci.NP + jb.chunk - 1) / jb.chunk;
    }
    else {
        int64_t c = chunk_rows(cmax, ci.isz, ci.NP, nth);
        jb.chunk = c < ci.P ? c : ci.P;
        jb.units = g->n * ((ci.P + jb.chunk - 1) / jb.chunk);
    }
    jb.nth = nth = jb.units < nth ? (int)jb.units : nth;
    jb.acc_each = (wbytes + PF_ALIGN - 1) / PF_ALIGN * PF_ALIGN;
    jb.col_bytes = (size_t)(jb.chunk * ci.K * ci.isz + PF_ALIGN) / PF_ALIGN * PF_ALIGN;
    jb.scr_each = jb.col_bytes + (size_t)(jb.chunk * g->o * ci.isz + PF_ALIGN) / PF_ALIGN *
                                 PF_ALIGN;
    /*
     * The cols path's partials have gw's layout, so thread 0 sums straight
     * into gw; the rows path's are (groups, og, KH*KW*cg) and are unpacked
     * at the end.
     */
    int direct = !rows;
    size_t nacc = (size_t)(direct ? nth - 1 : nth);
    char *acc = scratch(jb.acc_each * (nacc > 0 ? nacc : 1));
    char *scr = scratch(jb.scr_each * (size_t)nth);
    int rc = -1;
    if (acc == NULL || scr == NULL) {
        goto done;
    }
    jb.part0 = direct ? gw->data : acc;
    jb.parts = direct ? acc : acc + jb.acc_each;
    jb.scr = scr;
    run_units(rows ? wgrad_rows_thread : wgrad_cols_thread, &jb, nth, nth);
    for (int t = 1; t < nth; t++) {
        ci.L->add_into(jb.part0, partial(&jb, t), wn);
    }
    if (!direct) {
        ci.L->unpack_weight_rows(&ci, jb.part0, gw->data);
    }
    rc = 0;
done:
    free(acc);
    free(scr);
    return rc;
}
