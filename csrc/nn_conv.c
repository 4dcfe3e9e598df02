/*
 * nn_conv.c -- convolution and pooling ops: conv1d, conv2d and
 * conv_transpose2d, max_pool1d/2d and avg_pool1d/2d with PyTorch's
 * functional signatures and semantics (NCL / NCHW logical layout, weight
 * (out_channels, in_channels / groups, kH, kW), unbatched inputs accepted),
 * and the helpers their backward rules are written with:
 *
 *   _conv(input, weight, output_size, stride, padding, dilation, groups)
 *       a convolution with the output size given and padding only before:
 *       any geometry a rule needs (asymmetric "same" padding, the crop of a
 *       transposed convolution);
 *   _conv_input_grad(grad, weight, input_size, stride, padding, dilation, groups)
 *       its input gradient (a transposed convolution);
 *   _conv_weight_grad(input, grad, kernel_size, stride, padding, dilation, groups)
 *       its weight gradient;
 *   _max_pool_backward(grad, input, kernel_size, stride, padding, dilation, ceil_mode)
 *       grad added at the first maximum of each window of input;
 *   _max_pool_select(values, input, ...)
 *       values read at those maxima (the adjoint of _max_pool_backward);
 *   _avg_pool_backward(grad, input_size, kernel_size, stride, padding,
 *                      ceil_mode, count_include_pad, divisor_override)
 *       grad spread over each window (the adjoint of avg_pool).
 *
 * The three convolution helpers are closed under differentiation (each one's
 * gradients are the other two), as are the two max-pool helpers, and
 * avg_pool with its backward: every public op has second derivatives.
 * The helpers take batched 3-D or 4-D tensors (1-D or 2-D by ndim).
 *
 * float16 and bfloat16 compute in float32 and round once at the end;
 * outputs follow their input's memory layout (kernels/conv.h).
 */
#include "nn_conv.h"

/* Multiply-adds (or window reads) above which the kernels run without the GIL. */
#define GIL_WORK (1 << 20)

static const pf_device CPU = {PF_DEV_CPU, 0};

/* ------------------------------------------------------------- arguments */

static const char *const names_conv[] = {"input", "weight", "bias", "stride", "padding",
                                         "dilation", "groups", NULL};
static const char *const names_conv_t[] = {"input", "weight", "bias", "stride", "padding",
                                           "output_padding", "groups", "dilation", NULL};
static const char *const names_raw[] = {"input", "weight", "output_size", "stride", "padding",
                                        "dilation", "groups", NULL};
static const char *const names_igrad[] = {"grad", "weight", "input_size", "stride", "padding",
                                          "dilation", "groups", NULL};
static const char *const names_wgrad[] = {"input", "grad", "kernel_size", "stride", "padding",
                                          "dilation", "groups", NULL};
static const char *const names_maxpool[] = {"input", "kernel_size", "stride", "padding",
                                            "dilation", "ceil_mode", NULL};
static const char *const names_avgpool1[] = {"input", "kernel_size", "stride", "padding",
                                             "ceil_mode", "count_include_pad", NULL};
static const char *const names_avgpool2[] = {"input", "kernel_size", "stride", "padding",
                                             "ceil_mode", "count_include_pad",
                                             "divisor_override", NULL};
static const char *const names_maxbwd[] = {"grad", "input", "kernel_size", "stride", "padding",
                                           "dilation", "ceil_mode", NULL};
static const char *const names_maxsel[] = {"values", "input", "kernel_size", "stride",
                                           "padding", "dilation", "ceil_mode", NULL};
static const char *const names_avgbwd[] = {"grad", "input_size", "kernel_size", "stride",
                                           "padding", "ceil_mode", "count_include_pad",
                                           "divisor_override", NULL};

const char *const *pf_conv_arg_names(pf_op op)
{
    switch (op) {
    case PF_OP_CONV_TRANSPOSE2D: return names_conv_t;
    case PF_OP_CONV: return names_raw;
    case PF_OP_CONV_INPUT_GRAD: return names_igrad;
    case PF_OP_CONV_WEIGHT_GRAD: return names_wgrad;
    default: return names_conv;
    }
}

const char *const *pf_pool_arg_names(pf_op op)
{
    switch (op) {
    case PF_OP_AVG_POOL1D: return names_avgpool1;
    case PF_OP_AVG_POOL2D: return names_avgpool2;
    case PF_OP_MAX_POOL_BACKWARD: return names_maxbwd;
    case PF_OP_MAX_POOL_SELECT: return names_maxsel;
    case PF_OP_AVG_POOL_BACKWARD: return names_avgbwd;
    default: return names_maxpool;
    }
}

/* Required leading arguments of each op. */
static int nrequired(pf_op op)
{
    switch (op) {
    case PF_OP_CONV1D:
    case PF_OP_CONV2D:
    case PF_OP_CONV_TRANSPOSE2D:
    case PF_OP_MAX_POOL1D:
    case PF_OP_MAX_POOL2D:
    case PF_OP_AVG_POOL1D:
    case PF_OP_AVG_POOL2D:
        return 2;
    default:
        return 3;
    }
}

static const char *dim_name(int nd, int k)
{
    return nd == 1 ? "length" : (k == 0 ? "height" : "width");
}

/* "(2, 3)" for n values */
static const char *ints_str(const int64_t *v, int n, char *buf, size_t size)
{
    return pf_shape_str(v, n, buf, size);
}

/* An int, or a sequence of nd ints, each >= min, into out[nd]; NULL (absent) gives dflt. */
static int parse_ints(PyObject *o, int nd, int64_t dflt, int64_t min, const char *op,
                      const char *what, int64_t *out)
{
    if (o == NULL) {
        for (int k = 0; k < nd; k++) {
            out[k] = dflt;
        }
        return 0;
    }
    if (PyTuple_Check(o) || PyList_Check(o)) {
        Py_ssize_t len = PySequence_Fast_GET_SIZE(o);
        if (len != nd) {
            return PF_ERRI(PyExc_ValueError,
                           "%s: %s must be an int or a sequence of %d int%s; got a sequence of "
                           "%zd", op, what, nd, nd > 1 ? "s" : "", len);
        }
        for (int k = 0; k < nd; k++) {
            if (pf_int_arg(PySequence_Fast_GET_ITEM(o, k), op, what, &out[k]) < 0) {
                return -1;
            }
        }
    }
    else {
        int64_t v;
        if (PyUnicode_Check(o)) {
            return PF_ERRI(PyExc_TypeError, "%s: %s must be an int or a sequence of %d ints; "
                           "got the string '%U'", op, what, nd, o);
        }
        if (pf_int_arg(o, op, what, &v) < 0) {
            return -1;
        }
        for (int k = 0; k < nd; k++) {
            out[k] = v;
        }
    }
    for (int k = 0; k < nd; k++) {
        if (out[k] < min) {
            return PF_ERRI(PyExc_ValueError, "%s: %s must be >= %lld; got %lld", op, what,
                           (long long)min, (long long)out[k]);
        }
    }
    return 0;
}

/*
 * A convolution's padding: an int, a sequence of nd ints, or (pairs)
 * a sequence of nd (before, after) pairs; or (strings) "valid" / "same".
 * pad[k] = {before, after}; *same is set for "same" (pad then unset).
 */
