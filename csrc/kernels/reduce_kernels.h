/*
 * reduce_kernels.h -- what the reduction, scan and softmax loops
 * (reduce_kernels.c) share with their bindings (reduce.c).
 *
 * A reduction sees its input as a geometry: the kept dimensions (in output
 * order) and the reduced dimensions (in logical order), each merged where
 * the strides allow.  The loops compute in one of three dtypes -- float32,
 * float64 or int64 -- converting other inputs block by block on the way in.
 */
#ifndef PF_REDUCE_KERNELS_H
#define PF_REDUCE_KERNELS_H

#include "kernels.h"

/* What a reduction pass computes from the elements x of one output's region. */
typedef enum {
    PF_RK_SUM,          /* sum x */
    PF_RK_PROD,         /* prod x */
    PF_RK_MAX,          /* max x, NaN wins */
    PF_RK_MIN,          /* min x, NaN wins */
    PF_RK_ALL,          /* 1 if every x != 0 else 0 */
    PF_RK_ANY,          /* 1 if some x != 0 else 0 */
    PF_RK_SUMABS,       /* sum |x| */
    PF_RK_SUMSQ,        /* sum x^2 */
    PF_RK_MAXABS,       /* max |x| */
    PF_RK_MINABS,       /* min |x| */
    PF_RK_NNZ,          /* count of x != 0 */
    PF_RK_SUMPOW,       /* sum |x|^p */
    PF_RK_SUMSQDEV,     /* sum (x - c)^2, c one value per output (the centers) */
    PF_RK_SUMEXP,       /* sum exp(x - c), c one value per output */
    PF_RK_ARGMAX,       /* first index of the max, NaN wins */
    PF_RK_ARGMIN,       /* first index of the min, NaN wins */
    PF_RK_COUNT
} pf_rkind;

/*
 * The input of one reduction.  Strides are in elements.  Output o is at the
 * row-major position o of the kept dimensions; element r of its region at
 * the row-major position r of the reduced dimensions.  Both lists have at
 * least one dimension (a size-1, stride-0 one when nothing is left).
 */
typedef struct {
    const char *base;
    pf_dtype dtype;
    int knd, rnd;
    int64_t kshape[PF_MAX_DIMS], kstride[PF_MAX_DIMS];
    int64_t rshape[PF_MAX_DIMS], rstride[PF_MAX_DIMS];
    int64_t outer;      /* number of outputs */
    int64_t n;          /* elements reduced into each output */
} pf_rgeom;

/* mask[d] != 0 marks dimension d of x as reduced. */
void pf_rgeom_build(pf_rgeom *g, const PfTensor *x, const int *mask);

/*
 * One reduction pass: writes g->outer values of dtype `comp` (float32,
 * float64 or int64) to `out`, and for ARGMAX/ARGMIN the int64 indices to
 * `idx`.  `center` holds g->outer values of `comp` for SUMSQDEV and
 * SUMEXP (NULL otherwise); `p` is the power of SUMPOW.  The result does
 * not depend on the thread count.  Returns -1 with MemoryError set.
 */
int pf_reduce_run(const pf_rgeom *g, pf_rkind kind, pf_dtype comp, double p, const void *center,
                  void *out, int64_t *idx, const char *op);

/* Elementwise finishing steps on `count` values of `comp` (float32 or float64). */
typedef enum {
    PF_RF_SCALE,        /* v = v / a */
    PF_RF_SQRT,         /* v = sqrt(v) */
    PF_RF_SCALE_SQRT,   /* v = sqrt(v / a) */
    PF_RF_ROOT,         /* v = v ^ (1 / a) */
    PF_RF_CENTER,       /* v = v if finite else 0 (the shift of logsumexp) */
    PF_RF_LOG_ADD,      /* v = log(v) + aux[i] */
} pf_rfinish;

void pf_reduce_finish(pf_rfinish f, pf_dtype comp, void *v, const void *aux, int64_t count,
                      double a);

/*
 * softmax (is_log = 0) or log_softmax (is_log = 1) along the middle axis
 * of a contiguous (pre, n, post) block of `comp` (float32 or float64).  x
 * and y may be the same buffer.  Returns -1 with MemoryError set.
 */
int pf_softmax(const void *x, void *y, int64_t pre, int64_t n, int64_t post, pf_dtype comp,
               int is_log, const char *op);

/*
 * Inclusive sum (prod = 0) or product scan along the middle axis of a
 * contiguous (pre, n, post) block of `comp` (float32, float64, int64);
 * x and y may be the same buffer.
 */
void pf_scan(const void *x, void *y, int64_t pre, int64_t n, int64_t post, pf_dtype comp,
             int prod);

#endif /* PF_REDUCE_KERNELS_H */
