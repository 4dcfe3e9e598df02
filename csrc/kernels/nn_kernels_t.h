/*
 * nn_kernels_t.h -- the typed loops of nn_kernels.c, included once per
 * compute dtype with NK_T (float or double) and NK_SFX (f32 or f64)
 * defined; NK(name) gives each function its dtype's name.  Only
 * nn_kernels.c includes this file.
 *
 * Sums run in float64 lanes (NL independent accumulators, folded
 * pairwise), which GCC vectorises without reassociating anything.  The
 * per-row workers carry PF_CLONES: OpenMP outlines the parallel loops,
 * so the vector code has to live in functions of its own to be cloned.
 */
#define T NK_T

/* ------------------------------------------------------------ row sums */

/* the NL lanes folded pairwise (a fixed order) */
static inline double NK(fold)(double *a)
{
    for (int w = NL / 2; w > 0; w /= 2) {
        for (int k = 0; k < w; k++) {
            a[k] += a[k + w];
        }
    }
    return a[0];
}

/*
 * sum x[0:n] in float64 lanes: a float32 lane would lose the digits of a
 * large mean (data around 1e4 with unit spread) that normalisation needs
 */
NK_INLINE double NK(sum)(const T *x, int64_t n)
{
    double a[NL] = {0}, s = 0;
    int64_t i = 0;
    for (; i + NL <= n; i += NL) {
        for (int k = 0; k < NL; k++) {
            a[k] += (double)x[i + k];
        }
    }
    for (; i < n; i++) {
        s += (double)x[i];
    }
    return NK(fold)(a) + s;
}

/*
 * sum (x[0:n] - c)^2: (x - hi) - lo is x - c to T's precision, so the
 * deviations are small and their squares add in T lanes, over blocks of
 * NK_BLOCK elements whose totals are added in float64
 */
NK_INLINE double NK(sumsqdev)(const T *x, int64_t n, double c)
{
    T ch = (T)c, cl = (T)(c - (double)ch);
    double tot = 0;
    for (int64_t b = 0; b < n; b += NK_BLOCK) {
        int64_t m = n - b < NK_BLOCK ? n - b : NK_BLOCK;
        const T *xb = x + b;
        T a[NL] = {0};
        int64_t i = 0;
        for (; i + NL <= m; i += NL) {
            for (int k = 0; k < NL; k++) {
                T d = (xb[i + k] - ch) - cl;
                a[k] += d * d;
            }
        }
        double s = 0;
        for (; i < m; i++) {
            double d = (double)xb[i] - c;
            s += d * d;
        }
        for (int w = NL / 2; w > 0; w /= 2) {
            for (int k = 0; k < w; k++) {
                a[k] += a[k + w];
            }
        }
        tot += (double)a[0] + s;
    }
    return tot;
}

/* *sg = sum g, *sgx = sum g (x - c), over n elements */
NK_INLINE void NK(sum_g_gx)(const T *g, const T *x, int64_t n, double c, double *sg,
                            double *sgx)
{
    double a[NL] = {0}, b[NL] = {0}, s = 0, t = 0;
    int64_t i = 0;
    for (; i + NL <= n; i += NL) {
        for (int k = 0; k < NL; k++) {
            double gv = (double)g[i + k];
            a[k] += gv;
            b[k] += gv * ((double)x[i + k] - c);
        }
    }
    for (; i < n; i++) {
        double gv = (double)g[i];
        s += gv;
        t += gv * ((double)x[i] - c);
    }
    *sg = NK(fold)(a) + s;
    *sgx = NK(fold)(b) + t;
}

/* ------------------------------------------------ layer, group and RMS norm */

/* the row's mean (0 for RMS) and 1 / sqrt(variance + eps) (RMS: of the mean square) */
NK_INLINE void NK(row_stats)(const pf_rownorm *P, const T *xr, double *mean, double *rstd)
{
    double n = (double)P->n;
    double m = P->rms ? 0.0 : NK(sum)(xr, P->n) / n;
    double v = NK(sumsqdev)(xr, P->n, m) / n;
    *mean = m;
    *rstd = 1.0 / sqrt(v + P->eps);
}

/*
 * The mean as hi + lo in T: (x - hi) - lo is x - mean to T's precision even
 * when the mean is large next to the spread (float32 data around 1e4),
 * where x - (float)mean would lose digits; the rest runs in T.
 */
static inline void NK(split_mean)(double mean, T *hi, T *lo)
{
    *hi = (T)mean;
    *lo = (T)(mean - (double)*hi);
}