static int parse_conv_padding(PyObject *o, int nd, const char *op, int strings, int pairs,
                              int64_t pad[2][2], int *same)
{
    *same = 0;
    for (int k = 0; k < 2; k++) {
        pad[k][0] = pad[k][1] = 0;
    }
    if (o == NULL) {
        return 0;
    }
    if (PyUnicode_Check(o)) {
        const char *s = PyUnicode_AsUTF8(o);
        if (s == NULL) {
            return -1;
        }
        if (strings && strcmp(s, "valid") == 0) {
            return 0;
        }
        if (strings && strcmp(s, "same") == 0) {
            *same = 1;
            return 0;
        }
        return PF_ERRI(PyExc_ValueError, "%s: padding must be %san int or a sequence of %d "
                       "ints; got '%s'", op, strings ? "'valid', 'same', " : "", nd, s);
    }
    if (pairs && (PyTuple_Check(o) || PyList_Check(o)) && PySequence_Fast_GET_SIZE(o) == nd) {
        for (int k = 0; k < nd; k++) {
            PyObject *it = PySequence_Fast_GET_ITEM(o, k);
            if (PyTuple_Check(it) || PyList_Check(it)) {
                if (PySequence_Fast_GET_SIZE(it) != 2) {
                    return PF_ERRI(PyExc_ValueError, "%s: a padding pair must be (before, "
                                   "after); got a sequence of %zd along the %s", op,
                                   PySequence_Fast_GET_SIZE(it), dim_name(nd, k));
                }
                if (pf_int_arg(PySequence_Fast_GET_ITEM(it, 0), op, "padding", &pad[k][0]) < 0 ||
                    pf_int_arg(PySequence_Fast_GET_ITEM(it, 1), op, "padding", &pad[k][1]) < 0) {
                    return -1;
                }
            }
            else {
                if (pf_int_arg(it, op, "padding", &pad[k][0]) < 0) {
                    return -1;
                }
                pad[k][1] = pad[k][0];
            }
        }
    }
    else {
        int64_t p[2];
        if (parse_ints(o, nd, 0, INT64_MIN, op, "padding", p) < 0) {
            return -1;
        }
        for (int k = 0; k < nd; k++) {
            pad[k][0] = pad[k][1] = p[k];
        }
    }
    for (int k = 0; k < nd; k++) {
        if (pad[k][0] < 0 || pad[k][1] < 0) {
            return PF_ERRI(PyExc_ValueError, "%s: padding must be >= 0; got %lld along the %s",
                           op, (long long)(pad[k][0] < 0 ? pad[k][0] : pad[k][1]),
                           dim_name(nd, k));
        }
    }
    return 0;
}

/* ------------------------------------------------------------- tensors */

static PfTensor *tensor_arg(PyObject *o, const char *op, const char *what)
{
    if (o == NULL || o == Py_None) {
        return PF_ERR(PyExc_TypeError, "%s: %s must be a tensor; got None", op, what);
    }
    PfTensor *t = pf_as_tensor(o, 0, PF_FLOAT32, op);
    if (t != NULL && !pf_is_float(t->dtype)) {
        PyErr_Format(PyExc_TypeError,
                     "%s: %s must be a floating-point tensor (float16, bfloat16, float32 or "
                     "float64); got %s. Convert it with .astype(pf.float32)", op, what,
                     pf_dtypes[t->dtype].name);
        Py_CLEAR(t);
    }
    return t;
}

static int same_dtype(PfTensor *a, const char *an, PfTensor *b, const char *bn, const char *op)
{
    if (a->dtype != b->dtype) {
        return PF_ERRI(PyExc_TypeError, "%s: %s (%s) and %s (%s) must have the same dtype; "
                       "convert one with .astype()", op, an, pf_dtypes[a->dtype].name, bn,
                       pf_dtypes[b->dtype].name);
    }
    return 0;
}

/*
 * An activation with nd spatial dimensions: (N, C, *spatial), or, when
 * unbatched is allowed, (C, *spatial).  Sets *batched.
 */
static int act_rank(PfTensor *t, int nd, int unbatched, const char *op, const char *what,
                    int *batched)
{
    if (t->ndim == nd + 2) {
        *batched = 1;
        return 0;
    }
    if (unbatched && t->ndim == nd + 1) {
        *batched = 0;
        return 0;
    }
    char sh[PF_SHAPE_STRLEN];
    const char *layout = nd == 1 ? "(N, C, L)" : "(N, C, H, W)";
    if (unbatched) {
        return PF_ERRI(PyExc_ValueError, "%s: expected %s to be %d-D %s, or %d-D without the "
                       "batch dimension; got %d-D with shape %s", op, what, nd + 2, layout,
                       nd + 1, t->ndim, pf_shape_str(t->shape, t->ndim, sh, sizeof(sh)));
    }
    return PF_ERRI(PyExc_ValueError, "%s: expected %s to be %d-D %s; got %d-D with shape %s", op,
                   what, nd + 2, layout, t->ndim,
                   pf_shape_str(t->shape, t->ndim, sh, sizeof(sh)));
}

/* The spatial dims (1 or 2) of a helper's batched activation, from its ndim. */
static int helper_nd(PfTensor *t, const char *op, const char *what, int *nd)
{
    if (t->ndim != 3 && t->ndim != 4) {
        char sh[PF_SHAPE_STRLEN];
        return PF_ERRI(PyExc_ValueError, "%s: expected %s to be 3-D (N, C, L) or 4-D (N, C, H, "
                       "W); got %d-D with shape %s", op, what, t->ndim,
                       pf_shape_str(t->shape, t->ndim, sh, sizeof(sh)));
    }
    *nd = t->ndim - 2;
    return 0;
}

/*
 * The (N, C, H, W) view of an activation with nd spatial dims (H = 1 for
 * 1-D), batched or not.  An unbatched tensor's N stride is its size, as a
 * dense batch of one would have.
 */
static void act_nd4(const PfTensor *t, int nd, int batched, int64_t *shape, pf_nd4 *a)
{
    int k = batched ? 1 : 0;
    shape[0] = batched ? t->shape[0] : 1;
    a->s[0] = batched ? t->strides[0] : pf_numel(t->shape, t->ndim);
    shape[1] = t->shape[k];
    a->s[1] = t->strides[k];
    if (nd == 2) {
        shape[2] = t->shape[k + 1];
        a->s[2] = t->strides[k + 1];
    }
    else {
        shape[2] = 1;
        a->s[2] = 0;
    }
    shape[3] = t->shape[t->ndim - 1];
    a->s[3] = t->strides[t->ndim - 1];
    a->data = pf_tensor_data(t);
}

/* A weight (O, Cg, *kernel) as (O, Cg, KH, KW). */
static void weight_nd4(const PfTensor *t, pf_nd4 *a)
{
    a->data = pf_tensor_data(t);
    a->s[0] = t->strides[0];
    a->s[1] = t->strides[1];
    a->s[2] = t->ndim == 4 ? t->strides[2] : 0;
    a->s[3] = t->strides[t->ndim - 1];
}

static int act_channels_last(const PfTensor *t, int nd, int batched)
{
    int64_t shape[4];
    pf_nd4 a;
    act_nd4(t, nd, batched, shape, &a);
    return pf_conv_channels_last(shape, a.s);
}

/*
 * A new activation of `shape` (ndim dims, nd of them spatial, the channel
 * just before them) in dtype dt: channels-last in memory when cl (the
 * channel dim innermost, then the spatial dims, then the batch), else
 * contiguous.
 */
static PfTensor *new_act_on(int ndim, const int64_t *shape, int nd, int cl, pf_dtype dt,
                            pf_device dev, const char *op)
{
    if (!cl) {
        return pf_tensor_empty(ndim, shape, dt, dev, op);
    }
    int64_t nbytes = pf_checked_nbytes(shape, ndim, pf_dtypes[dt].itemsize, op);
    if (nbytes < 0) {
        return NULL;
    }
    pf_storage *s = pf_storage_new((size_t)nbytes, dev, op);
    if (s == NULL) {
        return NULL;
    }
    int64_t st[PF_MAX_DIMS], acc = 1;
    int cd = ndim - nd - 1;
    st[cd] = 1;
    acc = shape[cd] > 0 ? shape[cd] : 1;
    for (int d = ndim - 1; d > cd; d--) {
        st[d] = acc;
        acc *= shape[d] > 0 ? shape[d] : 1;
    }
    for (int d = cd - 1; d >= 0; d--) {
        st[d] = acc;
        acc *= shape[d] > 0 ? shape[d] : 1;
    }
    PfTensor *t = pf_tensor_wrap(s, dt, ndim, shape, st, 0);
    pf_storage_decref(s);
    return t;
}

