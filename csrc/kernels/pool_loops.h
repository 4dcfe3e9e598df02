/*
 * pool_loops.h -- the typed loops of the pooling kernels.  pool.c includes
 * this file once per element type with T, TS (suffix) and T_NEG_INF
 * defined.
 *
 * Two shapes of loop, one per layout:
 *   plane: one (n, c) plane at a time; for each output row, each tap of
 *          the window walks the span of output columns whose input column
 *          is inside the image (ow_span), so the inner loop has no
 *          bounds tests and runs along W;
 *   pixel: channels-last; for each output pixel, each tap inside the
 *          image updates a run of SEG channels (contiguous in NHWC).
 * Both take any strides; only the speed depends on the layout.
 *
 * Max pooling keeps the first maximum of a window in row-major tap order
 * (the update is strict), and NaN beats every number (the first NaN wins).
 * Where a maximum is, is kept as its input row and column.
 */
#define CAT2(a, b) a##_##b
#define CAT(a, b) CAT2(a, b)
#define F(name) CAT(name, TS)

/*
 * Does v replace the running maximum m (h < 0: nothing seen yet)?  Bitwise
 * operators, not short-circuits, so that the update stays a select and the
 * loops vectorise: with random data a branch here mispredicts half the time.
 */
static inline int F(beats)(T v, T m, int32_t h)
{
    return (h < 0) | (v > m) | ((v != v) & (m == m));
}

/*
 * a where take, else b, written with bit masks: GCC turns a plain ?: into
 * a branch in the scalar code (all of it when a row is shorter than a
 * vector), and with random data that branch mispredicts half the time.
 */
static inline T F(pick)(int take, T a, T b)
{
    U ua, ub, r;
    memcpy(&ua, &a, sizeof(T));
    memcpy(&ub, &b, sizeof(T));
    U m = (U)0 - (U)take;
    r = (ua & m) | (ub & ~m);
    T out;
    memcpy(&out, &r, sizeof(T));
    return out;
}

/* ---------------------------------------------------------------- plane */

/* y[oh, :] of one plane (row stride ysh, column stride ysw) = window maxima */
static PF_CONV_CLONES void F(max_plane_fwd)(const pf_pool_geom *g, const T *x, int64_t sxh,
                                            int64_t sxw, T *y, int64_t ysh, int64_t ysw)
{
    T m[SEG];
    for (int64_t oh = 0; oh < g->oh; oh++) {
        for (int64_t o0 = 0; o0 < g->ow; o0 += SEG) {
            int64_t o1 = o0 + SEG < g->ow ? o0 + SEG : g->ow;
            for (int64_t k = 0; k < o1 - o0; k++) {
                m[k] = T_NEG_INF;
            }
            for (int64_t i = 0; i < g->kh; i++) {
                int64_t ih = oh * g->sh - g->ph + i * g->dh;
                if (ih < 0 || ih >= g->h) {
                    continue;
                }
                for (int64_t j = 0; j < g->kw; j++) {
                    int64_t lo, hi, off = j * g->dw - g->pw, step = g->sw * sxw;
                    ow_span(off, g->sw, g->w, &lo, &hi);
                    lo = lo > o0 ? lo : o0;
                    hi = hi < o1 ? hi : o1;
                    if (hi <= lo) {
                        continue;
                    }
                    const T *s = x + ih * sxh + (lo * g->sw + off) * sxw;
                    T *mm = m + (lo - o0);
                    for (int64_t k = 0; k < hi - lo; k++) {
                        T v = s[k * step];
                        mm[k] = (v > mm[k] || v != v) ? v : mm[k];
                    }
                }
            }
            for (int64_t k = 0; k < o1 - o0; k++) {
                y[oh * ysh + (o0 + k) * ysw] = m[k];
            }
        }
    }
}

/*
 * For output row oh, columns [o0, o1): (ph[k], pw[k]) = the input row and
 * column of the first maximum of the window (ph[k] = -1 when the window
 * holds no input element).  Positions are kept as row and column, never
 * as a flat index, so that using them costs no division.
 */
