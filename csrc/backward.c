/*
 * backward.c -- the rule dispatcher, the helpers every rule uses, and the
 * rules of the elementwise ops and of the Tensor views and copies.  The
 * other families live in backward_<family>.c with their own tables.
 *
 * Rules are written with forward ops, through the same entry points a user
 * calls, so under create_graph they record nodes of their own.  Each rule
 * keeps its intermediates in an arena (a fixed array of references freed
 * when the rule returns); every helper passes NULL through, so a chain of
 * helpers needs one error check at its end.
 */
#include "autograd.h"
#include "backward.h"
#include <math.h>

/* ------------------------------------------------------------ arena */

PyObject *pf_keep(pf_arena *A, PyObject *o)
{
    if (o == NULL) {
        A->err = 1;
        return NULL;
    }
    if (A->n == PF_ARENA_SIZE) {
        Py_DECREF(o);
        A->err = 1;
        PyErr_SetString(PyExc_RuntimeError, "backward: a rule used more intermediate values "
                        "than its arena holds (an internal error; please report it)");
        return NULL;
    }
    A->o[A->n++] = o;
    return o;
}

void pf_arena_free(pf_arena *A)
{
    for (int i = 0; i < A->n; i++) {
        Py_DECREF(A->o[i]);
    }
    A->n = 0;
}

/* gin[i] = v (a new reference) when v is not NULL */
int pf_arena_out(pf_arena *A, PyObject **gin, int i, PyObject *v)
{
    if (v != NULL) {
        gin[i] = Py_NewRef(v);
    }
    return A->err || PyErr_Occurred() ? -1 : 0;
}

PyObject *A_ew1(pf_arena *A, pf_op op, PyObject *a)
{
    return a == NULL ? NULL : pf_keep(A, pf_ew1(op, a));
}

PyObject *A_ew2(pf_arena *A, pf_op op, PyObject *a, PyObject *b)
{
    return (a == NULL || b == NULL) ? NULL : pf_keep(A, pf_ew2(op, a, b));
}

PyObject *A_ew3(pf_arena *A, pf_op op, PyObject *a, PyObject *b, PyObject *c)
{
    return (a == NULL || b == NULL || c == NULL) ? NULL : pf_keep(A, pf_ew3(op, a, b, c));
}

PyObject *A_f(pf_arena *A, double v)
{
    return pf_keep(A, PyFloat_FromDouble(v));
}

PyObject *A_zeros_like(pf_arena *A, PyObject *t)
{
    return t == NULL ? NULL : pf_keep(A, pf_zeros_like_t(t));
}

/* ------------------------------------------------------------ op helpers */

PyObject *pf_ew1(pf_op op, PyObject *a)
{
    PyObject *in[1] = {a};
    return pf_elementwise(op, in, NULL, NULL);
}

PyObject *pf_ew2(pf_op op, PyObject *a, PyObject *b)
{
    PyObject *in[2] = {a, b};
    return pf_elementwise(op, in, NULL, NULL);
}

PyObject *pf_ew3(pf_op op, PyObject *a, PyObject *b, PyObject *c)
{
    PyObject *in[3] = {a, b, c};
    return pf_elementwise(op, in, NULL, NULL);
}

PyObject *pf_ew_p(pf_op op, PyObject *a, double p0, double p1)
{
    pf_params p = {{p0, p1}};
    PyObject *in[1] = {a};
    return pf_elementwise(op, in, NULL, &p);
}

PyObject *pf_call_kw(pf_op op, PyObject *const *args, Py_ssize_t nargs, const char *kw1,
                     PyObject *v1, const char *kw2, PyObject *v2)
{
    PyObject *stack[12];
    if (nargs > 8) {
        return PF_ERR(PyExc_RuntimeError, "pf_call_kw: too many arguments");
    }
    memcpy(stack, args, sizeof(PyObject *) * (size_t)nargs);
    int nkw = (kw1 != NULL) + (kw2 != NULL);
    PyObject *kwnames = NULL;
    if (nkw > 0) {
        kwnames = PyTuple_New(nkw);
        if (kwnames == NULL) {
            return NULL;
        }
        int k = 0;
        if (kw1 != NULL) {
            PyTuple_SET_ITEM(kwnames, k, PyUnicode_InternFromString(kw1));
            stack[nargs + k++] = v1;
        }
        if (kw2 != NULL) {
            PyTuple_SET_ITEM(kwnames, k, PyUnicode_InternFromString(kw2));
            stack[nargs + k++] = v2;
        }
    }
    PyObject *r = pf_call(op, stack, nargs, kwnames);
    Py_XDECREF(kwnames);
    return r;
}

