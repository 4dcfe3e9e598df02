/*
 * indexing.c -- basic indexing (ints, slices with any step, ..., None) for
 * reading and writing.  Every basic index is a view; writing through one
 * is an assignment into that view, with broadcasting and casting.
 *
 * An integer index on every axis gives a 0-d tensor (as PyTorch), not a
 * Python scalar (as NumPy): use .item() for the number.
 */
#include "pyframe.h"

/* ndim of a NumPy array without the NumPy headers: its .ndim attribute */
static int PyArray_NDIM_compat(PyObject *arr)
{
    PyObject *nd = PyObject_GetAttrString(arr, "ndim");
    long v = nd ? PyLong_AsLong(nd) : 0;
    Py_XDECREF(nd);
    PyErr_Clear();
    return (int)v;
}

/* Parse `key` into the view it selects.  Returns a new reference. */
static PfTensor *basic_index(PfTensor *self, PyObject *key, const char *op)
{
    PyObject *items_buf[1];
    PyObject **items;
    Py_ssize_t nitems;
    if (PyTuple_Check(key)) {
        items = &PyTuple_GET_ITEM(key, 0);
        nitems = PyTuple_GET_SIZE(key);
    }
    else {
        items_buf[0] = key;
        items = items_buf;
        nitems = 1;
    }
    /* first pass: how many axes do the items consume, and where is ... */
    int consumed = 0, ellipsis = -1;
    for (Py_ssize_t i = 0; i < nitems; i++) {
        PyObject *it = items[i];
        if (it == Py_Ellipsis) {
            if (ellipsis >= 0) {
                return PF_ERR(PyExc_IndexError, "%s: an index can only have a single ellipsis "
                              "('...')", op);
            }
            ellipsis = (int)i;
        }
        else if (it == Py_None) {
            continue;
        }
        else if (PySlice_Check(it) ||
                 (!PyBool_Check(it) && !PyFloat_Check(it) && PyIndex_Check(it) &&
                  !(PfTensor_Check(it) && ((PfTensor *)it)->ndim > 0) &&
                  !(pf_is_ndarray(it) && PyArray_NDIM_compat(it) > 0))) {
            consumed++;
        }
        else {
            if (PfTensor_Check(it) || PyList_Check(it) || PyBool_Check(it) ||
                pf_is_ndarray(it)) {
                return PF_ERR(PyExc_IndexError,
                              "%s: integer-array and boolean-mask indexing is not available in "
                              "this version; index with ints, slices, ... and None (got %.100s)",
                              op, Py_TYPE(it)->tp_name);
            }
            return PF_ERR(PyExc_IndexError,
                          "%s: only integers, slices (`:`), ellipsis (`...`) and None are valid "
                          "indices; got %.100s", op, Py_TYPE(it)->tp_name);
        }
    }
    if (consumed > self->ndim) {
        return PF_ERR(PyExc_IndexError,
                      "%s: too many indices: the tensor has %d dimension(s) but %d were indexed",
                      op, self->ndim, consumed);
    }
    int64_t shape[PF_MAX_DIMS], strides[PF_MAX_DIMS];
    int64_t offset = self->offset;
    int nd = 0, src = 0;
    for (Py_ssize_t i = 0; i < nitems; i++) {
        PyObject *it = items[i];
        if (it == Py_Ellipsis) {
            int span = self->ndim - consumed;
            for (int k = 0; k < span; k++, src++) {
                if (nd >= PF_MAX_DIMS) {
                    goto too_many;
                }
                shape[nd] = self->shape[src];
                strides[nd++] = self->strides[src];
            }
        }
        else if (it == Py_None) {
            if (nd >= PF_MAX_DIMS) {
                goto too_many;
            }
            shape[nd] = 1;
            strides[nd++] = 0;
        }
        else if (PySlice_Check(it)) {
            Py_ssize_t start, stop, step;
            if (PySlice_Unpack(it, &start, &stop, &step) < 0) {
                PyErr_Clear();
                return PF_ERR(PyExc_ValueError,
                              "%s: slice step cannot be zero (axis %d); use a positive or "
                              "negative step", op, src);
            }
            Py_ssize_t len = PySlice_AdjustIndices((Py_ssize_t)self->shape[src], &start, &stop,
                                                   step);
            if (nd >= PF_MAX_DIMS) {
                goto too_many;
            }
            shape[nd] = len;
            strides[nd++] = self->strides[src] * step;
            if (len > 0) {
                offset += start * self->strides[src];
            }
            src++;
        }
        else {
            Py_ssize_t idx = PyNumber_AsSsize_t(it, PyExc_IndexError);
            if (idx == -1 && PyErr_Occurred()) {
                return NULL;
            }
            int64_t size = self->shape[src];
            if (idx < -size || idx >= size) {
                return PF_ERR(PyExc_IndexError,
                              "%s: index %zd is out of bounds for axis %d with size %lld", op,
                              idx, src, (long long)size);
            }
            if (idx < 0) {
                idx += size;
            }
            offset += idx * self->strides[src];
            src++;
        }
    }
    /* trailing axes not named by the key are kept whole */
    for (; src < self->ndim; src++) {
        if (nd >= PF_MAX_DIMS) {
            goto too_many;
        }
        shape[nd] = self->shape[src];
        strides[nd++] = self->strides[src];
    }
    return pf_tensor_view(self, nd, shape, strides, offset);
too_many:
    return PF_ERR(PyExc_IndexError, "%s: the result would have more than %d dimensions", op,
                  PF_MAX_DIMS);
}

PyObject *pf_tensor_getitem(PyObject *self, PyObject *key)
{
    return (PyObject *)basic_index((PfTensor *)self, key, "Tensor.__getitem__");
}

int pf_tensor_setitem(PyObject *self, PyObject *key, PyObject *value)
{
    const char *op = "Tensor.__setitem__";
    if (value == NULL) {
        return PF_ERRI(PyExc_TypeError, "%s: tensor elements cannot be deleted", op);
    }
    PfTensor *view = basic_index((PfTensor *)self, key, op);
    if (view == NULL) {
        return -1;
    }
    int r;
    if (PyFloat_Check(value) || PyLong_Check(value) || PyBool_Check(value)) {
        r = pf_tensor_fill_scalar(view, value, op);
    }
    else {
        /* non-tensor values are read straight in the target's dtype: no rounding detour */
        PfTensor *src = PfTensor_Check(value) ? (PfTensor *)Py_NewRef(value)
                                              : pf_as_tensor(value, 1, view->dtype, op);
        r = src == NULL ? -1 : pf_tensor_assign(view, src, op);
        Py_XDECREF(src);
    }
    Py_DECREF(view);
    return r;
}

PyMappingMethods pf_tensor_as_mapping = {
    .mp_length = NULL,
    .mp_subscript = pf_tensor_getitem,
    .mp_ass_subscript = pf_tensor_setitem,
};
