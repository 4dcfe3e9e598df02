/*
 * backward_conv.c -- backward rules of the convolution and pooling ops
 * (nn_conv.c).
 *
 * Each rule re-parses its node's saved call with the binding's own parser
 * (pf_conv_parse, pf_pool_parse), so it sees the geometry the op ran with,
 * and is written with the helper ops of the same family:
 *
 *   conv(x, w)                 dx = _conv_input_grad(g, w)    dw = _conv_weight_grad(x, g)
 *   _conv_input_grad(g, w)     dg = _conv(G, w)               dw = _conv_weight_grad(G, g)
 *   _conv_weight_grad(x, g)    dx = _conv_input_grad(g, G)    dg = _conv(x, G)
 *   conv_transpose2d(x, w)     dx = _conv(g, w)               dw = _conv_weight_grad(g, x)
 *   max_pool(x)                dx = _max_pool_backward(g, x)
 *   _max_pool_backward(g, x)   dg = _max_pool_select(G, x)    dx = 0 (piecewise constant)
 *   _max_pool_select(v, x)     dv = _max_pool_backward(G, x)  dx = 0
 *   avg_pool(x)                dx = _avg_pool_backward(g)
 *   _avg_pool_backward(g)      dg = avg_pool2d(G)
 *
 * (bias: the sum of g over the batch and spatial axes), so that under
 * create_graph the rules record nodes whose rules are in this table too,
 * and derivatives of every order exist.  An unbatched call's gradient is
 * given a batch axis of 1 for the helpers (which take batched tensors
 * only); the engine sums it away again.
 */
#include "backward.h"
#include "nn_conv.h"

/* The node input slot of argument idx of the op's names, or -1 when that argument was absent
   or not a tensor. */
static int arg_slot(PfNode *n, const char *const *names, int idx)
{
    Py_ssize_t nkw = n->kwnames ? PyTuple_GET_SIZE(n->kwnames) : 0;
    Py_ssize_t total = PyTuple_GET_SIZE(n->args), nargs = total - nkw;
    int slot = 0;
    for (Py_ssize_t i = 0; i < total; i++) {
        PyObject *a = PyTuple_GET_ITEM(n->args, i);
        int which = -1;
        if (i < nargs) {
            which = (int)i;
        }
        else {
            const char *kw = PyUnicode_AsUTF8(PyTuple_GET_ITEM(n->kwnames, i - nargs));
            for (int k = 0; kw != NULL && names[k] != NULL; k++) {
                if (strcmp(kw, names[k]) == 0) {
                    which = k;
                }
            }
        }
        if (which == idx) {
            return PfTensor_Check(a) ? slot : -1;
        }
        /* the recorder gives a slot to every tensor, those inside sequences too */
        if (PfTensor_Check(a)) {
            slot++;
        }
        else if (PyTuple_Check(a)) {
            for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(a); j++) {
                slot += PfTensor_Check(PyTuple_GET_ITEM(a, j));
            }
        }
    }
    return -1;
}

static int wants(PfNode *n, int slot)
{
    return slot >= 0 && pf_bw_wants(n, slot);
}

/* Argument idx as a tensor: the saved, version-checked one, or the array-like that was passed
   (which records no history), converted. */
static PyObject *arg_value(pf_arena *A, PfNode *n, PyObject **v, int slot, int idx)
{
    if (slot >= 0) {
        return pf_keep(A, pf_node_input(n, slot));
    }
    return pf_keep(A, (PyObject *)pf_as_tensor(v[idx], 0, PF_FLOAT32, "backward"));
}

