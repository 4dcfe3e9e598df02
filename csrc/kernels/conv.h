/*
 * conv.h -- the convolution and pooling kernels (conv.c, pool.c).  They
 * know nothing of Python or ops: they take pointers, sizes and element
 * strides, never touch the interpreter, and may run without the GIL.
 *
 * Every operand is seen as 4-D, (N, C, H, W) for activations and (O, C /
 * groups, KH, KW) for weights; a 1-D op passes H = 1 (and KH = 1).  Inputs
 * may have any strides -- NCHW, channels-last (an NHWC array viewed as
 * NCHW), transposed or sliced.  Outputs are allocated by the caller in one
 * of the two layouts below, picked from the input's layout with
 * pf_conv_channels_last, so that the output's memory order follows the
 * input's (see docs/architecture.md, "Convolution and pooling").
 */
#ifndef PF_CONV_H
#define PF_CONV_H

#include "kernels.h"

/* The hot loops are compiled for AVX-512, AVX2 and a portable baseline; the CPU picks at load. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(PYFRAME_SANITIZE)
#define PF_CONV_CLONES __attribute__((target_clones("default", "avx2", "avx512f")))
#else
#define PF_CONV_CLONES
#endif

/* A strided 4-D operand: its data and the element strides of its four dimensions. */
typedef struct {
    char *data;
    int64_t s[4];
} pf_nd4;

/*
 * The geometry of one convolution: output pixel (oh, ow) of channel o in
 * group gr = o / (O / groups) reads input rows oh*sh - ph + i*dh and
 * columns ow*sw - pw + j*dw for taps i < kh, j < kw (zero outside the
 * input), channels gr*C/groups ... (gr+1)*C/groups - 1.  ph and pw are the
 * padding before the first row and column; the output size is given, not
 * derived, so asymmetric padding ("same" with an even kernel) and the
 * cropped sizes of transposed convolutions need nothing more.
 */
typedef struct {
    int64_t n, c, h, w;     /* input (N, C, H, W) */
    int64_t o, kh, kw;      /* weight (O, C / groups, KH, KW) */
    int64_t oh, ow;         /* output (N, O, OH, OW) */
    int64_t sh, sw;         /* strides */
    int64_t ph, pw;         /* padding before */
    int64_t dh, dw;         /* dilations */
    int64_t groups;
} pf_conv_geom;

/*
 * Does this (N, C, H, W) operand lie channels-last (channel stride 1)?
 * Then the kernels work pixel-major (im2col rows are contiguous runs of
 * channels) and write an NHWC output: strides (H*W*C, 1, W*C, C).
 * Otherwise they work channel-major and write NCHW: (C*H*W, H*W, W, 1).
 */
static inline int pf_conv_channels_last(const int64_t *shape, const int64_t *strides)
{
    return shape[1] > 1 ? strides[1] == 1 : (strides[1] == 1 && strides[3] == 1 && shape[3] > 1);
}

/*
 * Which loop shape pooling and depthwise kernels take: channels innermost
 * ("pixel") for a channels-last input, and also for a planar one whose
 * output rows are short -- a vector loop along 13 columns is mostly its
 * scalar tail, while one along the channels (a gather across planes) stays
 * long -- unless the planes lie a multiple of 512 bytes apart, where the
 * gathered lines of 8+ channels fall into the same few L1 sets (32x32
 * float planes are 4 KB apart: measured 3-4x slower); else along rows.
 */
static inline int pf_pixel_loops(int channels_last, int64_t ow, int64_t c, int64_t plane_bytes)
{
    return channels_last || (ow < 16 && c >= 8 && plane_bytes % 512 != 0);
}

/* The strides of the output layout chosen for (N, C, H, W). */
void pf_conv_out_strides(const int64_t *shape, int channels_last, int64_t *strides);

