/*
 * reduce.c -- reductions, scans and softmax: the bindings.  Argument
 * parsing, the dtype rules, empty reductions, multi-pass ops (mean, var,
 * logsumexp, norm) and out=.  The loops are in kernels/reduce_kernels.c.
 *
 * dtype rules (docs/architecture.md has the table):
 *   sum, prod, cumsum, cumprod  bool and ints -> int64; floats keep theirs
 *   mean, var, std, logsumexp, norm
 *                               ints and bool -> float32 (computed in float64)
 *   max, min                    the input's dtype; argmax, argmin -> int64
 *   all, any                    bool
 *   softmax, log_softmax        floats keep theirs; ints and bool -> float32
 * float16 and bfloat16 are computed in float32 and returned in their own
 * dtype.
 */
#include "ops.h"
#include "cuda_backend.h"
#include "kernels/reduce_kernels.h"
#include <math.h>

/* pf_cuda.h numbers the kinds and finishing steps as reduce_kernels.h does */
_Static_assert((int)PF_CUDA_RK_SUM == (int)PF_RK_SUM && (int)PF_CUDA_RK_SUMEXP == (int)PF_RK_SUMEXP &&
                   (int)PF_CUDA_RK_ARGMIN == (int)PF_RK_ARGMIN &&
                   (int)PF_CUDA_RK_COUNT == (int)PF_RK_COUNT,
               "pf_cuda.h's reduction kinds must follow pf_rkind");
_Static_assert((int)PF_CUDA_RF_SCALE == (int)PF_RF_SCALE &&
                   (int)PF_CUDA_RF_LOG_ADD == (int)PF_RF_LOG_ADD,
               "pf_cuda.h's finishing steps must follow pf_rfinish");
_Static_assert(PF_MAX_DIMS <= PF_CUDA_MAX_DIMS, "a reduction geometry must fit PfCudaReduceGeom");

typedef enum {
    R_SUM, R_MEAN, R_PROD, R_MAX, R_MIN, R_ARGMAX, R_ARGMIN,
    R_VAR, R_STD, R_LSE, R_NORM, R_ALL, R_ANY,
} red_op;

/* norm orders that have their own pass */
typedef enum { ORD_2, ORD_1, ORD_INF, ORD_NINF, ORD_0, ORD_P } ord_kind;

typedef struct {
    red_op op;
    const char *name;
    PfTensor *x;
    int mask[PF_MAX_DIMS];
    int keepdims;
    int has_dtype;
    pf_dtype dtype;
    double ddof;
    ord_kind ord;
    double p;
    PfTensor *out;
} red_args;

/* ------------------------------------------------------------ helpers */

static pf_dtype acc_dtype(pf_dtype d)
{
    return d == PF_FLOAT64 ? PF_FLOAT64 : pf_is_float(d) ? PF_FLOAT32 : PF_INT64;
}

static int kind_rank(pf_dtype d)
{
    return d == PF_BOOL ? 0 : pf_is_float(d) ? 2 : 1;
}

/* "(0, 2)": the reduced axes, for messages */
static const char *axes_str(const int *mask, int ndim, char *buf, size_t size)
{
    int64_t ax[PF_MAX_DIMS];
    int n = 0;
    for (int d = 0; d < ndim; d++) {
        if (mask[d]) {
            ax[n++] = d;
        }
    }
    return pf_shape_str(ax, n, buf, size);
}

static PfTensor *input_tensor(PyObject *o, const char *op, PyObject **owned)
{
    *owned = NULL;
    if (PfTensor_Check(o)) {
        return (PfTensor *)o;
    }
    PfTensor *t = pf_as_tensor(o, 0, PF_FLOAT32, op);
    *owned = (PyObject *)t;
    return t;
}

static int parse_dtype(PyObject *o, const char *op, int *has, pf_dtype *dt)
{
    *has = 0;
    if (o == NULL || o == Py_None) {
        return 0;
    }
    if (pf_dtype_from_object(o, op, dt) < 0) {
        return -1;
    }
    *has = 1;
    return 0;
}

static int parse_out(PyObject *o, const char *op, PfTensor **out)
{
    *out = NULL;
    if (o == NULL || o == Py_None) {
        return 0;
    }
    if (!PfTensor_Check(o)) {
        return PF_ERRI(PyExc_TypeError, "%s: out must be a pyframe Tensor; got %.100s", op,
                       Py_TYPE(o)->tp_name);
    }
    *out = (PfTensor *)o;
    return 0;
}

/* an axis argument that must be None or one int (argmax, cumsum, softmax) */
static int parse_one_axis(PyObject *axis, int ndim, const char *op, int *mask)
{
    if (axis != NULL && axis != Py_None && (PyTuple_Check(axis) || PyList_Check(axis))) {
        return PF_ERRI(PyExc_TypeError,
                       "%s: axis must be None or an int; got a %.100s (%s works along one axis)",
                       op, Py_TYPE(axis)->tp_name, op);
    }
    return pf_parse_axes(axis, ndim, op, mask);
}

