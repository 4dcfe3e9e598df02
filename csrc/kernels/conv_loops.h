/*
 * conv_loops.h -- the typed loops of the convolution kernels: im2col and
 * col2im, packing, bias and partial sums.  conv.c includes this file once
 * per element type with T (float, double) and TS (f32, f64) defined; every
 * function gets the suffix _TS.  The loops only move or add elements: the
 * arithmetic of a convolution is all in the GEMMs.
 *
 * An im2col block has one row per output pixel p of the flattened
 * (n, oh, ow) space, holding for each group, tap (i, j) and channel c' of
 * the group one element: order (g, i, j, c').  With channels contiguous
 * (channels-last), a tap is a run of c' and, without groups and dilation,
 * a whole row of taps (j, c') is one contiguous run of the input.
 */
#define CAT2(a, b) a##_##b
#define CAT(a, b) CAT2(a, b)
#define F(name) CAT(name, TS)

/*
 * col (p1 - p0, K) contiguous = the im2col rows of output pixels [p0, p1)
 * of x (N, C, H, W), any strides.  `run` (groups == 1, dw == 1, channels
 * contiguous and pixels C apart) lets a row of taps inside the image copy
 * as one run of kw * C elements.
 */
static PF_CONV_CLONES void F(im2col_rows)(const cinfo *ci, const pf_nd4 *x, int64_t p0, int64_t p1,
                           char *colp)
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
static PF_CONV_CLONES void F(col2im_rows)(const cinfo *ci, const char *gcolp, int64_t p0, int64_t p1,
                           const pf_nd4 *gx)
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
 * dst (H*W, C) contiguous = image n of t (N, C, H, W) (any strides):
 * the image in channels-last order, for the im2col of a planar input.
 */
static PF_CONV_CLONES void F(pack_image)(const pf_nd4 *t, int64_t n, int64_t C, int64_t H, int64_t W,
                          char *dstp)
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
static PF_CONV_CLONES void F(unpack_image)(const char *srcp, int64_t C, int64_t H, int64_t W, const pf_nd4 *t,
                            int64_t n)
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
static PF_CONV_CLONES void F(pack_pixels)(const pf_nd4 *t, int64_t C, int64_t H, int64_t W, int64_t p0,
                           int64_t p1, int pixel_major, char *dstp)
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
 * each group's weight as the (K x Og) GEMM operand, rows ordered (i, j, c').
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
                    dst[(gr * kg + (i * g->kw + j) * cg + c) * og + oo] =
                        ((const T *)w->data)[o * w->s[0] + c * w->s[1] + i * w->s[2] +
                                             j * w->s[3]];
                }
            }
        }
    }
}

/* gw (O, Cg, KH, KW) contiguous = acc (groups, Og, KH*KW*Cg), columns ordered (i, j, c'). */
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
                gw[(o * cg + c) * kk + t] = a[t * cg + c];
            }
        }
    }
}

/* y rows [0, m) (pixel-major, row length O) += bias (O) */
static PF_CONV_CLONES void F(bias_rows)(char *yp, int64_t m, int64_t O, const char *bp, int64_t bs)
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
static PF_CONV_CLONES void F(bias_cols)(char *yp, int64_t O, int64_t L, int64_t ld, const char *bp, int64_t bs)
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

/* dst (n) += src (n) */
static PF_CONV_CLONES void F(add_into)(char *dstp, const char *srcp, int64_t n)
{
    T *restrict dst = (T *)dstp;
    const T *restrict src = (const T *)srcp;
    for (int64_t i = 0; i < n; i++) {
        dst[i] += src[i];
    }
}

static const conv_loops F(conv_loops) = {
    F(im2col_rows), F(col2im_rows), F(pack_image), F(unpack_image), F(pack_pixels),
    F(pack_weight), F(unpack_weight_rows), F(bias_rows), F(bias_cols), F(add_into),
};

#undef F
#undef CAT
#undef CAT2
