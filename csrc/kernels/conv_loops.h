/*
 * conv_loops.h -- the typed loops of the convolution kernels: im2col and
 * col2im, packing, bias and partial sums.  conv.c includes this file once
 * per element type with T (float, double) and TS (f32, f64) defined; every
 * function gets the suffix _TS.  The loops only move or add elements: the
 * arithmetic of a convolution is all in the GEMMs.
 *
 * A pixel-major im2col block has one row per output pixel p of the
 * flattened (n, oh, ow) space, holding for each group, tap (i, j) and
 * channel c' of the group one element: order (g, i, j, c').  With channels
 * contiguous (channels-last), a tap is a run of c' and, without groups and
 * dilation, a whole row of taps (j, c') is one contiguous run of the input.
 * A channel-major block is its transpose for one image, order (c, i, j)
 * = (g, c', i, j) by rows, pixels along each row: cheaper when there are
 * few channels and long rows (an RGB or grey first layer).
 */
#define CAT2(a, b) a##_##b
#define CAT(a, b) CAT2(a, b)
#define F(name) CAT(name, TS)

#ifndef PF_CONV_SPAN_DEFINED
#define PF_CONV_SPAN_DEFINED
/* First ow whose column ow*sw + off is >= 0, and one past the last that is < w. */
static inline void ow_span(int64_t off, int64_t sw, int64_t w, int64_t *lo, int64_t *hi)
{
    *lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
    *hi = w - 1 - off < 0 ? 0 : (w - 1 - off) / sw + 1;
}
#endif

/*
 * col (p1 - p0, K) contiguous = the im2col rows of output pixels [p0, p1)
 * of x (N, C, H, W), any strides.  `run` (groups == 1, dw == 1, channels
 * contiguous and pixels C apart) lets a row of taps inside the image copy
 * as one run of kw * C elements.
 */
static PF_CONV_CLONES void F(im2col_rows)(const cinfo *ci, const pf_nd4 *x, int64_t p0,
                                          int64_t p1, char *colp)
{
    const pf_conv_geom *g = ci->g;
    const int64_t cg = ci->cg, K = ci->K, sc = x->s[1], sxh = x->s[2], sxw = x->s[3];
    const int64_t kw = g->kw, span = (kw - 1) * g->dw;
    const int run = g->groups == 1 && g->dw == 1 && sc == 1 && sxw == cg;
    int64_t n = p0 / ci->P, rem = p0 % ci->P, oh = rem / g->ow, ow = rem % g->ow;
    T *col = (T *)colp;
    for (int64_t p = p0; p < p1; p++) {
        T *restrict dst = col + (p - p0) * K;
        const T *xn = (const T *)x->data + n * x->s[0];
        const int64_t iw0 = ow * g->sw - g->pw;
        const int row_inside = iw0 >= 0 && iw0 + span < g->w;
        for (int64_t gr = 0; gr < g->groups; gr++) {
            const T *xg = xn + gr * cg * sc;
            for (int64_t i = 0; i < g->kh; i++) {
                int64_t ih = oh * g->sh - g->ph + i * g->dh;
                if (ih < 0 || ih >= g->h) {
                    for (int64_t c = 0; c < kw * cg; c++) {
                        dst[c] = 0;
                    }
                    dst += kw * cg;
                    continue;
                }
                const T *xr = xg + ih * sxh;
                if (run && row_inside) {
                    const T *src = xr + iw0 * sxw;
                    for (int64_t c = 0; c < kw * cg; c++) {
                        dst[c] = src[c];
                    }
                    dst += kw * cg;
                    continue;
                }
                for (int64_t j = 0; j < kw; j++, dst += cg) {
                    int64_t iw = iw0 + j * g->dw;
                    if (iw < 0 || iw >= g->w) {
                        for (int64_t c = 0; c < cg; c++) {
                            dst[c] = 0;
                        }
                        continue;
                    }
                    const T *src = xr + iw * sxw;
                    if (sc == 1) {
                        for (int64_t c = 0; c < cg; c++) {
                            dst[c] = src[c];
                        }
                    }
                    else {
                        for (int64_t c = 0; c < cg; c++) {
                            dst[c] = src[c * sc];
                        }
                    }
                }
            }
        }
        if (++ow == g->ow) {
            ow = 0;
            if (++oh == g->oh) {
                oh = 0;
                n++;
            }
        }
    }
}

