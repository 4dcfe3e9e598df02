/*
 * shape.c -- shape arithmetic in one place: parsing shapes from Python,
 * overflow-checked sizes, contiguity, broadcasting and axis normalisation.
 */
#include "pyframe.h"

int64_t pf_numel(const int64_t *shape, int ndim)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        n *= shape[i];
    }
    return n;
}

void pf_contiguous_strides(const int64_t *shape, int ndim, int64_t *strides)
{
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        strides[i] = s;
        s *= shape[i] > 0 ? shape[i] : 1;
    }
}

/* Row-major contiguous; dimensions of size 1 may have any stride. */
int pf_is_contiguous_shape(const int64_t *shape, const int64_t *strides, int ndim)
{
    int64_t expect = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        if (shape[i] == 0) {
            return 1;
        }
        if (shape[i] != 1 && strides[i] != expect) {
            return 0;
        }
        expect *= shape[i];
    }
    return 1;
}

const char *pf_shape_str(const int64_t *shape, int ndim, char *buf, size_t size)
{
    size_t used = 0;
    used += (size_t)snprintf(buf + used, size - used, "(");
    for (int i = 0; i < ndim && used < size; i++) {
        used += (size_t)snprintf(buf + used, size - used, i ? ", %lld" : "%lld",
                                 (long long)shape[i]);
    }
    if (used < size) {
        snprintf(buf + used, size - used, ndim == 1 ? ",)" : ")");
    }
    return buf;
}

PyObject *pf_shape_tuple(const int64_t *shape, int ndim)
{
    PyObject *t = PyTuple_New(ndim);
    if (t == NULL) {
        return NULL;
    }
    for (int i = 0; i < ndim; i++) {
        PyObject *v = PyLong_FromLongLong(shape[i]);
        if (v == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, v);
    }
    return t;
}

int64_t pf_checked_nbytes(const int64_t *shape, int ndim, int itemsize, const char *op)
{
    int64_t n = itemsize;
    int zero = 0;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == 0) {
            zero = 1;
        }
    }
    if (zero) {
        return 0;
    }
    for (int i = 0; i < ndim; i++) {
        if (__builtin_mul_overflow(n, shape[i], &n) || n > (int64_t)PY_SSIZE_T_MAX / 2) {
            char buf[PF_SHAPE_STRLEN];
            PyErr_Format(PyExc_ValueError,
                         "%s: tensor of shape %s is too big: its size in bytes overflows a "
                         "64-bit integer; use smaller dimensions",
                         op, pf_shape_str(shape, ndim, buf, sizeof(buf)));
            return -1;
        }
    }
    return n;
}

int pf_check_shape(const int64_t *shape, int ndim, const char *op)
{
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            char buf[PF_SHAPE_STRLEN];
            return PF_ERRI(PyExc_ValueError,
                           "%s: negative dimension %lld at position %d of shape %s; "
                           "dimensions must be >= 0",
                           op, (long long)shape[i], i, pf_shape_str(shape, ndim, buf, sizeof(buf)));
        }
    }
    /* 8 bytes per element bounds every dtype: catches products that overflow */
    return pf_checked_nbytes(shape, ndim, 8, op) < 0 ? -1 : 0;
}

static int dim_from_object(PyObject *o, const char *op, int pos, int64_t *out)
{
    if (PyLong_CheckExact(o)) {
        /* the common case, without formatting an argument name nobody reads */
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
        if (!overflow && !(v == -1 && PyErr_Occurred())) {
            *out = v;
            return 0;
        }
        PyErr_Clear();
    }
    char what[40];
    snprintf(what, sizeof(what), "dimension %d", pos);
    return pf_int_arg(o, op, what, out);
}

/*
 * Accepts the forms users write: f(2, 3) (obj is the args tuple),
 * f((2, 3)), f([2, 3]), f(5), f(()) and a pf.Size / tuple of a shape.
 */