/* t with a leading batch axis of 1 when the call was unbatched. */
static PyObject *batch(pf_arena *A, int batched, PyObject *t)
{
    if (batched || t == NULL) {
        return t;
    }
    PfTensor *x = (PfTensor *)t;
    int64_t shape[PF_MAX_DIMS];
    shape[0] = 1;
    memcpy(shape + 1, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    return pf_keep(A, pf_reshape(t, shape, x->ndim + 1));
}

/* (a, b) for 2-D, (b,) for 1-D */
static PyObject *A_pair(pf_arena *A, int nd, int64_t a, int64_t b)
{
    return pf_keep(A, nd == 2 ? Py_BuildValue("(LL)", (long long)a, (long long)b)
                              : Py_BuildValue("(L)", (long long)b));
}

/* sum of g over every axis but the channels (1) */
static PyObject *A_channel_sum(pf_arena *A, PyObject *g)
{
    if (g == NULL) {
        return NULL;
    }
    int mask[PF_MAX_DIMS] = {0}, nd = ((PfTensor *)g)->ndim;
    for (int k = 0; k < nd; k++) {
        mask[k] = k != 1;
    }
    return pf_keep(A, pf_sum_axes(g, mask, nd, 0));
}

/* ------------------------------------------------------------ convolution */

/* op(t0, t1, size, stride, padding, dilation, groups) for a convolution helper */
static PyObject *conv_helper(pf_arena *A, pf_op op, const pf_conv_call *c, PyObject *t0,
                             PyObject *t1, PyObject *size)
{
    const pf_conv_geom *g = &c->g;
    PyObject *args[7] = {t0, t1, size, A_pair(A, c->nd, g->sh, g->sw),
                         A_pair(A, c->nd, g->ph, g->pw), A_pair(A, c->nd, g->dh, g->dw),
                         pf_keep(A, PyLong_FromLongLong(g->groups))};
    for (int k = 0; k < 7; k++) {
        if (args[k] == NULL) {
            return NULL;
        }
    }
    return pf_keep(A, pf_call(op, args, 7, NULL));
}

/* The call of node n, parsed: its argument values v[8] and its geometry. */
static int conv_node(PfNode *n, PyObject **v, pf_conv_call *c)
{
    if (pf_node_args(n, pf_conv_arg_names(n->kind), 2, v) < 0 ||
        pf_conv_parse(n->kind, v, c) < 0) {
        return -1;
    }
    return 0;
}

/* conv1d, conv2d, _conv */
static int bw_conv(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    const char *const *names = pf_conv_arg_names(n->kind);
    PyObject *v[8];
    pf_conv_call c;
    int rc = -1;
    if (conv_node(n, v, &c) < 0) {
        goto done;
    }
    const pf_conv_geom *g = &c.g;
    int sx = arg_slot(n, names, 0), sw = arg_slot(n, names, 1), sb = arg_slot(n, names, 2);
    PyObject *gy = batch(A, c.batched, gout[0]);
    if (wants(n, sx)) {
        PyObject *w = arg_value(A, n, v, sw, 1);
        PyObject *gx = conv_helper(A, PF_OP_CONV_INPUT_GRAD, &c, gy, w,
                                   A_pair(A, c.nd, g->h, g->w));
        if (pf_arena_out(A, gin, sx, gx) < 0 || gx == NULL) {
            goto done;
        }
    }
    if (wants(n, sw)) {
        PyObject *x = batch(A, c.batched, arg_value(A, n, v, sx, 0));
        PyObject *gw = conv_helper(A, PF_OP_CONV_WEIGHT_GRAD, &c, x, gy,
                                   A_pair(A, c.nd, g->kh, g->kw));
        if (pf_arena_out(A, gin, sw, gw) < 0 || gw == NULL) {
            goto done;
        }
    }
    if (n->kind != PF_OP_CONV && wants(n, sb)) {
        PyObject *gb = A_channel_sum(A, gy);
        if (pf_arena_out(A, gin, sb, gb) < 0 || gb == NULL) {
            goto done;
        }
    }
    rc = 0;
done:
    pf_arena_free(A);
    return rc;
}

/*
 * _conv_input_grad and _conv_weight_grad are bilinear in their two tensor
 * arguments, and each argument's gradient is one of the three convolution
 * helpers applied to the output gradient G and the other argument.  A term
 * says which helper, whether G is its first operand, and which size the
 * result takes (the output's, the kernel's or the input's spatial size).
 */
typedef struct {
    pf_op op;
    int g_first;
    int size;           /* 0: (oh, ow), 1: (kh, kw), 2: (h, w) */
} conv_term;

static int bw_conv_bilinear(PfNode *n, PyObject **gout, PyObject **gin, const conv_term *terms)
{
    pf_arena A_ = {0}, *A = &A_;
    const char *const *names = pf_conv_arg_names(n->kind);
    PyObject *v[8];
    pf_conv_call c;
    int rc = -1;
    if (conv_node(n, v, &c) < 0) {
        goto done;
    }
    const pf_conv_geom *g = &c.g;
    for (int i = 0; i < 2; i++) {
        int si = arg_slot(n, names, i), so = arg_slot(n, names, 1 - i);
        if (!wants(n, si)) {
            continue;
        }
        PyObject *other = arg_value(A, n, v, so, 1 - i);
        const conv_term *t = &terms[i];
        PyObject *size = t->size == 0 ? A_pair(A, c.nd, g->oh, g->ow)
                         : t->size == 1 ? A_pair(A, c.nd, g->kh, g->kw)
                                        : A_pair(A, c.nd, g->h, g->w);
        PyObject *r = conv_helper(A, t->op, &c, t->g_first ? gout[0] : other,
                                  t->g_first ? other : gout[0], size);
        if (pf_arena_out(A, gin, si, r) < 0 || r == NULL) {
            goto done;
        }
    }
    rc = 0;
done:
    pf_arena_free(A);
    return rc;
}

/* _conv_input_grad(grad, weight): G has the convolution input's shape */
static int bw_conv_input_grad(PfNode *n, PyObject **gout, PyObject **gin)
{
    static const conv_term terms[2] = {{PF_OP_CONV, 1, 0}, {PF_OP_CONV_WEIGHT_GRAD, 1, 1}};
    return bw_conv_bilinear(n, gout, gin, terms);
}

/* _conv_weight_grad(input, grad): G has the weight's shape */
static int bw_conv_weight_grad(PfNode *n, PyObject **gout, PyObject **gin)
{
    static const conv_term terms[2] = {{PF_OP_CONV_INPUT_GRAD, 0, 2}, {PF_OP_CONV, 0, 0}};
    return bw_conv_bilinear(n, gout, gin, terms);
}

/* conv_transpose2d(input, weight, bias): the input gradient of the convolution in c */
static int bw_conv_transpose(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    const char *const *names = pf_conv_arg_names(n->kind);
    PyObject *v[8];
    pf_conv_call c;
    int rc = -1;
    if (conv_node(n, v, &c) < 0) {
        goto done;
    }
    const pf_conv_geom *g = &c.g;
    int sx = arg_slot(n, names, 0), sw = arg_slot(n, names, 1), sb = arg_slot(n, names, 2);
    PyObject *gy = batch(A, c.batched, gout[0]);
    if (wants(n, sx)) {
        PyObject *w = arg_value(A, n, v, sw, 1);
        PyObject *r = conv_helper(A, PF_OP_CONV, &c, gy, w, A_pair(A, c.nd, g->oh, g->ow));
        if (pf_arena_out(A, gin, sx, r) < 0 || r == NULL) {
            goto done;
        }
    }
    if (wants(n, sw)) {
        PyObject *x = batch(A, c.batched, arg_value(A, n, v, sx, 0));
        PyObject *r = conv_helper(A, PF_OP_CONV_WEIGHT_GRAD, &c, gy, x,
                                  A_pair(A, c.nd, g->kh, g->kw));
        if (pf_arena_out(A, gin, sw, r) < 0 || r == NULL) {
            goto done;
        }
    }
    if (wants(n, sb)) {
        PyObject *gb = A_channel_sum(A, gy);
        if (pf_arena_out(A, gin, sb, gb) < 0 || gb == NULL) {
            goto done;
        }
    }
    rc = 0;
done:
    pf_arena_free(A);
    return rc;
}

/* ---------------------------------------------------------------- pooling */

static int pool_node(PfNode *n, PyObject **v, pf_pool_call *c)
{
    if (pf_node_args(n, pf_pool_arg_names(n->kind), 2, v) < 0 ||
        pf_pool_parse(n->kind, v, c) < 0) {
        return -1;
    }
    return 0;
}

/* op(t0, t1, kernel_size, stride, padding, dilation, ceil_mode) for a max-pool helper */
static PyObject *max_helper(pf_arena *A, pf_op op, const pf_pool_call *c, PyObject *t0,
                            PyObject *t1)
{
    const pf_pool_geom *g = &c->g;
    PyObject *args[7] = {t0, t1, A_pair(A, c->nd, g->kh, g->kw), A_pair(A, c->nd, g->sh, g->sw),
                         A_pair(A, c->nd, g->ph, g->pw), A_pair(A, c->nd, g->dh, g->dw),
                         c->ceil_mode ? Py_True : Py_False};
    for (int k = 0; k < 7; k++) {
        if (args[k] == NULL) {
            return NULL;
        }
    }
    return pf_keep(A, pf_call(op, args, 7, NULL));
}

/* max_pool1d, max_pool2d */
static int bw_max_pool(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    const char *const *names = pf_pool_arg_names(n->kind);
    PyObject *v[8];
    pf_pool_call c;
    int rc = -1;
    int sx = arg_slot(n, names, 0);
    if (!wants(n, sx)) {
        return 0;
    }
    if (pool_node(n, v, &c) < 0) {
        goto done;
    }
    PyObject *x = batch(A, c.batched, arg_value(A, n, v, sx, 0));
    PyObject *r = max_helper(A, PF_OP_MAX_POOL_BACKWARD, &c, batch(A, c.batched, gout[0]), x);
    rc = pf_arena_out(A, gin, sx, r) < 0 || r == NULL ? -1 : 0;
done:
    pf_arena_free(A);
    return rc;
}

/*
 * _max_pool_backward(grad, input) and _max_pool_select(values, input):
 * linear in their first argument, each the other's adjoint; piecewise
 * constant in input (zero gradient, left unset).
 */
static int bw_max_helper(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    const char *const *names = pf_pool_arg_names(n->kind);
    PyObject *v[8];
    pf_pool_call c;
    int rc = -1;
    int s0 = arg_slot(n, names, 0), sx = arg_slot(n, names, 1);
    if (!wants(n, s0)) {
        return 0;
    }
    if (pool_node(n, v, &c) < 0) {
        goto done;
    }
    PyObject *x = arg_value(A, n, v, sx, 1);
    pf_op other = n->kind == PF_OP_MAX_POOL_BACKWARD ? PF_OP_MAX_POOL_SELECT
                                                     : PF_OP_MAX_POOL_BACKWARD;
    PyObject *r = max_helper(A, other, &c, gout[0], x);
    rc = pf_arena_out(A, gin, s0, r) < 0 || r == NULL ? -1 : 0;
done:
    pf_arena_free(A);
    return rc;
}

static PyObject *A_divisor(pf_arena *A, const pf_pool_call *c)
{
    return c->g.divisor > 0 ? pf_keep(A, PyLong_FromLongLong(c->g.divisor)) : Py_None;
}

/* avg_pool1d, avg_pool2d */
static int bw_avg_pool(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    const char *const *names = pf_pool_arg_names(n->kind);
    PyObject *v[8];
    pf_pool_call c;
    int rc = -1;
    int sx = arg_slot(n, names, 0);
    if (!wants(n, sx)) {
        return 0;
    }
    if (pool_node(n, v, &c) < 0) {
        goto done;
    }
    const pf_pool_geom *g = &c.g;
    PyObject *args[8] = {batch(A, c.batched, gout[0]), A_pair(A, c.nd, g->h, g->w),
                         A_pair(A, c.nd, g->kh, g->kw), A_pair(A, c.nd, g->sh, g->sw),
                         A_pair(A, c.nd, g->ph, g->pw), c.ceil_mode ? Py_True : Py_False,
                         g->count_include_pad ? Py_True : Py_False, A_divisor(A, &c)};
    for (int k = 0; k < 8; k++) {
        if (args[k] == NULL) {
            goto done;
        }
    }
    PyObject *r = pf_keep(A, pf_call(PF_OP_AVG_POOL_BACKWARD, args, 8, NULL));
    rc = pf_arena_out(A, gin, sx, r) < 0 || r == NULL ? -1 : 0;
done:
    pf_arena_free(A);
    return rc;
}

/* _avg_pool_backward(grad, input_size, ...): linear; its adjoint is the average pooling */
static int bw_avg_helper(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    const char *const *names = pf_pool_arg_names(n->kind);
    PyObject *v[8];
    pf_pool_call c;
    int rc = -1;
    int sg = arg_slot(n, names, 0);
    if (!wants(n, sg)) {
        return 0;
    }
    if (pool_node(n, v, &c) < 0) {
        goto done;
    }
    const pf_pool_geom *g = &c.g;
    /* a 1-D pooling is the 2-D one over rows of height 1 (avg_pool1d has no divisor_override) */
    PyObject *G = gout[0];
    PfTensor *Gt = (PfTensor *)G;
    if (c.nd == 1) {
        int64_t s4[4] = {Gt->shape[0], Gt->shape[1], 1, Gt->shape[2]};
        G = pf_keep(A, pf_reshape(G, s4, 4));
    }
    PyObject *args[7] = {G, A_pair(A, 2, g->kh, g->kw), A_pair(A, 2, g->sh, g->sw),
                         A_pair(A, 2, g->ph, g->pw), c.ceil_mode ? Py_True : Py_False,
                         g->count_include_pad ? Py_True : Py_False, A_divisor(A, &c)};
    for (int k = 0; k < 7; k++) {
        if (args[k] == NULL) {
            goto done;
        }
    }
    PyObject *r = pf_keep(A, pf_call(PF_OP_AVG_POOL2D, args, 7, NULL));
    if (r != NULL && c.nd == 1) {
        int64_t s3[3] = {g->n, g->c, g->ow};
        r = pf_keep(A, pf_reshape(r, s3, 3));
    }
    rc = pf_arena_out(A, gin, sg, r) < 0 || r == NULL ? -1 : 0;
done:
    pf_arena_free(A);
    return rc;
}

const pf_bw_fn pf_bw_conv_rules[PF_OP_COUNT] = {
    [PF_OP_CONV1D] = bw_conv,
    [PF_OP_CONV2D] = bw_conv,
    [PF_OP_CONV] = bw_conv,
    [PF_OP_CONV_INPUT_GRAD] = bw_conv_input_grad,
    [PF_OP_CONV_WEIGHT_GRAD] = bw_conv_weight_grad,
    [PF_OP_CONV_TRANSPOSE2D] = bw_conv_transpose,
    [PF_OP_MAX_POOL1D] = bw_max_pool,
    [PF_OP_MAX_POOL2D] = bw_max_pool,
    [PF_OP_MAX_POOL_BACKWARD] = bw_max_helper,
    [PF_OP_MAX_POOL_SELECT] = bw_max_helper,
    [PF_OP_AVG_POOL1D] = bw_avg_pool,
    [PF_OP_AVG_POOL2D] = bw_avg_pool,
    [PF_OP_AVG_POOL_BACKWARD] = bw_avg_helper,
};