/* gx (N, C, H, W) += the col2im of gcol (p1 - p0, K) contiguous: im2col_rows' adjoint. */
static PF_CONV_CLONES void F(col2im_rows)(const cinfo *ci, const char *gcolp, int64_t p0,
                                          int64_t p1, const pf_nd4 *gx)
{
    const pf_conv_geom *g = ci->g;
    const int64_t cg = ci->cg, K = ci->K, sc = gx->s[1], sxh = gx->s[2], sxw = gx->s[3];
    const int64_t kw = g->kw, span = (kw - 1) * g->dw;
    const int run = g->groups == 1 && g->dw == 1 && sc == 1 && sxw == cg;
    int64_t n = p0 / ci->P, rem = p0 % ci->P, oh = rem / g->ow, ow = rem % g->ow;
    const T *gcol = (const T *)gcolp;
    for (int64_t p = p0; p < p1; p++) {
        const T *restrict src = gcol + (p - p0) * K;
        T *xn = (T *)gx->data + n * gx->s[0];
        const int64_t iw0 = ow * g->sw - g->pw;
        const int row_inside = iw0 >= 0 && iw0 + span < g->w;
        for (int64_t gr = 0; gr < g->groups; gr++) {
            T *xg = xn + gr * cg * sc;
            for (int64_t i = 0; i < g->kh; i++, src += kw * cg) {
                int64_t ih = oh * g->sh - g->ph + i * g->dh;
                if (ih < 0 || ih >= g->h) {
                    continue;
                }
                T *xr = xg + ih * sxh;
                if (run && row_inside) {
                    T *restrict dst = xr + iw0 * sxw;
                    for (int64_t c = 0; c < kw * cg; c++) {
                        dst[c] += src[c];
                    }
                    continue;
                }
                for (int64_t j = 0; j < kw; j++) {
                    int64_t iw = iw0 + j * g->dw;
                    if (iw < 0 || iw >= g->w) {
                        continue;
                    }
                    T *restrict dst = xr + iw * sxw;
                    const T *s = src + j * cg;
                    if (sc == 1) {
                        for (int64_t c = 0; c < cg; c++) {
                            dst[c] += s[c];
                        }
                    }
                    else {
                        for (int64_t c = 0; c < cg; c++) {
                            dst[c * sc] += s[c];
                        }
                    }
                }
            }
        }
        if (++ow == g->ow) {
            ow = 0;
            if (++oh == g->oh) {
                oh = 0;
                n++;
            }
        }
    }
}

/*
 * colT (K, q1 - q0) contiguous = the channel-major im2col of pixels
 * [q0, q1) of image n of x (N, C, H, W), any strides.  Each row is written
 * as runs along ow: zeros where the tap falls in the padding, a strided
 * (or contiguous, for stride-1 rows) copy in between.
 */
static PF_CONV_CLONES void F(im2col_cols)(const cinfo *ci, const pf_nd4 *x, int64_t n,
                                          int64_t q0, int64_t q1, char *colp)
{
    const pf_conv_geom *g = ci->g;
    const int64_t L = q1 - q0, sxh = x->s[2], sxw = x->s[3];
    const T *xn = (const T *)x->data + n * x->s[0];
    T *col = (T *)colp;
    for (int64_t c = 0; c < g->c; c++) {
        const T *xc = xn + c * x->s[1];
        for (int64_t i = 0; i < g->kh; i++) {
            for (int64_t j = 0; j < g->kw; j++) {
                T *restrict dst = col + ((c * g->kh + i) * g->kw + j) * L;
                int64_t lo, hi, off = j * g->dw - g->pw, step = g->sw * sxw;
                ow_span(off, g->sw, g->w, &lo, &hi);
                for (int64_t q = q0; q < q1;) {
                    int64_t oh = q / g->ow, ow0 = q % g->ow;
                    int64_t ow1 = g->ow < ow0 + (q1 - q) ? g->ow : ow0 + (q1 - q);
                    int64_t ih = oh * g->sh - g->ph + i * g->dh;
                    /* this output row's segment [ow0, ow1) lands at d[0 ...] */
                    T *restrict d = dst + (q - q0);
                    int64_t a = ow0, b = ow0;
                    if (ih >= 0 && ih < g->h) {
                        a = lo > ow0 ? (lo < ow1 ? lo : ow1) : ow0;
                        b = hi < ow1 ? hi : ow1;
                        b = b < a ? a : b;
                    }
                    for (int64_t ow = ow0; ow < a; ow++) {
                        d[ow - ow0] = 0;
                    }
                    if (b > a) {
                        const T *s = xc + ih * sxh + (a * g->sw + off) * sxw;
                        T *da = d + (a - ow0);
                        if (step == 1) {
                            for (int64_t k = 0; k < b - a; k++) {
                                da[k] = s[k];
                            }
                        }
                        else {
                            for (int64_t k = 0; k < b - a; k++) {
                                da[k] = s[k * step];
                            }
                        }
                    }
                    for (int64_t ow = b; ow < ow1; ow++) {
                        d[ow - ow0] = 0;
                    }
                    q += ow1 - ow0;
                }
            }
        }
    }
}

