/*
 * create.c -- constructors: pf.tensor / pf.asarray from Python data, and
 * zeros, ones, full, empty (and their _like forms), arange, linspace, eye.
 *
 * dtype inference with dtype=None: bools give bool, ints give int64,
 * floats give float32 (the default float, as PyTorch); NumPy arrays and
 * tensors keep their dtype.
 */
#include "kernels/kernels.h"
#include <math.h>

/* ------------------------------------------------ nested Python sequences */

typedef struct {
    int ndim;
    int64_t shape[PF_MAX_DIMS];
    int kind;           /* 0 bool, 1 int, 2 float: the widest scalar seen */
    int have_dtype;     /* a tensor or array inside the data fixes a dtype */
    pf_dtype dtype;
    int any;            /* saw at least one leaf */
} discovery;

static int is_sequence(PyObject *o) { return PyList_Check(o) || PyTuple_Check(o); }

/* A tensor, or anything NumPy would hand us as an array. */
static PfTensor *leaf_tensor(PyObject *o, const char *op)
{
    if (PfTensor_Check(o)) {
        return (PfTensor *)Py_NewRef(o);
    }
    if (pf_is_ndarray(o)) {
        return (PfTensor *)pf_from_numpy_impl(o, op, 1);
    }
    return NULL;
}

static int scalar_kind(PyObject *o)
{
    if (PyBool_Check(o)) {
        return 0;
    }
    if (PyLong_Check(o)) {
        return 1;
    }
    if (PyFloat_Check(o)) {
        return 2;
    }
    if (PyIndex_Check(o)) {
        return 1;   /* NumPy integer scalars */
    }
    return -1;
}

static int discover(PyObject *o, int depth, discovery *d, const char *op)
{
    if (is_sequence(o)) {
        Py_ssize_t n = PySequence_Fast_GET_SIZE(o);
        if (depth >= PF_MAX_DIMS) {
            return PF_ERRI(PyExc_ValueError,
                           "%s: the data nests more than %d levels deep; tensors have at most "
                           "%d dimensions", op, PF_MAX_DIMS, PF_MAX_DIMS);
        }
        if (depth >= d->ndim) {
            if (d->any) {
                goto ragged;
            }
            d->ndim = depth + 1;
            d->shape[depth] = n;
        }
        else if (d->shape[depth] != n) {
            goto ragged;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            if (discover(PySequence_Fast_GET_ITEM(o, i), depth + 1, d, op) < 0) {
                return -1;
            }
        }
        if (n == 0 && d->ndim > depth + 1) {
            goto ragged;
        }
        return 0;
    }
    int sub_nd = 0;
    int64_t sub_shape[PF_MAX_DIMS];
    PfTensor *t = leaf_tensor(o, op);
    if (t != NULL) {
        sub_nd = t->ndim;
        memcpy(sub_shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
        d->dtype = d->have_dtype ? pf_promote(d->dtype, t->dtype) : t->dtype;
        d->have_dtype = 1;
        Py_DECREF(t);
    }
    else {
        if (PyErr_Occurred()) {
            return -1;
        }
        int k = scalar_kind(o);
        if (k < 0) {
            if (PyComplex_Check(o)) {
                return PF_ERRI(PyExc_TypeError, "%s: complex numbers are not supported (got %R)",
                               op, o);
            }
            if (PyNumber_Check(o) && !PyUnicode_Check(o)) {
                k = 2;  /* NumPy float scalars and other objects with __float__ */
            }
            else {
                return PF_ERRI(PyExc_TypeError,
                               "%s: cannot make a tensor from an element of type %.100s; "
                               "expected numbers (bool, int, float), nested lists of them, "
                               "tensors or NumPy arrays", op, Py_TYPE(o)->tp_name);
            }
        }
        if (k > d->kind) {
            d->kind = k;
        }
    }
    if (depth + sub_nd > PF_MAX_DIMS) {
        return PF_ERRI(PyExc_ValueError, "%s: the data has more than %d dimensions", op,
                       PF_MAX_DIMS);
    }
    if (!d->any) {
        if (d->ndim > depth) {
            goto ragged;   /* a sibling at this depth was a sequence */
        }
        d->any = 1;
        d->ndim = depth + sub_nd;
        memcpy(d->shape + depth, sub_shape, sizeof(int64_t) * (size_t)sub_nd);
        return 0;
    }
    if (d->ndim != depth + sub_nd ||
        memcmp(d->shape + depth, sub_shape, sizeof(int64_t) * (size_t)sub_nd) != 0) {
        goto ragged;
    }
    return 0;
ragged:
    return PF_ERRI(PyExc_ValueError,
                   "%s: the nested data is ragged: at depth %d the elements do not all have "
                   "the same length or shape; every row must have the same number of elements",
                   op, depth);
}

/* Write the data into a contiguous tensor `out`, element by element. */
static int fill_from_data(PyObject *o, PfTensor *out, int depth, char *p, const char *op)
{
    int64_t isz = pf_dtypes[out->dtype].itemsize;
    if (is_sequence(o)) {
        Py_ssize_t n = PySequence_Fast_GET_SIZE(o);
        int64_t step = out->strides[depth] * isz;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (fill_from_data(PySequence_Fast_GET_ITEM(o, i), out, depth + 1, p + i * step,
                               op) < 0) {
                return -1;
            }
        }
        return 0;
    }
    PfTensor *t = leaf_tensor(o, op);
    if (t != NULL) {
        PfTensor *dst = pf_tensor_wrap(out->storage, out->dtype, out->ndim - depth,
                                       out->shape + depth, out->strides + depth,
                                       (p - out->storage->data) / isz);
        int r = dst == NULL ? -1 : pf_tensor_assign(dst, t, op);
        Py_XDECREF(dst);
        Py_DECREF(t);
        return r;
    }
    if (PyErr_Occurred()) {
        return -1;
    }
    return pf_scalar_to_raw(o, out->dtype, p, op);
}