/* y = (x - mean) * rstd * w + b over one row; w, b the row's affine block or NULL */
static PF_CLONES void NK(rownorm_row)(const pf_rownorm *P, const T *xr, const T *w, const T *b,
                                      T *yr)
{
    double mean, rstd;
    NK(row_stats)(P, xr, &mean, &rstd);
    int64_t n = P->n;
    T mh, ml, r = (T)rstd;
    NK(split_mean)(mean, &mh, &ml);
    if (P->inner == 1) {
        /* one weight per element: the four affine forms as separate loops */
        if (w != NULL && b != NULL) {
            for (int64_t j = 0; j < n; j++) {
                yr[j] = ((xr[j] - mh) - ml) * r * w[j] + b[j];
            }
        }
        else if (w != NULL) {
            for (int64_t j = 0; j < n; j++) {
                yr[j] = ((xr[j] - mh) - ml) * r * w[j];
            }
        }
        else if (b != NULL) {
            for (int64_t j = 0; j < n; j++) {
                yr[j] = ((xr[j] - mh) - ml) * r + b[j];
            }
        }
        else {
            for (int64_t j = 0; j < n; j++) {
                yr[j] = ((xr[j] - mh) - ml) * r;
            }
        }
        return;
    }
    /* one weight per run of `inner` elements (a channel of group norm) */
    for (int64_t ch = 0; ch < P->nch; ch++) {
        T a = (T)(rstd * (w != NULL ? (double)w[ch] : 1.0));
        T c = b != NULL ? b[ch] : (T)0;
        const T *xs = xr + ch * P->inner;
        T *ys = yr + ch * P->inner;
        for (int64_t s = 0; s < P->inner; s++) {
            ys[s] = ((xs[s] - mh) - ml) * a + c;
        }
    }
}

static void NK(rownorm_fwd)(const pf_rownorm *P, const T *x, const T *w, const T *b, T *y)
{
    int nth = nk_threads(P->rows * P->n, P->rows);
    #pragma omp parallel for num_threads(nth) schedule(static) if (nth > 1)
    for (int64_t r = 0; r < P->rows; r++) {
        int64_t blk = (r % P->groups) * P->nch;
        NK(rownorm_row)(P, x + r * P->n, w != NULL ? w + blk : NULL, b != NULL ? b + blk : NULL,
                        y + r * P->n);
    }
}

/*
 * One row of the norm's gradient.  With xh = (x - mean) rstd and gw = g w:
 * dx = rstd (gw - mean(gw) - xh mean(gw xh))  (RMS: no mean(gw) term);
 * the weight and bias gradients of the row are added into pdw, pdb.
 */
static PF_CLONES void NK(rownorm_bwd_row)(const pf_rownorm *P, const T *gr, const T *xr,
                                          const T *w, T *dxr, T *pdw, T *pdb)
{
    double mean, rstd;
    NK(row_stats)(P, xr, &mean, &rstd);
    int64_t n = P->n;
    T mh, ml, r = (T)rstd;
    NK(split_mean)(mean, &mh, &ml);
    double A = 0, B = 0;
    if (P->inner == 1) {
        /* the row's share of the weight and bias gradients */
        if (pdw != NULL) {
            for (int64_t j = 0; j < n; j++) {
                pdw[j] += gr[j] * (((xr[j] - mh) - ml) * r);
            }
        }
        if (pdb != NULL) {
            for (int64_t j = 0; j < n; j++) {
                pdb[j] += gr[j];
            }
        }
        if (dxr == NULL) {
            return;
        }
        /* A = sum gw, B = sum gw xh: T lanes over blocks, each block added in float64 */
        for (int64_t b0 = 0; b0 < n; b0 += NK_BLOCK) {
            int64_t m = n - b0 < NK_BLOCK ? n - b0 : NK_BLOCK;
            const T *gb = gr + b0, *xb = xr + b0, *wb = w != NULL ? w + b0 : NULL;
            T a[NL] = {0}, c[NL] = {0};
            int64_t j = 0;
            if (wb != NULL) {
                for (; j + NL <= m; j += NL) {
                    for (int k = 0; k < NL; k++) {
                        T gw = gb[j + k] * wb[j + k];
                        a[k] += gw;
                        c[k] += gw * (((xb[j + k] - mh) - ml) * r);
                    }
                }
            }
            else {
                for (; j + NL <= m; j += NL) {
                    for (int k = 0; k < NL; k++) {
                        a[k] += gb[j + k];
                        c[k] += gb[j + k] * (((xb[j + k] - mh) - ml) * r);
                    }
                }
            }
            for (; j < m; j++) {
                T gw = gb[j] * (wb != NULL ? wb[j] : (T)1);
                A += (double)gw;
                B += (double)(gw * (((xb[j] - mh) - ml) * r));
            }
            for (int h = NL / 2; h > 0; h /= 2) {
                for (int k = 0; k < h; k++) {
                    a[k] += a[k + h];
                    c[k] += c[k + h];
                }
            }
            A += (double)a[0];
            B += (double)c[0];
        }
    }
    else {
        for (int64_t ch = 0; ch < P->nch; ch++) {
            double sg, sgx;
            NK(sum_g_gx)(gr + ch * P->inner, xr + ch * P->inner, P->inner, mean, &sg, &sgx);
            double wv = w != NULL ? (double)w[ch] : 1.0;
            A += wv * sg;
            B += wv * sgx * rstd;
            if (pdw != NULL) {
                pdw[ch] += (T)(sgx * rstd);
            }
            if (pdb != NULL) {
                pdb[ch] += (T)sg;
            }
        }
        if (dxr == NULL) {
            return;
        }
    }
    T ma = (T)(P->rms ? 0.0 : A / (double)n), mb = (T)(B / (double)n);
    if (P->inner == 1) {
        for (int64_t j = 0; j < n; j++) {
            T gw = gr[j] * (w != NULL ? w[j] : (T)1);
            dxr[j] = r * (gw - ma - (((xr[j] - mh) - ml) * r) * mb);
        }
        return;
    }
    for (int64_t ch = 0; ch < P->nch; ch++) {
        T wv = w != NULL ? w[ch] : (T)1;
        const T *gs = gr + ch * P->inner, *xs = xr + ch * P->inner;
        T *ds = dxr + ch * P->inner;
        for (int64_t s = 0; s < P->inner; s++) {
            ds[s] = r * (gs[s] * wv - ma - (((xs[s] - mh) - ml) * r) * mb);
        }
    }
}