/* gx (N, C, H, W), image n += the adjoint of im2col_cols for gcolT (K, q1 - q0). */
static PF_CONV_CLONES void F(col2im_cols)(const cinfo *ci, const char *gcolp, int64_t n,
                                          int64_t q0, int64_t q1, const pf_nd4 *gx)
{
    const pf_conv_geom *g = ci->g;
    const int64_t L = q1 - q0, sxh = gx->s[2], sxw = gx->s[3];
    T *xn = (T *)gx->data + n * gx->s[0];
    const T *gcol = (const T *)gcolp;
    for (int64_t c = 0; c < g->c; c++) {
        T *xc = xn + c * gx->s[1];
        for (int64_t i = 0; i < g->kh; i++) {
            for (int64_t j = 0; j < g->kw; j++) {
                const T *restrict src = gcol + ((c * g->kh + i) * g->kw + j) * L;
                int64_t lo, hi, off = j * g->dw - g->pw, step = g->sw * sxw;
                ow_span(off, g->sw, g->w, &lo, &hi);
                for (int64_t q = q0; q < q1;) {
                    int64_t oh = q / g->ow, ow0 = q % g->ow;
                    int64_t ow1 = g->ow < ow0 + (q1 - q) ? g->ow : ow0 + (q1 - q);
                    int64_t ih = oh * g->sh - g->ph + i * g->dh;
                    if (ih >= 0 && ih < g->h) {
                        int64_t a = lo > ow0 ? lo : ow0, b = hi < ow1 ? hi : ow1;
                        if (b > a) {
                            const T *s = src + (q - q0) + (a - ow0);
                            T *restrict d = xc + ih * sxh + (a * g->sw + off) * sxw;
                            if (step == 1) {
                                for (int64_t k = 0; k < b - a; k++) {
                                    d[k] += s[k];
                                }
                            }
                            else {
                                for (int64_t k = 0; k < b - a; k++) {
                                    d[k * step] += s[k];
                                }
                            }
                        }
                    }
                    q += ow1 - ow0;
                }
            }
        }
    }
}

/*
 * dst (H*W, C) contiguous = image n of t (N, C, H, W) (any strides):
 * the image in channels-last order, for the im2col of a planar input.
 */
static PF_CONV_CLONES void F(pack_image)(const pf_nd4 *t, int64_t n, int64_t C, int64_t H,
                                         int64_t W, char *dstp)
{
    const T *src = (const T *)t->data + n * t->s[0];
    T *dst = (T *)dstp;
    for (int64_t h = 0; h < H; h++) {
        for (int64_t c = 0; c < C; c++) {
            const T *s = src + c * t->s[1] + h * t->s[2];
            T *restrict d = dst + h * W * C + c;
            for (int64_t w = 0; w < W; w++) {
                d[w * C] = s[w * t->s[3]];
            }
        }
    }
}

/* image n of t (N, C, H, W) (any strides) = src (H*W, C) contiguous: pack_image's inverse. */
static PF_CONV_CLONES void F(unpack_image)(const char *srcp, int64_t C, int64_t H, int64_t W,
                                           const pf_nd4 *t, int64_t n)
{
    const T *src = (const T *)srcp;
    T *dst = (T *)t->data + n * t->s[0];
    for (int64_t h = 0; h < H; h++) {
        for (int64_t c = 0; c < C; c++) {
            T *restrict d = dst + c * t->s[1] + h * t->s[2];
            const T *s = src + h * W * C + c;
            for (int64_t w = 0; w < W; w++) {
                d[w * t->s[3]] = s[w * C];
            }
        }
    }
}

/*
 * dst = pixels [p0, p1) of t (N, C, H, W) (any strides), pixel-major
 * (p1 - p0, C) when pixel_major, else channel-major (C, p1 - p0).
 */
static PF_CONV_CLONES void F(pack_pixels)(const pf_nd4 *t, int64_t C, int64_t H, int64_t W,
                                          int64_t p0, int64_t p1, int pixel_major, char *dstp)
{
    const int64_t P = H * W, L = p1 - p0, sc = t->s[1];
    T *dst = (T *)dstp;
    for (int64_t p = p0; p < p1; p++) {
        int64_t n = p / P, h = p % P / W, w = p % W;
        const T *src = (const T *)t->data + n * t->s[0] + h * t->s[2] + w * t->s[3];
        if (pixel_major) {
            T *restrict d = dst + (p - p0) * C;
            for (int64_t c = 0; c < C; c++) {
                d[c] = src[c * sc];
            }
        }
        else {
            T *d = dst + (p - p0);
            for (int64_t c = 0; c < C; c++) {
                d[c * L] = src[c * sc];
            }
        }
    }
}