static PyObject *from_sequence(PyObject *data, int has_dtype, pf_dtype dtype, const char *op)
{
    discovery d;
    memset(&d, 0, sizeof(d));
    if (discover(data, 0, &d, op) < 0) {
        return NULL;
    }
    if (!has_dtype) {
        static const pf_dtype by_kind[] = {PF_BOOL, PF_INT64, PF_FLOAT32};
        if (d.have_dtype) {
            dtype = d.any && d.kind > 0 ? pf_promote(d.dtype, by_kind[d.kind]) : d.dtype;
        }
        else {
            dtype = d.any ? by_kind[d.kind] : PF_FLOAT32;   /* [] is float32, as PyTorch */
        }
    }
    if (pf_check_shape(d.shape, d.ndim, op) < 0) {
        return NULL;
    }
    pf_device cpu = {PF_DEV_CPU, 0};
    PfTensor *out = pf_tensor_empty(d.ndim, d.shape, dtype, cpu, op);
    if (out == NULL) {
        return NULL;
    }
    if (fill_from_data(data, out, 0, pf_tensor_data(out), op) < 0) {
        Py_DECREF(out);
        return NULL;
    }
    return (PyObject *)out;
}

/* ---------------------------------------------------------- pf.tensor */

static PyObject *scalar_tensor(PyObject *v, pf_dtype dtype, const char *op)
{
    pf_device cpu = {PF_DEV_CPU, 0};
    PfTensor *t = pf_tensor_empty(0, NULL, dtype, cpu, op);
    if (t == NULL) {
        return NULL;
    }
    if (pf_scalar_to_raw(v, dtype, pf_tensor_data(t), op) < 0) {
        Py_DECREF(t);
        return NULL;
    }
    return (PyObject *)t;
}

/*
 * NumPy arrays, pandas objects and anything NumPy can read (buffers,
 * __array__ ...).  *how is set to 0 (not handled), 1 (array-like) or 2
 * (pandas: the result may share the frame's memory and is made read-only,
 * so that no write through the tensor changes the user's frame).
 */
static PyObject *via_numpy(PyObject *data, const char *op, int *how)
{
    *how = 1;
    if (pf_is_ndarray(data)) {
        return pf_from_numpy_impl(data, op, 1);
    }
    int is_pandas = 0;
    PyObject *modname = PyObject_GetAttrString((PyObject *)Py_TYPE(data), "__module__");
    if (modname != NULL && PyUnicode_Check(modname)) {
        const char *m = PyUnicode_AsUTF8(modname);
        is_pandas = m != NULL && strncmp(m, "pandas", 6) == 0;
    }
    Py_XDECREF(modname);
    PyErr_Clear();
    if (is_pandas && pf_pandas_hook != NULL) {
        *how = 2;
        PyObject *arr = PyObject_CallFunction(pf_pandas_hook, "Os", data, op);
        if (arr == NULL) {
            return NULL;
        }
        int fresh = pf_ndarray_owns_data(arr);
        PfTensor *t = (PfTensor *)pf_from_numpy_impl(arr, op, 1);
        Py_DECREF(arr);
        if (t != NULL && !fresh) {
            t->storage->readonly = 1;   /* shares the frame's memory */
        }
        return (PyObject *)t;
    }
    if (PyObject_CheckBuffer(data) || PyObject_HasAttrString(data, "__array_interface__") ||
        PyObject_HasAttrString(data, "__array__") ||
        PyObject_HasAttrString(data, "__array_struct__")) {
        if (pf_numpy_ensure() < 0) {
            return NULL;
        }
        PyObject *np = PyImport_ImportModule("numpy");
        if (np == NULL) {
            return NULL;
        }
        PyObject *arr = PyObject_CallMethod(np, "asarray", "O", data);
        Py_DECREF(np);
        if (arr == NULL) {
            return NULL;
        }
        PyObject *t = pf_from_numpy_impl(arr, op, 1);
        Py_DECREF(arr);
        return t;
    }
    *how = 0;
    return NULL;
}

/*
 * A tensor for `data`; cast when dtype asks.  With copy set, tensors and
 * arrays are copied (pf.tensor); pandas data stay shared read-only.
 */