static PyObject *find_arg(const char *const *names, PyObject **v, const char *key)
{
    for (int i = 0; names[i] != NULL; i++) {
        if (strcmp(names[i], key) == 0) {
            return v[i];
        }
    }
    return NULL;
}

/*
 * Hand `res` (a new reference) to the caller, or copy it into out= (which
 * must have the result's shape, and a dtype of at least the result's kind).
 */
static PyObject *deliver(PfTensor *res, PfTensor *out, const char *op)
{
    if (res == NULL || out == NULL) {
        return (PyObject *)res;
    }
    PyObject *ret = NULL;
    if (out->ndim != res->ndim ||
        memcmp(out->shape, res->shape, sizeof(int64_t) * (size_t)res->ndim) != 0) {
        char a[PF_SHAPE_STRLEN], b[PF_SHAPE_STRLEN];
        PyErr_Format(PyExc_ValueError,
                     "%s: out has shape %s but the result has shape %s; pass an out of the "
                     "result's shape (keepdims=True keeps the reduced axes as 1)", op,
                     pf_shape_str(out->shape, out->ndim, a, sizeof(a)),
                     pf_shape_str(res->shape, res->ndim, b, sizeof(b)));
        goto done;
    }
    if (kind_rank(res->dtype) > kind_rank(out->dtype)) {
        PyErr_Format(PyExc_TypeError,
                     "%s: the result has dtype %s, which cannot be stored in the %s out without "
                     "losing its kind; use an out of dtype %s", op, pf_dtypes[res->dtype].name,
                     pf_dtypes[out->dtype].name, pf_dtypes[res->dtype].name);
        goto done;
    }
    if (pf_tensor_assign(out, res, op) < 0) {
        goto done;
    }
    ret = Py_NewRef(out);
done:
    Py_DECREF(res);
    return ret;
}

/* every element of t (float32, float64 or int64) = v, on t's device */
static int fill_value(PfTensor *t, double v, const char *op)
{
    if (!pf_tensor_on_cpu(t)) {
        union {
            float f;
            double d;
            int64_t i;
        } raw;
        if (t->dtype == PF_FLOAT32) {
            raw.f = (float)v;
        }
        else if (t->dtype == PF_FLOAT64) {
            raw.d = v;
        }
        else {
            raw.i = (int64_t)v;
        }
        return pf_device_fill(t, &raw, op);
    }
    int64_t n = pf_numel(t->shape, t->ndim);
    char *p = pf_tensor_data(t);
    for (int64_t i = 0; i < n; i++) {
        if (t->dtype == PF_FLOAT32) {
            ((float *)p)[i] = (float)v;
        }
        else if (t->dtype == PF_FLOAT64) {
            ((double *)p)[i] = v;
        }
        else {
            ((int64_t *)p)[i] = (int64_t)v;
        }
    }
    return 0;
}

/* ------------------------------------------------------------ where the loops run */

/*
 * The passes of a reduction or scan run on the cpu loops, or in
 * libpyframe_cuda.so: on the input's CUDA device, or -- for CPU tensors
 * while _C._cuda_host_reduce runs a call (tests only) -- in the library's
 * host self-test, which runs the device code's per-element functions on
 * host memory without a device.  Everything else (parsing, dtypes, shapes,
 * the passes of var or logsumexp) is the same code for all three.
 */
typedef struct {
    const PfCudaLib *lib;   /* NULL: the cpu loops */
    int device;             /* a CUDA device index, or PF_CUDA_HOST */
} red_backend;

/* set by _C._cuda_host_reduce for the length of one call; the GIL is held throughout */
static int route_to_cuda_host;

static int pick_backend(const PfTensor *x, const char *op, red_backend *b)
{
    b->lib = NULL;
    b->device = PF_CUDA_HOST;
    if (!pf_tensor_on_cpu(x)) {
        b->device = x->storage->device.index;
        b->lib = pf_cuda_lib(op);
        return b->lib == NULL ? -1 : 0;
    }
    if (route_to_cuda_host) {
        b->lib = pf_cuda_library(op);
        return b->lib == NULL ? -1 : 0;
    }
    return 0;
}

static int run_pass(const red_backend *b, const pf_rgeom *g, pf_rkind kind, pf_dtype comp,
                    double p, const void *center, void *out, int64_t *idx, const char *op)
{
    if (b->lib == NULL) {
        return pf_reduce_run(g, kind, comp, p, center, out, idx, op);
    }
    if (g->outer == 0 || g->n == 0) {
        return 0;
    }
    PfCudaReduceGeom cg;
    memset(&cg, 0, sizeof(cg));
    cg.base = g->base;
    cg.dtype = (int)g->dtype;
    cg.knd = g->knd;
    cg.rnd = g->rnd;
    memcpy(cg.kshape, g->kshape, sizeof(int64_t) * (size_t)g->knd);
    memcpy(cg.kstride, g->kstride, sizeof(int64_t) * (size_t)g->knd);
    memcpy(cg.rshape, g->rshape, sizeof(int64_t) * (size_t)g->rnd);
    memcpy(cg.rstride, g->rstride, sizeof(int64_t) * (size_t)g->rnd);
    cg.outer = g->outer;
    cg.n = g->n;
    int status = b->lib->reduce(b->device, &cg, (int)kind, (int)comp, p, center, out, idx);
    return status == 0 ? 0 : pf_cuda_raise(b->lib, op, status);
}