/*
 * wr (groups, KH*KW*Cg, Og) contiguous = w (O, Cg, KH, KW) (any strides):
 * each group's weight as the (K x Og) GEMM operand, rows ordered as the
 * im2col block's columns: (i, j, c'), or (c', i, j) for the channel-major one.
 */
static void F(pack_weight)(const cinfo *ci, const pf_nd4 *w, char *dstp)
{
    const pf_conv_geom *g = ci->g;
    const int64_t cg = ci->cg, og = ci->og, kg = ci->kg;
    T *dst = (T *)dstp;
    for (int64_t o = 0; o < g->o; o++) {
        int64_t gr = o / og, oo = o % og;
        for (int64_t c = 0; c < cg; c++) {
            for (int64_t i = 0; i < g->kh; i++) {
                for (int64_t j = 0; j < g->kw; j++) {
                    int64_t q = ci->cm ? (c * g->kh + i) * g->kw + j : (i * g->kw + j) * cg + c;
                    dst[(gr * kg + q) * og + oo] =
                        ((const T *)w->data)[o * w->s[0] + c * w->s[1] + i * w->s[2] +
                                             j * w->s[3]];
                }
            }
        }
    }
}

/*
 * gw (O, Cg, KH, KW) contiguous = acc (groups, Og, KH*KW*Cg), columns ordered as
 * pack_weight's rows.
 */
static void F(unpack_weight_rows)(const cinfo *ci, const char *accp, char *gwp)
{
    const pf_conv_geom *g = ci->g;
    const int64_t cg = ci->cg, og = ci->og, kg = ci->kg, kk = g->kh * g->kw;
    const T *acc = (const T *)accp;
    T *gw = (T *)gwp;
    for (int64_t o = 0; o < g->o; o++) {
        int64_t gr = o / og, oo = o % og;
        const T *a = acc + (gr * og + oo) * kg;
        for (int64_t c = 0; c < cg; c++) {
            for (int64_t t = 0; t < kk; t++) {
                gw[(o * cg + c) * kk + t] = a[ci->cm ? c * kk + t : t * cg + c];
            }
        }
    }
}

/* y rows [0, m) (pixel-major, row length O) = bias (O): the start of a GEMM that accumulates */
static PF_CONV_CLONES void F(fill_rows)(char *yp, int64_t m, int64_t O, const char *bp,
                                        int64_t bs)
{
    T *y = (T *)yp;
    const T *b = (const T *)bp;
    for (int64_t r = 0; r < m; r++) {
        T *restrict yr = y + r * O;
        for (int64_t o = 0; o < O; o++) {
            yr[o] = b[o * bs];
        }
    }
}

/* y rows [0, m) (pixel-major, row length O) += bias (O) */
static PF_CONV_CLONES void F(bias_rows)(char *yp, int64_t m, int64_t O, const char *bp,
                                        int64_t bs)
{
    T *y = (T *)yp;
    const T *b = (const T *)bp;
    for (int64_t r = 0; r < m; r++) {
        T *restrict yr = y + r * O;
        if (bs == 1) {
            for (int64_t o = 0; o < O; o++) {
                yr[o] += b[o];
            }
        }
        else {
            for (int64_t o = 0; o < O; o++) {
                yr[o] += b[o * bs];
            }
        }
    }
}

/* y (O, ld) channel-major, columns [0, L) += bias (O) */
static PF_CONV_CLONES void F(bias_cols)(char *yp, int64_t O, int64_t L, int64_t ld,
                                        const char *bp, int64_t bs)
{
    T *y = (T *)yp;
    const T *b = (const T *)bp;
    for (int64_t o = 0; o < O; o++) {
        T *restrict yr = y + o * ld;
        T v = b[o * bs];
        for (int64_t q = 0; q < L; q++) {
            yr[q] += v;
        }
    }
}

/*
 * dst (O, ld) channel-major, columns [0, L) = src (L, O) pixel-major
 * (+ bias (O) when not NULL): a GEMM's pixel-major result stored planar.
 */
static PF_CONV_CLONES void F(store_planar)(const char *srcp, int64_t L, int64_t O, char *dstp,
                                           int64_t ld, const char *bp, int64_t bs)
{
    const T *src = (const T *)srcp;
    const T *b = (const T *)bp;
    T *dst = (T *)dstp;
    /* in blocks of 64 pixels, so that the block's rows stay in L1 across the channels */
    for (int64_t l0 = 0; l0 < L; l0 += 64) {
        int64_t l1 = l0 + 64 < L ? l0 + 64 : L;
        for (int64_t o = 0; o < O; o++) {
            T *restrict d = dst + o * ld;
            T v = b != NULL ? b[o * bs] : (T)0;
            for (int64_t l = l0; l < l1; l++) {
                d[l] = src[l * O + o] + v;
            }
        }
    }
}