static PfTensor *new_act(int ndim, const int64_t *shape, int nd, int cl, pf_dtype dt,
                         const char *op)
{
    return new_act_on(ndim, shape, nd, cl, dt, CPU, op);
}

static pf_dtype compute_dtype(pf_dtype d)
{
    return d == PF_FLOAT64 ? PF_FLOAT64 : PF_FLOAT32;
}

/*
 * t in the compute dtype cd: t itself (a new reference), or for float16 /
 * bfloat16 a float32 copy in t's layout (nd >= 0: an activation, kept
 * channels-last when cl; nd < 0: contiguous).
 */
static PfTensor *in_compute(PfTensor *t, pf_dtype cd, int nd, int cl, const char *op)
{
    if (t->dtype == cd) {
        Py_INCREF(t);
        return t;
    }
    PfTensor *c = nd >= 0 ? new_act(t->ndim, t->shape, nd, cl, cd, op)
                          : pf_tensor_empty(t->ndim, t->shape, cd, CPU, op);
    if (c != NULL && pf_tensor_assign(c, t, op) < 0) {
        Py_CLEAR(c);
    }
    return c;
}

/* The result r (stolen) in dtype d: r itself, or a rounded copy in r's layout. */
static PyObject *to_dtype(PfTensor *r, pf_dtype d, int nd, int cl, const char *op)
{
    if (r == NULL || r->dtype == d) {
        return (PyObject *)r;
    }
    PfTensor *c = nd >= 0 ? new_act(r->ndim, r->shape, nd, cl, d, op)
                          : pf_tensor_empty(r->ndim, r->shape, d, CPU, op);
    if (c != NULL && pf_tensor_assign(c, r, op) < 0) {
        Py_CLEAR(c);
    }
    Py_DECREF(r);
    return (PyObject *)c;
}

/* -------------------------------------------------- convolution geometry */

/*
 * The tensors of a convolution-family call: t[0], t[1] the two tensor
 * arguments, t[2] the bias (or NULL).  Owned by the caller when `keep`.
 */
typedef struct {
    PfTensor *t[3];
} conv_tensors;

static void tensors_clear(conv_tensors *ts)
{
    for (int k = 0; k < 3; k++) {
        Py_CLEAR(ts->t[k]);
    }
}

/* Shared checks of groups against the channel counts C (input) and O (output). */
static int check_groups(const char *op, int64_t groups, int64_t C, int64_t O, const char *cwhat,
                        const char *owhat)
{
    if (C % groups != 0) {
        return PF_ERRI(PyExc_ValueError, "%s: %s (%lld) must be divisible by groups (%lld)", op,
                       cwhat, (long long)C, (long long)groups);
    }
    if (O % groups != 0) {
        return PF_ERRI(PyExc_ValueError, "%s: %s (%lld) must be divisible by groups (%lld)", op,
                       owhat, (long long)O, (long long)groups);
    }
    return 0;
}

static int check_kernel(const char *op, PfTensor *w, int nd)
{
    char sh[PF_SHAPE_STRLEN];
    if (w->ndim != nd + 2) {
        return PF_ERRI(PyExc_ValueError, "%s: weight must be %d-D (out_channels, in_channels / "
                       "groups, %s); got %d-D with shape %s", op, nd + 2,
                       nd == 1 ? "kL" : "kH, kW", w->ndim,
                       pf_shape_str(w->shape, w->ndim, sh, sizeof(sh)));
    }
    for (int k = 2; k < w->ndim; k++) {
        if (w->shape[k] < 1) {
            return PF_ERRI(PyExc_ValueError, "%s: the kernel must not be empty; weight has "
                           "shape %s", op, pf_shape_str(w->shape, w->ndim, sh, sizeof(sh)));
        }
    }
    return 0;
}

static int check_bias(const char *op, PfTensor *b, PfTensor *x, int64_t O)
{
    char sh[PF_SHAPE_STRLEN];
    if (same_dtype(x, "input", b, "bias", op) < 0) {
        return -1;
    }
    if (b->ndim != 1 || b->shape[0] != O) {
        return PF_ERRI(PyExc_ValueError, "%s: bias must have shape (%lld,) (one value per "
                       "output channel); got shape %s", op, (long long)O,
                       pf_shape_str(b->shape, b->ndim, sh, sizeof(sh)));
    }
    return 0;
}

/* Spatial sizes of an activation (nd of them, after the channel dim). */
static void spatial(const PfTensor *t, int nd, int64_t *out)
{
    for (int k = 0; k < nd; k++) {
        out[k] = t->shape[t->ndim - nd + k];
    }
}

/* Fill g's spatial fields from per-dimension arrays (index 0 = H, or the only dim for 1-D). */
static void set_spatial(pf_conv_geom *g, int nd, const int64_t *in, const int64_t *kern,
                        const int64_t *out, const int64_t *st, const int64_t *pb,
                        const int64_t *dil)
{
    int h = nd == 2 ? 0 : -1, w = nd - 1;
    g->h = h < 0 ? 1 : in[h];
    g->w = in[w];
    g->kh = h < 0 ? 1 : kern[h];
    g->kw = kern[w];
    g->oh = h < 0 ? 1 : out[h];
    g->ow = out[w];
    g->sh = h < 0 ? 1 : st[h];
    g->sw = st[w];
    g->ph = h < 0 ? 0 : pb[h];
    g->pw = pb[w];
    g->dh = h < 0 ? 1 : dil[h];
    g->dw = dil[w];
}