static int run_finish(const red_backend *b, pf_rfinish f, pf_dtype comp, void *v,
                      const void *aux, int64_t count, double a, const char *op)
{
    if (b->lib == NULL) {
        pf_reduce_finish(f, comp, v, aux, count, a);
        return 0;
    }
    int status = b->lib->reduce_finish(b->device, (int)f, (int)comp, v, aux, count, a,
                                       (int)comp, v);
    return status == 0 ? 0 : pf_cuda_raise(b->lib, op, status);
}

/* src (contiguous, of compute dtype) as a new tensor of dtype res */
static PfTensor *convert_result(const red_backend *b, PfTensor *src, pf_dtype res,
                                const char *op)
{
    if (b->lib == NULL) {
        return pf_tensor_copy_as(src, res, op);
    }
    PfTensor *r = pf_tensor_empty(src->ndim, src->shape, res, src->storage->device, op);
    if (r == NULL) {
        return NULL;
    }
    int status = b->lib->reduce_finish(b->device, PF_CUDA_RF_NONE, (int)src->dtype,
                                       pf_tensor_data(src), NULL,
                                       pf_numel(src->shape, src->ndim), 0.0, (int)res,
                                       pf_tensor_data(r));
    if (status != 0) {
        Py_DECREF(r);
        pf_cuda_raise(b->lib, op, status);
        return NULL;
    }
    return r;
}

/* ------------------------------------------------------------ reductions */

static int red_dtypes(const red_args *a, pf_dtype *comp, pf_dtype *res)
{
    pf_dtype xd = a->x->dtype;
    *comp = *res = xd;
    switch (a->op) {
    case R_SUM:
    case R_PROD:
        *res = a->has_dtype ? a->dtype : pf_is_float(xd) ? xd : PF_INT64;
        *comp = acc_dtype(*res);
        return 0;
    case R_MEAN:
        if (a->has_dtype && !pf_is_float(a->dtype)) {
            return PF_ERRI(PyExc_TypeError,
                           "mean: dtype must be a floating dtype (float16, bfloat16, float32, "
                           "float64); got %s", pf_dtypes[a->dtype].name);
        }
        *res = a->has_dtype ? a->dtype : pf_is_float(xd) ? xd : PF_FLOAT32;
        *comp = (*res == PF_FLOAT64 || !pf_is_float(xd)) ? PF_FLOAT64 : PF_FLOAT32;
        return 0;
    case R_VAR:
    case R_STD:
    case R_LSE:
    case R_NORM:
        *res = pf_is_float(xd) ? xd : PF_FLOAT32;
        *comp = (xd == PF_FLOAT64 || !pf_is_float(xd)) ? PF_FLOAT64 : PF_FLOAT32;
        return 0;
    case R_MAX:
    case R_MIN:
        *res = xd;
        *comp = acc_dtype(xd);
        return 0;
    case R_ARGMAX:
    case R_ARGMIN:
        *res = PF_INT64;
        *comp = acc_dtype(xd);
        return 0;
    case R_ALL:
    case R_ANY:
        *res = PF_BOOL;
        *comp = acc_dtype(xd);
        return 0;
    }
    return 0;
}

/* Ops without a value for an empty reduction (no identity). */
static int empty_error(const red_args *a)
{
    int bad = a->op == R_MAX || a->op == R_MIN || a->op == R_ARGMAX || a->op == R_ARGMIN ||
              (a->op == R_NORM && (a->ord == ORD_INF || a->ord == ORD_NINF ||
                                   (a->ord == ORD_P && a->p < 0)));
    if (!bad) {
        return 0;
    }
    char s[PF_SHAPE_STRLEN], ax[PF_SHAPE_STRLEN];
    PfTensor *x = a->x;
    const char *what = a->op == R_NORM ? "this norm order" : a->name;
    return PF_ERRI(PyExc_ValueError,
                   "%s: the reduced axis is empty (input shape %s, reducing axes %s) and %s has "
                   "no identity, so there is no value to return; reduce over non-empty axes",
                   a->name, pf_shape_str(x->shape, x->ndim, s, sizeof(s)),
                   axes_str(a->mask, x->ndim, ax, sizeof(ax)), what);
}

static double empty_value(const red_args *a)
{
    switch (a->op) {
    case R_PROD:
    case R_ALL:
        return 1.0;
    case R_MEAN:
    case R_VAR:
    case R_STD:
        return NAN;
    case R_LSE:
        return -INFINITY;
    default:
        return 0.0;
    }
}