static PyObject *as_tensor_impl(PyObject *data, int has_dtype, pf_dtype dtype, const char *op,
                                int copy)
{
    PyObject *t = NULL;
    if (PfTensor_Check(data)) {
        t = Py_NewRef(data);
    }
    else if (PyBool_Check(data) || PyLong_CheckExact(data) || PyFloat_CheckExact(data)) {
        if (!has_dtype) {
            static const pf_dtype by_kind[] = {PF_BOOL, PF_INT64, PF_FLOAT32};
            dtype = by_kind[scalar_kind(data)];
        }
        return scalar_tensor(data, dtype, op);
    }
    else if (is_sequence(data)) {
        return from_sequence(data, has_dtype, dtype, op);
    }
    else {
        int how;
        t = via_numpy(data, op, &how);
        if (how == 0) {
            if (PyNumber_Check(data) && !PyComplex_Check(data)) {
                return from_sequence(data, has_dtype, dtype, op);  /* NumPy scalars */
            }
            return PF_ERR(PyExc_TypeError,
                          "%s: cannot make a tensor from %.100s; expected a number, a nested "
                          "list or tuple of numbers, a tensor, a NumPy array or a pandas "
                          "DataFrame/Series", op, Py_TYPE(data)->tp_name);
        }
        if (t == NULL) {
            return NULL;
        }
        if (how == 2) {
            copy = 0;
        }
    }
    PfTensor *tt = (PfTensor *)t;
    if ((has_dtype && dtype != tt->dtype) || copy) {
        PyObject *c = (PyObject *)pf_tensor_copy_as(tt, has_dtype ? dtype : tt->dtype, op);
        Py_DECREF(t);
        return c;
    }
    return t;
}

PyObject *pf_tensor_from_data(PyObject *data, int has_dtype, pf_dtype dtype, const char *op)
{
    return as_tensor_impl(data, has_dtype, dtype, op, 1);
}

PfTensor *pf_as_tensor(PyObject *obj, int has_dtype, pf_dtype dtype, const char *op)
{
    return (PfTensor *)as_tensor_impl(obj, has_dtype, dtype, op, 0);
}

/* ------------------------------------------------------ keyword handling */

typedef struct {
    PyObject *dtype;
    PyObject *device;
    int requires_grad;
} creation_kw;

/* Pop dtype=, device=, requires_grad= and reject anything else not in `extra`. */
static int parse_creation_kw(PyObject *kwds, const char *op, creation_kw *kw,
                             const char *const *extra, PyObject **extra_out)
{
    kw->dtype = Py_None;
    kw->device = Py_None;
    kw->requires_grad = 0;
    if (kwds == NULL) {
        return 0;
    }
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(kwds, &pos, &key, &value)) {
        const char *k = PyUnicode_AsUTF8(key);
        if (k == NULL) {
            return -1;
        }
        if (strcmp(k, "dtype") == 0) {
            kw->dtype = value;
            continue;
        }
        if (strcmp(k, "device") == 0) {
            kw->device = value;
            continue;
        }
        if (strcmp(k, "requires_grad") == 0) {
            int b = PyObject_IsTrue(value);
            if (b < 0) {
                return -1;
            }
            kw->requires_grad = b;
            continue;
        }
        int found = 0;
        for (int i = 0; extra != NULL && extra[i] != NULL; i++) {
            if (strcmp(k, extra[i]) == 0) {
                extra_out[i] = value;
                found = 1;
            }
        }
        if (!found) {
            return PF_ERRI(PyExc_TypeError, "%s: unexpected keyword argument '%s'", op, k);
        }
    }
    return 0;
}

/* Resolve dtype/device keywords and apply requires_grad to the result. */
static int resolve_kw(const creation_kw *kw, const char *op, pf_dtype *dtype, int *has_dtype,
                      pf_device *dev)
{
    *has_dtype = kw->dtype != Py_None;
    if (*has_dtype && pf_dtype_from_object(kw->dtype, op, dtype) < 0) {
        return -1;
    }
    dev->type = PF_DEV_CPU;
    dev->index = 0;
    if (kw->device != Py_None && pf_device_from_object(kw->device, op, dev) < 0) {
        return -1;
    }
    return pf_device_resolve(dev, op);
}

/*
 * t (stolen) on dev: itself when it is there, else a copy.  The
 * constructors that compute their values (tensor from data, arange,
 * linspace, eye, the random draws) build them on the cpu and copy them
 * over: the same numbers on every device, and no kernel needed.
 */
PyObject *pf_place_on(PyObject *t, pf_device dev, const char *op)
{
    if (t == NULL || pf_device_eq(((PfTensor *)t)->storage->device, dev)) {
        return t;
    }
    PyObject *moved = (PyObject *)pf_tensor_to_device((PfTensor *)t, dev,
                                                      ((PfTensor *)t)->dtype, op);
    Py_DECREF(t);
    return moved;
}

