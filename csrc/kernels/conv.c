/*
 * conv.c -- convolution kernels (conv.h): the forward product, the input
 * gradient (transposed convolution) and the weight gradient, each as
 * im2col + OpenBLAS GEMM, and direct loops for depthwise convolutions.
 *
 * The im2col block is pixel-major: one row per output pixel, holding the
 * window's taps x channels (order (group, i, j, c')), so that in
 * channels-last memory every tap -- and without groups or dilation every
 * row of taps -- is one contiguous run of the input.  The weight is packed
 * once per call to match ((groups, K, Og), a few KB).
 *
 * rows path (channels-last input, NHWC output): the output pixels of the
 *   whole batch are one flattened range, cut into chunks whose im2col block
 *   fits in L2.  Each chunk is one GEMM per group, (pixels x K)(K x Og),
 *   written straight into the NHWC output; the input is read in place,
 *   never copied as a whole.
 * planar path (any other layout, NCHW output): one image at a time is
 *   first packed channels-last into scratch (a transpose of C*H*W elements,
 *   small next to the im2col block it feeds), then chunked as above, and
 *   the pixel-major result is stored transposed into the NCHW output.
 * channel-major im2col (few channels, long rows: a first layer): one row
 *   per (channel, tap), the pixels of one image along it, multiplied from
 *   the side that gives either output layout.  Chosen when it copies fewer,
 *   longer runs (info_init).
 * pointwise: a 1x1 convolution with stride 1 and no padding reads the input
 *   (and writes the input gradient) in place as the GEMM operand -- a plain
 *   GEMM, no im2col and no packing -- whenever BLAS can read the view.
 * depthwise (groups == C): direct loops, no GEMM (dw_run).
 *
 * Threads: with work for more than one thread, units (pixel chunks, or
 * whole images where a unit must own its output: the input gradient
 * scatters into overlapping windows, and the planar path packs an image)
 * are split over pyframe's OpenMP threads, each running single-threaded
 * GEMMs on its own scratch (OpenBLAS is switched to one thread meanwhile,
 * so the two pools never run at once).  With fewer units than threads --
 * a batch of one or two images -- the units run in order and OpenBLAS
 * threads each GEMM instead.  The weight gradient sums one partial product
 * per thread, in thread order, at the end.
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
#define COL_BYTES (512 * 1024)
/* Multiply-adds below which a convolution stays on one thread. */
#define PAR_WORK (1 << 18)

typedef struct cinfo cinfo;

/* The typed loops of conv_loops.h, one table per element type. */
typedef struct {
    void (*im2col_rows)(const cinfo *, const pf_nd4 *, int64_t, int64_t, char *);
    void (*col2im_rows)(const cinfo *, const char *, int64_t, int64_t, const pf_nd4 *);
    void (*im2col_cols)(const cinfo *, const pf_nd4 *, int64_t, int64_t, int64_t, char *);
    void (*col2im_cols)(const cinfo *, const char *, int64_t, int64_t, int64_t, const pf_nd4 *);
    void (*pack_image)(const pf_nd4 *, int64_t, int64_t, int64_t, int64_t, char *);
    void (*unpack_image)(const char *, int64_t, int64_t, int64_t, const pf_nd4 *, int64_t);
    void (*pack_pixels)(const pf_nd4 *, int64_t, int64_t, int64_t, int64_t, int64_t, int,
                        char *);
    void (*pack_weight)(const cinfo *, const pf_nd4 *, char *);
    void (*unpack_weight_rows)(const cinfo *, const char *, char *);
    void (*bias_rows)(char *, int64_t, int64_t, const char *, int64_t);
    void (*bias_cols)(char *, int64_t, int64_t, int64_t, const char *, int64_t);
    void (*store_planar)(const char *, int64_t, int64_t, char *, int64_t, const char *, int64_t);
    void (*add_into)(char *, const char *, int64_t);
    void (*fill_rows)(char *, int64_t, int64_t, const char *, int64_t);
    void (*dw_fwd_pix)(const cinfo *, int64_t, int64_t, int64_t, const pf_nd4 *, const char *,
                       const char *, int64_t, const pf_nd4 *);
    void (*dw_igrad_pix)(const cinfo *, int64_t, int64_t, int64_t, const pf_nd4 *,
                         const char *, const pf_nd4 *);
    void (*dw_wgrad_pix)(const cinfo *, int64_t, int64_t, int64_t, const pf_nd4 *,
                         const pf_nd4 *, char *);
    void (*dw_fwd_plane)(const cinfo *, int64_t, int64_t, const pf_nd4 *, const char *,
                         const char *, int64_t, const pf_nd4 *);
    void (*dw_igrad_plane)(const cinfo *, int64_t, int64_t, const pf_nd4 *, const char *,
                           const pf_nd4 *);
    void (*dw_wgrad_plane)(const cinfo *, int64_t, int64_t, const pf_nd4 *, const pf_nd4 *,
                           char *);
    void (*dw_pack)(const cinfo *, const pf_nd4 *, char *, int);
} conv_loops;