/*
 * Rows go in `nblk` fixed blocks (a function of the shape only), each with
 * its own partial weight and bias sums, folded in block order.  Within a
 * block the rows add into partials of T, moved into the block's float64
 * partials every NK_FLUSH rows, so that a float32 partial never sums more
 * than NK_FLUSH rows.
 */
static int NK(rownorm_bwd)(const pf_rownorm *P, const T *g, const T *x, const T *w, T *dx,
                           double *dw, double *db)
{
    int64_t wlen = P->groups * P->nch;
    int64_t nblk = 1;
    double *part = NULL;
    T *tpart = NULL;
    if (dw != NULL || db != NULL) {
        nblk = nk_blocks(P->rows * P->n, P->rows, 2 * wlen);
        part = calloc((size_t)(nblk * 2 * wlen), sizeof(double));
        tpart = calloc((size_t)(nblk * 2 * wlen), sizeof(T));
        if (part == NULL || tpart == NULL) {
            free(part);
            free(tpart);
            PyErr_NoMemory();
            return -1;
        }
    }
    else {
        nblk = P->rows < 64 ? (P->rows > 0 ? P->rows : 1) : 64;
    }
    int nth = nk_threads(P->rows * P->n, nblk);
    #pragma omp parallel for num_threads(nth) schedule(static) if (nth > 1)
    for (int64_t k = 0; k < nblk; k++) {
        int64_t r0 = P->rows * k / nblk, r1 = P->rows * (k + 1) / nblk;
        T *tw = tpart != NULL && dw != NULL ? tpart + 2 * k * wlen : NULL;
        T *tb = tpart != NULL && db != NULL ? tpart + (2 * k + 1) * wlen : NULL;
        for (int64_t r = r0; r < r1; r++) {
            int64_t blk = (r % P->groups) * P->nch;
            NK(rownorm_bwd_row)(P, g + r * P->n, x + r * P->n, w != NULL ? w + blk : NULL,
                                dx != NULL ? dx + r * P->n : NULL,
                                tw != NULL ? tw + blk : NULL, tb != NULL ? tb + blk : NULL);
            if (tpart != NULL && ((r - r0 + 1) % NK_FLUSH == 0 || r == r1 - 1)) {
                double *pw = part + 2 * k * wlen;
                T *tp = tpart + 2 * k * wlen;
                for (int64_t j = 0; j < 2 * wlen; j++) {
                    pw[j] += (double)tp[j];
                    tp[j] = 0;
                }
            }
        }
    }
    if (part != NULL) {
        nk_fold_parts(part, nblk, wlen, dw, db);
        free(part);
        free(tpart);
    }
    return 0;
}

/* ------------------------------------------------------------ batch norm */

/*
 * Sums per channel, in tasks: with inner > 1 a task is (chunk of outer,
 * channel) and sums runs of `inner`; with inner == 1 a task is a chunk of
 * rows, summed across the channels with a vector per row.  kind 0: x;
 * 1: (x - m)^2; 2: g and g (x - m).  part holds 2 * C values per chunk.
 */
static PF_CLONES void NK(bn_task)(const pf_bn_geom *G, int kind, const T *x, const T *g,
                                  const double *m, int64_t o0, int64_t o1, int64_t c,
                                  double *part)
{
    int64_t C = G->C, in = G->inner;
    if (in > 1) {
        double s1 = 0, s2 = 0;
        for (int64_t o = o0; o < o1; o++) {
            const T *run = x + (o * C + c) * in;
            if (kind == 0) {
                s1 += NK(sum)(run, in);
            }
            else if (kind == 1) {
                s1 += NK(sumsqdev)(run, in, m[c]);
            }
            else {
                double a, b;
                NK(sum_g_gx)(g + (o * C + c) * in, run, in, m[c], &a, &b);
                s1 += a;
                s2 += b;
            }
        }
        part[c] = s1;
        part[C + c] = s2;
        return;
    }
    double *p1 = part, *p2 = part + C;
    for (int64_t o = o0; o < o1; o++) {
        const T *row = x + o * C;
        if (kind == 0) {
            for (int64_t j = 0; j < C; j++) {
                p1[j] += (double)row[j];
            }
        }
        else if (kind == 1) {
            for (int64_t j = 0; j < C; j++) {
                double d = (double)row[j] - m[j];
                p1[j] += d * d;
            }
        }
        else {
            const T *grow = g + o * C;
            for (int64_t j = 0; j < C; j++) {
                double gv = (double)grow[j];
                p1[j] += gv;
                p2[j] += gv * ((double)row[j] - m[j]);
            }
        }
    }
}