PyObject *pf_reshape(PyObject *t, const int64_t *shape, int ndim)
{
    PyObject *s = pf_shape_tuple(shape, ndim);
    if (s == NULL) {
        return NULL;
    }
    PyObject *r = PyObject_CallMethod(t, "reshape", "(O)", s);
    Py_DECREF(s);
    return r;
}

PyObject *pf_permute(PyObject *t, const int *perm, int ndim)
{
    PyObject *s = PyTuple_New(ndim);
    for (int i = 0; s != NULL && i < ndim; i++) {
        PyTuple_SET_ITEM(s, i, PyLong_FromLong(perm[i]));
    }
    if (s == NULL) {
        return NULL;
    }
    PyObject *r = PyObject_CallMethod(t, "permute", "(O)", s);
    Py_DECREF(s);
    return r;
}

PyObject *pf_astype(PyObject *t, pf_dtype d)
{
    return PyObject_CallMethod(t, "astype", "(O)", pf_dtype_objs[d]);
}

PyObject *pf_zeros_meta(const pf_meta *m)
{
    return (PyObject *)pf_tensor_zeros(m->ndim, m->shape, m->dtype, m->device, "backward");
}

PyObject *pf_zeros_like_t(PyObject *t)
{
    pf_meta m = {0};
    PfTensor *x = (PfTensor *)t;
    m.ndim = x->ndim;
    m.dtype = x->dtype;
    m.device = x->storage->device;
    memcpy(m.shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    return pf_zeros_meta(&m);
}

PyObject *pf_sum_axes(PyObject *g, const int *mask, int ndim, int keepdims)
{
    int cnt = 0;
    for (int i = 0; i < ndim; i++) {
        cnt += mask[i] != 0;
    }
    PyObject *axes = PyTuple_New(cnt);
    for (int i = 0, k = 0; axes != NULL && i < ndim; i++) {
        if (mask[i]) {
            PyTuple_SET_ITEM(axes, k++, PyLong_FromLong(i));
        }
    }
    if (axes == NULL) {
        return NULL;
    }
    PyObject *r = pf_call_kw(PF_OP_SUM, &g, 1, "axis", axes, "keepdims",
                             keepdims ? Py_True : Py_False);
    Py_DECREF(axes);
    return r;
}

PyObject *pf_sum_to(PyObject *g, const pf_meta *m)
{
    if (!PfTensor_Check(g)) {
        return PF_ERR(PyExc_RuntimeError, "backward: a rule produced %.100s instead of a "
                      "tensor (an internal error; please report it)", Py_TYPE(g)->tp_name);
    }
    PfTensor *t = (PfTensor *)g;
    PyObject *r = Py_NewRef(g);
    int same = t->ndim == m->ndim &&
               memcmp(t->shape, m->shape, sizeof(int64_t) * (size_t)m->ndim) == 0;
    if (!same) {
        int lead = t->ndim - m->ndim;
        int mask[PF_MAX_DIMS] = {0};
        int any = 0;
        for (int i = 0; i < t->ndim; i++) {
            int j = i - lead;
            mask[i] = j < 0 || (m->shape[j] == 1 && t->shape[i] != 1);
            any |= mask[i];
        }
        if (lead >= 0 && any) {
            Py_SETREF(r, pf_sum_axes(r, mask, t->ndim, 1));
        }
        if (r != NULL) {
            PfTensor *rt = (PfTensor *)r;
            int64_t bshape[PF_MAX_DIMS];
            int bnd;
            if (pf_numel(rt->shape, rt->ndim) < pf_numel(m->shape, m->ndim) &&
                rt->ndim <= m->ndim &&
                pf_broadcast_shapes(rt->shape, rt->ndim, m->shape, m->ndim, bshape, &bnd,
                                    "backward") == 0 &&
                bnd == m->ndim && memcmp(bshape, m->shape, sizeof(int64_t) * (size_t)bnd) == 0) {
                /* a gradient constant along some axes (a reduction's): broadcast, no copy */
                PyObject *s = pf_shape_tuple(m->shape, m->ndim);
                Py_SETREF(r, s ? PyObject_CallMethod(r, "broadcast_to", "(O)", s) : NULL);
                Py_XDECREF(s);
                rt = (PfTensor *)r;
            }
            else {
                PyErr_Clear();
            }
            if (r == NULL) {
                /* the error is set */
            }
            else if (pf_numel(rt->shape, rt->ndim) != pf_numel(m->shape, m->ndim)) {
                char a[PF_SHAPE_STRLEN], b[PF_SHAPE_STRLEN];
                PyErr_Format(PyExc_RuntimeError,
                             "backward: a gradient of shape %s cannot be summed to the input's "
                             "shape %s (an internal error; please report it)",
                             pf_shape_str(t->shape, t->ndim, a, sizeof(a)),
                             pf_shape_str(m->shape, m->ndim, b, sizeof(b)));
                Py_CLEAR(r);
            }
            else {
                Py_SETREF(r, pf_reshape(r, m->shape, m->ndim));
            }
        }
    }
    if (r != NULL && !pf_device_eq(((PfTensor *)r)->storage->device, m->device)) {
        /* the input crossed devices (x.to("cuda")): its gradient crosses back, cast on the
           cpu side of the copy */
        pf_dtype d = pf_is_float(m->dtype) ? m->dtype : ((PfTensor *)r)->dtype;
        Py_SETREF(r, (PyObject *)pf_tensor_to_device((PfTensor *)r, m->device, d, "backward"));
    }
    if (r != NULL && ((PfTensor *)r)->dtype != m->dtype && pf_is_float(m->dtype)) {
        Py_SETREF(r, pf_astype(r, m->dtype));
    }
    return r;
}

PyObject *pf_unreduce(PyObject *g, const int *mask, const pf_meta *in, int keepdims)
{
    if (keepdims) {
        return Py_NewRef(g);
    }
    int64_t shape[PF_MAX_DIMS];
    for (int i = 0; i < in->ndim; i++) {
        shape[i] = mask[i] ? 1 : in->shape[i];
    }
    return pf_reshape(g, shape, in->ndim);
}

/* ------------------------------------------------------------ elementwise */

/*
 * Which saved values each rule reads (bits 0-2 inputs, bit 4 the output),
 * given the inputs that want a gradient: x * 3 keeps nothing of x, so
 * changing x in place afterwards is fine, as in PyTorch.
 */
int pf_bw_ew_saves(pf_op op, int wants)
{
    int wa = wants & 1, wb = (wants >> 1) & 1;
    switch (op) {
    case PF_OP_EXP:
    case PF_OP_EXP2:
    case PF_OP_EXPM1:
    case PF_OP_SQRT:
    case PF_OP_RSQRT:
    case PF_OP_RECIPROCAL:
    case PF_OP_TAN:
    case PF_OP_TANH:
    case PF_OP_SIGMOID:
        return 1 << 4;
    case PF_OP_ELU:
    case PF_OP_SELU:
        return 1 | (1 << 4);
    case PF_OP_ADD:
    case PF_OP_SUB:
    case PF_OP_NEG:
    case PF_OP_FLOOR_DIVIDE:
    case PF_OP_SIGN:
    case PF_OP_FLOOR:
    case PF_OP_CEIL:
    case PF_OP_ROUND:
    case PF_OP_TRUNC:
        return 0;
    case PF_OP_MUL:
        return (wa ? 2 : 0) | (wb ? 1 : 0);
    case PF_OP_DIV:
        return (wa ? 2 : 0) | (wb ? 3 : 0);
    case PF_OP_REMAINDER:
        return wb ? 3 : 0;
    case PF_OP_MAXIMUM:
    case PF_OP_MINIMUM:
    case PF_OP_ATAN2:
        return 3;
    case PF_OP_POW:
        return 3 | (wb ? 1 << 4 : 0);
    case PF_OP_WHERE:
        return 1;
    default:
        return 1;   /* the unary rules read their input */
    }
}

#define G gout[0]
#define X in0
#define Y out0
#define E1(op, a) A_ew1(A, PF_OP_##op, (a))
#define E2(op, a, b) A_ew2(A, PF_OP_##op, (a), (b))
#define F(v) A_f(A, (v))
#define MUL(a, b) E2(MUL, a, b)
#define DIV(a, b) E2(DIV, a, b)
#define ADD(a, b) E2(ADD, a, b)
#define SUB(a, b) E2(SUB, a, b)

/* where(cond, a, b) */
static PyObject *WHERE(pf_arena *A, PyObject *c, PyObject *a, PyObject *b)
{
    return A_ew3(A, PF_OP_WHERE, c, a, b);
}

static const double LN2 = 0.69314718055994530942, LN10 = 2.30258509299404568402;
static const double SELU_ALPHA = 1.6732632423543772848170429916717;
static const double SELU_SCALE = 1.0507009873554804934193349852946;

static int bw_unary(PfNode *n, pf_arena *A, PyObject *g, PyObject *in0, PyObject *out0,
                    PyObject **res)
{
    double p0 = n->params.p[0], p1 = n->params.p[1];
    PyObject *r = NULL;
    switch ((pf_op)n->kind) {
    case PF_OP_EXP:
        r = MUL(g, Y);
        break;
    case PF_OP_EXP2:
        r = MUL(MUL(g, Y), F(LN2));
        break;
    case PF_OP_LOG:
        r = DIV(g, X);
        break;
    case PF_OP_LOG2:
        r = DIV(g, MUL(X, F(LN2)));
        break;
    case PF_OP_LOG10:
        r = DIV(g, MUL(X, F(LN10)));
        break;
    case PF_OP_LOG1P:
        r = DIV(g, ADD(X, F(1.0)));
        break;
    case PF_OP_EXPM1:
        r = MUL(g, ADD(Y, F(1.0)));
        break;
    case PF_OP_SQRT:
        r = DIV(MUL(g, F(0.5)), Y);
        break;
    case PF_OP_RSQRT:   /* d x^-1/2 = -1/2 x^-3/2 = -1/2 y^3 */
        r = MUL(MUL(g, F(-0.5)), MUL(Y, MUL(Y, Y)));
        break;
    case PF_OP_RECIPROCAL:
        r = E1(NEG, MUL(g, MUL(Y, Y)));
        break;
    case PF_OP_SIN:
        r = MUL(g, E1(COS, X));
        break;
    case PF_OP_COS:
        r = E1(NEG, MUL(g, E1(SIN, X)));
        break;
    case PF_OP_TAN:
        r = MUL(g, ADD(F(1.0), MUL(Y, Y)));
        break;
    case PF_OP_ASIN:
        r = MUL(g, E1(RSQRT, SUB(F(1.0), MUL(X, X))));
        break;
    case PF_OP_ACOS:
        r = E1(NEG, MUL(g, E1(RSQRT, SUB(F(1.0), MUL(X, X)))));
        break;
    case PF_OP_ATAN:
        r = DIV(g, ADD(F(1.0), MUL(X, X)));
        break;
    case PF_OP_SINH:
        r = MUL(g, E1(COSH, X));
        break;
    case PF_OP_COSH:
        r = MUL(g, E1(SINH, X));
        break;
    case PF_OP_TANH:
        r = MUL(g, SUB(F(1.0), MUL(Y, Y)));
        break;
    case PF_OP_SIGMOID:
        r = MUL(g, MUL(Y, SUB(F(1.0), Y)));
        break;
    case PF_OP_SILU: {  /* s (1 + x (1 - s)) */
        PyObject *s = E1(SIGMOID, X);
        r = MUL(g, MUL(s, ADD(F(1.0), MUL(X, SUB(F(1.0), s)))));
        break;
    }
    case PF_OP_GELU:
        if (p0 != 0) {
            /* 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 k x^2), t = tanh(c (x + k x^3)) */
            const double c = 0.79788456080286535588, k = 0.044715;
            PyObject *x2 = MUL(X, X);
            PyObject *t = E1(TANH, MUL(F(c), ADD(X, MUL(F(k), MUL(x2, X)))));
            PyObject *d = ADD(MUL(F(0.5), ADD(F(1.0), t)),
                              MUL(MUL(MUL(F(0.5 * c), X), SUB(F(1.0), MUL(t, t))),
                                  ADD(F(1.0), MUL(F(3 * k), x2))));
            r = MUL(g, d);
        }
        else {
            /* Phi(x) + x phi(x) */
            PyObject *cdf = MUL(F(0.5), ADD(F(1.0), E1(ERF, MUL(X, F(0.70710678118654752440)))));
            PyObject *pdf = MUL(F(0.39894228040143267794), E1(EXP, MUL(F(-0.5), MUL(X, X))));
            r = MUL(g, ADD(cdf, MUL(X, pdf)));
        }
        break;
    case PF_OP_ELU:   /* 1 for x > 0, else y + alpha */
        r = MUL(g, WHERE(A, E2(GT, X, F(0.0)), F(1.0), ADD(Y, F(p0))));
        break;
    case PF_OP_SELU:  /* scale for x > 0, else y + scale alpha */
        r = MUL(g, WHERE(A, E2(GT, X, F(0.0)), F(SELU_SCALE), ADD(Y, F(SELU_SCALE * SELU_ALPHA))));
        break;
    case PF_OP_SOFTPLUS: {  /* sigmoid(beta x), 1 above the linear threshold */
        PyObject *bx = MUL(X, F(p0));
        r = MUL(g, WHERE(A, E2(GT, bx, F(p1)), F(1.0), E1(SIGMOID, bx)));
        break;
    }
    case PF_OP_LEAKY_RELU:
        /* not where(x > 0, 1.0, slope): two weak scalars would make a float32 slope */
        r = WHERE(A, E2(GT, X, F(0.0)), g, MUL(g, F(p0)));
        break;
    case PF_OP_ERF:   /* 2/sqrt(pi) exp(-x^2) */
        r = MUL(g, MUL(F(1.12837916709551257390), E1(EXP, E1(NEG, MUL(X, X)))));
        break;
    case PF_OP_NEG:
        r = E1(NEG, g);
        break;
    case PF_OP_ABS:
        r = MUL(g, E1(SIGN, X));
        break;
    case PF_OP_SQUARE:
        r = MUL(g, MUL(X, F(2.0)));
        break;
    case PF_OP_SIGN:
    case PF_OP_FLOOR:
    case PF_OP_CEIL:
    case PF_OP_ROUND:
    case PF_OP_TRUNC:
        /* piecewise constant: zero almost everywhere */
        r = A_zeros_like(A, g);
        break;
    case PF_OP_RELU:
        r = WHERE(A, E2(GT, X, F(0.0)), g, F(0.0));
        break;
    case PF_OP_RELU6:
        r = WHERE(A, E2(LOGICAL_AND, E2(GT, X, F(0.0)), E2(LT, X, F(6.0))), g, F(0.0));
        break;
    case PF_OP_CLIP:  /* the gradient passes where min <= x <= max */
        r = WHERE(A, E2(LOGICAL_AND, E2(GE, X, F(p0)), E2(LE, X, F(p1))), g, F(0.0));
        break;
    default:
        return PF_ERRI(PyExc_RuntimeError, "backward: no rule for %s", pf_ops[n->kind].name);
    }
    *res = r;
    return 0;
}

/* the first of two operands gets this share of the gradient at ties of maximum/minimum */
static PyObject *tie_share(pf_arena *A, PyObject *g, PyObject *a, PyObject *b, int is_max,
                           int first)
{
    PyObject *win = first ? (is_max ? E2(GT, a, b) : E2(LT, a, b))
                          : (is_max ? E2(GT, b, a) : E2(LT, b, a));
    PyObject *tie = E2(EQ, a, b);
    return WHERE(A, win, g, WHERE(A, tie, MUL(g, F(0.5)), F(0.0)));
}

static int bw_binary(PfNode *n, pf_arena *A, PyObject *g, PyObject *a, PyObject *b,
                     PyObject *out0, PyObject **ra, PyObject **rb)
{
    int wa = pf_bw_wants(n, 0), wb = pf_bw_wants(n, 1);
    switch ((pf_op)n->kind) {
    case PF_OP_ADD:
        *ra = g;
        *rb = g;
        break;
    case PF_OP_SUB:
        *ra = g;
        *rb = wb ? E1(NEG, g) : NULL;
        break;
    case PF_OP_MUL:
        *ra = wa ? MUL(g, b) : NULL;
        *rb = wb ? MUL(g, a) : NULL;
        break;
    case PF_OP_DIV:
        *ra = wa ? DIV(g, b) : NULL;
        *rb = wb ? E1(NEG, MUL(DIV(g, b), DIV(a, b))) : NULL;
        break;
    case PF_OP_FLOOR_DIVIDE:   /* piecewise constant */
        *ra = wa ? A_zeros_like(A, g) : NULL;
        *rb = wb ? A_zeros_like(A, g) : NULL;
        break;
    case PF_OP_REMAINDER:      /* a - floor(a / b) b */
        *ra = g;
        *rb = wb ? E1(NEG, MUL(g, E2(FLOOR_DIVIDE, a, b))) : NULL;
        break;
    case PF_OP_POW: {
        /* d/da = b a^(b-1), taken as 0 where b == 0 (so 0^0 has gradient 0);
           d/db = a^b log a, taken as 0 where a == 0 and b >= 0 */
        if (wa) {
            PyObject *d = MUL(b, E2(POW, a, SUB(b, F(1.0))));
            *ra = WHERE(A, E2(EQ, b, F(0.0)), F(0.0), MUL(g, d));
        }
        if (wb) {
            PyObject *d = MUL(out0, E1(LOG, a));
            PyObject *mask = E2(LOGICAL_AND, E2(EQ, a, F(0.0)), E2(GE, b, F(0.0)));
            *rb = WHERE(A, mask, F(0.0), MUL(g, d));
        }
        break;
    }
    case PF_OP_MAXIMUM:
    case PF_OP_MINIMUM: {
        int is_max = n->kind == PF_OP_MAXIMUM;
        *ra = wa ? tie_share(A, g, a, b, is_max, 1) : NULL;
        *rb = wb ? tie_share(A, g, a, b, is_max, 0) : NULL;
        break;
    }
    case PF_OP_ATAN2: {  /* atan2(a, b): (b, -a) / (a^2 + b^2) */
        PyObject *den = ADD(MUL(a, a), MUL(b, b));
        *ra = wa ? DIV(MUL(g, b), den) : NULL;
        *rb = wb ? E1(NEG, DIV(MUL(g, a), den)) : NULL;
        break;
    }
    default:
        return PF_ERRI(PyExc_RuntimeError, "backward: no rule for %s", pf_ops[n->kind].name);
    }
    return 0;
}

int pf_bw_elementwise(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    int saves = (int)n->iargs[0];
    PyObject *in[3] = {NULL, NULL, NULL}, *out0 = NULL;
    int rc = -1;
    for (int k = 0; k < n->nin; k++) {
        if (((saves >> k) & 1) && (in[k] = pf_keep(A, pf_node_input(n, k))) == NULL) {
            goto done;
        }
    }
    if (((saves >> 4) & 1) && (out0 = pf_keep(A, pf_node_output(n, 0))) == NULL) {
        goto done;
    }
    if (n->kind == PF_OP_WHERE) {
        rc = pf_arena_out(A, gin, 1, pf_bw_wants(n, 1) ? WHERE(A, in[0], G, F(0.0)) : NULL);
        if (rc == 0) {
            rc = pf_arena_out(A, gin, 2, pf_bw_wants(n, 2) ? WHERE(A, in[0], F(0.0), G) : NULL);
        }
        goto done;
    }
    if (n->nin == 1) {
        PyObject *r = NULL;
        if (bw_unary(n, A, G, in[0], out0, &r) == 0) {
            rc = pf_arena_out(A, gin, 0, r);
        }
        goto done;
    }
    PyObject *ra = NULL, *rb = NULL;
    if (bw_binary(n, A, G, in[0], in[1], out0, &ra, &rb) == 0) {
        rc = pf_arena_out(A, gin, 0, pf_bw_wants(n, 0) ? ra : NULL);
        if (rc == 0) {
            rc = pf_arena_out(A, gin, 1, pf_bw_wants(n, 1) ? rb : NULL);
        }
    }
done:
    if (rc < 0 && !PyErr_Occurred()) {
        PyErr_SetString(PyExc_RuntimeError, "backward: a rule failed without an error");
    }
    pf_arena_free(A);
    return rc;
}

/* ------------------------------------------------------------ views, copies */

static int key_is_basic(PyObject *key)
{
    if (PyTuple_Check(key)) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(key); i++) {
            if (!key_is_basic(PyTuple_GET_ITEM(key, i))) {
                return 0;
            }
        }
        return 1;
    }
    return key == Py_None || key == Py_Ellipsis || PySlice_Check(key) ||
           (PyLong_Check(key) && !PyBool_Check(key));
}