/* Outputs per step of the depthwise loops (their stack accumulators). */
#define DW_SEG 256
/* Channels per register block of the depthwise forward (two AVX-512 vectors of float). */
#define DW_VB 32

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
    int cm;                 /* channel-major im2col (few channels, long rows) */
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
    /*
     * Both im2col orders copy the same bytes, in runs: the pixel-major one
     * KH (or KH*KW, with groups or dilation) runs of channels per output
     * pixel, the channel-major one C*KH*KW runs of one output row each.
     * Fewer, longer runs win: channel-major for a first layer (1 or 3
     * channels, long rows), pixel-major for the deep ones.
     */
    double pm = (double)ci->P * (double)g->groups * (double)g->kh *
                (g->groups == 1 && g->dw == 1 ? 1.0 : (double)g->kw);
    double cmr = (double)g->c * (double)(g->kh * g->kw) * (double)g->oh;
    ci->cm = !ci->pointwise && cmr < pm;
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

static size_t round_up(size_t b)
{
    return (b + PF_ALIGN - 1) / PF_ALIGN * PF_ALIGN;
}

/*
 * A chunk size near `chunk` that cuts `total` into a multiple of nth equal
 * pieces, so that no thread is left with one chunk more than the others.
 */
static int64_t balance(int64_t total, int64_t chunk, int nth)
{
    if (nth <= 1 || chunk <= 0) {
        return chunk;
    }
    int64_t units = (total + chunk - 1) / chunk;
    units = (units + nth - 1) / nth * nth;
    int64_t c = (total + units - 1) / units;
    return c > 0 ? c : 1;
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

/* ------------------------------------------------------------- depthwise */

/*
 * A depthwise convolution (groups == C, at most DW_SEG outputs per input
 * channel) runs as direct loops (conv_loops.h): a GEMM per group would
 * multiply (pixels x KH*KW)(KH*KW x M) products, all overhead.  Channels
 * are independent, so units are (image, block of channels) for the pixel
 * loops and (image, channel) for the plane loops, and no two units write
 * the same output, input gradient included.
 */
static int is_depthwise(const cinfo *ci)
{
    return ci->g->groups > 1 && ci->cg == 1 && ci->og <= DW_SEG;
}

enum { DW_FWD, DW_IGRAD, DW_WGRAD };

typedef struct {
    const cinfo *ci;
    int op, pix;
    int64_t cblk;           /* pix: channels per unit */
    int64_t units;
    int nth;
    const pf_nd4 *a, *b;    /* x or gy; gy for the weight gradient */
    const char *wt, *bias;
    int64_t bstride;
    const pf_nd4 *out;
    char *acc;              /* weight gradient: nth partials (KH*KW, O), acc_each bytes apart */
    size_t acc_each;
} dw_job;

static void dw_unit(const dw_job *jb, int64_t u, char *acc)
{
    const cinfo *ci = jb->ci;
    const conv_loops *L = ci->L;
    if (jb->pix) {
        int64_t per = (ci->g->c + jb->cblk - 1) / jb->cblk, n = u / per, c0 = u % per * jb->cblk;
        int64_t c1 = c0 + jb->cblk < ci->g->c ? c0 + jb->cblk : ci->g->c;
        if (jb->op == DW_FWD) {
            L->dw_fwd_pix(ci, n, c0, c1, jb->a, jb->wt, jb->bias, jb->bstride, jb->out);
        }
        else if (jb->op == DW_IGRAD) {
            L->dw_igrad_pix(ci, n, c0, c1, jb->a, jb->wt, jb->out);
        }
        else {
            L->dw_wgrad_pix(ci, n, c0, c1, jb->a, jb->b, acc);
        }
        return;
    }
    int64_t n = u / ci->g->c, c = u % ci->g->c;
    if (jb->op == DW_FWD) {
        L->dw_fwd_plane(ci, n, c, jb->a, jb->wt, jb->bias, jb->bstride, jb->out);
    }
    else if (jb->op == DW_IGRAD) {
        L->dw_igrad_plane(ci, n, c, jb->a, jb->wt, jb->out);
    }
    else {
        L->dw_wgrad_plane(ci, n, c, jb->a, jb->b, acc);
    }
}

static void dw_body(void *vjob, int64_t u, int tid)
{
    (void)tid;
    dw_unit(vjob, u, NULL);
}

/* weight gradient: thread t sums units t, t + nth, ... into partial t */
static void dw_wgrad_body(void *vjob, int64_t t, int tid)
{
    const dw_job *jb = vjob;
    char *acc = jb->acc + (size_t)t * jb->acc_each;
    (void)tid;
    memset(acc, 0, jb->acc_each);
    for (int64_t u = t; u < jb->units; u += jb->nth) {
        dw_unit(jb, u, acc);
    }
}

/*
 * op on a depthwise geometry.  a: x (forward, weight gradient) or gy
 * (input gradient); b: gy (weight gradient); w: the weight (forward, input
 * gradient) or the gradient to write (weight gradient); out: y or gx.
 */
static int dw_run(const cinfo *ci, int op, int rows, const pf_nd4 *a, const pf_nd4 *b,
                  const pf_nd4 *w, const char *bias, int64_t bstride, const pf_nd4 *out)
{
    const pf_conv_geom *g = ci->g;
    int64_t taps = g->kh * g->kw;
    size_t wbytes = (size_t)(taps * g->o * ci->isz);
    dw_job jb = {ci, op, pf_pixel_loops(rows, g->ow, g->c, g->h * g->w * ci->isz), 0, 0, 1, a,
                 b, NULL, bias, bstride, out, NULL, 0};
    jb.cblk = DW_SEG / ci->og;
    jb.units = jb.pix ? g->n * ((g->c + jb.cblk - 1) / jb.cblk) : g->n * g->c;
    double work = (double)ci->NP * (double)taps * (double)g->o;
    int nth = threads_for(work, jb.units);
    char *wt = NULL, *acc = NULL;
    int rc = -1;
    if (op == DW_WGRAD) {
        jb.nth = nth;
        jb.acc_each = round_up(wbytes);
        if ((acc = scratch(jb.acc_each * (size_t)nth)) == NULL) {
            goto done;
        }
        jb.acc = acc;
        run_units(dw_wgrad_body, &jb, nth, nth);
        for (int t = 1; t < nth; t++) {
            ci->L->add_into(acc, acc + (size_t)t * jb.acc_each, taps * g->o);
        }
        ci->L->dw_pack(ci, w, acc, -1);
        rc = 0;
        goto done;
    }
    if ((wt = scratch(wbytes)) == NULL) {
        goto done;
    }
    ci->L->dw_pack(ci, w, wt, 1);
    jb.wt = wt;
    run_units(dw_body, &jb, jb.units, nth);
    rc = 0;
done:
    free(wt);
    free(acc);
    return rc;
}

/* ------------------------------------------------------------- forward */

typedef struct {
    const cinfo *ci;
    int rows;               /* channels-last input: the rows path */
    const pf_nd4 *x, *y;
    const char *wp;         /* packed weight (groups, kg, og) */
    const char *bias;
    int64_t bstride;
    int64_t chunk;          /* pixels per GEMM */
    int64_t per;            /* input gradient, rows path: images per unit (0: pixel chunks) */
    char *scr;              /* per-thread scratch, scr_each bytes apart */
    size_t scr_each;
    size_t col_bytes;       /* the first part of each scratch; the packed image after it */
} conv_job;

/* Image n of x packed channels-last into buf, as a one-image operand. */
static pf_nd4 packed_image(const cinfo *ci, const pf_nd4 *x, int64_t n, char *buf)
{
    const pf_conv_geom *g = ci->g;
    ci->L->pack_image(x, n, g->c, g->h, g->w, buf);
    return (pf_nd4){buf, {g->h * g->w * g->c, 1, g->w * g->c, g->c}};
}

/* rows: unit u is pixels [u*chunk, ...) of the batch, written into the NHWC output */
static void fwd_rows_unit(void *vjob, int64_t u, int tid)
{
    const conv_job *jb = vjob;
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
    /*
     * With a bias the rows start as the bias and the GEMM accumulates: that
     * is one pass over them instead of two (OpenBLAS zeroes C itself when
     * it does not accumulate).
     */
    char *yc = jb->y->data + p0 * g->o * isz;
    if (jb->bias != NULL) {
        ci->L->fill_rows(yc, p1 - p0, g->o, jb->bias, jb->bstride);
    }
    for (int64_t gr = 0; gr < g->groups; gr++) {
        mat w = {(char *)jb->wp + gr * ci->kg * ci->og * isz, ci->og, 1};
        mm(ci->dt, p1 - p0, ci->og, ci->kg, mat_at(a, isz, 0, gr * ci->kg), w,
           jb->bias != NULL, yc + gr * ci->og * isz, g->o);
    }
}

/*
 * planar: unit u is image u, written into the NCHW output.  The GEMM runs
 * pixel-major, (pixels x K)(K x Og), as in the rows path -- OpenBLAS runs
 * that orientation faster than (Og x K)(K x pixels) for these thin shapes
 * -- and the block is then stored transposed, bias added on the way.
 */
static void fwd_planar_unit(void *vjob, int64_t n, int tid)
{
    const conv_job *jb = vjob;
    const cinfo *ci = jb->ci;
    const pf_conv_geom *g = ci->g;
    int64_t isz = ci->isz, P = ci->P;
    char *buf = jb->scr + (size_t)tid * jb->scr_each;
    char *out = buf + jb->col_bytes, *img_buf = out + round_up((size_t)(jb->chunk * g->o * isz));
    char *yn = jb->y->data + n * jb->y->s[0] * isz;
    mat view;
    int direct = ci->pointwise && pixel_view(jb->x, isz, g->c, g->h, g->w, n * P, (n + 1) * P,
                                             &view);
    pf_nd4 img;
    if (!direct) {
        img = packed_image(ci, jb->x, n, img_buf);
    }
    for (int64_t q0 = 0; q0 < P; q0 += jb->chunk) {
        int64_t q1 = q0 + jb->chunk < P ? q0 + jb->chunk : P, L = q1 - q0;
        mat a;      /* (L x K) */
        if (direct) {
            a = mat_at(view, isz, q0, 0);
        }
        else {
            ci->L->im2col_rows(ci, &img, q0, q1, buf);
            a = (mat){buf, ci->K, 1};
        }
        for (int64_t gr = 0; gr < g->groups; gr++) {
            mat w = {(char *)jb->wp + gr * ci->kg * ci->og * isz, ci->og, 1};
            mm(ci->dt, L, ci->og, ci->kg, mat_at(a, isz, 0, gr * ci->kg), w, 0,
               out + gr * ci->og * isz, g->o);
        }
        ci->L->store_planar(out, L, g->o, yn + q0 * isz, P, jb->bias, jb->bstride);
    }
}

/*
 * channel-major im2col: unit u is pixels [q0, q1) of image u / per.  The
 * block (K x pixels) multiplies from either side: (pixels x K)(K x Og)
 * into an NHWC output, (Og x K)(K x pixels) into an NCHW one.
 */
static void fwd_cm_unit(void *vjob, int64_t u, int tid)
{
    const conv_job *jb = vjob;
    const cinfo *ci = jb->ci;
    const pf_conv_geom *g = ci->g;
    int64_t isz = ci->isz, P = ci->P, per = (P + jb->chunk - 1) / jb->chunk;
    int64_t n = u / per, q0 = u % per * jb->chunk, q1 = q0 + jb->chunk < P ? q0 + jb->chunk : P;
    int64_t L = q1 - q0;
    char *buf = jb->scr + (size_t)tid * jb->scr_each;
    ci->L->im2col_cols(ci, jb->x, n, q0, q1, buf);
    for (int64_t gr = 0; gr < g->groups; gr++) {
        mat colt = {buf + gr * ci->kg * L * isz, L, 1};
        mat w = {(char *)jb->wp + gr * ci->kg * ci->og * isz, ci->og, 1};
        if (jb->rows) {
            mm(ci->dt, L, ci->og, ci->kg, mat_t(colt), w, 0,
               jb->y->data + ((n * P + q0) * g->o + gr * ci->og) * isz, g->o);
        }
        else {
            mm(ci->dt, ci->og, L, ci->kg, mat_t(w), colt, 0,
               jb->y->data + (n * jb->y->s[0] + gr * ci->og * P + q0) * isz, P);
        }
    }
    if (jb->bias == NULL) {
        return;
    }
    if (jb->rows) {
        ci->L->bias_rows(jb->y->data + (n * P + q0) * g->o * isz, L, g->o, jb->bias,
                         jb->bstride);
    }
    else {
        ci->L->bias_cols(jb->y->data + (n * jb->y->s[0] + q0) * isz, g->o, L, P, jb->bias,
                         jb->bstride);
    }
}

/* Pixels per im2col chunk: COL_BYTES of K-long rows, at least 32, at most `most`. */
static int64_t chunk_for(const cinfo *ci, int64_t most)
{
    int64_t r = COL_BYTES / (ci->K * ci->isz);
    r = r < 32 ? 32 : r;
    return r < most ? r : (most > 0 ? most : 1);
}

int pf_conv_forward(const pf_conv_geom *g, pf_dtype dt, int rows, const pf_nd4 *x,
                    const pf_nd4 *w, const char *bias, int64_t bias_stride, const pf_nd4 *y)
{
    cinfo ci;
    info_init(&ci, g, dt);
    if (ci.NP == 0 || g->o == 0) {
        return 0;
    }
    if (is_depthwise(&ci)) {
        return dw_run(&ci, DW_FWD, rows, x, NULL, w, bias, bias_stride, y);
    }
    double work = (double)ci.NP * (double)ci.kg * (double)g->o;
    char *wp = scratch((size_t)(g->o * ci.kg * ci.isz)), *scr = NULL;
    int rc = -1;
    if (wp == NULL) {
        goto done;
    }
    ci.L->pack_weight(&ci, w, wp);
    conv_job jb = {&ci, rows, x, y, wp, bias, bias_stride, 0, 0, NULL, 0, 0};
    int64_t units;
    int nth;
    size_t img_bytes = 0;
    unit_fn body = rows ? fwd_rows_unit : fwd_planar_unit;
    if (ci.cm) {
        nth = threads_for(work, ci.NP / 32);
        jb.chunk = chunk_for(&ci, nth > 1 && g->n < nth ? (ci.P + nth - 1) / nth : ci.P);
        units = g->n * ((ci.P + jb.chunk - 1) / jb.chunk);
        body = fwd_cm_unit;
    }
    else if (rows) {
        nth = threads_for(work, ci.NP / 32);
        jb.chunk = balance(ci.NP, chunk_for(&ci, ci.NP), nth);
        units = (ci.NP + jb.chunk - 1) / jb.chunk;
    }
    else {
        nth = threads_for(work, g->n);
        jb.chunk = chunk_for(&ci, ci.P);
        units = g->n;
        img_bytes = round_up((size_t)(jb.chunk * g->o * ci.isz)) +
                    round_up((size_t)(g->c * g->h * g->w * ci.isz));
    }
    nth = units < nth ? (int)units : nth;
    jb.col_bytes = round_up((size_t)(jb.chunk * ci.K * ci.isz));
    jb.scr_each = jb.col_bytes + img_bytes;
    if ((scr = scratch(jb.scr_each * (size_t)nth)) == NULL) {
        goto done;
    }
    jb.scr = scr;
    run_units(body, &jb, units, nth);
    rc = 0;
done:
    free(wp);
    free(scr);
    return rc;
}

/* -------------------------------------------------------- input gradient */

/*
 * The gradient of the im2col block of pixels [p0, p1) (of `src`'s pixel
 * space: the batch, or one image) from gy: gcol = gy (pixels x O) W^T,
 * per group, into buf (or, pointwise, straight into gx's pixel rows).
 */
static void gcol_chunk(const conv_job *jb, mat gy, int64_t L, char *dst, int64_t ld)
{
    const cinfo *ci = jb->ci;
    for (int64_t gr = 0; gr < ci->g->groups; gr++) {
        /* (kg x og) row-major, transposed: (og x kg) */
        mat wt = {(char *)jb->wp + gr * ci->kg * ci->og * ci->isz, 1, ci->og};
        mm(ci->dt, L, ci->kg, ci->og, mat_at(gy, ci->isz, 0, gr * ci->og), wt, 0,
           dst + gr * ci->kg * ci->isz, ld);
    }
}

/* rows: unit u is `per` whole images (0: pixel chunk u, pointwise: no window overlaps) */
static void igrad_rows_unit(void *vjob, int64_t u, int tid)
{
    const conv_job *jb = vjob;
    const cinfo *ci = jb->ci;
    const pf_conv_geom *g = ci->g;
    int64_t isz = ci->isz;
    char *buf = jb->scr + (size_t)tid * jb->scr_each;
    int64_t per = jb->per;
    int64_t p0, p1;
    if (per == 0) {
        p0 = u * jb->chunk;
        p1 = p0 + jb->chunk < ci->NP ? p0 + jb->chunk : ci->NP;
    }
    else {
        int64_t n0 = u * per, n1 = n0 + per < g->n ? n0 + per : g->n;
        memset(jb->y->data + n0 * jb->y->s[0] * isz, 0, (size_t)((n1 - n0) * jb->y->s[0] * isz));
        p0 = n0 * ci->P;
        p1 = n1 * ci->P;
    }
    for (int64_t a = p0; a < p1; a += jb->chunk) {
        int64_t b = a + jb->chunk < p1 ? a + jb->chunk : p1;
        mat gy = pixel_operand(ci, jb->x, g->o, g->oh, g->ow, a, b, 1, buf + jb->col_bytes);
        if (ci->pointwise) {
            gcol_chunk(jb, gy, b - a, jb->y->data + a * g->c * isz, g->c);
        }
        else {
            gcol_chunk(jb, gy, b - a, buf, ci->K);
            ci->L->col2im_rows(ci, buf, a, b, jb->y);
        }
    }
}

/* planar: unit u is image u: its gradient is gathered channels-last in scratch, then stored */
static void igrad_planar_unit(void *vjob, int64_t n, int tid)
{
    const conv_job *jb = vjob;
    const cinfo *ci = jb->ci;
    const pf_conv_geom *g = ci->g;
    int64_t isz = ci->isz, P = ci->P;
    char *buf = jb->scr + (size_t)tid * jb->scr_each;
    char *img = buf + jb->col_bytes + round_up((size_t)(jb->chunk * g->o * isz));
    char *gxn = jb->y->data + n * jb->y->s[0] * isz;
    pf_nd4 im = {img, {g->h * g->w * g->c, 1, g->w * g->c, g->c}};
    if (!ci->pointwise) {
        memset(img, 0, (size_t)(g->h * g->w * g->c * isz));
    }
    for (int64_t q0 = 0; q0 < P; q0 += jb->chunk) {
        int64_t q1 = q0 + jb->chunk < P ? q0 + jb->chunk : P, L = q1 - q0;
        mat gy = pixel_operand(ci, jb->x, g->o, g->oh, g->ow, n * P + q0, n * P + q1, 1,
                               buf + jb->col_bytes);
        if (ci->pointwise) {
            /* gx_n (C x L) = W (C x O) gy^T: the planar rows of the image directly */
            for (int64_t gr = 0; gr < g->groups; gr++) {
                mat w = {(char *)jb->wp + gr * ci->kg * ci->og * isz, ci->og, 1};
                mm(ci->dt, ci->kg, L, ci->og, w, mat_t(mat_at(gy, isz, 0, gr * ci->og)), 0,
                   gxn + (gr * ci->kg * P + q0) * isz, P);
            }
        }
        else {
            gcol_chunk(jb, gy, L, buf, ci->K);
            ci->L->col2im_rows(ci, buf, q0, q1, &im);
        }
    }
    if (!ci->pointwise) {
        ci->L->unpack_image(img, g->c, g->h, g->w, jb->y, n);
    }
}

/* channel-major: unit u is image u, its gradient scattered by col2im_cols into gx */
static void igrad_cm_unit(void *vjob, int64_t n, int tid)
{
    const conv_job *jb = vjob;
    const cinfo *ci = jb->ci;
    const pf_conv_geom *g = ci->g;
    int64_t isz = ci->isz, P = ci->P;
    char *buf = jb->scr + (size_t)tid * jb->scr_each;
    memset(jb->y->data + n * jb->y->s[0] * isz, 0, (size_t)(jb->y->s[0] * isz));
    for (int64_t q0 = 0; q0 < P; q0 += jb->chunk) {
        int64_t q1 = q0 + jb->chunk < P ? q0 + jb->chunk : P, L = q1 - q0;
        mat gy = pixel_operand(ci, jb->x, g->o, g->oh, g->ow, n * P + q0, n * P + q1, 0,
                               buf + jb->col_bytes);    /* (L x O) */
        for (int64_t gr = 0; gr < g->groups; gr++) {
            /* gcolT_g (kg x L) = W_g (kg x og) gy_g^T (og x L) */
            mat w = {(char *)jb->wp + gr * ci->kg * ci->og * isz, ci->og, 1};
            mm(ci->dt, ci->kg, L, ci->og, w, mat_t(mat_at(gy, isz, 0, gr * ci->og)), 0,
               buf + gr * ci->kg * L * isz, L);
        }
        ci->L->col2im_cols(ci, buf, n, q0, q1, jb->y);
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
    if (is_depthwise(&ci)) {
        return dw_run(&ci, DW_IGRAD, rows, gy, NULL, w, NULL, 0, gx);
    }
    double work = (double)ci.NP * (double)ci.kg * (double)g->o;
    char *wp = scratch((size_t)(g->o * ci.kg * ci.isz)), *scr = NULL;
    int rc = -1;
    if (wp == NULL) {
        goto done;
    }
    ci.L->pack_weight(&ci, w, wp);
    /* the job's x is gy and its y is gx */
    conv_job jb = {&ci, rows, gy, gx, wp, NULL, 0, 0, 0, NULL, 0, 0};
    int64_t units, K = ci.K > g->o ? ci.K : g->o;
    int nth;
    size_t img_bytes = 0;
    unit_fn body = rows ? igrad_rows_unit : igrad_planar_unit;
    if (ci.cm) {
        nth = threads_for(work, g->n);
        jb.chunk = chunk_for(&ci, ci.P);
        units = g->n;
        body = igrad_cm_unit;
    }
    else if (rows && ci.pointwise) {
        /* every gx pixel is written by exactly one chunk: chunks are independent */
        nth = threads_for(work, ci.NP / 32);
        jb.chunk = COL_BYTES / (K * ci.isz);
        jb.chunk = balance(ci.NP, jb.chunk < 32 ? 32 : jb.chunk, nth);
        units = (ci.NP + jb.chunk - 1) / jb.chunk;
    }
    else {
        /* windows overlap across chunks: each unit owns whole images */
        nth = threads_for(work, g->n);
        jb.chunk = COL_BYTES / (K * ci.isz);
        jb.chunk = jb.chunk < 32 ? 32 : jb.chunk;
        if (rows) {
            jb.per = (g->n + nth - 1) / nth;
            units = (g->n + jb.per - 1) / jb.per;
        }
        else {
            jb.chunk = jb.chunk < ci.P ? jb.chunk : ci.P;
            units = g->n;
            img_bytes = round_up((size_t)(g->c * g->h * g->w * ci.isz));
        }
    }
    nth = units < nth ? (int)units : nth;
    jb.col_bytes = round_up((size_t)(jb.chunk * ci.K * ci.isz));
    jb.scr_each = jb.col_bytes + round_up((size_t)(jb.chunk * g->o * ci.isz)) + img_bytes;
    if ((scr = scratch(jb.scr_each * (size_t)nth)) == NULL) {
        goto done;
    }
    jb.scr = scr;
    run_units(body, &jb, units, nth);
    rc = 0;
done:
    free(wp);
    free(scr);
    return rc;
}

/* ------------------------------------------------------- weight gradient */

typedef struct {
    const cinfo *ci;
    int rows;
    const pf_nd4 *x, *gy;
    int64_t chunk;          /* pixels per GEMM */
    int64_t units;          /* pixel chunks of the batch (rows), or images (planar) */
    int nth;
    char *acc;              /* nth partial sums (groups, og, kg), acc_each bytes apart */
    size_t acc_each;
    char *scr;
    size_t scr_each;
    size_t col_bytes;       /* scratch: im2col block, then gy packing, then the image */
    size_t gy_bytes;
} wgrad_job;

/* partial += gy (pixels x O)^T col (pixels x K), per group */
static void wgrad_chunk(const wgrad_job *jb, mat col, mat gy, int64_t L, char *acc, int first)
{
    const cinfo *ci = jb->ci;
    int64_t isz = ci->isz;
    for (int64_t gr = 0; gr < ci->g->groups; gr++) {
        mm(ci->dt, ci->og, ci->kg, L, mat_t(mat_at(gy, isz, 0, gr * ci->og)),
           mat_at(col, isz, 0, gr * ci->kg), !first, acc + gr * ci->og * ci->kg * isz, ci->kg);
    }
}

/* thread t sums units t, t + nth, ... into its partial */
static void wgrad_thread(void *vjob, int64_t t, int tid)
{
    const wgrad_job *jb = vjob;
    const cinfo *ci = jb->ci;
    const pf_conv_geom *g = ci->g;
    int64_t isz = ci->isz, P = ci->P;
    char *buf = jb->scr + (size_t)tid * jb->scr_each, *acc = jb->acc + (size_t)t * jb->acc_each;
    char *gbuf = buf + jb->col_bytes;
    int first = 1;
    for (int64_t u = t; u < jb->units; u += jb->nth) {
        if (ci->cm) {
            /* (image, pixel range): acc_g += gy_g^T (og x L) colT_g^T (L x kg) */
            int64_t per = (P + jb->chunk - 1) / jb->chunk, n = u / per, q0 = u % per * jb->chunk;
            int64_t q1 = q0 + jb->chunk < P ? q0 + jb->chunk : P, L = q1 - q0;
            ci->L->im2col_cols(ci, jb->x, n, q0, q1, buf);
            mat gy = pixel_operand(ci, jb->gy, g->o, g->oh, g->ow, n * P + q0, n * P + q1, 1,
                                   gbuf);
            for (int64_t gr = 0; gr < g->groups; gr++) {
                mat colt = {buf + gr * ci->kg * L * isz, L, 1};
                mm(ci->dt, ci->og, ci->kg, L, mat_t(mat_at(gy, isz, 0, gr * ci->og)),
                   mat_t(colt), !first, acc + gr * ci->og * ci->kg * isz, ci->kg);
            }
            first = 0;
            continue;
        }
        if (jb->rows) {
            int64_t p0 = u * jb->chunk, p1 = p0 + jb->chunk < ci->NP ? p0 + jb->chunk : ci->NP;
            mat col;
            if (!(ci->pointwise && pixel_view(jb->x, isz, g->c, g->h, g->w, p0, p1, &col))) {
                ci->L->im2col_rows(ci, jb->x, p0, p1, buf);
                col = (mat){buf, ci->K, 1};
            }
            mat gy = pixel_operand(ci, jb->gy, g->o, g->oh, g->ow, p0, p1, 1, gbuf);
            wgrad_chunk(jb, col, gy, p1 - p0, acc, first);
            first = 0;
            continue;
        }
        /* planar: image u, packed channels-last unless the 1x1 view serves */
        int64_t n = u;
        mat view;
        int direct = ci->pointwise && pixel_view(jb->x, isz, g->c, g->h, g->w, n * P,
                                                 (n + 1) * P, &view);
        pf_nd4 img;
        if (!direct) {
            img = packed_image(ci, jb->x, n, gbuf + jb->gy_bytes);
        }
        for (int64_t q0 = 0; q0 < P; q0 += jb->chunk) {
            int64_t q1 = q0 + jb->chunk < P ? q0 + jb->chunk : P;
            mat col;
            if (direct) {
                col = mat_at(view, isz, q0, 0);
            }
            else {
                ci->L->im2col_rows(ci, &img, q0, q1, buf);
                col = (mat){buf, ci->K, 1};
            }
            mat gy = pixel_operand(ci, jb->gy, g->o, g->oh, g->ow, n * P + q0, n * P + q1, 1,
                                   gbuf);
            wgrad_chunk(jb, col, gy, q1 - q0, acc, first);
            first = 0;
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
    if (is_depthwise(&ci)) {
        return dw_run(&ci, DW_WGRAD, rows, x, gy, gw, NULL, 0, NULL);
    }
    double work = (double)ci.NP * (double)ci.kg * (double)g->o;
    int64_t K = ci.K > g->o ? ci.K : g->o;
    wgrad_job jb = {&ci, rows, x, gy, 0, 0, 1, NULL, 0, NULL, 0, 0, 0};
    size_t img_bytes = 0;
    int nth;
    if (ci.cm) {
        nth = threads_for(work, ci.NP / 32);
        jb.chunk = chunk_for(&ci, nth > 1 && g->n < nth ? (ci.P + nth - 1) / nth : ci.P);
        jb.units = g->n * ((ci.P + jb.chunk - 1) / jb.chunk);
    }
    else if (rows) {
        nth = threads_for(work, ci.NP / 32);
        jb.chunk = COL_BYTES / (K * ci.isz);
        jb.chunk = balance(ci.NP, jb.chunk < 32 ? 32 : jb.chunk, nth);
        jb.units = (ci.NP + jb.chunk - 1) / jb.chunk;
    }
    else {
        nth = threads_for(work, g->n);
        jb.chunk = chunk_for(&ci, ci.P);
        jb.units = g->n;
        img_bytes = round_up((size_t)(g->c * g->h * g->w * ci.isz));
    }
    jb.nth = nth = jb.units < nth ? (int)jb.units : nth;
    jb.acc_each = round_up(wbytes);
    jb.col_bytes = round_up((size_t)(jb.chunk * ci.K * ci.isz));
    jb.gy_bytes = round_up((size_t)(jb.chunk * g->o * ci.isz));
    jb.scr_each = jb.col_bytes + jb.gy_bytes + img_bytes;
    char *acc = scratch(jb.acc_each * (size_t)nth);
    char *scr = scratch(jb.scr_each * (size_t)nth);
    int rc = -1;
    if (acc == NULL || scr == NULL) {
        goto done;
    }
    jb.acc = acc;
    jb.scr = scr;
    run_units(wgrad_thread, &jb, nth, nth);
    for (int t = 1; t < nth; t++) {
        ci.L->add_into(acc, acc + (size_t)t * jb.acc_each, wn);
    }
    ci.L->unpack_weight_rows(&ci, acc, gw->data);
    rc = 0;
done:
    free(acc);
    free(scr);
    return rc;
}