static PF_CONV_CLONES void F(argmax_plane_seg)(const pf_pool_geom *g, const T *x, int64_t sxh,
                                               int64_t sxw, int64_t oh, int64_t o0, int64_t o1,
                                               int32_t *ph, int32_t *pw)
{
    T m[SEG];
    for (int64_t k = 0; k < o1 - o0; k++) {
        ph[k] = -1;
        pw[k] = 0;
        m[k] = T_NEG_INF;
    }
    for (int64_t i = 0; i < g->kh; i++) {
        int64_t ih = oh * g->sh - g->ph + i * g->dh;
        if (ih < 0 || ih >= g->h) {
            continue;
        }
        for (int64_t j = 0; j < g->kw; j++) {
            int64_t lo, hi, off = j * g->dw - g->pw, step = g->sw * sxw;
            ow_span(off, g->sw, g->w, &lo, &hi);
            lo = lo > o0 ? lo : o0;
            hi = hi < o1 ? hi : o1;
            if (hi <= lo) {
                continue;
            }
            const T *s = x + ih * sxh + (lo * g->sw + off) * sxw;
            const int32_t ih32 = (int32_t)ih, iw32 = (int32_t)(lo * g->sw + off);
            const int32_t sw32 = (int32_t)g->sw;
            T *restrict mk = m + (lo - o0);
            int32_t *restrict hk = ph + (lo - o0), *restrict wk = pw + (lo - o0);
            for (int64_t k = 0; k < hi - lo; k++) {
                T v = s[k * step], mv = mk[k];
                int32_t hv = hk[k], wv = wk[k];
                int take = F(beats)(v, mv, hv);
                mk[k] = F(pick)(take, v, mv);
                hk[k] = pick_i32(take, ih32, hv);
                wk[k] = pick_i32(take, iw32 + (int32_t)k * sw32, wv);
            }
        }
    }
}

/*
 * gx plane += gy plane at the window maxima of the x plane.  dj: the
 * windows are disjoint, so each tap position is written once -- gy where
 * the maximum is, 0 elsewhere -- instead of zeroed first and scattered into.
 */
static PF_CONV_CLONES void F(max_plane_bwd)(const pf_pool_geom *g, const T *gy, int64_t gsh,
                                            int64_t gsw, const T *x, int64_t sxh, int64_t sxw,
                                            T *gx, int64_t dsh, int64_t dsw, int dj)
{
    int32_t ph[SEG], pw[SEG];
    for (int64_t oh = 0; oh < g->oh; oh++) {
        for (int64_t o0 = 0; o0 < g->ow; o0 += SEG) {
            int64_t o1 = o0 + SEG < g->ow ? o0 + SEG : g->ow;
            F(argmax_plane_seg)(g, x, sxh, sxw, oh, o0, o1, ph, pw);
            const T *gr = gy + oh * gsh + o0 * gsw;
            if (!dj) {
                for (int64_t k = 0; k < o1 - o0; k++) {
                    if (ph[k] >= 0) {
                        gx[ph[k] * dsh + pw[k] * dsw] += gr[k * gsw];
                    }
                }
                continue;
            }
            for (int64_t i = 0; i < g->kh; i++) {
                int64_t ih = oh * g->sh - g->ph + i * g->dh;
                if (ih < 0 || ih >= g->h) {
                    continue;
                }
                for (int64_t j = 0; j < g->kw; j++) {
                    int64_t lo, hi, off = j * g->dw - g->pw, step = g->sw * dsw;
                    ow_span(off, g->sw, g->w, &lo, &hi);
                    lo = lo > o0 ? lo : o0;
                    hi = hi < o1 ? hi : o1;
                    if (hi <= lo) {
                        continue;
                    }
                    T *restrict d = gx + ih * dsh + (lo * g->sw + off) * dsw;
                    const int32_t ih32 = (int32_t)ih, iw32 = (int32_t)(lo * g->sw + off);
                    const int32_t sw32 = (int32_t)g->sw;
                    const int32_t *hk = ph + (lo - o0), *wk = pw + (lo - o0);
                    const T *gk = gr + (lo - o0) * gsw;
                    /* the load is unconditional, so that the select needs no branch */
                    for (int64_t k = 0; k < hi - lo; k++) {
                        int hit = (hk[k] == ih32) & (wk[k] == iw32 + (int32_t)k * sw32);
                        T v = gk[k * gsw];
                        d[k * step] = F(pick)(hit, v, (T)0);
                    }
                }
            }
        }
    }
}

