/*
 * optim_kernels.h -- the element loops of the fused optimizer updates
 * (csrc/optim.c binds them as pyframe._C._optim_step).
 *
 * One loop per (algorithm, dtype) updates one contiguous run of one
 * parameter: the parameter, its gradient and its state tensors are arrays
 * of the same length and dtype.  Everything that is the same for the whole
 * run (bias corrections, the clipping scale, weight decay factors) is
 * computed once per parameter and step, in double, and handed over in a
 * pf_optim_coef; the loops themselves are branch-free arithmetic that GCC
 * vectorises.
 */
#ifndef PF_OPTIM_KERNELS_H
#define PF_OPTIM_KERNELS_H

#include <stdint.h>

typedef enum {
    PF_OPTIM_SGD = 0,
    PF_OPTIM_ADAM,
    PF_OPTIM_RMSPROP,
    PF_OPTIM_ADAGRAD,
    PF_OPTIM_ADAMAX,
    PF_OPTIM_NADAM,
    PF_OPTIM_LION,
    PF_OPTIM_NALGOS
} pf_optim_algo;

/* at most this many state tensors per parameter (RMSprop: square_avg, momentum_buffer, grad_avg) */
#define PF_OPTIM_MAX_SLOTS 3

/* variant bits (which optional states a loop reads and writes) */
#define PF_OPTIM_V_BUF 1        /* SGD, RMSprop: a momentum buffer */
#define PF_OPTIM_V_CENTERED 2   /* RMSprop: a gradient average */
#define PF_OPTIM_V_AMSGRAD 4    /* Adam: the running maximum of exp_avg_sq */

/*
 * Per-parameter constants of one step.  Every loop first forms the
 * gradient it uses as
 *
 *     g = clamp(g * gmul, -clip, clip) + l2 * p        p = p * decay
 *
 * (gmul folds the loss-scale, the clip-by-norm scale and the sign flip of
 * `maximize`; clip is +inf without clipvalue; l2 is the PyTorch-style
 * weight decay, decay the decoupled one: 1 - lr * weight_decay), then the
 * algorithm's update with the coefficients c[] documented in
 * optim_kernels.c.
 */
typedef struct {
    double gmul;
    double clip;
    double l2;
    double decay;
    double c[8];
    int variant;
} pf_optim_coef;

/*
 * p (n) parameter, g (n) gradient, s[k] (n) the algorithm's states, all
 * contiguous and of the loop's dtype; updates p and s in place.
 */
typedef void (*pf_optim_loop)(void *p, const void *g, void *const *s, int64_t n,
                              const pf_optim_coef *c);

/* The loop of an algorithm for float32 (is_double 0) or float64 (1). */
pf_optim_loop pf_optim_get_loop(pf_optim_algo algo, int is_double);

/* Sum of squares of x (n elements), accumulated in double in a fixed order. */
double pf_optim_sumsq(const void *x, int64_t n, int is_double);

#endif /* PF_OPTIM_KERNELS_H */
