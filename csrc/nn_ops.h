/*
 * nn_ops.h -- what the bindings of the normalisations, losses, dropout and
 * attention (nn_ops.c) share with their backward rules (backward_nnops.c):
 * the argument names, and the parsing of each call into the geometry its
 * kernels take, so that a rule re-reads its saved call exactly as the
 * binding read it.
 */
#ifndef PF_NN_OPS_H
#define PF_NN_OPS_H

#include "autograd.h"
#include "kernels/nn_kernels.h"

/* ------------------------------------------------------------ helpers */

/* float64 computes in float64; float32, float16 and bfloat16 in float32 */
static inline pf_dtype pf_nn_comp(pf_dtype d)
{
    return d == PF_FLOAT64 ? PF_FLOAT64 : PF_FLOAT32;
}

/*
 * layer_norm on a CUDA device (nn_ops.c, over libpyframe_cuda.so): x, y
 * (rows, n) and w, b (n) or NULL contiguous of one float dtype on x's
 * device; the backward writes dx (rows, n), dw, db (n), any of them NULL.
 * 0, or -1 with the exception set.
 */
int pf_layer_norm_cuda(PfTensor *x, PfTensor *w, PfTensor *b, PfTensor *y, int64_t rows,
                       int64_t n, double eps, const char *op);
int pf_layer_norm_bwd_cuda(PfTensor *g, PfTensor *x, PfTensor *w, PfTensor *dx, PfTensor *dw,
                           PfTensor *db, int64_t rows, int64_t n, double eps, const char *op);

/* t as a contiguous tensor of dtype dt: t itself (a new reference) when it is one, else a copy */
PfTensor *pf_nn_contig(PfTensor *t, pf_dtype dt, const char *op);
/* A tensor argument (tensor, array, list, scalar) as a new reference. */
PfTensor *pf_nn_tensor(PyObject *o, const char *op);
/* TypeError unless t is floating point: "<op>: <what> must be a floating-point tensor..." */
int pf_nn_need_float(const PfTensor *t, const char *op, const char *what);
/* A float vector of n values (weight, bias, running statistics), or an error naming why. */
int pf_nn_need_vector(const PfTensor *t, int64_t n, const char *op, const char *what,
                      const char *per);

typedef enum { PF_RED_NONE, PF_RED_MEAN, PF_RED_SUM } pf_nn_red;
/* reduction= "none", "mean" (NULL: the default) or "sum" */
int pf_nn_reduction(PyObject *o, const char *op, pf_nn_red *red);

/* A new tensor of `shape` and dtype dt holding n float64 values. */
PfTensor *pf_nn_from_doubles(const double *v, int ndim, const int64_t *shape, pf_dtype dt,
                             const char *op);
/* The value of a one-element tensor as a float64. */
double pf_nn_scalar(const PfTensor *t);

/* ------------------------------------------------------------ argument names */

extern const char *const pf_nn_args_layer_norm[];
extern const char *const pf_nn_args_rms_norm[];
extern const char *const pf_nn_args_group_norm[];
extern const char *const pf_nn_args_batch_norm[];
extern const char *const pf_nn_args_cross_entropy[];
extern const char *const pf_nn_args_nll_loss[];
extern const char *const pf_nn_args_pointwise_loss[];     /* mse_loss, l1_loss */
extern const char *const pf_nn_args_huber_loss[];
extern const char *const pf_nn_args_smooth_l1_loss[];
extern const char *const pf_nn_args_bce[];
extern const char *const pf_nn_args_bce_logits[];
extern const char *const pf_nn_args_attention[];

/* ------------------------------------------------------------ norms */

/*
 * layer_norm / rms_norm: normalized_shape (an int or a sequence) must be
 * the last *k dimensions of x; sets P (eps is filled by the caller) and the
 * normalized shape.
 */
int pf_nn_layer_norm_geom(const PfTensor *x, PyObject *nshape, const char *op,
                          int64_t *norm_shape, int *k, pf_rownorm *P);
/* group_norm on (N, C, *): C divisible by num_groups. */
int pf_nn_group_norm_geom(const PfTensor *x, PyObject *groups, const char *op, pf_rownorm *P);
/* rms_norm's eps: the given one, or the machine epsilon of x's dtype for None. */
int pf_nn_rms_eps(PyObject *o, pf_dtype d, const char *op, double *eps);

/* batch_norm: x seen as (outer, C, inner) around the channel axis (default 1). */
int pf_nn_batch_norm_geom(const PfTensor *x, PyObject *axis, const char *op, pf_bn_geom *G,
                          int *ax);