/* The passes of each op, writing `outer` values of comp into acc (and idx). */
static int red_compute(const red_args *a, const red_backend *b, const pf_rgeom *g,
                       pf_dtype comp, PfTensor *acc, int64_t *idx)
{
    const char *op = a->name;
    char *v = pf_tensor_data(acc);
    int64_t n = g->n, cnt = g->outer;
    PfTensor *tmp = NULL;
    int r = -1;
    switch (a->op) {
    case R_SUM:
        return run_pass(b, g, PF_RK_SUM, comp, 0, NULL, v, NULL, op);
    case R_MEAN:
        if (run_pass(b, g, PF_RK_SUM, comp, 0, NULL, v, NULL, op) < 0) {
            return -1;
        }
        return run_finish(b, PF_RF_SCALE, comp, v, NULL, cnt, (double)n, op);
    case R_PROD:
        return run_pass(b, g, PF_RK_PROD, comp, 0, NULL, v, NULL, op);
    case R_MAX:
        return run_pass(b, g, PF_RK_MAX, comp, 0, NULL, v, NULL, op);
    case R_MIN:
        return run_pass(b, g, PF_RK_MIN, comp, 0, NULL, v, NULL, op);
    case R_ARGMAX:
        return run_pass(b, g, PF_RK_ARGMAX, comp, 0, NULL, v, idx, op);
    case R_ARGMIN:
        return run_pass(b, g, PF_RK_ARGMIN, comp, 0, NULL, v, idx, op);
    case R_ALL:
        return run_pass(b, g, PF_RK_ALL, comp, 0, NULL, v, NULL, op);
    case R_ANY:
        return run_pass(b, g, PF_RK_ANY, comp, 0, NULL, v, NULL, op);
    case R_VAR:
    case R_STD: {
        /* two passes: the mean, then the squared deviations from it */
        tmp = pf_tensor_empty(acc->ndim, acc->shape, comp, acc->storage->device, op);
        if (tmp == NULL) {
            return -1;
        }
        char *mu = pf_tensor_data(tmp);
        if (run_pass(b, g, PF_RK_SUM, comp, 0, NULL, mu, NULL, op) < 0) {
            goto done;
        }
        if (run_finish(b, PF_RF_SCALE, comp, mu, NULL, cnt, (double)n, op) < 0 ||
            run_pass(b, g, PF_RK_SUMSQDEV, comp, 0, mu, v, NULL, op) < 0) {
            goto done;
        }
        /* NumPy divides by max(n - ddof, 0): inf or NaN when nothing is left */
        double dof = (double)n - a->ddof;
        dof = dof > 0 ? dof : 0.0;
        r = run_finish(b, a->op == R_STD ? PF_RF_SCALE_SQRT : PF_RF_SCALE, comp, v, NULL, cnt,
                       dof, op);
        goto done;
    }
    case R_LSE: {
        /* shift by the max (by 0 where it is not finite), sum the exponentials, shift back */
        tmp = pf_tensor_empty(acc->ndim, acc->shape, comp, acc->storage->device, op);
        if (tmp == NULL) {
            return -1;
        }
        char *m = pf_tensor_data(tmp);
        if (run_pass(b, g, PF_RK_MAX, comp, 0, NULL, m, NULL, op) < 0) {
            goto done;
        }
        if (run_finish(b, PF_RF_CENTER, comp, m, NULL, cnt, 0, op) < 0 ||
            run_pass(b, g, PF_RK_SUMEXP, comp, 0, m, v, NULL, op) < 0) {
            goto done;
        }
        r = run_finish(b, PF_RF_LOG_ADD, comp, v, m, cnt, 0, op);
        goto done;
    }
    case R_NORM:
        switch (a->ord) {
        case ORD_2:
            if (run_pass(b, g, PF_RK_SUMSQ, comp, 0, NULL, v, NULL, op) < 0) {
                return -1;
            }
            return run_finish(b, PF_RF_SQRT, comp, v, NULL, cnt, 0, op);
        case ORD_1:
            return run_pass(b, g, PF_RK_SUMABS, comp, 0, NULL, v, NULL, op);
        case ORD_INF:
            return run_pass(b, g, PF_RK_MAXABS, comp, 0, NULL, v, NULL, op);
        case ORD_NINF:
            return run_pass(b, g, PF_RK_MINABS, comp, 0, NULL, v, NULL, op);
        case ORD_0:
            return run_pass(b, g, PF_RK_NNZ, comp, 0, NULL, v, NULL, op);
        case ORD_P:
            if (run_pass(b, g, PF_RK_SUMPOW, comp, a->p, NULL, v, NULL, op) < 0) {
                return -1;
            }
            return run_finish(b, PF_RF_ROOT, comp, v, NULL, cnt, a->p, op);
        }
        return 0;
    }
done:
    Py_XDECREF(tmp);
    return r;
}

