/*
 * nn_kernels.h -- the loops behind the normalisations, losses, dropout and
 * attention (nn_kernels.c), shared with their bindings (nn_ops.c) and the
 * fast paths of their backward rules (backward_nnops.c).
 *
 * Every kernel reads and writes contiguous buffers of one compute dtype,
 * float32 or float64 (`dt`); the bindings copy other layouts and dtypes
 * in and out.  Sums are accumulated in float64 in a fixed order (blocks
 * whose number depends on the shape only), so a result has the same bits
 * on any thread count.  None of them touches Python; the ones that
 * allocate return -1 with MemoryError set.
 */
#ifndef PF_NN_KERNELS_H
#define PF_NN_KERNELS_H

#include "kernels.h"

/* ------------------------------------------------ layer, group and RMS norm */

/*
 * `rows` independent rows of `n` contiguous elements, each normalised by
 * its own mean and variance (RMS norm: by its root mean square).  The
 * affine weight and bias are blocks of `nch` values; row r uses block
 * r % groups, and each value covers `inner` consecutive elements
 * (n == nch * inner).  layer_norm: groups 1, nch n, inner 1.  group_norm
 * on (N, C, S...): rows N * G, groups G, nch C / G, inner prod(S).
 */
typedef struct {
    int64_t rows, n;
    int64_t groups, nch, inner;
    double eps;
    int rms;
} pf_rownorm;

/* x, y (rows, n); w, b (groups * nch) or NULL */
void pf_rownorm_fwd(const pf_rownorm *P, pf_dtype dt, const void *x, const void *w,
                    const void *b, void *y);

/*
 * The gradient of pf_rownorm_fwd: g, x, dx (rows, n); w (groups * nch) or
 * NULL.  dx may be NULL (not wanted); dw and db (groups * nch float64
 * sums) may be NULL.  Mean and variance are recomputed from x.
 */
int pf_rownorm_bwd(const pf_rownorm *P, pf_dtype dt, const void *g, const void *x,
                   const void *w, void *dx, double *dw, double *db);

/* ------------------------------------------------------------ batch norm */

/*
 * x seen as (outer, C, inner): channel c is every x[o, c, i].  NCHW is
 * (N, C, H*W); channels-last (N, H, W, C) is (N*H*W, C, 1).
 */
typedef struct {
    int64_t outer, C, inner;
} pf_bn_geom;

/* per-channel mean and biased variance (two passes), float64 (C) each */
int pf_bn_stats(const pf_bn_geom *G, pf_dtype dt, const void *x, double *mean, double *var);

/*
 * per-channel sums of g and of g * (x - mean[c]), float64 (C) each; g, x
 * (outer, C, inner)
 */
int pf_bn_grad_sums(const pf_bn_geom *G, pf_dtype dt, const void *g, const void *x,
                    const double *mean, double *sg, double *sgx);

/*
 * out = (u - um[c]) A[c] + (x - xm[c]) B[c] + D[c] over (outer, C, inner),
 * in dt, with each centre split in two values of dt so that a large mean
 * does not cancel digits away in float32.  x may be
 * NULL (no second term); um, xm, B and D may be NULL (zeros).  The
 * forward is u = x, um = mean, D = bias; the backward u = g.  The
 * coefficients are float64 (C).
 */
int pf_bn_map(const pf_bn_geom *G, pf_dtype dt, const void *u, const double *um,
              const double *A, const void *x, const double *xm, const double *B,
              const double *D, void *out);

/* ------------------------------------------------------------ cross-entropy */

/*
 * Rows of C logits (contiguous).  Targets are class indices (int64, one
 * per row, already checked to be in [0, C) or ignore_index) or class
 * probabilities (rows, C) in dt.  weight (C) in dt or NULL.
 */
typedef struct {
    int64_t rows, C;
    const int64_t *target;
    const void *probs;
    const void *weight;
    int64_t ignore_index;
    double smoothing;
} pf_xent;

/*
 * loss[r]: the row's loss (0 when ignored); wrow[r]: the weight it counts
 * with in a mean (w[target], 0 when ignored, 1 for probabilities).
 */
int pf_xent_fwd(const pf_xent *P, pf_dtype dt, const void *x, double *loss, double *wrow);

/*
 * dx (rows, C) = s_r (softmax(x_r) * Q_r - q_r) with q_r the row's target
 * distribution times the weights and Q_r its sum; s_r = scale * srow[r]
 * (srow may be NULL).  Ignored rows get 0.
 */
void pf_xent_bwd(const pf_xent *P, pf_dtype dt, const void *x, double scale, const double *srow,
                 void *dx);