static PyObject *finish(PyObject *t, const creation_kw *kw, const char *op)
{
    if (t != NULL && kw->requires_grad) {
        PfTensor *tt = (PfTensor *)t;
        if (!pf_is_float(tt->dtype)) {
            Py_DECREF(t);
            return PF_ERR(PyExc_TypeError,
                          "%s: requires_grad=True needs a floating-point dtype; got %s", op,
                          pf_dtypes[tt->dtype].name);
        }
        tt->requires_grad = 1;
    }
    return t;
}

/* pf.tensor(data, dtype=None, device=None, requires_grad=False) */
static PyObject *py_tensor(PyObject *Py_UNUSED(m), PyObject *args, PyObject *kwds)
{
    const char *op = "pf.tensor";
    creation_kw kw;
    if (PyTuple_GET_SIZE(args) < 1 || PyTuple_GET_SIZE(args) > 2) {
        return PF_ERR(PyExc_TypeError, "%s(data, dtype=None, ...) takes data and an optional "
                      "dtype; got %zd positional arguments", op, PyTuple_GET_SIZE(args));
    }
    if (parse_creation_kw(kwds, op, &kw, NULL, NULL) < 0) {
        return NULL;
    }
    if (PyTuple_GET_SIZE(args) == 2) {
        kw.dtype = PyTuple_GET_ITEM(args, 1);
    }
    pf_dtype dtype = PF_FLOAT32;
    int has_dtype;
    pf_device dev;
    if (resolve_kw(&kw, op, &dtype, &has_dtype, &dev) < 0) {
        return NULL;
    }
    PyObject *t = pf_tensor_from_data(PyTuple_GET_ITEM(args, 0), has_dtype, dtype, op);
    if (kw.device != Py_None) {
        t = pf_place_on(t, dev, op);
    }
    return finish(t, &kw, op);
}

/* pf.asarray(data, dtype=None): shares memory with tensors, arrays and buffers when it can. */
static PyObject *py_asarray(PyObject *Py_UNUSED(m), PyObject *args, PyObject *kwds)
{
    const char *op = "pf.asarray";
    creation_kw kw;
    if (PyTuple_GET_SIZE(args) < 1 || PyTuple_GET_SIZE(args) > 2) {
        return PF_ERR(PyExc_TypeError, "%s(data, dtype=None) takes data and an optional dtype",
                      op);
    }
    if (parse_creation_kw(kwds, op, &kw, NULL, NULL) < 0) {
        return NULL;
    }
    if (PyTuple_GET_SIZE(args) == 2) {
        kw.dtype = PyTuple_GET_ITEM(args, 1);
    }
    pf_dtype dtype = PF_FLOAT32;
    int has_dtype;
    pf_device dev;
    if (resolve_kw(&kw, op, &dtype, &has_dtype, &dev) < 0) {
        return NULL;
    }
    PyObject *t = as_tensor_impl(PyTuple_GET_ITEM(args, 0), has_dtype, dtype, op, 0);
    if (kw.device != Py_None) {
        t = pf_place_on(t, dev, op);
    }
    return finish(t, &kw, op);
}

/* ----------------------------------------------------- filled constructors */

/*
 * Shape from positional args: f(2, 3), f((2, 3)), f([2, 3]), f(shape=...),
 * and NumPy's f((2, 3), dtype) with the dtype second.
 */
static int shape_args(PyObject *args, PyObject *shape_kw, const char *op, int64_t *shape,
                      int *ndim, creation_kw *kw, int max_extra)
{
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    if (shape_kw != NULL) {
        if (n > 0) {
            return PF_ERRI(PyExc_TypeError, "%s: shape given both positionally and as shape=",
                           op);
        }
        return pf_parse_shape(shape_kw, op, shape, ndim);
    }
    if (n >= 1 && is_sequence(PyTuple_GET_ITEM(args, 0))) {
        if (n > 1 + max_extra) {
            return PF_ERRI(PyExc_TypeError, "%s: too many positional arguments", op);
        }
        if (n == 2 + (max_extra - 1) && max_extra >= 1) {
            kw->dtype = PyTuple_GET_ITEM(args, n - 1);   /* np.zeros((2, 3), np.float32) */
        }
        return pf_parse_shape(PyTuple_GET_ITEM(args, 0), op, shape, ndim);
    }
    return pf_parse_shape(args, op, shape, ndim);
}

static PyObject *make_filled(int ndim, const int64_t *shape, pf_dtype dtype, pf_device dev,
                             PyObject *value, const char *op)
{
    if (value == NULL) {
        return (PyObject *)pf_tensor_zeros(ndim, shape, dtype, dev, op);
    }
    PfTensor *t = pf_tensor_empty(ndim, shape, dtype, dev, op);
    if (t == NULL) {
        return NULL;
    }
    if (pf_tensor_fill_scalar(t, value, op) < 0) {
        Py_DECREF(t);
        return NULL;
    }
    return (PyObject *)t;
}