static int NK(bn_sums)(const pf_bn_geom *G, int kind, const T *x, const T *g, const double *m,
                       double *out1, double *out2)
{
    int64_t C = G->C, per = G->inner > 1 ? G->inner : C;
    if (C == 0) {
        return 0;
    }
    /* chunks of about 16K elements of one channel (or of all, when inner == 1) */
    int64_t rpc = 16384 / per > 0 ? 16384 / per : 1;
    int64_t nchunk = G->outer > 0 ? (G->outer + rpc - 1) / rpc : 1;
    double *part = calloc((size_t)(nchunk * 2 * C), sizeof(double));
    if (part == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    int64_t ntask = G->inner > 1 ? nchunk * C : nchunk;
    int nth = nk_threads(G->outer * C * G->inner, ntask);
    #pragma omp parallel for num_threads(nth) schedule(static) if (nth > 1)
    for (int64_t t = 0; t < ntask; t++) {
        int64_t k = G->inner > 1 ? t / C : t, c = G->inner > 1 ? t % C : 0;
        int64_t o0 = k * rpc, o1 = o0 + rpc < G->outer ? o0 + rpc : G->outer;
        NK(bn_task)(G, kind, x, g, m, o0, o1, c, part + k * 2 * C);
    }
    for (int64_t c = 0; c < C; c++) {
        double s1 = 0, s2 = 0;
        for (int64_t k = 0; k < nchunk; k++) {
            s1 += part[k * 2 * C + c];
            s2 += part[k * 2 * C + C + c];
        }
        out1[c] = s1;
        if (out2 != NULL) {
            out2[c] = s2;
        }
    }
    free(part);
    return 0;
}

/* out = (u - um) A + (x - xm) B + D over one run of n elements of one channel */
static PF_CLONES void NK(bn_map_run)(const T *u, const T *x, const T *cf, T *out, int64_t n)
{
    T uh = cf[BN_UH], ul = cf[BN_UL], a = cf[BN_A], d = cf[BN_D];
    if (x == NULL) {
        for (int64_t i = 0; i < n; i++) {
            out[i] = ((u[i] - uh) - ul) * a + d;
        }
        return;
    }
    T xh = cf[BN_XH], xl = cf[BN_XL], b = cf[BN_B];
    for (int64_t i = 0; i < n; i++) {
        out[i] = ((u[i] - uh) - ul) * a + ((x[i] - xh) - xl) * b + d;
    }
}

/* the same over one row of C channels (inner == 1); cf holds each coefficient's C values */
static PF_CLONES void NK(bn_map_row)(const T *u, const T *x, const T *cf, T *out, int64_t C)
{
    const T *uh = cf + BN_UH * C, *ul = cf + BN_UL * C, *a = cf + BN_A * C, *d = cf + BN_D * C;
    if (x == NULL) {
        for (int64_t j = 0; j < C; j++) {
            out[j] = ((u[j] - uh[j]) - ul[j]) * a[j] + d[j];
        }
        return;
    }
    const T *xh = cf + BN_XH * C, *xl = cf + BN_XL * C, *b = cf + BN_B * C;
    for (int64_t j = 0; j < C; j++) {
        out[j] = ((u[j] - uh[j]) - ul[j]) * a[j] + ((x[j] - xh[j]) - xl[j]) * b[j] + d[j];
    }
}

static int NK(bn_map)(const pf_bn_geom *G, const T *u, const double *um, const double *A,
                      const T *x, const double *xm, const double *B, const double *D, T *out)
{
    int64_t C = G->C, in = G->inner;
    if (C == 0) {
        return 0;
    }
    T *cf = malloc(sizeof(T) * (size_t)(BN_NCOEF * (C > 0 ? C : 1)));
    if (cf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    /* channel-major (inner > 1: a channel's coefficients together) or coefficient-major */
    int64_t cs = in > 1 ? BN_NCOEF : 1, ks = in > 1 ? 1 : C;
    for (int64_t c = 0; c < C; c++) {
        T *f = cf + c * cs;
        NK(split_mean)(um[c], &f[BN_UH * ks], &f[BN_UL * ks]);
        NK(split_mean)(xm[c], &f[BN_XH * ks], &f[BN_XL * ks]);
        f[BN_A * ks] = (T)A[c];
        f[BN_B * ks] = (T)B[c];
        f[BN_D * ks] = (T)D[c];
    }
    if (in > 1) {
        int64_t ntask = G->outer * C;
        int nth = nk_threads(ntask * in, ntask);
        #pragma omp parallel for num_threads(nth) schedule(static) if (nth > 1)
        for (int64_t t = 0; t < ntask; t++) {
            NK(bn_map_run)(u + t * in, x != NULL ? x + t * in : NULL, cf + (t % C) * BN_NCOEF,
                           out + t * in, in);
        }
    }
    else {
        int nth = nk_threads(G->outer * C, G->outer);
        #pragma omp parallel for num_threads(nth) schedule(static) if (nth > 1)
        for (int64_t o = 0; o < G->outer; o++) {
            NK(bn_map_row)(u + o * C, x != NULL ? x + o * C : NULL, cf, out + o * C, C);
        }
    }
    free(cf);
    return 0;
}

/* ------------------------------------------------------------ softmax rows */

/* the largest of n values (NaN does not win here; it reaches the sums after) */
NK_INLINE double NK(rowmax)(const T *x, int64_t n)
{
    T a[NL];
    for (int k = 0; k < NL; k++) {
        a[k] = (T)-INFINITY;
    }
    int64_t i = 0;
    for (; i + NL <= n; i += NL) {
        for (int k = 0; k < NL; k++) {
            a[k] = x[i + k] > a[k] ? x[i + k] : a[k];
        }
    }
    T m = (T)-INFINITY;
    for (; i < n; i++) {
        m = x[i] > m ? x[i] : m;
    }
    for (int w = NL / 2; w > 0; w /= 2) {
        for (int k = 0; k < w; k++) {
            a[k] = a[k + w] > a[k] ? a[k + w] : a[k];
        }
    }
    return (double)(a[0] > m ? a[0] : m);
}

/* sum of n values in T lanes (short rows of probabilities, where T is precise enough) */
NK_INLINE T NK(tsum)(const T *x, int64_t n)
{
    T a[NL] = {0}, s = 0;
    int64_t i = 0;
    for (; i + NL <= n; i += NL) {
        for (int k = 0; k < NL; k++) {
            a[k] += x[i + k];
        }
    }
    for (; i < n; i++) {
        s += x[i];
    }
    for (int w = NL / 2; w > 0; w /= 2) {
        for (int k = 0; k < w; k++) {
            a[k] += a[k + w];
        }
    }
    return a[0] + s;
}

/* e[j] = exp(x[j] - m) for n values (float32: pyframe's vectorised exp) */
NK_INLINE void NK(expshift)(const T *x, T m, T *e, int64_t n)
{
    for (int64_t j = 0; j < n; j++) {
        e[j] = NK(vexp)(x[j] - m);
    }
}

/* sum over n values of exp(x - m), in chunks through a stack buffer */
NK_INLINE double NK(sumexp)(const T *x, double m, int64_t n)
{
    T buf[256];
    double s = 0;
    for (int64_t j0 = 0; j0 < n; j0 += 256) {
        int64_t w = n - j0 < 256 ? n - j0 : 256;
        NK(expshift)(x + j0, (T)m, buf, w);
        s += NK(sum)(buf, w);
    }
    return s;
}

/* log(sum(exp(x))) of one row, shifted by its max */
NK_INLINE double NK(row_lse)(const T *x, int64_t n)
{
    double m = NK(rowmax)(x, n);
    if (!isfinite(m)) {
        /* all -inf (or an inf): exp(x - m) would be NaN; the direct sum is right */
        return m == -INFINITY ? log(NK(sumexp)(x, 0.0, n)) : m + log(NK(sumexp)(x, m, n));
    }
    return m + log(NK(sumexp)(x, m, n));
}

/* ------------------------------------------------------------ cross-entropy */

static PF_CLONES void NK(xent_row)(const pf_xent *P, const T *xr, int64_t r, double *loss,
                                   double *wrow)
{
    int64_t C = P->C;
    const T *w = P->weight;
    double eps = P->smoothing;
    if (P->target != NULL) {
        int64_t t = P->target[r];
        if (t == P->ignore_index) {
            loss[r] = 0;
            wrow[r] = 0;
            return;
        }
        double lse = NK(row_lse)(xr, C);
        double wt = w != NULL ? (double)w[t] : 1.0;
        double l = (1.0 - eps) * wt * (lse - (double)xr[t]);
        if (eps > 0) {
            /* sum_c w_c (lse - x_c) */
            double sw = 0, swx = 0;
            for (int64_t c = 0; c < C; c++) {
                double wc = w != NULL ? (double)w[c] : 1.0;
                sw += wc;
                swx += wc * (double)xr[c];
            }
            l += eps / (double)C * (lse * sw - swx);
        }
        loss[r] = l;
        wrow[r] = wt;
        return;
    }
    const T *pr = (const T *)P->probs + r * C;
    double lse = NK(row_lse)(xr, C);
    double l = 0;
    for (int64_t c = 0; c < C; c++) {
        double wc = w != NULL ? (double)w[c] : 1.0;
        double tc = (double)pr[c] * (1.0 - eps) + eps / (double)C;
        l += wc * tc * (lse - (double)xr[c]);
    }
    loss[r] = l;
    wrow[r] = 1.0;
}

static void NK(xent_fwd)(const pf_xent *P, const T *x, double *loss, double *wrow)
{
    int nth = nk_threads(P->rows * P->C, P->rows);
    #pragma omp parallel for num_threads(nth) schedule(static) if (nth > 1)
    for (int64_t r = 0; r < P->rows; r++) {
        NK(xent_row)(P, x + r * P->C, r, loss, wrow);
    }
}

/* q_r, the row's weighted target distribution, and its sum */
NK_INLINE double NK(xent_q_row)(const pf_xent *P, int64_t r, T *q)
{
    int64_t C = P->C;
    const T *w = P->weight;
    double eps = P->smoothing, Q = 0;
    if (P->target != NULL) {
        int64_t t = P->target[r];
        if (t == P->ignore_index) {
            for (int64_t c = 0; c < C; c++) {
                q[c] = 0;
            }
            return 0;
        }
        for (int64_t c = 0; c < C; c++) {
            double v = eps / (double)C * (w != NULL ? (double)w[c] : 1.0);
            q[c] = (T)v;
            Q += v;
        }
        double wt = w != NULL ? (double)w[t] : 1.0;
        q[t] = (T)((double)q[t] + (1.0 - eps) * wt);
        return Q + (1.0 - eps) * wt;
    }
    const T *pr = (const T *)P->probs + r * C;
    for (int64_t c = 0; c < C; c++) {
        double v = (w != NULL ? (double)w[c] : 1.0) * ((double)pr[c] * (1.0 - eps) +
                                                       eps / (double)C);
        q[c] = (T)v;
        Q += v;
    }
    return Q;
}

/*
 * dx_r = s (softmax(x_r) Q - q_r): e = exp(x - max) is written to dx_r once,
 * then scaled by s Q / sum(e) and q_r (see xent_q_row) subtracted.
 */
static PF_CLONES void NK(xent_bwd_row)(const pf_xent *P, const T *xr, int64_t r, double s,
                                       T *dxr)
{
    int64_t C = P->C;
    const T *w = P->weight;
    double eps = P->smoothing, Q;
    T se = (T)(s * eps / (double)C);
    if (P->target != NULL) {
        int64_t t = P->target[r];
        if (t == P->ignore_index) {
            for (int64_t c = 0; c < C; c++) {
                dxr[c] = 0;
            }
            return;
        }
        double wt = w != NULL ? (double)w[t] : 1.0;
        Q = (1.0 - eps) * wt + (eps > 0 ? eps / (double)C * (w != NULL ? NK(sum)(w, C)
                                                                       : (double)C) : 0.0);
    }
    else {
        const T *pr = (const T *)P->probs + r * C;
        double q = 0;
        for (int64_t c = 0; c < C; c++) {
            q += (w != NULL ? (double)w[c] : 1.0) * ((double)pr[c] * (1.0 - eps) +
                                                     eps / (double)C);
        }
        Q = q;
    }
    double m = NK(rowmax)(xr, C);
    m = isfinite(m) ? m : 0.0;      /* all -inf or an inf: NaN follows, as for the loss */
    NK(expshift)(xr, (T)m, dxr, C);
    T f = (T)(s * Q / NK(sum)(dxr, C));
    if (P->target != NULL) {
        if (w != NULL) {
            for (int64_t c = 0; c < C; c++) {
                dxr[c] = dxr[c] * f - se * w[c];
            }
        }
        else {
            for (int64_t c = 0; c < C; c++) {
                dxr[c] = dxr[c] * f - se;
            }
        }
        int64_t t = P->target[r];
        dxr[t] -= (T)(s * (1.0 - eps) * (w != NULL ? (double)w[t] : 1.0));
        return;
    }
    const T *pr = (const T *)P->probs + r * C;
    T s1 = (T)(s * (1.0 - eps));
    for (int64_t c = 0; c < C; c++) {
        dxr[c] = dxr[c] * f - (w != NULL ? w[c] : (T)1) * (s1 * pr[c] + se);
    }
}

static void NK(xent_bwd)(const pf_xent *P, const T *x, double scale, const double *srow, T *dx)
{
    int nth = nk_threads(P->rows * P->C, P->rows);
    #pragma omp parallel for num_threads(nth) schedule(static) if (nth > 1)
    for (int64_t r = 0; r < P->rows; r++) {
        NK(xent_bwd_row)(P, x + r * P->C, r, scale * (srow != NULL ? srow[r] : 1.0),
                         dx + r * P->C);
    }
}

static void NK(xent_target_dist)(const pf_xent *P, T *q)
{
    for (int64_t r = 0; r < P->rows; r++) {
        NK(xent_q_row)(P, r, q + r * P->C);
    }
}

static void NK(nll_fwd)(const pf_xent *P, const T *x, double *loss, double *wrow)
{
    for (int64_t r = 0; r < P->rows; r++) {
        int64_t t = P->target[r];
        if (t == P->ignore_index) {
            loss[r] = 0;
            wrow[r] = 0;
            continue;
        }
        double wt = P->weight != NULL ? (double)((const T *)P->weight)[t] : 1.0;
        loss[r] = -wt * (double)x[r * P->C + t];
        wrow[r] = wt;
    }
}

/* ------------------------------------------------ elementwise losses */

/* the losses of one block of n elements into out (or not), and their sum */
static PF_CLONES double NK(ewloss_block)(pf_ewloss kind, const T *x, const T *t, const T *w,
                                         const T *pw, int64_t n, double prm, T *out)
{
    double buf[256];
    double total = 0;
    for (int64_t j0 = 0; j0 < n; j0 += 256) {
        int64_t m = n - j0 < 256 ? n - j0 : 256;
        const T *xs = x + j0, *ts = t + j0;
        switch (kind) {
        case PF_LOSS_MSE:
            for (int64_t j = 0; j < m; j++) {
                double d = (double)xs[j] - (double)ts[j];
                buf[j] = d * d;
            }
            break;
        case PF_LOSS_L1:
            for (int64_t j = 0; j < m; j++) {
                buf[j] = fabs((double)xs[j] - (double)ts[j]);
            }
            break;
        case PF_LOSS_HUBER:
            for (int64_t j = 0; j < m; j++) {
                double a = fabs((double)xs[j] - (double)ts[j]);
                buf[j] = a < prm ? 0.5 * a * a : prm * (a - 0.5 * prm);
            }
            break;
        case PF_LOSS_SMOOTH_L1:
            for (int64_t j = 0; j < m; j++) {
                double a = fabs((double)xs[j] - (double)ts[j]);
                buf[j] = a < prm ? 0.5 * a * a / prm : a - 0.5 * prm;
            }
            break;
        case PF_LOSS_BCE:
            for (int64_t j = 0; j < m; j++) {
                double p = (double)xs[j], tv = (double)ts[j];
                /* PyTorch's clamp of each log at -100 (NaN stays NaN) */
                double lp = log(p), lq = log1p(-p);
                lp = lp < -100.0 ? -100.0 : lp;
                lq = lq < -100.0 ? -100.0 : lq;
                buf[j] = -(tv * lp + (1.0 - tv) * lq);
            }
            break;
        case PF_LOSS_BCE_LOGITS:
            for (int64_t j = 0; j < m; j++) {
                double v = (double)xs[j], tv = (double)ts[j];
                /*
                 * softplus(-v) = max(-v, 0) + log1p(exp(-|v|)) never overflows; its max
                 * part is added to (1 - t) v first, so that when they cancel (v << 0,
                 * t = 0) the small log1p term keeps its digits
                 */
                double lw = pw != NULL ? 1.0 + ((double)pw[j0 + j] - 1.0) * tv : 1.0;
                buf[j] = ((1.0 - tv) * v + lw * fmax(-v, 0.0)) + lw * log1p(exp(-fabs(v)));
            }
            break;
        }
        if (w != NULL) {
            for (int64_t j = 0; j < m; j++) {
                buf[j] *= (double)w[j0 + j];
            }
        }
        if (out != NULL) {
            for (int64_t j = 0; j < m; j++) {
                out[j0 + j] = (T)buf[j];
            }
        }
        double a[NL] = {0}, s = 0;
        int64_t j = 0;
        for (; j + NL <= m; j += NL) {
            for (int k = 0; k < NL; k++) {
                a[k] += buf[j + k];
            }
        }
        for (; j < m; j++) {
            s += buf[j];
        }
        total += NK(fold)(a) + s;
    }
    return total;
}

static double NK(ewloss)(pf_ewloss kind, const T *x, const T *t, const T *w, const T *pw,
                         int64_t n, double prm, T *out)
{
    enum { EB = 4096 };
    int64_t nb = (n + EB - 1) / EB;
    if (nb <= 1) {
        return NK(ewloss_block)(kind, x, t, w, pw, n, prm, out);
    }
    double *part = malloc(sizeof(double) * (size_t)nb);
    if (part == NULL) {
        /* no room for the partial sums: one block after another, in order */
        double s = 0;
        for (int64_t b = 0; b < nb; b++) {
            int64_t o = b * EB, m = n - o < EB ? n - o : EB;
            s += NK(ewloss_block)(kind, x + o, t + o, w ? w + o : NULL, pw ? pw + o : NULL, m,
                                  prm, out ? out + o : NULL);
        }
        return s;
    }
    int nth = nk_threads(n, nb);
    #pragma omp parallel for num_threads(nth) schedule(static) if (nth > 1)
    for (int64_t b = 0; b < nb; b++) {
        int64_t o = b * EB, m = n - o < EB ? n - o : EB;
        part[b] = NK(ewloss_block)(kind, x + o, t + o, w ? w + o : NULL, pw ? pw + o : NULL, m,
                                   prm, out ? out + o : NULL);
    }
    double s = 0;
    for (int64_t b = 0; b < nb; b++) {
        s += part[b];
    }
    free(part);
    return s;
}

/* ------------------------------------------------------------ dropout */

static void NK(dropout_mask)(T *out, int64_t n, double p, uint64_t seed, uint64_t offset)
{
    int64_t blocks = (n + 1) / 2;
    T keep = (T)pf_rng_dropout_scale(p);       /* as the CUDA kernel (kernels/philox.h) */
    int nth = nk_threads(4 * n, blocks);
    #pragma omp parallel for num_threads(nth) schedule(static) if (nth > 1)
    for (int64_t j = 0; j < blocks; j++) {
        double u[2];
        pf_rng_uniform_pair(seed, offset + (uint64_t)j, u);
        out[2 * j] = u[0] >= p ? keep : (T)0;
        if (2 * j + 1 < n) {
            out[2 * j + 1] = u[1] >= p ? keep : (T)0;
        }
    }
}

/* ------------------------------------------------------------ attention */

/* 1 where element `idx` of the draw is kept, 0 where dropped */
static inline int NK(attn_keep)(const pf_attn *P, int64_t idx)
{
    double u[2];
    pf_random_uniform_pair(P->seed, P->offset + (uint64_t)(idx / 2), u);
    return u[idx & 1] >= P->dropout_p;
}

/* one score row: scale, mask, safe softmax, dropout */
static PF_CLONES void NK(attn_row)(const pf_attn *P, int64_t b, int64_t i, T *s, int dropout)
{
    int64_t S = P->S;
    T sc = (T)P->scale;
    int64_t lim = P->causal ? (i + 1 < S ? i + 1 : S) : S;
    if (P->mask != NULL) {
        int64_t at = P->moff[b] + i * P->mrs;
        if (P->mask_bool) {
            const uint8_t *mk = (const uint8_t *)P->mask + at;
            for (int64_t j = 0; j < S; j++) {
                s[j] = mk[j * P->mcs] ? s[j] * sc : (T)-INFINITY;
            }
        }
        else {
            const T *mk = (const T *)P->mask + at;
            for (int64_t j = 0; j < S; j++) {
                s[j] = s[j] * sc + mk[j * P->mcs];
            }
        }
    }
    else {
        for (int64_t j = 0; j < S; j++) {
            s[j] = s[j] * sc;
        }
    }
    for (int64_t j = lim; j < S; j++) {
        s[j] = (T)-INFINITY;
    }
    double m = NK(rowmax)(s, S);
    if (m == -INFINITY) {
        /* attends to nothing: zeros (PyTorch's behaviour), not 0/0 */
        for (int64_t j = 0; j < S; j++) {
            s[j] = 0;
        }
        return;
    }
    NK(expshift)(s, (T)m, s, S);
    T inv = (T)1 / NK(tsum)(s, S);
    for (int64_t j = 0; j < S; j++) {
        s[j] *= inv;
    }
    if (dropout) {
        T keep = (T)(1.0 / (1.0 - P->dropout_p));
        int64_t base = (b * P->L + i) * S;
        for (int64_t j = 0; j < S; j++) {
            s[j] = NK(attn_keep)(P, base + j) ? s[j] * keep : (T)0;
        }
    }
}

static void NK(attn_softmax)(const pf_attn *P, T *s, int dropout)
{
    int64_t rows = P->nb * P->L;
    int nth = nk_threads(rows * P->S, rows);
    #pragma omp parallel for num_threads(nth) schedule(static) if (nth > 1)
    for (int64_t r = 0; r < rows; r++) {
        NK(attn_row)(P, P->b0 + r / P->L, r % P->L, s + r * P->S, dropout);
    }
}

static PF_CLONES void NK(attn_drop_row)(const pf_attn *P, int64_t b, int64_t i, const T *p,
                                        T *out)
{
    T keep = (T)(1.0 / (1.0 - P->dropout_p));
    int64_t base = (b * P->L + i) * P->S;
    for (int64_t j = 0; j < P->S; j++) {
        out[j] = NK(attn_keep)(P, base + j) ? p[j] * keep : (T)0;
    }
}

static void NK(attn_dropout_apply)(const pf_attn *P, const T *prob, T *out)
{
    int64_t rows = P->nb * P->L;
    int nth = nk_threads(4 * rows * P->S, rows);
    #pragma omp parallel for num_threads(nth) schedule(static) if (nth > 1)
    for (int64_t r = 0; r < rows; r++) {
        NK(attn_drop_row)(P, P->b0 + r / P->L, r % P->L, prob + r * P->S, out + r * P->S);
    }
}

/* dS = P (dP - sum(P dP)) with dP = dP' * dropout mask */
static PF_CLONES void NK(attn_bwd_row)(const pf_attn *P, int64_t b, int64_t i, const T *p,
                                       T *dp)
{
    int64_t S = P->S;
    if (P->dropout_p > 0) {
        T keep = (T)(1.0 / (1.0 - P->dropout_p));
        int64_t base = (b * P->L + i) * S;
        for (int64_t j = 0; j < S; j++) {
            dp[j] = NK(attn_keep)(P, base + j) ? dp[j] * keep : (T)0;
        }
    }
    double a[NL] = {0}, s = 0;
    int64_t j = 0;
    for (; j + NL <= S; j += NL) {
        for (int k = 0; k < NL; k++) {
            a[k] += (double)p[j + k] * (double)dp[j + k];
        }
    }
    for (; j < S; j++) {
        s += (double)p[j] * (double)dp[j];
    }
    T D = (T)(NK(fold)(a) + s);
    for (j = 0; j < S; j++) {
        dp[j] = p[j] * (dp[j] - D);
    }
}

static void NK(attn_softmax_bwd)(const pf_attn *P, const T *prob, T *dp)
{
    int64_t rows = P->nb * P->L;
    int nth = nk_threads(rows * P->S, rows);
    #pragma omp parallel for num_threads(nth) schedule(static) if (nth > 1)
    for (int64_t r = 0; r < rows; r++) {
        NK(attn_bwd_row)(P, P->b0 + r / P->L, r % P->L, prob + r * P->S, dp + r * P->S);
    }
}

#undef T