static int parse_conv_geometry(pf_op op, PyObject **v, pf_conv_call *c, conv_tensors *ts)
{
    const char *name = pf_ops[op].name;
    const char *const *names = pf_conv_arg_names(op);
    int64_t stride[2], dil[2], groups = 1, kern[2], in[2], out[2], pb[2];
    int64_t pad[2][2];
    int same = 0;
    memset(c, 0, sizeof(*c));
    for (int k = 0; k < 3; k++) {
        ts->t[k] = NULL;
    }
    int public = op == PF_OP_CONV1D || op == PF_OP_CONV2D || op == PF_OP_CONV_TRANSPOSE2D;
    /* groups is argument 6 of every op here; dilation 5, or 7 for conv_transpose2d */
    const int gi = 6;
    if ((ts->t[0] = tensor_arg(v[0], name, names[0])) == NULL ||
        (ts->t[1] = tensor_arg(v[1], name, names[1])) == NULL ||
        same_dtype(ts->t[0], names[0], ts->t[1], names[1], name) < 0) {
        goto fail;
    }
    PfTensor *a = ts->t[0], *w = ts->t[1];
    if (public) {
        c->nd = op == PF_OP_CONV1D ? 1 : 2;
        if (act_rank(a, c->nd, 1, name, "input", &c->batched) < 0) {
            goto fail;
        }
    }
    else {
        c->batched = 1;
        if (helper_nd(a, name, names[0], &c->nd) < 0) {
            goto fail;
        }
    }
    int nd = c->nd;
    if (v[gi] != NULL && pf_int_arg(v[gi], name, "groups", &groups) < 0) {
        goto fail;
    }
    if (groups < 1) {
        PyErr_Format(PyExc_ValueError, "%s: groups must be >= 1; got %lld", name,
                     (long long)groups);
        goto fail;
    }
    int di = op == PF_OP_CONV_TRANSPOSE2D ? 7 : 5;
    if (parse_ints(v[3], nd, 1, 1, name, "stride", stride) < 0 ||
        parse_ints(v[di], nd, 1, 1, name, "dilation", dil) < 0 ||
        parse_conv_padding(v[4], nd, name, op == PF_OP_CONV1D || op == PF_OP_CONV2D,
                           op == PF_OP_CONV1D || op == PF_OP_CONV2D, pad, &same) < 0) {
        goto fail;
    }
    for (int k = 0; k < nd; k++) {
        pb[k] = pad[k][0];
    }
    int64_t N = c->batched ? a->shape[0] : 1;
    pf_conv_geom *g = &c->g;
    g->groups = groups;
    g->n = N;
    char sh[PF_SHAPE_STRLEN], sh2[PF_SHAPE_STRLEN];

    if (op == PF_OP_CONV_WEIGHT_GRAD) {
        /* (input (N, C, *in), grad (N, O, *out), kernel_size) */
        PfTensor *gy = w;
        if (gy->ndim != a->ndim || gy->shape[0] != a->shape[0]) {
            PyErr_Format(PyExc_ValueError, "%s: grad must be %d-D with the input's batch size; "
                         "got input %s and grad %s", name, a->ndim,
                         pf_shape_str(a->shape, a->ndim, sh, sizeof(sh)),
                         pf_shape_str(gy->shape, gy->ndim, sh2, sizeof(sh2)));
            goto fail;
        }
        if (parse_ints(v[2], nd, 1, 1, name, "kernel_size", kern) < 0 ||
            check_groups(name, groups, a->shape[1], gy->shape[1], "in_channels (input.shape[1])",
                         "out_channels (grad.shape[1])") < 0) {
            goto fail;
        }
        spatial(a, nd, in);
        spatial(gy, nd, out);
        g->c = a->shape[1];
        g->o = gy->shape[1];
        set_spatial(g, nd, in, kern, out, stride, pb, dil);
        return 0;
    }

    if (op == PF_OP_CONV_INPUT_GRAD || op == PF_OP_CONV_TRANSPOSE2D) {
        /* the input gradient of a convolution: t[0] plays the convolution's output */
        if (check_kernel(name, w, nd) < 0) {
            goto fail;
        }
        int64_t O = a->shape[c->batched ? 1 : 0];
        if (w->shape[0] != O) {
            PyErr_Format(PyExc_ValueError, "%s: %s has %lld channels, but weight of shape %s "
                         "expects weight.shape[0] = %lld", name, names[0], (long long)O,
                         pf_shape_str(w->shape, w->ndim, sh, sizeof(sh)),
                         (long long)w->shape[0]);
            goto fail;
        }
        if (O % groups != 0) {
            PyErr_Format(PyExc_ValueError, "%s: %s channels (%lld) must be divisible by groups "
                         "(%lld)", name, names[0], (long long)O, (long long)groups);
            goto fail;
        }
        spatial(w, nd, kern);
        spatial(a, nd, out);
        if (op == PF_OP_CONV_INPUT_GRAD) {
            if (parse_ints(v[2], nd, 1, 1, name, "input_size", in) < 0) {
                goto fail;
            }
        }
        else {
            int64_t opad[2];
            if (parse_ints(v[5], nd, 0, 0, name, "output_padding", opad) < 0) {
                goto fail;
            }
            for (int k = 0; k < nd; k++) {
                if (opad[k] >= stride[k] && opad[k] >= dil[k]) {
                    PyErr_Format(PyExc_ValueError, "%s: output_padding (%lld) must be smaller "
                                 "than stride (%lld) or dilation (%lld) along the %s", name,
                                 (long long)opad[k], (long long)stride[k], (long long)dil[k],
                                 dim_name(nd, k));
                    goto fail;
                }
                in[k] = (out[k] - 1) * stride[k] - 2 * pb[k] + dil[k] * (kern[k] - 1) +
                        opad[k] + 1;
                if (in[k] < 1) {
                    PyErr_Format(PyExc_ValueError, "%s: the output would be empty along the "
                                 "%s: (%lld - 1) * stride %lld - 2 * padding %lld + dilation "
                                 "%lld * (kernel %lld - 1) + output_padding %lld + 1 = %lld; "
                                 "use less padding", name, dim_name(nd, k), (long long)out[k],
                                 (long long)stride[k], (long long)pb[k], (long long)dil[k],
                                 (long long)kern[k], (long long)opad[k], (long long)in[k]);
                    goto fail;
                }
            }
            if (v[2] != NULL && v[2] != Py_None) {
                if ((ts->t[2] = tensor_arg(v[2], name, "bias")) == NULL ||
                    check_bias(name, ts->t[2], a, w->shape[1] * groups) < 0) {
                    goto fail;
                }
                c->has_bias = 1;
            }
        }
        g->o = O;
        g->c = w->shape[1] * groups;
        set_spatial(g, nd, in, kern, out, stride, pb, dil);
        return 0;
    }

    /* conv1d, conv2d, _conv: (input (N, C, *in), weight (O, C / groups, *kernel)) */
    if (check_kernel(name, w, nd) < 0) {
        goto fail;
    }
    int64_t C = a->shape[c->batched ? 1 : 0], O = w->shape[0];
    if (check_groups(name, groups, C, O, "in_channels (input.shape[1])",
                     "out_channels (weight.shape[0])") < 0) {
        goto fail;
    }
    if (w->shape[1] * groups != C) {
        PyErr_Format(PyExc_ValueError, "%s: input has %lld channels, but weight of shape %s "
                     "expects in_channels = weight.shape[1] * groups = %lld; check the "
                     "weight's shape, the input's layout (N, C, ...) or groups", name,
                     (long long)C, pf_shape_str(w->shape, w->ndim, sh, sizeof(sh)),
                     (long long)(w->shape[1] * groups));
        goto fail;
    }
    spatial(a, nd, in);
    spatial(w, nd, kern);
    if (op == PF_OP_CONV) {
        if (parse_ints(v[2], nd, 1, 1, name, "output_size", out) < 0) {
            goto fail;
        }
    }
    else {
        if (same) {
            for (int k = 0; k < nd; k++) {
                if (stride[k] != 1) {
                    PyErr_Format(PyExc_ValueError, "%s: padding='same' needs stride 1 (as in "
                                 "PyTorch); got stride %s. Give the padding explicitly",
                                 name, ints_str(stride, nd, sh, sizeof(sh)));
                    goto fail;
                }
                /* PyTorch's split: the extra row or column of an odd total goes after */
                int64_t total = dil[k] * (kern[k] - 1);
                pad[k][0] = total / 2;
                pad[k][1] = total - total / 2;
                pb[k] = pad[k][0];
            }
        }
        for (int k = 0; k < nd; k++) {
            int64_t eff = dil[k] * (kern[k] - 1) + 1, padded = in[k] + pad[k][0] + pad[k][1];
            if (padded < eff) {
                PyErr_Format(PyExc_ValueError, "%s: the kernel spans %lld input positions "
                             "along the %s (size %lld, dilation %lld), more than the padded "
                             "input (%lld + padding %lld + %lld = %lld); use a smaller kernel "
                             "or more padding (e.g. padding='same')", name, (long long)eff,
                             dim_name(nd, k), (long long)kern[k], (long long)dil[k],
                             (long long)in[k], (long long)pad[k][0], (long long)pad[k][1],
                             (long long)padded);
                goto fail;
            }
            out[k] = (padded - eff) / stride[k] + 1;
        }
        if (v[2] != NULL && v[2] != Py_None) {
            if ((ts->t[2] = tensor_arg(v[2], name, "bias")) == NULL ||
                check_bias(name, ts->t[2], a, O) < 0) {
                goto fail;
            }
            c->has_bias = 1;
        }
    }
    g->c = C;
    g->o = O;
    set_spatial(g, nd, in, kern, out, stride, pb, dil);
    return 0;
fail:
    tensors_clear(ts);
    return -1;
}