/* kind: 0 zeros, 1 ones, 2 empty, 3 filled with `value` */
static PyObject *make_kind(int ndim, const int64_t *shape, pf_dtype dtype, pf_device dev,
                           int kind, PyObject *value, const char *op)
{
    if (kind == 2) {
        return (PyObject *)pf_tensor_empty(ndim, shape, dtype, dev, op);
    }
    PyObject *one = PyLong_FromLong(1);
    if (one == NULL) {
        return NULL;
    }
    PyObject *t = make_filled(ndim, shape, dtype, dev,
                              kind == 0 ? NULL : kind == 1 ? one : value, op);
    Py_DECREF(one);
    return t;
}

/* kind: 0 zeros, 1 ones, 2 empty */
static PyObject *filled_impl(PyObject *args, PyObject *kwds, const char *op, int kind)
{
    static const char *const extra[] = {"shape", NULL};
    PyObject *extra_out[1] = {NULL};
    creation_kw kw;
    int64_t shape[PF_MAX_DIMS];
    int ndim, has_dtype;
    pf_dtype dtype = PF_FLOAT32;
    pf_device dev;
    if (parse_creation_kw(kwds, op, &kw, extra, extra_out) < 0 ||
        shape_args(args, extra_out[0], op, shape, &ndim, &kw, 1) < 0 ||
        resolve_kw(&kw, op, &dtype, &has_dtype, &dev) < 0) {
        return NULL;
    }
    return finish(make_kind(ndim, shape, dtype, dev, kind, NULL, op), &kw, op);
}

static PyObject *py_zeros(PyObject *Py_UNUSED(m), PyObject *a, PyObject *k)
{
    return filled_impl(a, k, "pf.zeros", 0);
}

static PyObject *py_ones(PyObject *Py_UNUSED(m), PyObject *a, PyObject *k)
{
    return filled_impl(a, k, "pf.ones", 1);
}

static PyObject *py_empty(PyObject *Py_UNUSED(m), PyObject *a, PyObject *k)
{
    return filled_impl(a, k, "pf.empty", 2);
}

static pf_dtype dtype_of_scalar(PyObject *v)
{
    if (PfTensor_Check(v)) {
        return ((PfTensor *)v)->dtype;
    }
    int k = scalar_kind(v);
    return k == 0 ? PF_BOOL : k == 1 ? PF_INT64 : PF_FLOAT32;
}