/* y plane = v plane read at the window maxima of the x plane (0 for an empty window) */
static PF_CONV_CLONES void F(max_plane_sel)(const pf_pool_geom *g, const T *v, int64_t vsh,
                                            int64_t vsw, const T *x, int64_t sxh, int64_t sxw,
                                            T *y, int64_t ysh, int64_t ysw)
{
    int32_t ph[SEG], pw[SEG];
    for (int64_t oh = 0; oh < g->oh; oh++) {
        for (int64_t o0 = 0; o0 < g->ow; o0 += SEG) {
            int64_t o1 = o0 + SEG < g->ow ? o0 + SEG : g->ow;
            F(argmax_plane_seg)(g, x, sxh, sxw, oh, o0, o1, ph, pw);
            T *yr = y + oh * ysh + o0 * ysw;
            for (int64_t k = 0; k < o1 - o0; k++) {
                yr[k * ysw] = ph[k] >= 0 ? v[ph[k] * vsh + pw[k] * vsw] : 0;
            }
        }
    }
}

/* y plane = window averages of the x plane */
static PF_CONV_CLONES void F(avg_plane_fwd)(const pf_pool_geom *g, const T *x, int64_t sxh,
                                            int64_t sxw, T *y, int64_t ysh, int64_t ysw)
{
    T acc[SEG];
    for (int64_t oh = 0; oh < g->oh; oh++) {
        for (int64_t o0 = 0; o0 < g->ow; o0 += SEG) {
            int64_t o1 = o0 + SEG < g->ow ? o0 + SEG : g->ow;
            for (int64_t k = 0; k < o1 - o0; k++) {
                acc[k] = 0;
            }
            for (int64_t i = 0; i < g->kh; i++) {
                int64_t ih = oh * g->sh - g->ph + i * g->dh;
                if (ih < 0 || ih >= g->h) {
                    continue;
                }
                for (int64_t j = 0; j < g->kw; j++) {
                    int64_t lo, hi, off = j * g->dw - g->pw, step = g->sw * sxw;
                    ow_span(off, g->sw, g->w, &lo, &hi);
                    lo = lo > o0 ? lo : o0;
                    hi = hi < o1 ? hi : o1;
                    if (hi <= lo) {
                        continue;
                    }
                    const T *s = x + ih * sxh + (lo * g->sw + off) * sxw;
                    T *a = acc + (lo - o0);
                    for (int64_t k = 0; k < hi - lo; k++) {
                        a[k] += s[k * step];
                    }
                }
            }
            for (int64_t k = 0; k < o1 - o0; k++) {
                y[oh * ysh + (o0 + k) * ysw] = acc[k] / (T)pool_divisor(g, oh, o0 + k);
            }
        }
    }
}

/* gx plane += gy plane spread over each window (dj: disjoint windows, written once) */
static PF_CONV_CLONES void F(avg_plane_bwd)(const pf_pool_geom *g, const T *gy, int64_t gsh,
                                            int64_t gsw, T *gx, int64_t dsh, int64_t dsw, int dj)
{
    T share[SEG];
    for (int64_t oh = 0; oh < g->oh; oh++) {
        for (int64_t o0 = 0; o0 < g->ow; o0 += SEG) {
            int64_t o1 = o0 + SEG < g->ow ? o0 + SEG : g->ow;
            for (int64_t k = 0; k < o1 - o0; k++) {
                share[k] = gy[oh * gsh + (o0 + k) * gsw] / (T)pool_divisor(g, oh, o0 + k);
            }
            for (int64_t i = 0; i < g->kh; i++) {
                int64_t ih = oh * g->sh - g->ph + i * g->dh;
                if (ih < 0 || ih >= g->h) {
                    continue;
                }
                for (int64_t j = 0; j < g->kw; j++) {
                    int64_t lo, hi, off = j * g->dw - g->pw, step = g->sw * dsw;
                    ow_span(off, g->sw, g->w, &lo, &hi);
                    lo = lo > o0 ? lo : o0;
                    hi = hi < o1 ? hi : o1;
                    if (hi <= lo) {
                        continue;
                    }
                    T *restrict d = gx + ih * dsh + (lo * g->sw + off) * dsw;
                    const T *s = share + (lo - o0);
                    if (dj) {
                        for (int64_t k = 0; k < hi - lo; k++) {
                            d[k * step] = s[k];
                        }
                    }
                    else {
                        for (int64_t k = 0; k < hi - lo; k++) {
                            d[k * step] += s[k];
                        }
                    }
                }
            }
        }
    }
}

