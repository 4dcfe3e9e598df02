/*
 * backward.h -- what the files of backward rules share: the arena that
 * holds a rule's intermediate values, and NULL-passing wrappers of the op
 * helpers in autograd.h.
 *
 * A rule keeps every new reference in its arena (pf_keep) and frees them
 * all at its end (pf_arena_free); the A_* helpers return NULL when an
 * argument is NULL, so a chain of them needs one check at its end.  The
 * results a rule hands to the engine are taken with pf_arena_out, which
 * adds the reference the engine owns.
 *
 *     pf_arena A_ = {0}, *A = &A_;
 *     PyObject *x = pf_keep(A, pf_node_input(n, 0));
 *     int rc = pf_arena_out(A, gin, 0, A_ew2(A, PF_OP_MUL, gout[0], x));
 *     pf_arena_free(A);
 *     return rc;
 */
#ifndef PF_BACKWARD_H
#define PF_BACKWARD_H

#include "autograd.h"

#define PF_ARENA_SIZE 96

typedef struct {
    PyObject *o[PF_ARENA_SIZE];
    int n;
    int err;
} pf_arena;

/* Keep o (a new reference, or NULL for an error) until pf_arena_free; returns o. */
PyObject *pf_keep(pf_arena *A, PyObject *o);
void pf_arena_free(pf_arena *A);
/* gin[i] = a new reference to v (when v is not NULL); -1 if the arena saw an error. */
int pf_arena_out(pf_arena *A, PyObject **gin, int i, PyObject *v);

PyObject *A_ew1(pf_arena *A, pf_op op, PyObject *a);
PyObject *A_ew2(pf_arena *A, pf_op op, PyObject *a, PyObject *b);
PyObject *A_ew3(pf_arena *A, pf_op op, PyObject *a, PyObject *b, PyObject *c);
PyObject *A_f(pf_arena *A, double v);
PyObject *A_zeros_like(pf_arena *A, PyObject *t);

PyObject *pf_bw_rule_list(PyObject *m, PyObject *a);

/*
 * Helpers of the shape and gather rules (backward_gather.c).  names are the
 * binding's argument names, as given to pf_node_args; k indexes them.
 */
/* The input slot of argument k, or -1 when it is not a tensor or was not given. */
int pf_bw_arg_slot(PfNode *n, const char *const *names, int k);
/* The slot of the first tensor inside the list/tuple argument k. */
int pf_bw_seq_slot(PfNode *n, const char *const *names, int k);
/* v[k] (from pf_node_args) as a new reference, version-checked when it is a tensor. */
PyObject *pf_bw_arg(PfNode *n, const char *const *names, PyObject *const *v, int k);
/* An axis argument (dflt when absent or None) normalised against ndim; errors name the op. */
int pf_bw_axis(PfNode *n, PyObject *o, int dflt, int ndim, int *axis);
/* A new 1-D int64 tensor: start, start + 1, ..., start + count - 1. */
PyObject *pf_bw_arange(int64_t start, int64_t count);
/* Zeros on the device of `like` (the gradient they will be summed with). */
PyObject *pf_bw_zeros(pf_arena *A, const int64_t *shape, int ndim, pf_dtype dtype,
                      PyObject *like);
/* t on like's device: t itself (borrowed) when it is there, else a copy kept in A. */
PyObject *pf_bw_to_device_of(pf_arena *A, PyObject *t, PyObject *like);
PyObject *A_reshape(pf_arena *A, PyObject *t, const int64_t *shape, int ndim);
PyObject *A_broadcast(pf_arena *A, PyObject *t, const int64_t *shape, int ndim);
PyObject *A_scatter_add(pf_arena *A, PyObject *dst, int axis, PyObject *index, PyObject *src);
/*
 * The gradient of take(x, pos, axis) for x of the given shape (axis < 0:
 * the flattened x): g scatter-added into zeros at the int64 positions pos.
 */
PyObject *pf_bw_take_grad(pf_arena *A, const int64_t *shape, int ndim, int axis, PyObject *pos,
                          PyObject *g);

#endif /* PF_BACKWARD_H */