/* pf.full(shape, fill_value, dtype=None): dtype follows the value, as NumPy and PyTorch. */
static PyObject *py_full(PyObject *Py_UNUSED(m), PyObject *args, PyObject *kwds)
{
    const char *op = "pf.full";
    static const char *const extra[] = {"shape", "fill_value", NULL};
    PyObject *extra_out[2] = {NULL, NULL};
    creation_kw kw;
    if (parse_creation_kw(kwds, op, &kw, extra, extra_out) < 0) {
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    PyObject *shape_obj = extra_out[0], *value = extra_out[1];
    if (n >= 1 && shape_obj == NULL) {
        shape_obj = PyTuple_GET_ITEM(args, 0);
    }
    if (n >= 2 && value == NULL) {
        value = PyTuple_GET_ITEM(args, 1);
    }
    if (n >= 3) {
        kw.dtype = PyTuple_GET_ITEM(args, 2);
    }
    if (shape_obj == NULL || value == NULL || n > 3) {
        return PF_ERR(PyExc_TypeError, "%s(shape, fill_value, dtype=None) needs a shape and a "
                      "fill value", op);
    }
    int64_t shape[PF_MAX_DIMS];
    int ndim, has_dtype;
    pf_dtype dtype = PF_FLOAT32;
    pf_device dev;
    if (pf_parse_shape(shape_obj, op, shape, &ndim) < 0 ||
        resolve_kw(&kw, op, &dtype, &has_dtype, &dev) < 0) {
        return NULL;
    }
    if (!has_dtype) {
        dtype = dtype_of_scalar(value);
    }
    return finish(make_filled(ndim, shape, dtype, dev, value, op), &kw, op);
}

/* zeros_like & co: kind 0 zeros, 1 ones, 2 empty, 3 full */
static PyObject *like_impl(PyObject *args, PyObject *kwds, const char *op, int kind)
{
    static const char *const extra[] = {"fill_value", NULL};
    PyObject *extra_out[1] = {NULL};
    creation_kw kw;
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    if (parse_creation_kw(kwds, op, &kw, extra, extra_out) < 0) {
        return NULL;
    }
    PyObject *value = extra_out[0];
    if (kind == 3 && n >= 2 && value == NULL) {
        value = PyTuple_GET_ITEM(args, 1);
    }
    if (n < 1 || n > (kind == 3 ? 2 : 1) || (kind == 3 && value == NULL)) {
        return PF_ERR(PyExc_TypeError, kind == 3 ? "%s(a, fill_value, dtype=None) takes a "
                      "tensor-like and a value" : "%s(a, dtype=None) takes one tensor-like", op);
    }
    PfTensor *proto = pf_as_tensor(PyTuple_GET_ITEM(args, 0), 0, PF_FLOAT32, op);
    if (proto == NULL) {
        return NULL;
    }
    int has_dtype;
    pf_dtype dtype = proto->dtype;
    pf_device dev;
    if (resolve_kw(&kw, op, &dtype, &has_dtype, &dev) < 0) {
        Py_DECREF(proto);
        return NULL;
    }
    if (kw.device == Py_None) {
        dev = proto->storage->device;   /* on the prototype's device, as PyTorch */
    }
    if (!has_dtype) {
        dtype = proto->dtype;
    }
    PyObject *t = make_kind(proto->ndim, proto->shape, dtype, dev, kind, value, op);
    Py_DECREF(proto);
    return finish(t, &kw, op);
}

static PyObject *py_zeros_like(PyObject *Py_UNUSED(m), PyObject *a, PyObject *k)
{
    return like_impl(a, k, "pf.zeros_like", 0);
}

static PyObject *py_ones_like(PyObject *Py_UNUSED(m), PyObject *a, PyObject *k)
{
    return like_impl(a, k, "pf.ones_like", 1);
}

static PyObject *py_empty_like(PyObject *Py_UNUSED(m), PyObject *a, PyObject *k)
{
    return like_impl(a, k, "pf.empty_like", 2);
}

static PyObject *py_full_like(PyObject *Py_UNUSED(m), PyObject *a, PyObject *k)
{
    return like_impl(a, k, "pf.full_like", 3);
}

/* ------------------------------------------------------------- ranges */

static int number_arg(PyObject *o, const char *op, const char *name, double *out, int *is_int)
{
    *is_int = PyBool_Check(o) || PyLong_Check(o) || (!PyFloat_Check(o) && PyIndex_Check(o) &&
                                                     !PfTensor_Check(o));
    return pf_double_arg(o, op, name, out);
}

/* Write start + i * step for i < n, computed in float64 (int64 for integer ranges). */
static void range_fill(PfTensor *t, double start, double step, int ints, int64_t istart,
                       int64_t istep)
{
    int64_t n = t->shape[0];
    char *p = pf_tensor_data(t);
    int isz = pf_dtypes[t->dtype].itemsize;
    for (int64_t i = 0; i < n; i++) {
        if (ints) {
            int64_t v = istart + i * istep;
            pf_cast_one(&v, PF_INT64, p + i * isz, t->dtype);
        }
        else {
            double v = start + (double)i * step;
            pf_cast_one(&v, PF_FLOAT64, p + i * isz, t->dtype);
        }
    }
}

/* pf.arange(stop) / arange(start, stop, step=1, dtype=None) */
static PyObject *py_arange(PyObject *Py_UNUSED(m), PyObject *args, PyObject *kwds)
{
    const char *op = "pf.arange";
    static const char *const extra[] = {"start", "stop", "step", NULL};
    PyObject *ex[3] = {NULL, NULL, NULL};
    creation_kw kw;
    if (parse_creation_kw(kwds, op, &kw, extra, ex) < 0) {
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    PyObject *start = ex[0], *stop = ex[1], *step = ex[2];
    if (n == 1 && stop == NULL) {
        stop = PyTuple_GET_ITEM(args, 0);
    }
    else if (n >= 2) {
        start = PyTuple_GET_ITEM(args, 0);
        stop = PyTuple_GET_ITEM(args, 1);
        if (n >= 3) {
            step = PyTuple_GET_ITEM(args, 2);
        }
        if (n >= 4) {
            kw.dtype = PyTuple_GET_ITEM(args, 3);
        }
    }
    else if (n == 1) {
        start = PyTuple_GET_ITEM(args, 0);
    }
    if (stop == NULL || n > 4) {
        return PF_ERR(PyExc_TypeError, "%s(start=0, stop, step=1, dtype=None): stop is required",
                      op);
    }
    double a = 0, b, s = 1;
    int ia = 1, ib, is = 1;
    if ((start && number_arg(start, op, "start", &a, &ia) < 0) ||
        number_arg(stop, op, "stop", &b, &ib) < 0 ||
        (step && number_arg(step, op, "step", &s, &is) < 0)) {
        return NULL;
    }
    if (s == 0) {
        return PF_ERR(PyExc_ValueError, "%s: step must not be zero", op);
    }
    if (!(isfinite(a) && isfinite(b) && isfinite(s))) {
        char x[32], y[32], z[32];
        return PF_ERR(PyExc_ValueError, "%s: start, stop and step must be finite; got %s, %s, %s",
                      op, pf_fmt_double(a, x, 32), pf_fmt_double(b, y, 32),
                      pf_fmt_double(s, z, 32));
    }
    int ints = ia && ib && is;
    int has_dtype;
    pf_dtype dtype = ints ? PF_INT64 : PF_FLOAT32;
    pf_device dev;
    if (resolve_kw(&kw, op, &dtype, &has_dtype, &dev) < 0) {
        return NULL;
    }
    double len = ceil((b - a) / s);
    if (len > 9e18) {
        char x[32];
        return PF_ERR(PyExc_ValueError, "%s: the range has too many elements (%s)", op,
                      pf_fmt_double(len, x, 32));
    }
    int64_t shape[1] = {len > 0 ? (int64_t)len : 0};
    int64_t ia_v = 0, is_v = 1;
    if (ints) {
        int64_t ib_v;
        if ((start && pf_int_arg(start, op, "start", &ia_v) < 0) ||
            pf_int_arg(stop, op, "stop", &ib_v) < 0 ||
            (step && pf_int_arg(step, op, "step", &is_v) < 0)) {
            return NULL;
        }
        /* exact integer length in 128 bits: no rounding through double, no overflow */
        __int128 span = (__int128)ib_v - ia_v;
        __int128 cnt = is_v > 0 ? (span + is_v - 1) / is_v : (span + is_v + 1) / is_v;
        if (cnt > (__int128)INT64_MAX / 8) {
            return PF_ERR(PyExc_ValueError, "%s: the range has too many elements", op);
        }
        shape[0] = cnt > 0 ? (int64_t)cnt : 0;
    }
    pf_device cpu = {PF_DEV_CPU, 0};
    PfTensor *t = pf_tensor_empty(1, shape, dtype, cpu, op);
    if (t == NULL) {
        return NULL;
    }
    range_fill(t, a, s, ints, ia_v, is_v);
    return finish(pf_place_on((PyObject *)t, dev, op), &kw, op);
}

/* pf.linspace(start, stop, num=50, endpoint=True, dtype=None) */
static PyObject *py_linspace(PyObject *Py_UNUSED(m), PyObject *args, PyObject *kwds)
{
    const char *op = "pf.linspace";
    static const char *const extra[] = {"start", "stop", "num", "endpoint", "steps", NULL};
    PyObject *ex[5] = {NULL, NULL, NULL, NULL, NULL};
    creation_kw kw;
    if (parse_creation_kw(kwds, op, &kw, extra, ex) < 0) {
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    PyObject *start = n > 0 ? PyTuple_GET_ITEM(args, 0) : ex[0];
    PyObject *stop = n > 1 ? PyTuple_GET_ITEM(args, 1) : ex[1];
    PyObject *num = n > 2 ? PyTuple_GET_ITEM(args, 2) : (ex[2] ? ex[2] : ex[4]);
    if (start == NULL || stop == NULL || n > 3) {
        return PF_ERR(PyExc_TypeError, "%s(start, stop, num=50, endpoint=True, dtype=None)", op);
    }
    double a, b;
    int ia, ib;
    if (number_arg(start, op, "start", &a, &ia) < 0 || number_arg(stop, op, "stop", &b, &ib) < 0) {
        return NULL;
    }
    int64_t count = 50;
    if (num != NULL && pf_int_arg(num, op, "num", &count) < 0) {
        return NULL;
    }
    if (count < 0) {
        return PF_ERR(PyExc_ValueError, "%s: num must be >= 0; got %lld", op, (long long)count);
    }
    int endpoint = ex[3] == NULL ? 1 : PyObject_IsTrue(ex[3]);
    if (endpoint < 0) {
        return NULL;
    }
    int has_dtype;
    pf_dtype dtype = PF_FLOAT32;
    pf_device dev;
    if (resolve_kw(&kw, op, &dtype, &has_dtype, &dev) < 0) {
        return NULL;
    }
    int64_t shape[1] = {count};
    pf_device cpu = {PF_DEV_CPU, 0};
    PfTensor *t = pf_tensor_empty(1, shape, dtype, cpu, op);
    if (t == NULL) {
        return NULL;
    }
    double div = endpoint ? (double)(count - 1) : (double)count;
    double step = div > 0 ? (b - a) / div : 0;
    char *p = pf_tensor_data(t);
    int isz = pf_dtypes[dtype].itemsize;
    for (int64_t i = 0; i < count; i++) {
        /* the last point is exactly stop, as NumPy guarantees */
        double v = (endpoint && i == count - 1 && count > 1) ? b : a + (double)i * step;
        if (pf_is_int(dtype)) {
            v = floor(v);
        }
        pf_cast_one(&v, PF_FLOAT64, p + i * isz, dtype);
    }
    return finish(pf_place_on((PyObject *)t, dev, op), &kw, op);
}

/* pf.eye(N, M=None, k=0, dtype=None) */
static PyObject *py_eye(PyObject *Py_UNUSED(m), PyObject *args, PyObject *kwds)
{
    const char *op = "pf.eye";
    static const char *const extra[] = {"N", "M", "k", NULL};
    PyObject *ex[3] = {NULL, NULL, NULL};
    creation_kw kw;
    if (parse_creation_kw(kwds, op, &kw, extra, ex) < 0) {
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    PyObject *objs[3];
    for (int i = 0; i < 3; i++) {
        objs[i] = i < n ? PyTuple_GET_ITEM(args, i) : ex[i];
    }
    if (objs[0] == NULL || n > 3) {
        return PF_ERR(PyExc_TypeError, "%s(N, M=None, k=0, dtype=None) needs N", op);
    }
    int64_t v[3] = {0, -1, 0};
    for (int i = 0; i < 3; i++) {
        if (objs[i] != NULL && objs[i] != Py_None && pf_int_arg(objs[i], op, extra[i], &v[i]) < 0) {
            return NULL;
        }
    }
    if (v[1] == -1 && (objs[1] == NULL || objs[1] == Py_None)) {
        v[1] = v[0];
    }
    int64_t shape[2] = {v[0], v[1]};
    int has_dtype;
    pf_dtype dtype = PF_FLOAT32;
    pf_device dev;
    if (pf_check_shape(shape, 2, op) < 0 || resolve_kw(&kw, op, &dtype, &has_dtype, &dev) < 0) {
        return NULL;
    }
    PyObject *one = PyLong_FromLong(1);
    pf_device cpu = {PF_DEV_CPU, 0};
    PyObject *t = make_filled(2, shape, dtype, cpu, NULL, op);
    if (t != NULL && one != NULL) {
        PfTensor *tt = (PfTensor *)t;
        char raw[8];
        pf_scalar_to_raw(one, dtype, raw, op);
        int isz = pf_dtypes[dtype].itemsize;
        for (int64_t i = 0; i < shape[0]; i++) {
            int64_t j = i + v[2];
            if (j >= 0 && j < shape[1]) {
                memcpy(pf_tensor_data(tt) + (i * shape[1] + j) * isz, raw, (size_t)isz);
            }
        }
    }
    Py_XDECREF(one);
    return finish(pf_place_on(t, dev, op), &kw, op);
}

int pf_parse_creation(PyObject *args, PyObject *kwds, const char *op, int64_t *shape, int *ndim,
                      pf_dtype *dtype, int *has_dtype, int *requires_grad, pf_device *dev)
{
    static const char *const extra[] = {"shape", "size", NULL};
    PyObject *extra_out[2] = {NULL, NULL};
    creation_kw kw;
    if (parse_creation_kw(kwds, op, &kw, extra, extra_out) < 0 ||
        shape_args(args, extra_out[0] ? extra_out[0] : extra_out[1], op, shape, ndim, &kw, 1) < 0 ||
        resolve_kw(&kw, op, dtype, has_dtype, dev) < 0) {
        return -1;
    }
    *requires_grad = kw.requires_grad;
    return 0;
}

PyObject *pf_finish_creation(PyObject *t, int requires_grad, const char *op)
{
    creation_kw kw = {Py_None, Py_None, requires_grad};
    return finish(t, &kw, op);
}

#define KW (PyCFunction)(void (*)(void))
PyObject *pf_make_subclass(PyObject *m, PyObject *args);

PyMethodDef pf_create_module_methods[] = {
    {"_make_subclass", pf_make_subclass, METH_VARARGS,
     "_make_subclass(cls, t, requires_grad): a cls instance over t's memory (nn.Parameter)"},
    {"tensor", KW py_tensor, METH_VARARGS | METH_KEYWORDS,
     "tensor(data, dtype=None, device=None, requires_grad=False): a new tensor holding a copy "
     "of data (numbers, nested lists, tensors, NumPy arrays); a pandas DataFrame is shared "
     "read-only where it is one numeric block"},
    {"asarray", KW py_asarray, METH_VARARGS | METH_KEYWORDS,
     "asarray(data, dtype=None): like tensor, but shares memory with tensors, NumPy arrays and "
     "buffers when no conversion is needed"},
    {"zeros", KW py_zeros, METH_VARARGS | METH_KEYWORDS, "zeros(*shape, dtype=float32, ...)"},
    {"ones", KW py_ones, METH_VARARGS | METH_KEYWORDS, "ones(*shape, dtype=float32, ...)"},
    {"empty", KW py_empty, METH_VARARGS | METH_KEYWORDS,
     "empty(*shape, dtype=float32, ...): uninitialised memory"},
    {"full", KW py_full, METH_VARARGS | METH_KEYWORDS,
     "full(shape, fill_value, dtype=None): dtype follows fill_value when not given"},
    {"zeros_like", KW py_zeros_like, METH_VARARGS | METH_KEYWORDS, "zeros_like(a, dtype=None)"},
    {"ones_like", KW py_ones_like, METH_VARARGS | METH_KEYWORDS, "ones_like(a, dtype=None)"},
    {"empty_like", KW py_empty_like, METH_VARARGS | METH_KEYWORDS, "empty_like(a, dtype=None)"},
    {"full_like", KW py_full_like, METH_VARARGS | METH_KEYWORDS,
     "full_like(a, fill_value, dtype=None)"},
    {"arange", KW py_arange, METH_VARARGS | METH_KEYWORDS,
     "arange([start,] stop[, step], dtype=None): int64 when all arguments are ints, else "
     "float32"},
    {"linspace", KW py_linspace, METH_VARARGS | METH_KEYWORDS,
     "linspace(start, stop, num=50, endpoint=True, dtype=float32)"},
    {"eye", KW py_eye, METH_VARARGS | METH_KEYWORDS, "eye(N, M=None, k=0, dtype=float32)"},
    {NULL, NULL, 0, NULL},
};