/*
 * y (N, O, OH, OW) = conv(x (N, C, H, W), w (O, C/groups, KH, KW)) + bias (O)
 * bias may be NULL; bias_stride is its element stride.  dt is PF_FLOAT32 or
 * PF_FLOAT64 (all operands).  y is laid out by pf_conv_out_strides with
 * channels_last = rows (the pixel-major path); x and w take any strides.
 * Returns 0, or -1 when scratch memory cannot be allocated (nothing else
 * can fail).
 */
int pf_conv_forward(const pf_conv_geom *g, pf_dtype dt, int rows, const pf_nd4 *x,
                    const pf_nd4 *w, const char *bias, int64_t bias_stride, const pf_nd4 *y);

/*
 * gx (N, C, H, W) = the gradient of the convolution's input, from
 * gy (N, O, OH, OW) and w (O, C/groups, KH, KW): the transposed
 * convolution.  gx is laid out by pf_conv_out_strides with channels_last =
 * rows; gy and w take any strides.  Returns 0 or -1 (no memory).
 */
int pf_conv_input_grad(const pf_conv_geom *g, pf_dtype dt, int rows, const pf_nd4 *gy,
                       const pf_nd4 *w, const pf_nd4 *gx);

/*
 * gw (O, C/groups, KH, KW), contiguous = the gradient of the weight, from
 * x (N, C, H, W) and gy (N, O, OH, OW), both of any strides; rows picks
 * the pixel-major path (x channels-last).  Returns 0 or -1 (no memory).
 */
int pf_conv_weight_grad(const pf_conv_geom *g, pf_dtype dt, int rows, const pf_nd4 *x,
                        const pf_nd4 *gy, const pf_nd4 *gw);

/* ------------------------------------------------------------------ pooling */

/*
 * A pooling window: output (oh, ow) covers input rows oh*sh - ph + i*dh,
 * i < kh, and columns ow*sw - pw + j*dw, j < kw, clipped to the input.
 * Average pooling divides by `divisor` when it is > 0, else by the window
 * size counted with the padding (count_include_pad; the window clipped to
 * the padded input, as PyTorch) or without it.
 */
typedef struct {
    int64_t n, c, h, w, oh, ow;
    int64_t kh, kw, sh, sw, ph, pw, dh, dw;
    int count_include_pad;
    int64_t divisor;
} pf_pool_geom;

/*
 * Outputs (y, gx) are laid out by pf_conv_out_strides with channels_last
 * given by the caller (the layout of the operand the output follows); the
 * other operands take any strides.  dt is PF_FLOAT32 or PF_FLOAT64.
 */

/* y (N, C, OH, OW) = the max of each window of x (N, C, H, W); NaN wins. */
void pf_max_pool_forward(const pf_pool_geom *g, pf_dtype dt, int cl, const pf_nd4 *x,
                         const pf_nd4 *y);
/*
 * gx (N, C, H, W) = gy (N, C, OH, OW) added at the first maximal element
 * (row-major window order; the first NaN) of each window of x.
 */
void pf_max_pool_backward(const pf_pool_geom *g, pf_dtype dt, int cl, const pf_nd4 *gy,
                          const pf_nd4 *x, const pf_nd4 *gx);
/* y (N, C, OH, OW) = v (N, C, H, W) read where x's window has its first maximum. */
void pf_max_pool_select(const pf_pool_geom *g, pf_dtype dt, int cl, const pf_nd4 *v,
                        const pf_nd4 *x, const pf_nd4 *y);
/* y (N, C, OH, OW) = the average of each window of x (N, C, H, W). */
void pf_avg_pool_forward(const pf_pool_geom *g, pf_dtype dt, int cl, const pf_nd4 *x,
                         const pf_nd4 *y);
/* gx (N, C, H, W) = gy (N, C, OH, OW) spread evenly over each window. */
void pf_avg_pool_backward(const pf_pool_geom *g, pf_dtype dt, int cl, const pf_nd4 *gy,
                          const pf_nd4 *gx);

#endif /* PF_CONV_H */