static PyObject *red_run(red_args *a)
{
    const char *op = a->name;
    PfTensor *x = a->x;
    pf_dtype comp, res;
    if (red_dtypes(a, &comp, &res) < 0) {
        return NULL;
    }
    int64_t oshape[PF_MAX_DIMS];
    int ondim = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (!a->mask[d]) {
            oshape[ondim++] = x->shape[d];
        }
        else if (a->keepdims) {
            oshape[ondim++] = 1;
        }
    }
    pf_rgeom g;
    pf_rgeom_build(&g, x, a->mask);
    if (g.n == 0 && empty_error(a) < 0) {
        return NULL;
    }
    int arg = a->op == R_ARGMAX || a->op == R_ARGMIN;
    red_backend b;
    if (pick_backend(x, op, &b) < 0) {
        return NULL;
    }
    pf_device dev = x->storage->device;
    PfTensor *acc = pf_tensor_empty(ondim, oshape, comp, dev, op);
    PfTensor *idx = arg ? pf_tensor_empty(ondim, oshape, PF_INT64, dev, op) : NULL;
    PfTensor *result = NULL;
    if (acc == NULL || (arg && idx == NULL)) {
        goto done;
    }
    if (g.outer > 0 && g.n == 0) {
        if (fill_value(acc, empty_value(a), op) < 0) {
            goto done;
        }
    }
    else if (g.outer > 0 &&
             red_compute(a, &b, &g, comp, acc, arg ? (int64_t *)pf_tensor_data(idx) : NULL) < 0) {
        goto done;
    }
    if (arg) {
        result = (PfTensor *)Py_NewRef(idx);
    }
    else if (res == comp) {
        result = (PfTensor *)Py_NewRef(acc);
    }
    else {
        result = convert_result(&b, acc, res, op);
    }
done:
    Py_XDECREF(acc);
    Py_XDECREF(idx);
    return deliver(result, a->out, op);
}

static const char *const names_dtype[] = {"x", "axis", "keepdims", "dtype", "out", NULL};
static const char *const names_plain[] = {"x", "axis", "keepdims", "out", NULL};
static const char *const names_var[] = {"x", "axis", "keepdims", "ddof", "correction",
                                        "unbiased", "out", NULL};
static const char *const names_norm[] = {"x", "ord", "axis", "keepdims", "p", "out", NULL};

static int parse_ddof(red_args *a, PyObject *ddof, PyObject *corr, PyObject *unbiased)
{
    const char *op = a->name;
    int given = (ddof != NULL && ddof != Py_None) + (corr != NULL && corr != Py_None) +
                (unbiased != NULL && unbiased != Py_None);
    if (given > 1) {
        return PF_ERRI(PyExc_TypeError,
                       "%s: give only one of ddof, correction (PyTorch's name for ddof) and "
                       "unbiased", op);
    }
    a->ddof = 0.0;
    if (unbiased != NULL && unbiased != Py_None) {
        int u;
        if (pf_parse_bool(unbiased, op, "unbiased", 0, &u) < 0) {
            return -1;
        }
        a->ddof = u ? 1.0 : 0.0;
        return 0;
    }
    PyObject *o = (ddof != NULL && ddof != Py_None) ? ddof : corr;
    const char *what = (ddof != NULL && ddof != Py_None) ? "ddof" : "correction";
    if (o == NULL || o == Py_None) {
        return 0;
    }
    if (PyBool_Check(o) || !(PyLong_Check(o) || PyFloat_Check(o) || PyIndex_Check(o))) {
        return PF_ERRI(PyExc_TypeError,
                       "%s: %s must be a number (an int such as 0 or 1); got %.100s", op, what,
                       Py_TYPE(o)->tp_name);
    }
    if (pf_double_arg(o, op, what, &a->ddof) < 0) {
        return -1;
    }
    if (!isfinite(a->ddof)) {
        char buf[40];
        return PF_ERRI(PyExc_ValueError, "%s: %s must be finite; got %s", op, what,
                       pf_fmt_double(a->ddof, buf, sizeof(buf)));
    }
    return 0;
}

static int parse_ord(red_args *a, PyObject *ord, PyObject *p)
{
    if (ord != NULL && p != NULL) {
        return PF_ERRI(PyExc_TypeError, "norm: give ord or p (PyTorch's name for it), not both");
    }
    PyObject *o = ord != NULL ? ord : p;
    a->ord = ORD_2;
    a->p = 2.0;
    if (o == NULL || o == Py_None) {
        return 0;
    }
    if (PyUnicode_Check(o)) {
        const char *s = PyUnicode_AsUTF8(o);
        if (s == NULL) {
            return -1;
        }
        if (strcmp(s, "fro") == 0) {
            return 0;
        }
        return PF_ERRI(PyExc_ValueError,
                       "norm: ord=%R is not supported; norm computes vector norms over the "
                       "given axes: use None or 'fro' (2-norm), 1, 2, inf, -inf, 0 or another "
                       "real number p", o);
    }
    if (PyBool_Check(o) || PyComplex_Check(o) ||
        !(PyLong_Check(o) || PyFloat_Check(o) || PyIndex_Check(o) || PyNumber_Check(o)) ||
        PfTensor_Check(o)) {
        return PF_ERRI(PyExc_TypeError,
                       "norm: ord must be None, 'fro' or a real number (1, 2, inf, ...); got "
                       "%.100s", Py_TYPE(o)->tp_name);
    }
    double v;
    if (pf_double_arg(o, "norm", "ord", &v) < 0) {
        return -1;
    }
    if (isnan(v)) {
        return PF_ERRI(PyExc_ValueError, "norm: ord must not be NaN; use 1, 2, inf, -inf, 0 "
                       "or another real number");
    }
    a->p = v;
    a->ord = v == INFINITY ? ORD_INF : v == -INFINITY ? ORD_NINF : v == 0 ? ORD_0
             : v == 1 ? ORD_1 : v == 2 ? ORD_2 : ORD_P;
    return 0;
}