/* ------------------------------------------------------------ cross-entropy, nll */

/*
 * Input (N, C, d1...) or (C,) (unbatched); K = prod(d).  The kernels see
 * N * K rows of C classes: the class axis is moved last (a copy) when
 * K > 1.  Targets are class indices of shape (N, d...) (or ()) or, for
 * cross_entropy, probabilities of the input's shape.
 */
typedef struct {
    int64_t N, C, K;
    int unbatched;
    int probs;
} pf_nn_ce;

int pf_nn_ce_geom(const PfTensor *x, const PfTensor *t, int allow_probs, const char *op,
                  pf_nn_ce *g);
/* x (N, C, d...) as contiguous (N * K, C) rows of dtype dt (a new reference) */
PfTensor *pf_nn_class_rows(PfTensor *x, const pf_nn_ce *g, pf_dtype dt, const char *op);
/* rows (N * K, C) seen with the input's shape (N, C, d...): a view, no copy */
PfTensor *pf_nn_class_unrows(PfTensor *rows, const PfTensor *like, const pf_nn_ce *g);
/*
 * The class indices as a contiguous int64 tensor (new reference), each in
 * [0, C) or equal to ignore_index; IndexError naming the op otherwise.
 */
PfTensor *pf_nn_class_targets(PfTensor *t, const pf_nn_ce *g, int64_t ignore, const char *op);

/* ------------------------------------------------------------ attention */

/*
 * query (..., L, E), key (..., S, E), value (..., S, Ev) whose batch
 * dimensions broadcast to `bshape` (nbd dims, nb entries); an optional
 * mask broadcastable to bshape + (L, S), bool or float.
 */
typedef struct {
    int nbd;
    int64_t bshape[PF_MAX_DIMS];
    int64_t nb, L, S, E, Ev;
    double scale;
    int causal;
    double dropout_p;
    uint64_t seed, offset;
} pf_nn_attn;

/*
 * Parse and check the attention arguments v[] (pf_nn_args_attention
 * order); q, k, v, mask become new references (mask NULL for None).
 */
int pf_nn_attn_parse(PyObject **v, const char *op, pf_nn_attn *A, PfTensor **q, PfTensor **k,
                     PfTensor **val, PfTensor **mask);

/*
 * The kernel's view of the mask: contiguous copy *mc (bool as uint8 or
 * float in dt; a new reference) and per-batch offsets moff[nb] (a
 * PyMem_Malloc'd array the caller frees).
 */
int pf_nn_attn_mask(const pf_nn_attn *A, PfTensor *mask, pf_dtype dt, const char *op,
                    PfTensor **mc, int64_t **moff, pf_attn *K);

/* t (q, k or v) broadcast to the full batch: contiguous (batch..., rows, cols) in dt */
PfTensor *pf_nn_attn_full(PfTensor *t, const pf_nn_attn *A, int64_t rows, int64_t cols,
                          pf_dtype dt, const char *op);

/*
 * The losses on a CUDA device (nn_losses_cuda.c), composed of elementwise
 * ops and reductions that run there; called by the bindings after their
 * checks, with the parsed arguments.  New reference, or NULL with an
 * exception ("<op>: CUDA is not available: ..." first when it is not).
 */
PyObject *pf_nn_pointwise_loss_cuda(const char *op, pf_ewloss kind, PfTensor *x, PfTensor *t,
                                    pf_nn_red red, double prm, pf_dtype res);
PyObject *pf_nn_bce_cuda(const char *op, int logits, PfTensor *x, PfTensor *t, PfTensor *w,
                         PfTensor *pw, pf_nn_red red);
/*
 * cross_entropy (is_nll 0) and nll_loss on a device; the target distribution
 * q (the input's shape: the weight of each class in a row's loss) and the
 * mean's denominator (a 0-d tensor or a float) as new references, which the
 * rule uses too.  The label check raises IndexError naming the label.
 */
PyObject *pf_nn_class_loss_cuda(const char *op, int is_nll, PfTensor *x, PfTensor *t,
                                PfTensor *w, const pf_nn_ce *g, int64_t ignore, double eps,
                                pf_nn_red red);
int pf_nn_class_q_cuda(const char *op, PfTensor *x, PfTensor *t, PfTensor *w,
                       const pf_nn_ce *g, int64_t ignore, double eps, PyObject **q,
                       PyObject **den);

#endif /* PF_NN_OPS_H */