/* dst (n) += src (n) */
static PF_CONV_CLONES void F(add_into)(char *dstp, const char *srcp, int64_t n)
{
    T *restrict dst = (T *)dstp;
    const T *restrict src = (const T *)srcp;
    for (int64_t i = 0; i < n; i++) {
        dst[i] += src[i];
    }
}

/* ------------------------------------------------------------ depthwise */

/*
 * Depthwise convolutions (groups == C, one input channel per group, M =
 * O / C outputs per channel) have no reduction over channels to hand to a
 * GEMM: they run as direct loops.  wt (KH*KW, O) is the weight packed tap
 * by tap.  Two loop shapes, as for pooling:
 *   pix:   image n, channels [c0, c1): for each output pixel and tap, a
 *          vector loop along the channels (contiguous when channels-last);
 *   plane: image n, channel c: for each output row and tap, a vector loop
 *          along the row's span inside the image.
 * Output channel o = c * M + m reads input channel c.
 */

/*
 * The pix loops walk output rows: for each tap, the span of output pixels
 * whose input pixel is inside the image, each pixel a vector op along the
 * channels.  The row being accumulated stays in L1 across the taps.
 */

/*
 * y (N, O, OH, OW), channels [c0*M, c1*M) of image n.  With M == 1 and
 * channels contiguous, each output pixel is summed over its taps in blocks
 * of DW_VB channels whose accumulators stay in registers (the block size is
 * a constant, so the compiler unrolls it into whole vectors); otherwise
 * the output row is accumulated tap by tap.
 */
static PF_CONV_CLONES void F(dw_fwd_pix)(const cinfo *ci, int64_t n, int64_t c0, int64_t c1,
                                         const pf_nd4 *x, const char *wtp, const char *bp,
                                         int64_t bs, const pf_nd4 *y)
{
    const pf_conv_geom *g = ci->g;
    const int64_t M = ci->og, O = g->o, nc = c1 - c0;
    const int64_t sc = x->s[1], sxw = x->s[3], ys = y->s[1], yw = y->s[3];
    const T *wt = (const T *)wtp, *b = (const T *)bp;
    const T *xn = (const T *)x->data + n * x->s[0] + c0 * sc;
    const int64_t full = M == 1 && sc == 1 && ys == 1 && (b == NULL || bs == 1) ? nc / DW_VB : 0;
    for (int64_t oh = 0; full > 0 && oh < g->oh; oh++) {
        for (int64_t ow = 0; ow < g->ow; ow++) {
            T *yp = (T *)y->data + n * y->s[0] + c0 + oh * y->s[2] + ow * yw;
            for (int64_t cb = 0; cb < full * DW_VB; cb += DW_VB) {
                T acc[DW_VB];
                for (int64_t k = 0; k < DW_VB; k++) {
                    acc[k] = b != NULL ? b[c0 + cb + k] : (T)0;
                }
                for (int64_t i = 0; i < g->kh; i++) {
                    int64_t ih = oh * g->sh - g->ph + i * g->dh;
                    for (int64_t j = 0; ih >= 0 && ih < g->h && j < g->kw; j++) {
                        int64_t iw = ow * g->sw - g->pw + j * g->dw;
                        if (iw < 0 || iw >= g->w) {
                            continue;
                        }
                        const T *xp = xn + ih * x->s[2] + iw * sxw + cb;
                        const T *w = wt + (i * g->kw + j) * O + c0 + cb;
                        for (int64_t k = 0; k < DW_VB; k++) {
                            acc[k] += xp[k] * w[k];
                        }
                    }
                }
                for (int64_t k = 0; k < DW_VB; k++) {
                    yp[cb + k] = acc[k];
                }
            }
        }
    }
    if (full * DW_VB == nc) {
        return;
    }
    /* the channels left (or all of them): rows accumulated tap by tap */
    c0 += full * DW_VB;
    xn += full * DW_VB * sc;
    const int64_t rest = (c1 - c0) * M;
    for (int64_t oh = 0; oh < g->oh; oh++) {
        T *yr = (T *)y->data + n * y->s[0] + c0 * M * ys + oh * y->s[2];
        for (int64_t ow = 0; ow < g->ow; ow++) {
            for (int64_t k = 0; k < rest; k++) {
                yr[ow * yw + k * ys] = b != NULL ? b[(c0 * M + k) * bs] : (T)0;
            }
        }
        for (int64_t i = 0; i < g->kh; i++) {
            int64_t ih = oh * g->sh - g->ph + i * g->dh;
            if (ih < 0 || ih >= g->h) {
                continue;
            }
            for (int64_t j = 0; j < g->kw; j++) {
                int64_t lo, hi, off = j * g->dw - g->pw;
                ow_span(off, g->sw, g->w, &lo, &hi);
                hi = hi < g->ow ? hi : g->ow;
                const T *w = wt + (i * g->kw + j) * O + c0 * M;
                for (int64_t ow = lo; ow < hi; ow++) {
                    const T *xp = xn + ih * x->s[2] + (ow * g->sw + off) * sxw;
                    T *yp = yr + ow * yw;
                    for (int64_t c = 0; c < c1 - c0; c++) {
                        T xv = xp[c * sc];
                        for (int64_t m = 0; m < M; m++) {
                            yp[(c * M + m) * ys] += xv * w[c * M + m];
                        }
                    }
                }
            }
        }
    }
}