/*
 * The gradient of x[key]: zeros of x's shape with g added at the selected
 * places.  A basic key selects each element at most once, so g is written
 * into a view; an advanced key may repeat elements, so the positions are
 * found by indexing a flat arange with the same key and g is scatter-added.
 */
static PyObject *getitem_grad(PfNode *n, pf_arena *A, PyObject *g, PyObject *key)
{
    const pf_meta *m = &n->in_meta[0];
    PyObject *z = pf_keep(A, pf_zeros_meta(m));
    if (z == NULL) {
        return NULL;
    }
    if (key_is_basic(key)) {
        if (PyObject_SetItem(z, key, g) < 0) {
            A->err = 1;
            return NULL;
        }
        return z;
    }
    int64_t numel = pf_numel(m->shape, m->ndim), one = 1;
    PfTensor *pos = pf_tensor_empty(1, &numel, PF_INT64, (pf_device){PF_DEV_CPU, 0}, "backward");
    if (pf_keep(A, (PyObject *)pos) == NULL) {
        return NULL;
    }
    int64_t *p = (int64_t *)pos->storage->data;
    for (int64_t i = 0; i < numel; i++) {
        p[i] = i;
    }
    /* the positions go where the tensor is, so that the key (its index tensors) reads them there */
    PyObject *posd = pf_bw_to_device_of(A, (PyObject *)pos, g);
    PyObject *posv = posd ? pf_keep(A, pf_reshape(posd, m->shape, m->ndim)) : NULL;
    PyObject *sel = posv ? pf_keep(A, PyObject_GetItem(posv, key)) : NULL;
    if (sel == NULL) {
        return NULL;
    }
    int64_t k = pf_numel(((PfTensor *)sel)->shape, ((PfTensor *)sel)->ndim);
    PyObject *flat_sel = pf_keep(A, pf_reshape(sel, &k, 1));
    PyObject *flat_g = pf_keep(A, pf_reshape(g, &k, 1));
    PyObject *flat_z = pf_keep(A, pf_reshape(z, &numel, 1));
    if (flat_sel == NULL || flat_g == NULL || flat_z == NULL) {
        return NULL;
    }
    PyObject *zero = pf_keep(A, PyLong_FromLong(0));
    PyObject *argv[4] = {flat_z, zero, flat_sel, flat_g};
    PyObject *acc = zero ? pf_keep(A, pf_call(PF_OP_SCATTER_ADD, argv, 4, NULL)) : NULL;
    (void)one;
    return acc ? pf_keep(A, pf_reshape(acc, m->shape, m->ndim)) : NULL;
}