/*
 * Parse and check a convolution-family call; also refuse sizes that the
 * kernels' 32-bit BLAS integers cannot express (a GEMM's K = KH*KW*C/groups,
 * an image's pixels, its packed size), rather than wrap.
 */
static int parse_conv_tensors(pf_op op, PyObject **v, pf_conv_call *c, conv_tensors *ts)
{
    if (parse_conv_geometry(op, v, c, ts) < 0) {
        return -1;
    }
    const pf_conv_geom *g = &c->g;
    double k = (double)g->kh * (double)g->kw * (double)(g->c / g->groups);
    double big = (double)INT32_MAX;
    if (k > big || (double)g->oh * (double)g->ow > big || (double)g->h * (double)g->w *
        (double)g->c > big || (double)g->o > big) {
        tensors_clear(ts);
        return PF_ERRI(PyExc_ValueError, "%s: too large for 32-bit BLAS sizes (in_channels / "
                       "groups * kernel = %.0f, output pixels per image = %.0f, input elements "
                       "per image = %.0f; each must be below 2**31)", pf_ops[op].name, k,
                       (double)g->oh * (double)g->ow, (double)g->h * (double)g->w * (double)g->c);
    }
    return 0;
}

int pf_conv_parse(pf_op op, PyObject **v, pf_conv_call *c)
{
    conv_tensors ts;
    if (parse_conv_tensors(op, v, c, &ts) < 0) {
        return -1;
    }
    tensors_clear(&ts);
    return 0;
}

/* ------------------------------------------------------ convolution ops */

/* Run a kernel with the GIL released when the work is large. */
#define RUN_KERNEL(work, call)                  \
    do {                                        \
        if ((work) > GIL_WORK) {                \
            Py_BEGIN_ALLOW_THREADS              \
            call;                               \
            Py_END_ALLOW_THREADS                \
        }                                       \
        else {                                  \
            call;                               \
        }                                       \
    } while (0)

/* The output shape of an activation: (N, C, *spatial) or (C, *spatial) */
static int act_shape(const pf_conv_call *c, int64_t C, int64_t h, int64_t w, int64_t *shape)
{
    int k = 0;
    if (c->batched) {
        shape[k++] = c->g.n;
    }
    shape[k++] = C;
    if (c->nd == 2) {
        shape[k++] = h;
    }
    shape[k++] = w;
    return k;
}

/* ------------------------------------------------------------------ CUDA */

/* Set while the tests route the nn ops' cpu tensors to the CUDA library's host self-test. */
static int cuda_selftest;

PyObject *pf_nn_cuda_selftest_py(PyObject *Py_UNUSED(m), PyObject *on)
{
    int v = PyObject_IsTrue(on);
    if (v < 0) {
        return NULL;
    }
    if (v && pf_cuda_library("_cuda_host_nn_selftest") == NULL) {
        return NULL;
    }
    int was = cuda_selftest;
    cuda_selftest = v;
    return PyBool_FromLong(was);
}

int pf_nn_cuda_route(const char *op, PfTensor *const *ts, int n, const PfCudaLib **lib)
{
    const PfTensor *on_dev = NULL;
    for (int k = 0; k < n && on_dev == NULL; k++) {
        if (ts[k] != NULL && !pf_tensor_on_cpu(ts[k])) {
            on_dev = ts[k];
        }
    }
    if (on_dev == NULL) {
        if (!cuda_selftest) {
            return PF_NN_ON_CPU;
        }
        *lib = pf_cuda_library(op);
        return *lib == NULL ? PF_NN_ROUTE_ERROR : PF_CUDA_HOST;
    }
    pf_device dev = on_dev->storage->device;
    for (int k = 0; k < n; k++) {
        if (ts[k] != NULL && !pf_device_eq(ts[k]->storage->device, dev)) {
            char a[32], b[32];
            PyErr_Format(PyExc_RuntimeError, "%s: tensors on %s and %s; move them to one device "
                         "with .to(...)", op, pf_device_str(dev, a, sizeof(a)),
                         pf_device_str(ts[k]->storage->device, b, sizeof(b)));
            return PF_NN_ROUTE_ERROR;
        }
    }
    *lib = pf_cuda_lib(op);
    return *lib == NULL ? PF_NN_ROUTE_ERROR : dev.index;
}

PfCudaVec pf_nn_cuda_vec(const PfTensor *t)
{
    PfCudaVec v = {NULL, PF_CUDA_FLOAT32, 0};
    if (t != NULL) {
        v.data = pf_tensor_data(t);
        v.dtype = (int)t->dtype;
        v.stride = t->ndim == 1 ? t->strides[0] : 1;
    }
    return v;
}

static PfCudaNd4 cuda_nd4(const pf_nd4 *a)
{
    PfCudaNd4 r = {a->data, {a->s[0], a->s[1], a->s[2], a->s[3]}};
    return r;
}

static PyObject *cuda_result(const PfCudaLib *lib, const char *op, int status, PfTensor *out)
{
    if (status != 0) {
        Py_DECREF(out);
        pf_cuda_raise(lib, op, status);
        return NULL;
    }
    return (PyObject *)out;
}

/*
 * A convolution-family call on a CUDA device (or the host self-test): the
 * kernels take every dtype and layout as they are, so nothing is converted
 * or copied; the output is allocated on the device in the layout the cpu
 * path gives (following the first tensor).
 */
static PyObject *conv_cuda(pf_op op, const pf_conv_call *c, conv_tensors *ts, int device,
                           const PfCudaLib *lib)
{
    const char *name = pf_ops[op].name;
    PfTensor *a = ts->t[0], *b = ts->t[1], *out;
    const pf_conv_geom *g = &c->g;
    int nd = c->nd, kind, ndim;
    pf_device dev = a->storage->device;
    int64_t shape[PF_MAX_DIMS], s4[4];
    pf_nd4 a4, b4, o4;
    if (op == PF_OP_CONV_WEIGHT_GRAD) {
        kind = PF_CUDA_CONV_WEIGHT_GRAD;
        shape[0] = g->o;
        shape[1] = g->c / g->groups;
        shape[2] = nd == 2 ? g->kh : g->kw;
        shape[3] = g->kw;
        ndim = nd + 2;
        if ((out = pf_tensor_empty(ndim, shape, a->dtype, dev, name)) == NULL) {
            return NULL;
        }
        act_nd4(a, nd, 1, s4, &a4);
        act_nd4(b, nd, 1, s4, &b4);
        weight_nd4(out, &o4);
    }
    else {
        int cl = act_channels_last(a, nd, c->batched);
        kind = op == PF_OP_CONV_INPUT_GRAD || op == PF_OP_CONV_TRANSPOSE2D
                   ? PF_CUDA_CONV_INPUT_GRAD : PF_CUDA_CONV_FORWARD;
        ndim = kind == PF_CUDA_CONV_FORWARD ? act_shape(c, g->o, g->oh, g->ow, shape)
                                            : act_shape(c, g->c, g->h, g->w, shape);
        if ((out = new_act_on(ndim, shape, nd, cl, a->dtype, dev, name)) == NULL) {
            return NULL;
        }
        act_nd4(a, nd, c->batched, s4, &a4);
        weight_nd4(b, &b4);
        act_nd4(out, nd, c->batched, s4, &o4);
    }
    PfCudaConvGeom cg = {g->n, g->c, g->h, g->w, g->o, g->kh, g->kw, g->oh, g->ow,
                         g->sh, g->sw, g->ph, g->pw, g->dh, g->dw, g->groups};
    PfCudaNd4 A = cuda_nd4(&a4), B = cuda_nd4(&b4), O = cuda_nd4(&o4);
    PfCudaVec bias = pf_nn_cuda_vec(ts->t[2]);
    return cuda_result(lib, name, lib->conv(device, kind, (int)a->dtype, &cg, &A, &B, &bias, &O),
                       out);
}