/* ---------------------------------------------------------------- pixel */

/*
 * Channels [c0, c1) (c1 - c0 <= SEG) of image n: each output pixel's
 * channels are reduced over the taps inside the image, channels innermost.
 * `op` picks the reduction: 0 max forward, 1 max backward (scatter gy), 2
 * max select (gather v), 3 average forward, 4 average backward.  dj: the
 * windows are disjoint; the backward ops then write each position once.
 */
static PF_CONV_CLONES void F(pool_pixels)(const pf_pool_geom *g, int op, int64_t n, int64_t c0,
                                          int64_t c1, const pf_nd4 *a, const pf_nd4 *b,
                                          const pf_nd4 *out, int dj)
{
    T m[SEG];
    int32_t ph[SEG], pw[SEG];
    const int64_t nc = c1 - c0;
    /* the operand whose windows are read: x, or gy for the average backward */
    const pf_nd4 *win = op == 1 || op == 2 ? b : a;
    for (int64_t oh = 0; oh < g->oh; oh++) {
        for (int64_t ow = 0; ow < g->ow; ow++) {
            if (op == 4) {
                /* spread gy (a) over the window of gx (out) */
                const T *gp = (const T *)a->data + n * a->s[0] + c0 * a->s[1] + oh * a->s[2] +
                              ow * a->s[3];
                T d = (T)pool_divisor(g, oh, ow);
                for (int64_t c = 0; c < nc; c++) {
                    m[c] = gp[c * a->s[1]] / d;
                }
                for (int64_t i = 0; i < g->kh; i++) {
                    int64_t ih = oh * g->sh - g->ph + i * g->dh;
                    for (int64_t j = 0; ih >= 0 && ih < g->h && j < g->kw; j++) {
                        int64_t iw = ow * g->sw - g->pw + j * g->dw;
                        if (iw < 0 || iw >= g->w) {
                            continue;
                        }
                        T *dst = (T *)out->data + n * out->s[0] + c0 * out->s[1] +
                                 ih * out->s[2] + iw * out->s[3];
                        int64_t sc = out->s[1];
                        if (dj) {
                            for (int64_t c = 0; c < nc; c++) {
                                dst[c * sc] = m[c];
                            }
                        }
                        else {
                            for (int64_t c = 0; c < nc; c++) {
                                dst[c * sc] += m[c];
                            }
                        }
                    }
                }
                continue;
            }
            for (int64_t c = 0; c < nc; c++) {
                m[c] = op == 3 ? (T)0 : T_NEG_INF;
                ph[c] = -1;
                pw[c] = 0;
            }
            for (int64_t i = 0; i < g->kh; i++) {
                int64_t ih = oh * g->sh - g->ph + i * g->dh;
                for (int64_t j = 0; ih >= 0 && ih < g->h && j < g->kw; j++) {
                    int64_t iw = ow * g->sw - g->pw + j * g->dw;
                    if (iw < 0 || iw >= g->w) {
                        continue;
                    }
                    const T *s = (const T *)win->data + n * win->s[0] + c0 * win->s[1] +
                                 ih * win->s[2] + iw * win->s[3];
                    int64_t sc = win->s[1];
                    if (op == 3) {
                        for (int64_t c = 0; c < nc; c++) {
                            m[c] += s[c * sc];
                        }
                    }
                    else if (op == 0) {
                        for (int64_t c = 0; c < nc; c++) {
                            T v = s[c * sc];
                            m[c] = (v > m[c] || v != v) ? v : m[c];
                        }
                    }
                    else {
                        const int32_t ih32 = (int32_t)ih, iw32 = (int32_t)iw;
                        for (int64_t c = 0; c < nc; c++) {
                            T v = s[c * sc], mv = m[c];
                            int32_t hv = ph[c], wv = pw[c];
                            int take = F(beats)(v, mv, hv);
                            m[c] = F(pick)(take, v, mv);
                            ph[c] = pick_i32(take, ih32, hv);
                            pw[c] = pick_i32(take, iw32, wv);
                        }
                    }
                }
            }
            if (op == 1) {
                /* gx (out) at the maxima += gy (a) */
                const T *gp = (const T *)a->data + n * a->s[0] + c0 * a->s[1] + oh * a->s[2] +
                              ow * a->s[3];
                T *gx = (T *)out->data + n * out->s[0] + c0 * out->s[1];
                if (!dj) {
                    for (int64_t c = 0; c < nc; c++) {
                        if (ph[c] >= 0) {
                            gx[c * out->s[1] + ph[c] * out->s[2] + pw[c] * out->s[3]] +=
                                gp[c * a->s[1]];
                        }
                    }
                    continue;
                }
                /* disjoint windows: every tap's channels written once, gy or 0 */
                for (int64_t i = 0; i < g->kh; i++) {
                    int64_t ih = oh * g->sh - g->ph + i * g->dh;
                    for (int64_t j = 0; ih >= 0 && ih < g->h && j < g->kw; j++) {
                        int64_t iw = ow * g->sw - g->pw + j * g->dw;
                        if (iw < 0 || iw >= g->w) {
                            continue;
                        }
                        T *restrict d = gx + ih * out->s[2] + iw * out->s[3];
                        const int32_t ih32 = (int32_t)ih, iw32 = (int32_t)iw;
                        const int64_t sc = out->s[1], sg = a->s[1];
                        if (sc == 1 && sg == 1) {
                            for (int64_t c = 0; c < nc; c++) {
                                int hit = (ph[c] == ih32) & (pw[c] == iw32);
                                T v = gp[c];
                                d[c] = F(pick)(hit, v, (T)0);
                            }
                        }
                        else {
                            for (int64_t c = 0; c < nc; c++) {
                                int hit = (ph[c] == ih32) & (pw[c] == iw32);
                                T v = gp[c * sg];
                                d[c * sc] = F(pick)(hit, v, (T)0);
                            }
                        }
                    }
                }
                continue;
            }
            T *y = (T *)out->data + n * out->s[0] + c0 * out->s[1] + oh * out->s[2] +
                   ow * out->s[3];
            int64_t ys = out->s[1];
            if (op == 2) {
                /* v (a) at the maxima */
                const T *v = (const T *)a->data + n * a->s[0] + c0 * a->s[1];
                for (int64_t c = 0; c < nc; c++) {
                    y[c * ys] = ph[c] >= 0 ? v[c * a->s[1] + ph[c] * a->s[2] + pw[c] * a->s[3]]
                                           : 0;
                }
            }
            else if (op == 3) {
                T d = (T)pool_divisor(g, oh, ow);
                for (int64_t c = 0; c < nc; c++) {
                    y[c * ys] = m[c] / d;
                }
            }
            else {
                for (int64_t c = 0; c < nc; c++) {
                    y[c * ys] = m[c];
                }
            }
        }
    }
}