/*
 * q (rows, C) as above, the constant part of the gradient: (1 - eps) w[t]
 * at the target, plus eps / C * w everywhere (0 in ignored rows); for
 * probability targets w * (t (1 - eps) + eps / C).
 */
void pf_xent_target_dist(const pf_xent *P, pf_dtype dt, void *q);

/*
 * nll_loss: loss[r] = -w[t] x[r, t] (0 when ignored) and wrow[r] = w[t];
 * x (rows, C) of log-probabilities.
 */
void pf_nll_fwd(const pf_xent *P, pf_dtype dt, const void *x, double *loss, double *wrow);

/* ------------------------------------------------ elementwise losses */

typedef enum {
    PF_LOSS_MSE,            /* (x - t)^2 */
    PF_LOSS_L1,             /* |x - t| */
    PF_LOSS_HUBER,          /* 0.5 d^2 if |d| < delta else delta (|d| - 0.5 delta) */
    PF_LOSS_SMOOTH_L1,      /* 0.5 d^2 / beta if |d| < beta else |d| - 0.5 beta */
    PF_LOSS_BCE,            /* -(t log p + (1 - t) log(1 - p)), each log >= -100 */
    PF_LOSS_BCE_LOGITS,     /* (1 - t) x + (1 + (pw - 1) t) softplus(-x) */
} pf_ewloss;

/*
 * n elements of x and t (dt); w (weight) and pw (pos_weight, BCE with
 * logits) of n elements or NULL; prm is delta or beta.  Writes each loss
 * to out (when not NULL) and returns their float64 sum.
 */
double pf_ewloss_run(pf_ewloss kind, pf_dtype dt, const void *x, const void *t, const void *w,
                     const void *pw, int64_t n, double prm, void *out);

/* ------------------------------------------------------------ dropout */

/*
 * out (n) = 1 / (1 - p) where u_i >= p, else 0; u_i is element i of the
 * uniform draw at (seed, offset), exactly as pf.rand gives it.
 */
void pf_dropout_mask(pf_dtype dt, void *out, int64_t n, double p, uint64_t seed,
                     uint64_t offset);

/* ------------------------------------------------------------ attention */

/*
 * The score rows of attention: nb batch entries of (L, S), entries b0 to
 * b0 + nb - 1 of the whole batch (the callers go chunk by chunk).  For
 * entry b (of the whole batch) the mask is read at
 * mask + moff[b] + i * mrs + j * mcs (elements; strides 0 where it
 * broadcasts): an additive float mask in dt, or a bool one (uint8, 1 =
 * attend).  Causal: key j > query i is masked.  Dropout keeps element
 * (b, i, j) where uniform number (b * L + i) * S + j of the draw at
 * (seed, offset) is >= p, scaled by 1 / (1 - p).
 */
typedef struct {
    int64_t b0, nb, L, S;
    double scale;
    int causal;
    const void *mask;
    int mask_bool;
    const int64_t *moff;
    int64_t mrs, mcs;
    double dropout_p;
    uint64_t seed, offset;
} pf_attn;

/*
 * s (nb, L, S): Q K^T in, softmax(scale * s + mask) out, a row that attends
 * to nothing all zeros; times the dropout mask when `dropout` is set.
 */
void pf_attn_softmax(const pf_attn *P, pf_dtype dt, void *s, int dropout);

/* out (nb, L, S) = prob times the dropout mask */
void pf_attn_dropout_apply(const pf_attn *P, pf_dtype dt, const void *prob, void *out);

/*
 * dp (nb, L, S): the gradient of the (dropped-out) probabilities in, the
 * gradient of the masked scores scale * s + mask out; prob holds the
 * probabilities without dropout.
 */
void pf_attn_softmax_bwd(const pf_attn *P, pf_dtype dt, const void *prob, void *dp);

/*
 * The whole attention over contiguous buffers of dt with a flat batch of
 * P->nb entries (P->b0 is ignored): q (nb, L, E), k (nb, S, E),
 * v (nb, S, Ev), out (nb, L, Ev).  Releases the GIL while it computes.
 */
int pf_attn_forward(const pf_attn *P, pf_dtype dt, int64_t E, int64_t Ev, const void *q,
                    const void *k, const void *v, void *out);

/*
 * Its gradients for the output gradient g (nb, L, Ev): dq, dk, dv (of the
 * shapes of q, k, v; any may be NULL) and dmask (nb, L, S), the gradient of
 * the masked scores (NULL when not wanted).  The probabilities are
 * recomputed, not saved.
 */
int pf_attn_backward(const pf_attn *P, pf_dtype dt, int64_t E, int64_t Ev, const void *q,
                     const void *k, const void *v, const void *g, void *dq, void *dk, void *dv,
                     void *dmask);

#endif /* PF_NN_KERNELS_H */