int pf_parse_shape(PyObject *obj, const char *op, int64_t *shape, int *ndim)
{
    PyObject *seq = obj;
    if (PyTuple_Check(obj) && PyTuple_GET_SIZE(obj) == 1) {
        PyObject *only = PyTuple_GET_ITEM(obj, 0);
        if (PyTuple_Check(only) || PyList_Check(only)) {
            seq = only;
        }
    }
    if (!PyTuple_Check(seq) && !PyList_Check(seq)) {
        if (PyIndex_Check(seq) && !PyFloat_Check(seq)) {
            *ndim = 1;
            if (dim_from_object(seq, op, 0, &shape[0]) < 0) {
                return -1;
            }
            return pf_check_shape(shape, 1, op);
        }
        return PF_ERRI(PyExc_TypeError,
                       "%s: shape must be an int or a tuple/list of ints; got %.100s",
                       op, Py_TYPE(seq)->tp_name);
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > PF_MAX_DIMS) {
        return PF_ERRI(PyExc_ValueError,
                       "%s: %zd dimensions requested; pyframe tensors have at most %d", op, n,
                       PF_MAX_DIMS);
    }
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (dim_from_object(items[i], op, (int)i, &shape[i]) < 0) {
            return -1;
        }
    }
    *ndim = (int)n;
    return pf_check_shape(shape, (int)n, op);
}

int pf_broadcast_shapes(const int64_t *a, int na, const int64_t *b, int nb, int64_t *out,
                        int *nout, const char *op)
{
    int n = na > nb ? na : nb;
    for (int i = 0; i < n; i++) {
        int ia = na - n + i, ib = nb - n + i;
        int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            char sa[PF_SHAPE_STRLEN], sb[PF_SHAPE_STRLEN];
            return PF_ERRI(PyExc_ValueError,
                           "%s: shapes %s and %s cannot be broadcast together (dimension %d: "
                           "%lld vs %lld); each dimension must match or be 1",
                           op, pf_shape_str(a, na, sa, sizeof(sa)),
                           pf_shape_str(b, nb, sb, sizeof(sb)), i, (long long)da, (long long)db);
        }
        out[i] = da == 1 ? db : da;
    }
    *nout = n;
    return 0;
}

int pf_int_arg(PyObject *o, const char *op, const char *what, int64_t *out)
{
    if (PyFloat_Check(o) || PyComplex_Check(o) || !PyIndex_Check(o)) {
        return PF_ERRI(PyExc_TypeError, "%s: %s must be an integer; got %.100s", op, what,
                       Py_TYPE(o)->tp_name);
    }
    PyObject *idx = PyNumber_Index(o);
    if (idx == NULL) {
        PyErr_Clear();
        return PF_ERRI(PyExc_TypeError, "%s: %s must be an integer; got %.100s", op, what,
                       Py_TYPE(o)->tp_name);
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(idx, &overflow);
    if (overflow) {
        PyErr_Format(PyExc_ValueError, "%s: %s = %S does not fit in a 64-bit integer", op, what,
                     idx);
        Py_DECREF(idx);
        return -1;
    }
    Py_DECREF(idx);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    *out = v;
    return 0;
}

int pf_double_arg(PyObject *o, const char *op, const char *what, double *out)
{
    if (PyComplex_Check(o) || PyUnicode_Check(o) || !PyNumber_Check(o)) {
        return PF_ERRI(PyExc_TypeError, "%s: %s must be a real number; got %.100s", op, what,
                       Py_TYPE(o)->tp_name);
    }
    double d = PyFloat_AsDouble(o);
    if (d == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return PF_ERRI(PyExc_TypeError, "%s: %s must be a real number (a Python or NumPy scalar); "
                       "got %.100s", op, what, Py_TYPE(o)->tp_name);
    }
    *out = d;
    return 0;
}

const char *pf_fmt_double(double v, char *buf, size_t size)
{
    snprintf(buf, size, "%.17g", v);
    return buf;
}

int pf_normalize_axis(Py_ssize_t *axis, int ndim, const char *op)
{
    Py_ssize_t a = *axis;
    if (a < -(Py_ssize_t)ndim || a >= (Py_ssize_t)ndim) {
        return PF_ERRI(PyExc_IndexError,
                       "%s: axis %zd is out of range for a tensor with %d dimension(s); "
                       "expected %d <= axis < %d",
                       op, a, ndim, -ndim, ndim > 0 ? ndim : 0);
    }
    *axis = a < 0 ? a + ndim : a;
    return 0;
}