/* gx (N, C, H, W), channels [c0, c1) of image n = the input gradient from gy */
static PF_CONV_CLONES void F(dw_igrad_pix)(const cinfo *ci, int64_t n, int64_t c0, int64_t c1,
                                           const pf_nd4 *gy, const char *wtp, const pf_nd4 *gx)
{
    const pf_conv_geom *g = ci->g;
    const int64_t M = ci->og, O = g->o, nc = c1 - c0, sc = gx->s[1], sg = gy->s[1];
    const int fast = M == 1 && sc == 1 && sg == 1;
    const T *wt = (const T *)wtp;
    T *gxn = (T *)gx->data + n * gx->s[0] + c0 * sc;
    const T *gyn = (const T *)gy->data + n * gy->s[0] + c0 * M * sg;
    for (int64_t ih = 0; ih < g->h; ih++) {
        for (int64_t iw = 0; iw < g->w; iw++) {
            T *restrict d = gxn + ih * gx->s[2] + iw * gx->s[3];
            if (sc == 1) {
                for (int64_t c = 0; c < nc; c++) {
                    d[c] = 0;
                }
            }
            else {
                for (int64_t c = 0; c < nc; c++) {
                    d[c * sc] = 0;
                }
            }
        }
    }
    for (int64_t oh = 0; oh < g->oh; oh++) {
        for (int64_t i = 0; i < g->kh; i++) {
            int64_t ih = oh * g->sh - g->ph + i * g->dh;
            if (ih < 0 || ih >= g->h) {
                continue;
            }
            for (int64_t j = 0; j < g->kw; j++) {
                int64_t lo, hi, off = j * g->dw - g->pw;
                ow_span(off, g->sw, g->w, &lo, &hi);
                hi = hi < g->ow ? hi : g->ow;
                const T *w = wt + (i * g->kw + j) * O + c0 * M;
                for (int64_t ow = lo; ow < hi; ow++) {
                    const T *gp = gyn + oh * gy->s[2] + ow * gy->s[3];
                    T *restrict d = gxn + ih * gx->s[2] + (ow * g->sw + off) * gx->s[3];
                    if (fast) {
                        for (int64_t c = 0; c < nc; c++) {
                            d[c] += gp[c] * w[c];
                        }
                        continue;
                    }
                    for (int64_t c = 0; c < nc; c++) {
                        T sum = 0;
                        for (int64_t m = 0; m < M; m++) {
                            sum += gp[(c * M + m) * sg] * w[c * M + m];
                        }
                        d[c * sc] += sum;
                    }
                }
            }
        }
    }
}