int pf_bw_views(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    PyObject *g = gout[0];
    int rc = 0;
    switch (n->kind) {
    case PF_NODE_RESHAPE:
        rc = pf_arena_out(A, gin, 0,
                          pf_keep(A, pf_reshape(g, n->in_meta[0].shape, n->in_meta[0].ndim)));
        break;
    case PF_NODE_PERMUTE: {
        int inv[PF_MAX_DIMS];
        for (int i = 0; i < n->in_meta[0].ndim; i++) {
            inv[n->iargs[i]] = i;
        }
        rc = pf_arena_out(A, gin, 0, pf_keep(A, pf_permute(g, inv, n->in_meta[0].ndim)));
        break;
    }
    case PF_NODE_EXPAND:     /* the engine sums the gradient back to the input's shape */
    case PF_NODE_IDENTITY:   /* and casts it to the input's dtype */
        gin[0] = Py_NewRef(g);
        break;
    case PF_NODE_COPY_:
        gin[1] = pf_bw_wants(n, 1) ? Py_NewRef(g) : NULL;
        break;
    case PF_NODE_FILL_:
        break;
    case PF_NODE_GETITEM: {
        if (n->released) {
            rc = pf_node_args(n, NULL, 0, NULL);
            break;
        }
        rc = pf_arena_out(A, gin, 0, getitem_grad(n, A, g, PyTuple_GET_ITEM(n->args, 0)));
        break;
    }
    case PF_NODE_SETITEM: {
        if (n->released) {
            rc = pf_node_args(n, NULL, 0, NULL);
            break;
        }
        PyObject *key = PyTuple_GET_ITEM(n->args, 0);
        if (pf_bw_wants(n, 0)) {
            PyObject *c = pf_keep(A, PyObject_CallMethod(g, "clone", NULL));
            if (c == NULL || PyObject_SetItem(c, key, pf_keep(A, PyFloat_FromDouble(0.0))) < 0) {
                rc = -1;
                break;
            }
            gin[0] = Py_NewRef(c);
        }
        if (pf_bw_wants(n, 1)) {
            rc = pf_arena_out(A, gin, 1, pf_keep(A, PyObject_GetItem(g, key)));
        }
        break;
    }
    default:
        rc = PF_ERRI(PyExc_RuntimeError, "backward: no rule for node kind %d", n->kind);
    }
    pf_arena_free(A);
    return rc;
}