static PyObject *reduce_entry(red_op rop, const char *op, PyObject *const *args, Py_ssize_t nargs,
                              PyObject *kwnames)
{
    const char *const *names = rop == R_SUM || rop == R_MEAN || rop == R_PROD ? names_dtype
                               : rop == R_VAR || rop == R_STD                ? names_var
                               : rop == R_NORM                               ? names_norm
                                                                             : names_plain;
    PyObject *v[8];
    red_args a;
    memset(&a, 0, sizeof(a));
    a.op = rop;
    a.name = op;
    if (pf_parse_args(op, args, nargs, kwnames, names, 1, v) < 0) {
        return NULL;
    }
    PyObject *owned = NULL, *ret = NULL;
    a.x = input_tensor(v[0], op, &owned);
    if (a.x == NULL) {
        return NULL;
    }
    PyObject *axis = find_arg(names, v, "axis");
    int arg = rop == R_ARGMAX || rop == R_ARGMIN;
    if ((arg ? parse_one_axis(axis, a.x->ndim, op, a.mask)
             : pf_parse_axes(axis, a.x->ndim, op, a.mask)) < 0 ||
        pf_parse_bool(find_arg(names, v, "keepdims"), op, "keepdims", 0, &a.keepdims) < 0 ||
        parse_out(find_arg(names, v, "out"), op, &a.out) < 0) {
        goto done;
    }
    if (names == names_dtype &&
        parse_dtype(find_arg(names, v, "dtype"), op, &a.has_dtype, &a.dtype) < 0) {
        goto done;
    }
    if (names == names_var && parse_ddof(&a, find_arg(names, v, "ddof"),
                                         find_arg(names, v, "correction"),
                                         find_arg(names, v, "unbiased")) < 0) {
        goto done;
    }
    if (names == names_norm &&
        parse_ord(&a, find_arg(names, v, "ord"), find_arg(names, v, "p")) < 0) {
        goto done;
    }
    ret = red_run(&a);
done:
    Py_XDECREF(owned);
    return ret;
}

