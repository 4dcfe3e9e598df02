/*
 * args.c -- argument parsing shared by the hand-written (CUSTOM) op
 * bindings: vectorcall positional + keyword arguments by name, axis
 * arguments (None, an int or a tuple; `dim` accepted for `axis`), and a
 * worked example of a CUSTOM op (isclose) built from elementwise ops.
 */
#include "ops.h"

int pf_parse_args(const char *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                  const char *const *names, int nrequired, PyObject **out)
{
    int n = 0;
    while (names[n] != NULL) {
        out[n++] = NULL;
    }
    if (nargs > n) {
        return PF_ERRI(PyExc_TypeError, "%s: takes at most %d positional arguments (%zd given)",
                       op, n, nargs);
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        out[i] = args[i];
    }
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t j = 0; j < nkw; j++) {
        const char *key = PyUnicode_AsUTF8(PyTuple_GET_ITEM(kwnames, j));
        if (key == NULL) {
            return -1;
        }
        int found = -1;
        for (int i = 0; i < n && found < 0; i++) {
            /* PyTorch's dim / keepdim for NumPy's axis / keepdims */
            if (strcmp(key, names[i]) == 0 ||
                (strcmp(names[i], "axis") == 0 && strcmp(key, "dim") == 0) ||
                (strcmp(names[i], "keepdims") == 0 && strcmp(key, "keepdim") == 0)) {
                found = i;
            }
        }
        if (found < 0) {
            return PF_ERRI(PyExc_TypeError, "%s: unexpected keyword argument '%s'", op, key);
        }
        if (out[found] != NULL) {
            return PF_ERRI(PyExc_TypeError, "%s: argument '%s' given twice", op, names[found]);
        }
        out[found] = args[nargs + j];
    }
    for (int i = 0; i < nrequired; i++) {
        if (out[i] == NULL) {
            return PF_ERRI(PyExc_TypeError, "%s: missing required argument '%s'", op, names[i]);
        }
    }
    return 0;
}

int pf_parse_axes(PyObject *axis, int ndim, const char *op, int *mask)
{
    memset(mask, 0, sizeof(int) * PF_MAX_DIMS);
    if (axis == NULL || axis == Py_None) {
        for (int i = 0; i < ndim; i++) {
            mask[i] = 1;
        }
        return 0;
    }
    int is_seq = PyTuple_Check(axis) || PyList_Check(axis);
    Py_ssize_t n = is_seq ? PySequence_Fast_GET_SIZE(axis) : 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *o = is_seq ? PySequence_Fast_GET_ITEM(axis, i) : axis;
        int64_t v;
        if (pf_int_arg(o, op, "axis", &v) < 0) {
            return -1;
        }
        Py_ssize_t a = (Py_ssize_t)v;
        /* a 0-d tensor has no axes, but axis 0 / -1 means "the whole thing", as NumPy */
        if (ndim == 0 && (a == 0 || a == -1)) {
            continue;
        }
        if (pf_normalize_axis(&a, ndim, op) < 0) {
            return -1;
        }
        if (mask[a]) {
            return PF_ERRI(PyExc_ValueError, "%s: axis %zd is given more than once", op, a);
        }
        mask[a] = 1;
    }
    return 0;
}

int pf_parse_bool(PyObject *o, const char *op, const char *what, int dflt, int *out)
{
    if (o == NULL) {
        *out = dflt;
        return 0;
    }
    if (!PyBool_Check(o) && !(PyLong_Check(o) && (PyLong_AsLong(o) == 0 || PyLong_AsLong(o) == 1))) {
        return PF_ERRI(PyExc_TypeError, "%s: %s must be True or False; got %.100s", op, what,
                       Py_TYPE(o)->tp_name);
    }
    *out = PyObject_IsTrue(o);
    return 0;
}

PyObject *pf_call_ew(pf_op op, PyObject *a, PyObject *b)
{
    PyObject *in[2] = {a, b};
    return pf_elementwise(op, in, NULL, NULL);
}

/*
 * isclose(a, b, rtol=1e-5, atol=1e-8, equal_nan=False), as NumPy:
 * |a - b| <= atol + rtol * |b| where b is finite, or a == b (infinities of
 * the same sign), or both NaN when equal_nan.  Built from elementwise ops, so every dtype and
 * broadcast works without a kernel of its own.
 */
PyObject *pf_op_isclose(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                        PyObject *kwnames)
{
    const char *op = "isclose";
    static const char *const names[] = {"a", "b", "rtol", "atol", "equal_nan", NULL};
    PyObject *v[5];
    double rtol = 1e-5, atol = 1e-8;
    int equal_nan;
    if (pf_parse_args(op, args, nargs, kwnames, names, 2, v) < 0 ||
        (v[2] && pf_double_arg(v[2], op, "rtol", &rtol) < 0) ||
        (v[3] && pf_double_arg(v[3], op, "atol", &atol) < 0) ||
        pf_parse_bool(v[4], op, "equal_nan", 0, &equal_nan) < 0) {
        return NULL;
    }
    PyObject *res = NULL, *diff = NULL, *adiff = NULL, *ab = NULL, *tol = NULL, *close = NULL,
             *eq = NULL, *r = NULL, *a_nan = NULL, *b_nan = NULL, *both = NULL,
             *le = NULL, *fin = NULL;
    PyObject *rt = PyFloat_FromDouble(rtol), *at = PyFloat_FromDouble(atol);
    /* the first op to see both inputs reports their errors under isclose's name */
    PyObject *ab_in[2] = {v[0], v[1]};
    if (rt == NULL || at == NULL ||
        (diff = pf_elementwise_as(PF_OP_SUB, ab_in, NULL, NULL, op)) == NULL ||
        (adiff = pf_call_ew(PF_OP_ABS, diff, NULL)) == NULL ||
        (ab = pf_call_ew(PF_OP_ABS, v[1], NULL)) == NULL ||
        (r = pf_call_ew(PF_OP_MUL, ab, rt)) == NULL ||
        (tol = pf_call_ew(PF_OP_ADD, r, at)) == NULL ||
        (le = pf_call_ew(PF_OP_LE, adiff, tol)) == NULL ||
        (fin = pf_call_ew(PF_OP_ISFINITE, v[1], NULL)) == NULL ||
        (close = pf_call_ew(PF_OP_LOGICAL_AND, le, fin)) == NULL ||
        (eq = pf_call_ew(PF_OP_EQ, v[0], v[1])) == NULL ||
        (res = pf_call_ew(PF_OP_LOGICAL_OR, close, eq)) == NULL) {
        goto done;
    }
    if (equal_nan) {
        if ((a_nan = pf_call_ew(PF_OP_ISNAN, v[0], NULL)) == NULL ||
            (b_nan = pf_call_ew(PF_OP_ISNAN, v[1], NULL)) == NULL ||
            (both = pf_call_ew(PF_OP_LOGICAL_AND, a_nan, b_nan)) == NULL) {
            Py_CLEAR(res);
            goto done;
        }
        Py_SETREF(res, pf_call_ew(PF_OP_LOGICAL_OR, res, both));
    }
done:
    Py_XDECREF(rt);
    Py_XDECREF(at);
    Py_XDECREF(diff);
    Py_XDECREF(adiff);
    Py_XDECREF(ab);
    Py_XDECREF(r);
    Py_XDECREF(tol);
    Py_XDECREF(close);
    Py_XDECREF(eq);
    Py_XDECREF(a_nan);
    Py_XDECREF(b_nan);
    Py_XDECREF(both);
    Py_XDECREF(le);
    Py_XDECREF(fin);
    return res;
}
