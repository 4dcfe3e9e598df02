/*
 * pool.c -- max and average pooling kernels (conv.h), forward and backward.
 *
 * The work is split into units that write disjoint parts of the output --
 * (n, c) planes for a planar input, (image, block of channels) for a
 * channels-last one -- so that backward scatters never race, and the units
 * are split over OpenMP threads above PF_GRAIN elements.  The loops
 * themselves are in pool_loops.h.
 */
#include "conv.h"
#include <math.h>
#include <string.h>

/* Output columns (plane layout) or channels (pixel layout) handled per step. */
#define SEG 256

/* First ow whose column ow*sw + off is >= 0, and one past the last that is < w. */
static inline void ow_span(int64_t off, int64_t sw, int64_t w, int64_t *lo, int64_t *hi)
{
    *lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
    *hi = w - 1 - off < 0 ? 0 : (w - 1 - off) / sw + 1;
}

/*
 * The divisor of average pooling at output (oh, ow), as PyTorch: the
 * window clipped to the padded input when padding counts, else to the
 * input itself; `divisor` overrides both.
 */
static int64_t pool_divisor(const pf_pool_geom *g, int64_t oh, int64_t ow)
{
    if (g->divisor > 0) {
        return g->divisor;
    }
    int64_t h0 = oh * g->sh - g->ph, w0 = ow * g->sw - g->pw;
    int64_t h1 = h0 + g->kh < g->h + g->ph ? h0 + g->kh : g->h + g->ph;
    int64_t w1 = w0 + g->kw < g->w + g->pw ? w0 + g->kw : g->w + g->pw;
    if (g->count_include_pad) {
        return (h1 - h0) * (w1 - w0);
    }
    h0 = h0 > 0 ? h0 : 0;
    w0 = w0 > 0 ? w0 : 0;
    h1 = h1 < g->h ? h1 : g->h;
    w1 = w1 < g->w ? w1 : g->w;
    return (h1 - h0) * (w1 - w0);
}

/* a where take, else b, without a branch (see F(pick) in pool_loops.h) */
static inline int32_t pick_i32(int take, int32_t a, int32_t b)
{
    int32_t m = -(int32_t)take;
    return (a & m) | (b & ~m);
}

#define T float
#define U uint32_t
#define TS f32
#define T_NEG_INF (-INFINITY)
#include "pool_loops.h"
#undef T
#undef U
#undef TS
#undef T_NEG_INF
#define T double
#define U uint64_t
#define TS f64
#define T_NEG_INF (-(double)INFINITY)
#include "pool_loops.h"
#undef T
#undef U
#undef TS
#undef T_NEG_INF

enum { OP_MAX, OP_MAX_BWD, OP_MAX_SEL, OP_AVG, OP_AVG_BWD };

/*
 * Run op over every unit.  a, b: the inputs (b NULL when unused); out: the
 * output, zeroed first for the backward ops, which add into it.
 */
static void run(const pf_pool_geom *g, pf_dtype dt, int cl, int op, const pf_nd4 *a,
                const pf_nd4 *b, const pf_nd4 *out)
{
    cl = pf_pixel_loops(cl, g->ow, g->c, g->h * g->w * pf_dtypes[dt].itemsize);
    int64_t units = cl ? g->n * ((g->c + SEG - 1) / SEG) : g->n * g->c;
    if (units == 0) {
        return;
    }
    /*
     * The backward ops add into out.  With disjoint windows they write each
     * window position once instead, and out needs zeroing first only where
     * no window reaches (gaps, dilation holes, rows and columns left over).
     */
    int64_t eh = g->dh * (g->kh - 1) + 1, ew = g->dw * (g->kw - 1) + 1;
    int dj = g->sh >= eh && g->sw >= ew;
    int covered = dj && g->sh == g->kh && g->sw == g->kw && g->dh == 1 && g->dw == 1 &&
                  g->ph == 0 && g->pw == 0 && g->oh * g->sh >= g->h && g->ow * g->sw >= g->w;
    if ((op == OP_MAX_BWD || op == OP_AVG_BWD) && !covered) {
        /* out is ours and dense in either layout: N * s[0] elements */
        memset(out->data, 0, (size_t)(g->n * out->s[0]) * pf_dtypes[dt].itemsize);
    }
    double work = (double)g->n * (double)g->c * (double)(g->oh * g->ow) *
                  (double)(g->kh * g->kw);
    int nth = pf_get_num_threads();
    if (work < PF_GRAIN || units < 2) {
        nth = 1;
    }
    (void)nth;
    if (dt == PF_FLOAT32) {
        #pragma omp parallel for num_threads(nth) if (nth > 1) schedule(static)
        for (int64_t u = 0; u < units; u++) {
            pool_unit_f32(g, op, cl, u, a, b, out, dj);
        }
    }
    else {
        #pragma omp parallel for num_threads(nth) if (nth > 1) schedule(static)
        for (int64_t u = 0; u < units; u++) {
            pool_unit_f64(g, op, cl, u, a, b, out, dj);
        }
    }
}

void pf_max_pool_forward(const pf_pool_geom *g, pf_dtype dt, int cl, const pf_nd4 *x,
                         const pf_nd4 *y)
{
    run(g, dt, cl, OP_MAX, x, NULL, y);
}

void pf_max_pool_backward(const pf_pool_geom *g, pf_dtype dt, int cl, const pf_nd4 *gy,
                          const pf_nd4 *x, const pf_nd4 *gx)
{
    run(g, dt, cl, OP_MAX_BWD, gy, x, gx);
}

void pf_max_pool_select(const pf_pool_geom *g, pf_dtype dt, int cl, const pf_nd4 *v,
                        const pf_nd4 *x, const pf_nd4 *y)
{
    run(g, dt, cl, OP_MAX_SEL, v, x, y);
}

void pf_avg_pool_forward(const pf_pool_geom *g, pf_dtype dt, int cl, const pf_nd4 *x,
                         const pf_nd4 *y)
{
    run(g, dt, cl, OP_AVG, x, NULL, y);
}

void pf_avg_pool_backward(const pf_pool_geom *g, pf_dtype dt, int cl, const pf_nd4 *gy,
                          const pf_nd4 *gx)
{
    run(g, dt, cl, OP_AVG_BWD, gy, NULL, gx);
}