static PyObject *conv_call(pf_op op, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    const char *name = pf_ops[op].name;
    PyObject *v[8];
    pf_conv_call c;
    conv_tensors ts;
    if (pf_parse_args(name, args, nargs, kwnames, pf_conv_arg_names(op), nrequired(op), v) < 0 ||
        parse_conv_tensors(op, v, &c, &ts) < 0) {
        return NULL;
    }
    const PfCudaLib *lib = NULL;
    int where = pf_nn_cuda_route(name, ts.t, 3, &lib);
    if (where != PF_NN_ON_CPU) {
        PyObject *r = where == PF_NN_ROUTE_ERROR ? NULL : conv_cuda(op, &c, &ts, where, lib);
        tensors_clear(&ts);
        return r;
    }
    PfTensor *a = ts.t[0], *b = ts.t[1], *bias = ts.t[2];
    PfTensor *ac = NULL, *bc = NULL, *biasc = NULL, *out = NULL;
    PyObject *res = NULL;
    const pf_conv_geom *g = &c.g;
    int nd = c.nd;
    pf_dtype dt = a->dtype, cd = compute_dtype(dt);
    int64_t shape[PF_MAX_DIMS];
    int ndim, rc = 0;
    double work = (double)g->n * (double)(g->oh * g->ow) * (double)(g->kh * g->kw) *
                  (double)(g->c / g->groups) * (double)g->o;
    pf_nd4 x4, w4, o4;
    int64_t s4[4], o4shape[4];
    /* the layout follows the first tensor: the input (or, for the input gradient, grad) */
    int cl = act_channels_last(a, nd, c.batched);
    if ((ac = in_compute(a, cd, nd, cl, name)) == NULL) {
        goto done;
    }
    if (op == PF_OP_CONV_WEIGHT_GRAD) {
        int gcl = act_channels_last(b, nd, 1);
        if ((bc = in_compute(b, cd, nd, gcl, name)) == NULL) {
            goto done;
        }
        shape[0] = g->o;
        shape[1] = g->c / g->groups;
        shape[2] = nd == 2 ? g->kh : g->kw;
        shape[3] = g->kw;
        ndim = nd + 2;
        if ((out = pf_tensor_empty(ndim, shape, cd, CPU, name)) == NULL) {
            goto done;
        }
        pf_nd4 gy4;
        act_nd4(ac, nd, 1, s4, &x4);
        act_nd4(bc, nd, 1, s4, &gy4);
        weight_nd4(out, &o4);
        RUN_KERNEL(work, rc = pf_conv_weight_grad(g, cd, cl, &x4, &gy4, &o4));
        if (rc < 0) {
            PyErr_NoMemory();
            goto done;
        }
        res = to_dtype(out, dt, -1, 0, name);
        out = NULL;
        goto done;
    }
    if ((bc = in_compute(b, cd, -1, 0, name)) == NULL ||
        (bias != NULL && (biasc = in_compute(bias, cd, -1, 0, name)) == NULL)) {
        goto done;
    }
    act_nd4(ac, nd, c.batched, s4, &x4);
    weight_nd4(bc, &w4);
    if (op == PF_OP_CONV_INPUT_GRAD || op == PF_OP_CONV_TRANSPOSE2D) {
        ndim = act_shape(&c, g->c, g->h, g->w, shape);
        if ((out = new_act(ndim, shape, nd, cl, cd, name)) == NULL) {
            goto done;
        }
        act_nd4(out, nd, c.batched, o4shape, &o4);
        RUN_KERNEL(work, rc = pf_conv_input_grad(g, cd, cl, &x4, &w4, &o4));
        if (rc < 0) {
            PyErr_NoMemory();
            goto done;
        }
        if (biasc != NULL && pf_numel(out->shape, out->ndim) > 0) {
            /* out += bias[:, None, None], in place so that the layout stays */
            int64_t bshape[3] = {g->c, 1, 1}, bst[3] = {biasc->strides[0], 0, 0};
            PfTensor *bv = pf_tensor_view(biasc, nd + 1, bshape, bst, biasc->offset);
            PyObject *in[2] = {(PyObject *)out, (PyObject *)bv};
            PyObject *r = bv != NULL ? pf_elementwise(PF_OP_ADD, in, out, NULL) : NULL;
            Py_XDECREF(bv);
            if (r == NULL) {
                goto done;
            }
            Py_DECREF(r);
        }
    }
    else {
        ndim = act_shape(&c, g->o, g->oh, g->ow, shape);
        if ((out = new_act(ndim, shape, nd, cl, cd, name)) == NULL) {
            goto done;
        }
        act_nd4(out, nd, c.batched, o4shape, &o4);
        const char *bp = biasc != NULL ? pf_tensor_data(biasc) : NULL;
        int64_t bs = biasc != NULL ? biasc->strides[0] : 0;
        RUN_KERNEL(work, rc = pf_conv_forward(g, cd, cl, &x4, &w4, bp, bs, &o4));
        if (rc < 0) {
            PyErr_NoMemory();
            goto done;
        }
    }
    res = to_dtype(out, dt, nd, cl, name);
    out = NULL;
done:
    Py_XDECREF(ac);
    Py_XDECREF(bc);
    Py_XDECREF(biasc);
    Py_XDECREF(out);
    tensors_clear(&ts);
    return res;
}

PyObject *pf_op_conv1d(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                       PyObject *kwnames)
{
    return conv_call(PF_OP_CONV1D, args, nargs, kwnames);
}

PyObject *pf_op_conv2d(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                       PyObject *kwnames)
{
    return conv_call(PF_OP_CONV2D, args, nargs, kwnames);
}

PyObject *pf_op_conv_transpose2d(PyObject *Py_UNUSED(m), PyObject *const *args,
                                 Py_ssize_t nargs, PyObject *kwnames)
{
    return conv_call(PF_OP_CONV_TRANSPOSE2D, args, nargs, kwnames);
}

PyObject *pf_op__conv(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                      PyObject *kwnames)
{
    return conv_call(PF_OP_CONV, args, nargs, kwnames);
}

PyObject *pf_op__conv_input_grad(PyObject *Py_UNUSED(m), PyObject *const *args,
                                 Py_ssize_t nargs, PyObject *kwnames)
{
    return conv_call(PF_OP_CONV_INPUT_GRAD, args, nargs, kwnames);
}

PyObject *pf_op__conv_weight_grad(PyObject *Py_UNUSED(m), PyObject *const *args,
                                  Py_ssize_t nargs, PyObject *kwnames)
{
    return conv_call(PF_OP_CONV_WEIGHT_GRAD, args, nargs, kwnames);
}

/* ---------------------------------------------------------------- pooling */

static int is_max(pf_op op)
{
    return op == PF_OP_MAX_POOL1D || op == PF_OP_MAX_POOL2D || op == PF_OP_MAX_POOL_BACKWARD ||
           op == PF_OP_MAX_POOL_SELECT;
}

/*
 * The pooled size along one dimension, as PyTorch: floor (or ceil) of
 * (in + 2 pad - dil (k - 1) - 1) / stride, plus one; with ceil_mode the
 * last window must start inside the input or its left padding.
 */