#define REDUCTION(py, OP)                                                                  \
    PyObject *pf_op_##py(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,  \
                         PyObject *kwnames)                                                \
    {                                                                                      \
        return reduce_entry(OP, #py, args, nargs, kwnames);                                \
    }

REDUCTION(sum, R_SUM)
REDUCTION(mean, R_MEAN)
REDUCTION(prod, R_PROD)
REDUCTION(max, R_MAX)
REDUCTION(min, R_MIN)
REDUCTION(argmax, R_ARGMAX)
REDUCTION(argmin, R_ARGMIN)
REDUCTION(var, R_VAR)
REDUCTION(std, R_STD)
REDUCTION(logsumexp, R_LSE)
REDUCTION(norm, R_NORM)
REDUCTION(all, R_ALL)
REDUCTION(any, R_ANY)

/* ------------------------------------------------------------ scans */

/*
 * cumsum / cumprod(x, axis=None, dtype=None, out=None): axis None scans the
 * flattened tensor (NumPy; the result is 1-D).  The scan runs on a
 * contiguous (pre, n, post) block of the compute dtype.
 */
static PyObject *scan_entry(int prod, const char *op, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames)
{
    static const char *const names[] = {"x", "axis", "dtype", "out", NULL};
    PyObject *v[4];
    if (pf_parse_args(op, args, nargs, kwnames, names, 1, v) < 0) {
        return NULL;
    }
    PyObject *owned = NULL;
    PfTensor *x = input_tensor(v[0], op, &owned);
    PfTensor *src = NULL, *y = NULL, *result = NULL, *out;
    int mask[PF_MAX_DIMS], has_dtype;
    pf_dtype dtype;
    if (x == NULL) {
        return NULL;
    }
    if (parse_one_axis(v[1], x->ndim, op, mask) < 0 ||
        parse_dtype(v[2], op, &has_dtype, &dtype) < 0 || parse_out(v[3], op, &out) < 0) {
        goto done;
    }
    pf_dtype res = has_dtype ? dtype : pf_is_float(x->dtype) ? x->dtype : PF_INT64;
    pf_dtype comp = acc_dtype(res);
    int flat = v[1] == NULL || v[1] == Py_None || x->ndim == 0;
    int64_t numel = pf_numel(x->shape, x->ndim);
    int64_t pre = 1, n = numel, post = 1;
    if (!flat) {
        int ax = 0;
        while (!mask[ax]) {
            ax++;
        }
        pre = pf_numel(x->shape, ax);
        n = x->shape[ax];
        post = pf_numel(x->shape + ax + 1, x->ndim - ax - 1);
    }
    int64_t yshape[PF_MAX_DIMS];
    int yndim = flat ? 1 : x->ndim;
    memcpy(yshape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    if (flat) {
        yshape[0] = numel;
    }
    red_backend b;
    if (pick_backend(x, op, &b) < 0) {
        goto done;
    }
    /* the library's scan converts as it reads: a contiguous source of any dtype does */
    if (pf_tensor_is_contiguous(x) && (x->dtype == comp || b.lib != NULL)) {
        src = (PfTensor *)Py_NewRef(x);
    }
    else if ((src = pf_tensor_copy_as(x, b.lib != NULL ? x->dtype : comp, op)) == NULL) {
        goto done;
    }
    if ((y = pf_tensor_empty(yndim, yshape, comp, x->storage->device, op)) == NULL) {
        goto done;
    }
    if (b.lib == NULL) {
        pf_scan(pf_tensor_data(src), pf_tensor_data(y), pre, n, post, comp, prod);
    }
    else {
        int status = b.lib->scan(b.device, pf_tensor_data(src), (int)src->dtype,
                                 pf_tensor_data(y), (int)comp, pre, n, post, prod);
        if (status != 0) {
            pf_cuda_raise(b.lib, op, status);
            goto done;
        }
    }
    result = res == comp ? (PfTensor *)Py_NewRef(y) : convert_result(&b, y, res, op);
    result = (PfTensor *)deliver(result, out, op);
done:
    Py_XDECREF(src);
    Py_XDECREF(y);
    Py_XDECREF(owned);
    return (PyObject *)result;
}

PyObject *pf_op_cumsum(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                       PyObject *kwnames)
{
    return scan_entry(0, "cumsum", args, nargs, kwnames);
}

PyObject *pf_op_cumprod(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                        PyObject *kwnames)
{
    return scan_entry(1, "cumprod", args, nargs, kwnames);
}

/* ------------------------------------------------------------ softmax */

/*
 * The loops of softmax over src (pre, n, post) into y, both contiguous of
 * dtype comp: the cpu's, or on a CUDA device the library's kernel.
 */
static int run_softmax(PfTensor *src, PfTensor *y, int64_t pre, int64_t n, int64_t post,
                       pf_dtype comp, int is_log, const char *op)
{
    if (pf_tensor_on_cpu(src)) {
        return pf_softmax(pf_tensor_data(src), pf_tensor_data(y), pre, n, post, comp, is_log, op);
    }
    const PfCudaLib *lib = pf_cuda_lib(op);
    if (lib == NULL) {
        return -1;
    }
    int status = lib->softmax(src->storage->device.index, pf_tensor_data(src), pf_tensor_data(y),
                              pre, n, post, comp == PF_FLOAT64, is_log);
    return status == 0 ? 0 : pf_cuda_raise(lib, op, status);
}

/*
 * softmax / log_softmax(x, axis=-1, dtype=None).  axis None takes the
 * softmax over every element.  The loops work on a contiguous (pre, n,
 * post) block of the compute dtype: the input itself when it is one, else
 * one copy; the axis is never moved.
 */
static PyObject *softmax_entry(int is_log, const char *op, PyObject *const *args,
                               Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"x", "axis", "dtype", NULL};
    PyObject *v[3];
    if (pf_parse_args(op, args, nargs, kwnames, names, 1, v) < 0) {
        return NULL;
    }
    PyObject *owned = NULL, *minus1 = NULL;
    PfTensor *x = input_tensor(v[0], op, &owned);
    PfTensor *src = NULL, *y = NULL, *result = NULL;
    int mask[PF_MAX_DIMS], has_dtype;
    pf_dtype dtype;
    if (x == NULL) {
        return NULL;
    }
    PyObject *axis = v[1];
    if (axis == NULL && (axis = minus1 = PyLong_FromLong(-1)) == NULL) {
        goto done;
    }
    if (parse_one_axis(axis, x->ndim, op, mask) < 0 ||
        parse_dtype(v[2], op, &has_dtype, &dtype) < 0) {
        goto done;
    }
    if (has_dtype && !pf_is_float(dtype)) {
        PyErr_Format(PyExc_TypeError,
                     "%s: dtype must be a floating dtype (float16, bfloat16, float32, float64); "
                     "got %s", op, pf_dtypes[dtype].name);
        goto done;
    }
    pf_dtype res = has_dtype ? dtype : pf_is_float(x->dtype) ? x->dtype : PF_FLOAT32;
    pf_dtype comp = res == PF_FLOAT64 ? PF_FLOAT64 : PF_FLOAT32;
    int64_t numel = pf_numel(x->shape, x->ndim);
    int64_t pre = 1, n = numel, post = 1;
    if (axis != Py_None && x->ndim > 0) {
        int ax = 0;
        while (!mask[ax]) {
            ax++;
        }
        pre = pf_numel(x->shape, ax);
        n = x->shape[ax];
        post = pf_numel(x->shape + ax + 1, x->ndim - ax - 1);
    }
    if (pf_tensor_is_contiguous(x) && x->dtype == comp) {
        src = (PfTensor *)Py_NewRef(x);
        y = pf_tensor_empty(x->ndim, x->shape, comp, x->storage->device, op);
    }
    else {
        src = pf_tensor_copy_as(x, comp, op);
        y = src == NULL ? NULL : (PfTensor *)Py_NewRef(src);
    }
    if (src == NULL || y == NULL || run_softmax(src, y, pre, n, post, comp, is_log, op) < 0) {
        goto done;
    }
    result = res == comp ? (PfTensor *)Py_NewRef(y) : pf_tensor_copy_as(y, res, op);
done:
    Py_XDECREF(minus1);
    Py_XDECREF(src);
    Py_XDECREF(y);
    Py_XDECREF(owned);
    return (PyObject *)result;
}

PyObject *pf_op_softmax(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                        PyObject *kwnames)
{
    return softmax_entry(0, "softmax", args, nargs, kwnames);
}

PyObject *pf_op_log_softmax(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames)
{
    return softmax_entry(1, "log_softmax", args, nargs, kwnames);
}

/*
 * _cuda_host_softmax(out, x, pre, n, post, is_log): the CUDA softmax
 * kernel's per-lane code run on the host over x, a contiguous cpu float32
 * or float64 tensor of pre * n * post elements, into out (the same shape
 * and dtype).  For the tests that check the kernel without a GPU.
 */
static PyObject *py_cuda_host_softmax(PyObject *Py_UNUSED(m), PyObject *args)
{
    const char *op = "_cuda_host_softmax";
    PyObject *oo, *xo;
    long long pre, n, post;
    int is_log;
    if (!PyArg_ParseTuple(args, "OOLLLp:_cuda_host_softmax", &oo, &xo, &pre, &n, &post,
                          &is_log)) {
        return NULL;
    }
    PfTensor *out = (PfTensor *)oo, *x = (PfTensor *)xo;
    if (!PfTensor_Check(oo) || !PfTensor_Check(xo) || !pf_tensor_on_cpu(out) ||
        !pf_tensor_on_cpu(x) || !pf_tensor_is_contiguous(out) || !pf_tensor_is_contiguous(x) ||
        out->dtype != x->dtype || (x->dtype != PF_FLOAT32 && x->dtype != PF_FLOAT64)) {
        return PF_ERR(PyExc_TypeError, "%s: out and x must be contiguous cpu tensors of one "
                      "dtype, float32 or float64", op);
    }
    int64_t numel = pf_numel(x->shape, x->ndim);
    if (pre < 0 || n < 0 || post < 0 || pf_numel(out->shape, out->ndim) != numel ||
        (int64_t)pre * n * post != numel) {
        return PF_ERR(PyExc_ValueError, "%s: pre * n * post = %lld * %lld * %lld must be the "
                      "number of elements of x and out (%lld)", op, pre, n, post,
                      (long long)numel);
    }
    const PfCudaLib *lib = pf_cuda_library(op);
    if (lib == NULL) {
        return NULL;
    }
    int status = lib->softmax_host(0, pf_tensor_data(x), pf_tensor_data(out), pre, n, post,
                                   x->dtype == PF_FLOAT64, is_log);
    if (status != 0) {
        pf_cuda_raise(lib, op, status);
        return NULL;
    }
    Py_RETURN_NONE;
}

PyMethodDef pf_softmax_cuda_host_methods[] = {
    {"_cuda_host_softmax", py_cuda_host_softmax, METH_VARARGS,
     "_cuda_host_softmax(out, x, pre, n, post, is_log): the CUDA softmax kernel's code run on "
     "the host (tests)"},
    {NULL, NULL, 0, NULL},
};

/* ------------------------------------------------ the host self-test binding */

/*
 * _cuda_host_reduce(name, *args, **kwargs): pf.<name>(*args, **kwargs) on
 * CPU tensors with every pass run by libpyframe_cuda.so's host self-test
 * (the per-element functions of its kernels, in a loop, no device) instead
 * of the cpu loops.  Tests only: it compares the device code's math, dtype
 * handling and index arithmetic with the cpu path on machines without a GPU.
 */
static PyObject *py_cuda_host_reduce(PyObject *m, PyObject *const *args, Py_ssize_t nargs,
                                     PyObject *kwnames)
{
    static const pf_named_binding entries[] = {
        {"sum", pf_op_sum}, {"mean", pf_op_mean}, {"prod", pf_op_prod}, {"max", pf_op_max},
        {"min", pf_op_min}, {"argmax", pf_op_argmax}, {"argmin", pf_op_argmin},
        {"var", pf_op_var}, {"std", pf_op_std}, {"logsumexp", pf_op_logsumexp},
        {"norm", pf_op_norm}, {"all", pf_op_all}, {"any", pf_op_any},
        {"cumsum", pf_op_cumsum}, {"cumprod", pf_op_cumprod},
    };
    return pf_call_routed("_cuda_host_reduce", "a reduction or scan", "with a CUDA kernel", entries,
                          sizeof(entries) / sizeof(entries[0]), &route_to_cuda_host, m, args,
                          nargs, kwnames);
}

PyMethodDef pf_reduce_module_methods[] = {
    {"_cuda_host_reduce", (PyCFunction)(void (*)(void))py_cuda_host_reduce,
     METH_FASTCALL | METH_KEYWORDS,
     "_cuda_host_reduce(name, *args, **kw): the reduction on CPU tensors through the CUDA "
     "library's host self-test (tests only)"},
    {NULL, NULL, 0, NULL},
};