/* acc (KH*KW, O) += the weight gradient of channels [c0, c1) over image n */
static PF_CONV_CLONES void F(dw_wgrad_pix)(const cinfo *ci, int64_t n, int64_t c0, int64_t c1,
                                           const pf_nd4 *x, const pf_nd4 *gy, char *accp)
{
    const pf_conv_geom *g = ci->g;
    const int64_t M = ci->og, O = g->o, nc = c1 - c0, sc = x->s[1], sg = gy->s[1];
    const int fast = M == 1 && sc == 1 && sg == 1;
    T *acc = (T *)accp;
    const T *xn = (const T *)x->data + n * x->s[0] + c0 * sc;
    const T *gyn = (const T *)gy->data + n * gy->s[0] + c0 * M * sg;
    for (int64_t oh = 0; oh < g->oh; oh++) {
        for (int64_t i = 0; i < g->kh; i++) {
            int64_t ih = oh * g->sh - g->ph + i * g->dh;
            if (ih < 0 || ih >= g->h) {
                continue;
            }
            for (int64_t j = 0; j < g->kw; j++) {
                int64_t lo, hi, off = j * g->dw - g->pw;
                ow_span(off, g->sw, g->w, &lo, &hi);
                hi = hi < g->ow ? hi : g->ow;
                T *restrict a = acc + (i * g->kw + j) * O + c0 * M;
                for (int64_t ow = lo; ow < hi; ow++) {
                    const T *gp = gyn + oh * gy->s[2] + ow * gy->s[3];
                    const T *xp = xn + ih * x->s[2] + (ow * g->sw + off) * x->s[3];
                    if (fast) {
                        for (int64_t c = 0; c < nc; c++) {
                            a[c] += gp[c] * xp[c];
                        }
                        continue;
                    }
                    for (int64_t c = 0; c < nc; c++) {
                        T xv = xp[c * sc];
                        for (int64_t m = 0; m < M; m++) {
                            a[c * M + m] += gp[(c * M + m) * sg] * xv;
                        }
                    }
                }
            }
        }
    }
}

/* y planes c*M ... c*M + M - 1 of image n (bias added) */
static PF_CONV_CLONES void F(dw_fwd_plane)(const cinfo *ci, int64_t n, int64_t c,
                                           const pf_nd4 *x, const char *wtp, const char *bp,
                                           int64_t bs, const pf_nd4 *y)
{
    const pf_conv_geom *g = ci->g;
    const int64_t M = ci->og, O = g->o, sxw = x->s[3];
    const T *wt = (const T *)wtp, *b = (const T *)bp;
    const T *xc = (const T *)x->data + n * x->s[0] + c * x->s[1];
    for (int64_t m = 0; m < M; m++) {
        int64_t o = c * M + m;
        T *yo = (T *)y->data + n * y->s[0] + o * y->s[1];
        for (int64_t oh = 0; oh < g->oh; oh++) {
            T *yr = yo + oh * y->s[2];
            T b0 = b != NULL ? b[o * bs] : (T)0;
            for (int64_t ow = 0; ow < g->ow; ow++) {
                yr[ow * y->s[3]] = b0;
            }
            for (int64_t i = 0; i < g->kh; i++) {
                int64_t ih = oh * g->sh - g->ph + i * g->dh;
                if (ih < 0 || ih >= g->h) {
                    continue;
                }
                for (int64_t j = 0; j < g->kw; j++) {
                    int64_t lo, hi, off = j * g->dw - g->pw, step = g->sw * sxw;
                    ow_span(off, g->sw, g->w, &lo, &hi);
                    hi = hi < g->ow ? hi : g->ow;
                    if (hi <= lo) {
                        continue;
                    }
                    T wv = wt[(i * g->kw + j) * O + o];
                    const T *s = xc + ih * x->s[2] + (lo * g->sw + off) * sxw;
                    T *d = yr + lo * y->s[3];
                    if (step == 1 && y->s[3] == 1) {
                        for (int64_t k = 0; k < hi - lo; k++) {
                            d[k] += wv * s[k];
                        }
                    }
                    else {
                        for (int64_t k = 0; k < hi - lo; k++) {
                            d[k * y->s[3]] += wv * s[k * step];
                        }
                    }
                }
            }
        }
    }
}

/* gx plane c of image n = the input gradient from gy planes c*M ... */
static PF_CONV_CLONES void F(dw_igrad_plane)(const cinfo *ci, int64_t n, int64_t c,
                                             const pf_nd4 *gy, const char *wtp,
                                             const pf_nd4 *gx)
{
    const pf_conv_geom *g = ci->g;
    const int64_t M = ci->og, O = g->o, dxw = gx->s[3];
    const T *wt = (const T *)wtp;
    T *gc = (T *)gx->data + n * gx->s[0] + c * gx->s[1];
    for (int64_t ih = 0; ih < g->h; ih++) {
        for (int64_t iw = 0; iw < g->w; iw++) {
            gc[ih * gx->s[2] + iw * dxw] = 0;
        }
    }
    for (int64_t m = 0; m < M; m++) {
        int64_t o = c * M + m;
        const T *go = (const T *)gy->data + n * gy->s[0] + o * gy->s[1];
        for (int64_t oh = 0; oh < g->oh; oh++) {
            const T *gr = go + oh * gy->s[2];
            for (int64_t i = 0; i < g->kh; i++) {
                int64_t ih = oh * g->sh - g->ph + i * g->dh;
                if (ih < 0 || ih >= g->h) {
                    continue;
                }
                for (int64_t j = 0; j < g->kw; j++) {
                    int64_t lo, hi, off = j * g->dw - g->pw, step = g->sw * dxw;
                    ow_span(off, g->sw, g->w, &lo, &hi);
                    hi = hi < g->ow ? hi : g->ow;
                    if (hi <= lo) {
                        continue;
                    }
                    T wv = wt[(i * g->kw + j) * O + o];
                    T *d = gc + ih * gx->s[2] + (lo * g->sw + off) * dxw;
                    const T *s = gr + lo * gy->s[3];
                    if (step == 1 && gy->s[3] == 1) {
                        for (int64_t k = 0; k < hi - lo; k++) {
                            d[k] += wv * s[k];
                        }
                    }
                    else {
                        for (int64_t k = 0; k < hi - lo; k++) {
                            d[k * step] += wv * s[k * gy->s[3]];
                        }
                    }
                }
            }
        }
    }
}