/* ------------------------------------------------------------ dispatch */

int pf_bw_run(PfNode *n, PyObject **gout, PyObject **gin)
{
    if (n->kind == PF_NODE_PYFUNC) {
        return pf_bw_pyfunc(n, gout, gin);
    }
    if (n->kind >= PF_OP_COUNT) {
        return pf_bw_views(n, gout, gin);
    }
    if (pf_ops[n->kind].kind != PF_OK_CUSTOM) {
        return pf_bw_elementwise(n, gout, gin);
    }
    const pf_bw_fn *tables[] = {pf_bw_reduce_rules, pf_bw_linalg_rules, pf_bw_shape_rules,
                                pf_bw_gather_rules, pf_bw_conv_rules, pf_bw_nnops_rules};
    for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
        if (tables[t][n->kind] != NULL) {
            return tables[t][n->kind](n, gout, gin);
        }
    }
    char buf[128];
    return PF_ERRI(PyExc_RuntimeError, "%s: this op has no backward rule yet",
                   pf_node_name(n, buf, sizeof(buf)));
}

/* pf._C._bw_rules(): the ops that have a backward rule (the op-table test reads it). */
PyObject *pf_bw_rule_list(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(a))
{
    const pf_bw_fn *tables[] = {pf_bw_reduce_rules, pf_bw_linalg_rules, pf_bw_shape_rules,
                                pf_bw_gather_rules, pf_bw_conv_rules, pf_bw_nnops_rules};
    PyObject *l = PyList_New(0);
    for (int op = 0; l != NULL && op < PF_OP_COUNT; op++) {
        /* a composite row's gradients come from the rules of the ops it calls */
        int has = pf_ops[op].kind != PF_OK_CUSTOM || (pf_ops[op].flags & PF_F_C);
        for (size_t t = 0; !has && t < sizeof(tables) / sizeof(tables[0]); t++) {
            has = tables[t][op] != NULL;
        }
        if (has && (pf_ops[op].flags & PF_F_D)) {
            PyObject *s = PyUnicode_FromString(pf_ops[op].name);
            if (s == NULL || PyList_Append(l, s) < 0) {
                Py_XDECREF(s);
                Py_CLEAR(l);
                break;
            }
            Py_DECREF(s);
        }
    }
    return l;
}