/*
 * One unit of work: plane u = (n, c) in the plane layout, or (n, channel
 * block u % nblk) in the pixel layout.  Operands as in pool_pixels.
 */
static void F(pool_unit)(const pf_pool_geom *g, int op, int cl, int64_t u, const pf_nd4 *a,
                         const pf_nd4 *b, const pf_nd4 *out, int dj)
{
    if (cl) {
        int64_t nblk = (g->c + SEG - 1) / SEG, n = u / nblk, c0 = u % nblk * SEG;
        F(pool_pixels)(g, op, n, c0, c0 + SEG < g->c ? c0 + SEG : g->c, a, b, out, dj);
        return;
    }
    int64_t n = u / g->c, c = u % g->c;
    const T *pa = (const T *)a->data + n * a->s[0] + c * a->s[1];
    T *po = (T *)out->data + n * out->s[0] + c * out->s[1];
    const T *pb = b != NULL ? (const T *)b->data + n * b->s[0] + c * b->s[1] : NULL;
    switch (op) {
    case 0:
        F(max_plane_fwd)(g, pa, a->s[2], a->s[3], po, out->s[2], out->s[3]);
        break;
    case 1:
        F(max_plane_bwd)(g, pa, a->s[2], a->s[3], pb, b->s[2], b->s[3], po, out->s[2],
                         out->s[3], dj);
        break;
    case 2:
        F(max_plane_sel)(g, pa, a->s[2], a->s[3], pb, b->s[2], b->s[3], po, out->s[2],
                         out->s[3]);
        break;
    case 3:
        F(avg_plane_fwd)(g, pa, a->s[2], a->s[3], po, out->s[2], out->s[3]);
        break;
    default:
        F(avg_plane_bwd)(g, pa, a->s[2], a->s[3], po, out->s[2], out->s[3], dj);
        break;
    }
}

#undef F
#undef CAT
#undef CAT2
