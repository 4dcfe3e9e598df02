/*
 * backward_reduce.c -- backward rules of the reductions, scans and softmax
 * (reduce.c).  A reduction's gradient is broadcast back over the reduced
 * axes: pf_unreduce puts the reduced axes back as size 1 (when keepdims was
 * false), and broadcasting in the elementwise op that follows does the rest.
 */
#include "backward.h"

static const char *const names_dtype[] = {"x", "axis", "keepdims", "dtype", "out", NULL};

/* The reduced-axes mask and keepdims of a reduction node, parsed from its saved call. */
static int reduced_axes(PfNode *n, const char *const *names, int axis_at, int keep_at,
                        int *mask, int *keepdims)
{
    PyObject *v[8] = {NULL};
    if (pf_node_args(n, names, 1, v) < 0) {
        return -1;
    }
    char buf[128];
    const char *op = pf_node_name(n, buf, sizeof(buf));
    if (pf_parse_axes(v[axis_at] ? v[axis_at] : Py_None, n->in_meta[0].ndim, op, mask) < 0 ||
        pf_parse_bool(v[keep_at], op, "keepdims", 0, keepdims) < 0) {
        return -1;
    }
    return 0;
}

/* sum: the gradient, broadcast back over the reduced axes */
static int bw_sum(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    int mask[PF_MAX_DIMS], keep;
    int rc = -1;
    if (reduced_axes(n, names_dtype, 1, 2, mask, &keep) == 0) {
        PyObject *g = pf_keep(A, pf_unreduce(gout[0], mask, &n->in_meta[0], keep));
        /* materialise the broadcast: the engine expects the input's shape or a broadcast of it */
        PyObject *z = g ? pf_keep(A, pf_zeros_meta(&n->in_meta[0])) : NULL;
        rc = pf_arena_out(A, gin, 0, A_ew2(A, PF_OP_ADD, z, g));
    }
    pf_arena_free(A);
    return rc;
}

/* mean: the sum's gradient divided by the number of elements reduced */
static int bw_mean(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    int mask[PF_MAX_DIMS], keep;
    int rc = -1;
    if (reduced_axes(n, names_dtype, 1, 2, mask, &keep) == 0) {
        double count = 1;
        for (int i = 0; i < n->in_meta[0].ndim; i++) {
            count *= mask[i] ? (double)n->in_meta[0].shape[i] : 1.0;
        }
        PyObject *g = pf_keep(A, pf_unreduce(gout[0], mask, &n->in_meta[0], keep));
        PyObject *z = g ? pf_keep(A, pf_zeros_meta(&n->in_meta[0])) : NULL;
        rc = pf_arena_out(A, gin, 0, A_ew2(A, PF_OP_ADD, z, A_ew2(A, PF_OP_DIV, g, A_f(A, count))));
    }
    pf_arena_free(A);
    return rc;
}

const pf_bw_fn pf_bw_reduce_rules[PF_OP_COUNT] = {
    [PF_OP_SUM] = bw_sum,
    [PF_OP_MEAN] = bw_mean,
};