static int64_t pooled_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, int ceil)
{
    int64_t num = in + 2 * p - d * (k - 1) - 1 + (ceil ? s - 1 : 0);
    int64_t out = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
    if (ceil && out > 0 && (out - 1) * s >= in + p) {
        out--;
    }
    return out;
}

/*
 * Parse a pooling call.  t[0] = the tensor whose windows are read (input,
 * or grad for _avg_pool_backward), t[1] = the other tensor (grad of
 * _max_pool_backward, values of _max_pool_select) or NULL.
 */
static int parse_pool_tensors(pf_op op, PyObject **v, pf_pool_call *c, PfTensor **t)
{
    const char *name = pf_ops[op].name;
    int64_t kern[2], stride[2], pad[2], dil[2] = {1, 1}, in[2], out[2];
    int ceil = 0, incl = 1;
    char sh[PF_SHAPE_STRLEN], sh2[PF_SHAPE_STRLEN];
    memset(c, 0, sizeof(*c));
    t[0] = t[1] = NULL;
    int helper = op == PF_OP_MAX_POOL_BACKWARD || op == PF_OP_MAX_POOL_SELECT ||
                 op == PF_OP_AVG_POOL_BACKWARD;
    int mx = is_max(op);
    /* argument positions: helpers have one more leading argument */
    int at = helper ? 1 : 0;
    if (op == PF_OP_MAX_POOL_BACKWARD || op == PF_OP_MAX_POOL_SELECT) {
        if ((t[0] = tensor_arg(v[1], name, "input")) == NULL ||
            (t[1] = tensor_arg(v[0], name, op == PF_OP_MAX_POOL_BACKWARD ? "grad" : "values")) ==
                NULL ||
            same_dtype(t[0], "input", t[1], op == PF_OP_MAX_POOL_BACKWARD ? "grad" : "values",
                       name) < 0 ||
            helper_nd(t[0], name, "input", &c->nd) < 0) {
            goto fail;
        }
        c->batched = 1;
    }
    else if (op == PF_OP_AVG_POOL_BACKWARD) {
        if ((t[0] = tensor_arg(v[0], name, "grad")) == NULL ||
            helper_nd(t[0], name, "grad", &c->nd) < 0) {
            goto fail;
        }
        c->batched = 1;
    }
    else {
        c->nd = op == PF_OP_MAX_POOL1D || op == PF_OP_AVG_POOL1D ? 1 : 2;
        if ((t[0] = tensor_arg(v[0], name, "input")) == NULL ||
            act_rank(t[0], c->nd, 1, name, "input", &c->batched) < 0) {
            goto fail;
        }
    }
    int nd = c->nd;
    int ki = at + 1;
    if (parse_ints(v[ki], nd, 1, 1, name, "kernel_size", kern) < 0) {
        goto fail;
    }
    /* stride None (or an empty sequence, as PyTorch) means kernel_size */
    PyObject *so = v[ki + 1];
    if (so == Py_None || (so != NULL && (PyTuple_Check(so) || PyList_Check(so)) &&
                          PySequence_Fast_GET_SIZE(so) == 0)) {
        so = NULL;
    }
    if (so == NULL) {
        memcpy(stride, kern, sizeof(stride));
    }
    else if (parse_ints(so, nd, 1, 1, name, "stride", stride) < 0) {
        goto fail;
    }
    if (parse_ints(v[ki + 2], nd, 0, 0, name, "padding", pad) < 0) {
        goto fail;
    }
    int next = ki + 3;
    if (mx) {
        if (parse_ints(v[next++], nd, 1, 1, name, "dilation", dil) < 0) {
            goto fail;
        }
    }
    if (pf_parse_bool(v[next++], name, "ceil_mode", 0, &ceil) < 0) {
        goto fail;
    }
    if (!mx) {
        if (pf_parse_bool(v[next++], name, "count_include_pad", 1, &incl) < 0) {
            goto fail;
        }
        if (op != PF_OP_AVG_POOL1D && v[next] != NULL && v[next] != Py_None) {
            if (pf_int_arg(v[next], name, "divisor_override", &c->g.divisor) < 0) {
                goto fail;
            }
            if (c->g.divisor < 1) {
                PyErr_Format(PyExc_ValueError, "%s: divisor_override must be None or >= 1; "
                             "got %lld", name, (long long)c->g.divisor);
                goto fail;
            }
        }
    }
    for (int k = 0; k < nd; k++) {
        int64_t eff = dil[k] * (kern[k] - 1) + 1;
        if (pad[k] > eff / 2) {
            PyErr_Format(PyExc_ValueError, "%s: padding (%lld) must be at most half of the "
                         "%skernel size (%lld) along the %s", name, (long long)pad[k],
                         mx ? "effective " : "", (long long)eff, dim_name(nd, k));
            goto fail;
        }
    }
    PfTensor *x = t[0];
    if (op == PF_OP_AVG_POOL_BACKWARD) {
        if (parse_ints(v[1], nd, 1, 1, name, "input_size", in) < 0) {
            goto fail;
        }
    }
    else {
        spatial(x, nd, in);
    }
    for (int k = 0; k < nd; k++) {
        if (in[k] > INT32_MAX - 1) {
            /* the kernels keep window positions as 32-bit rows and columns */
            PyErr_Format(PyExc_ValueError, "%s: the input is too large along the %s (%lld); "
                         "pooling takes sizes below 2**31", name, dim_name(nd, k),
                         (long long)in[k]);
            goto fail;
        }
        out[k] = pooled_size(in[k], kern[k], stride[k], pad[k], dil[k], ceil);
        if (out[k] < 1) {
            PyErr_Format(PyExc_ValueError, "%s: the output would be empty along the %s: input "
                         "size %lld, kernel_size %lld, stride %lld, padding %lld, dilation "
                         "%lld give %lld windows; use a smaller kernel or more padding", name,
                         dim_name(nd, k), (long long)in[k], (long long)kern[k],
                         (long long)stride[k], (long long)pad[k], (long long)dil[k],
                         (long long)out[k]);
            goto fail;
        }
    }
    pf_pool_geom *g = &c->g;
    int h = nd == 2 ? 0 : -1, w = nd - 1;
    g->n = c->batched ? x->shape[0] : 1;
    g->c = x->shape[c->batched ? 1 : 0];
    g->h = h < 0 ? 1 : in[h];
    g->w = in[w];
    g->oh = h < 0 ? 1 : out[h];
    g->ow = out[w];
    g->kh = h < 0 ? 1 : kern[h];
    g->kw = kern[w];
    g->sh = h < 0 ? 1 : stride[h];
    g->sw = stride[w];
    g->ph = h < 0 ? 0 : pad[h];
    g->pw = pad[w];
    g->dh = h < 0 ? 1 : dil[h];
    g->dw = dil[w];
    g->count_include_pad = incl;
    c->ceil_mode = ceil;
    /* the helpers' second tensor, or grad, must have the shape the geometry implies */
    int64_t want[PF_MAX_DIMS];
    PfTensor *chk = op == PF_OP_AVG_POOL_BACKWARD ? x : t[1];
    if (chk != NULL) {
        want[0] = g->n;
        want[1] = g->c;
        const int64_t *sz = op == PF_OP_MAX_POOL_SELECT ? in : out;
        for (int k = 0; k < nd; k++) {
            want[2 + k] = sz[k];
        }
        if (chk->ndim != nd + 2 ||
            memcmp(chk->shape, want, sizeof(int64_t) * (size_t)(nd + 2)) != 0) {
            PyErr_Format(PyExc_ValueError, "%s: %s must have shape %s (%s); got %s", name,
                         op == PF_OP_MAX_POOL_SELECT ? "values" : "grad",
                         pf_shape_str(want, nd + 2, sh, sizeof(sh)),
                         op == PF_OP_MAX_POOL_SELECT ? "the input's" : "the pooled output's",
                         pf_shape_str(chk->shape, chk->ndim, sh2, sizeof(sh2)));
            goto fail;
        }
    }
    return 0;
fail:
    Py_CLEAR(t[0]);
    Py_CLEAR(t[1]);
    return -1;
}