/*
 * acc (KH*KW, O) += the weight gradient of channel c's outputs over image
 * n.  Each tap's sum runs in a row of DW_SEG partial sums (elementwise, so
 * it vectorises; a single running sum would not, without reassociation).
 */
static PF_CONV_CLONES void F(dw_wgrad_plane)(const cinfo *ci, int64_t n, int64_t c,
                                             const pf_nd4 *x, const pf_nd4 *gy, char *accp)
{
    const pf_conv_geom *g = ci->g;
    const int64_t M = ci->og, O = g->o, sxw = x->s[3], gw = gy->s[3];
    T *acc = (T *)accp;
    T part[DW_SEG];
    const T *xc = (const T *)x->data + n * x->s[0] + c * x->s[1];
    for (int64_t m = 0; m < M; m++) {
        int64_t o = c * M + m;
        const T *go = (const T *)gy->data + n * gy->s[0] + o * gy->s[1];
        for (int64_t i = 0; i < g->kh; i++) {
            for (int64_t j = 0; j < g->kw; j++) {
                int64_t lo0, hi, off = j * g->dw - g->pw, step = g->sw * sxw;
                ow_span(off, g->sw, g->w, &lo0, &hi);
                hi = hi < g->ow ? hi : g->ow;
                T s = 0;
                for (int64_t lo = lo0; lo < hi; lo += DW_SEG) {
                    int64_t len = hi - lo < DW_SEG ? hi - lo : DW_SEG;
                    for (int64_t k = 0; k < len; k++) {
                        part[k] = 0;
                    }
                    for (int64_t oh = 0; oh < g->oh; oh++) {
                        int64_t ih = oh * g->sh - g->ph + i * g->dh;
                        if (ih < 0 || ih >= g->h) {
                            continue;
                        }
                        const T *xs = xc + ih * x->s[2] + (lo * g->sw + off) * sxw;
                        const T *gr = go + oh * gy->s[2] + lo * gw;
                        if (step == 1 && gw == 1) {
                            for (int64_t k = 0; k < len; k++) {
                                part[k] += gr[k] * xs[k];
                            }
                        }
                        else {
                            for (int64_t k = 0; k < len; k++) {
                                part[k] += gr[k * gw] * xs[k * step];
                            }
                        }
                    }
                    for (int64_t k = 0; k < len; k++) {
                        s += part[k];
                    }
                }
                acc[(i * g->kw + j) * O + o] += s;
            }
        }
    }
}

/* wt (KH*KW, O) = w (O, 1, KH, KW), any strides; dir < 0: the inverse, gw = wt */
static void F(dw_pack)(const cinfo *ci, const pf_nd4 *w, char *wtp, int dir)
{
    const pf_conv_geom *g = ci->g;
    T *wt = (T *)wtp;
    for (int64_t o = 0; o < g->o; o++) {
        for (int64_t i = 0; i < g->kh; i++) {
            for (int64_t j = 0; j < g->kw; j++) {
                T *e = (T *)w->data + o * w->s[0] + i * w->s[2] + j * w->s[3];
                T *t = wt + (i * g->kw + j) * g->o + o;
                if (dir < 0) {
                    *e = *t;
                }
                else {
                    *t = *e;
                }
            }
        }
    }
}

static const conv_loops F(conv_loops) = {
    F(im2col_rows), F(col2im_rows), F(im2col_cols), F(col2im_cols), F(pack_image),
    F(unpack_image), F(pack_pixels),
    F(pack_weight), F(unpack_weight_rows), F(bias_rows), F(bias_cols), F(store_planar),
    F(add_into), F(fill_rows), F(dw_fwd_pix), F(dw_igrad_pix), F(dw_wgrad_pix), F(dw_fwd_plane),
    F(dw_igrad_plane), F(dw_wgrad_plane), F(dw_pack),
};

#undef F
#undef CAT
#undef CAT2