int pf_pool_parse(pf_op op, PyObject **v, pf_pool_call *c)
{
    PfTensor *t[2];
    if (parse_pool_tensors(op, v, c, t) < 0) {
        return -1;
    }
    Py_XDECREF(t[0]);
    Py_XDECREF(t[1]);
    return 0;
}

/*
 * A pooling call on a CUDA device (or the host self-test), in the input's
 * dtype and layout.  t[0] is the tensor whose windows are read (grad for
 * _avg_pool_backward), t[1] the grad or values of the max-pool helpers.
 */
static PyObject *pool_cuda(pf_op op, const pf_pool_call *c, PfTensor **t, int device,
                           const PfCudaLib *lib)
{
    const char *name = pf_ops[op].name;
    const pf_pool_geom *g = &c->g;
    int nd = c->nd, kind;
    int full = op == PF_OP_MAX_POOL_BACKWARD || op == PF_OP_AVG_POOL_BACKWARD;
    int64_t shape[PF_MAX_DIMS], s4[4];
    int k = 0;
    if (c->batched) {
        shape[k++] = g->n;
    }
    shape[k++] = g->c;
    if (nd == 2) {
        shape[k++] = full ? g->h : g->oh;
    }
    shape[k++] = full ? g->w : g->ow;
    PfTensor *out = new_act_on(k, shape, nd, act_channels_last(t[0], nd, c->batched),
                               t[0]->dtype, t[0]->storage->device, name);
    if (out == NULL) {
        return NULL;
    }
    pf_nd4 x4, o4, y4;
    act_nd4(t[0], nd, c->batched, s4, &x4);
    act_nd4(out, nd, c->batched, s4, &y4);
    o4 = x4;
    if (t[1] != NULL) {
        act_nd4(t[1], nd, 1, s4, &o4);
    }
    PfCudaNd4 A = cuda_nd4(&x4), B = cuda_nd4(&x4), Y = cuda_nd4(&y4);
    switch (op) {
    case PF_OP_MAX_POOL_BACKWARD:
    case PF_OP_MAX_POOL_SELECT:
        kind = op == PF_OP_MAX_POOL_BACKWARD ? PF_CUDA_MAX_POOL_BACKWARD : PF_CUDA_MAX_POOL_SELECT;
        A = cuda_nd4(&o4);
        break;
    case PF_OP_AVG_POOL_BACKWARD: kind = PF_CUDA_AVG_POOL_BACKWARD; break;
    case PF_OP_AVG_POOL1D:
    case PF_OP_AVG_POOL2D: kind = PF_CUDA_AVG_POOL; break;
    default: kind = PF_CUDA_MAX_POOL; break;
    }
    PfCudaPoolGeom pg = {g->n, g->c, g->h, g->w, g->oh, g->ow, g->kh, g->kw, g->sh, g->sw,
                         g->ph, g->pw, g->dh, g->dw, g->count_include_pad, g->divisor};
    return cuda_result(lib, name, lib->pool(device, kind, (int)t[0]->dtype, &pg, &A, &B, &Y),
                       out);
}

static PyObject *pool_call(pf_op op, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    const char *name = pf_ops[op].name;
    PyObject *v[8];
    pf_pool_call c;
    PfTensor *t[2] = {NULL, NULL}, *xc = NULL, *oc = NULL, *out = NULL;
    PyObject *res = NULL;
    if (pf_parse_args(name, args, nargs, kwnames, pf_pool_arg_names(op), nrequired(op), v) < 0 ||
        parse_pool_tensors(op, v, &c, t) < 0) {
        return NULL;
    }
    const PfCudaLib *lib = NULL;
    int where = pf_nn_cuda_route(name, t, 2, &lib);
    if (where != PF_NN_ON_CPU) {
        res = where == PF_NN_ROUTE_ERROR ? NULL : pool_cuda(op, &c, t, where, lib);
        Py_XDECREF(t[0]);
        Py_XDECREF(t[1]);
        return res;
    }
    const pf_pool_geom *g = &c.g;
    int nd = c.nd;
    pf_dtype dt = t[0]->dtype, cd = compute_dtype(dt);
    int cl = act_channels_last(t[0], nd, c.batched);
    int64_t shape[PF_MAX_DIMS], s4[4];
    pf_nd4 x4, o4, y4;
    double work = (double)g->n * (double)g->c * (double)(g->oh * g->ow) *
                  (double)(g->kh * g->kw);
    if ((xc = in_compute(t[0], cd, nd, cl, name)) == NULL ||
        (t[1] != NULL && (oc = in_compute(t[1], cd, nd, act_channels_last(t[1], nd, 1),
                                          name)) == NULL)) {
        goto done;
    }
    int k = 0;
    if (c.batched) {
        shape[k++] = g->n;
    }
    shape[k++] = g->c;
    int full = op == PF_OP_MAX_POOL_BACKWARD || op == PF_OP_AVG_POOL_BACKWARD;
    if (nd == 2) {
        shape[k++] = full ? g->h : g->oh;
    }
    shape[k++] = full ? g->w : g->ow;
    if ((out = new_act(k, shape, nd, cl, cd, name)) == NULL) {
        goto done;
    }
    act_nd4(xc, nd, c.batched, s4, &x4);
    act_nd4(out, nd, c.batched, s4, &y4);
    if (oc != NULL) {
        act_nd4(oc, nd, 1, s4, &o4);
    }
    switch (op) {
    case PF_OP_MAX_POOL_BACKWARD:
        RUN_KERNEL(work, pf_max_pool_backward(g, cd, cl, &o4, &x4, &y4));
        break;
    case PF_OP_MAX_POOL_SELECT:
        RUN_KERNEL(work, pf_max_pool_select(g, cd, cl, &o4, &x4, &y4));
        break;
    case PF_OP_AVG_POOL_BACKWARD:
        RUN_KERNEL(work, pf_avg_pool_backward(g, cd, cl, &x4, &y4));
        break;
    case PF_OP_AVG_POOL1D:
    case PF_OP_AVG_POOL2D:
        RUN_KERNEL(work, pf_avg_pool_forward(g, cd, cl, &x4, &y4));
        break;
    default:
        RUN_KERNEL(work, pf_max_pool_forward(g, cd, cl, &x4, &y4));
        break;
    }
    res = to_dtype(out, dt, nd, cl, name);
    out = NULL;
done:
    Py_XDECREF(xc);
    Py_XDECREF(oc);
    Py_XDECREF(out);
    Py_XDECREF(t[0]);
    Py_XDECREF(t[1]);
    return res;
}

#define POOL_BINDING(py, E)                                                                 \
    PyObject *pf_op_##py(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,   \
                         PyObject *kwnames)                                                 \
    {                                                                                       \
        return pool_call(PF_OP_##E, args, nargs, kwnames);                                  \
    }

POOL_BINDING(max_pool1d, MAX_POOL1D)
POOL_BINDING(max_pool2d, MAX_POOL2D)
POOL_BINDING(avg_pool1d, AVG_POOL1D)
POOL_BINDING(avg_pool2d, AVG_POOL2D)
POOL_BINDING(_max_pool_backward, MAX_POOL_BACKWARD)
POOL_BINDING(_max_pool_select, MAX_POOL_SELECT)
POOL_BINDING(_avg_pool_backward, AVG_POOL_BACKWARD)
