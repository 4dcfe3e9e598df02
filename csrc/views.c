/*
 * views.c -- operations that return a new tensor over the same storage:
 * reshape/view, transpose/permute/swapaxes, squeeze/unsqueeze, expand,
 * flatten.  Only reshape and flatten ever copy, and only when the strides
 * make a view impossible.
 */
#include "autograd.h"

/* Parse a target shape that may hold one -1, and resolve it against numel. */
static int parse_target_shape(PyObject *args, int64_t numel, const char *op, int64_t *shape,
                              int *ndim, const PfTensor *self)
{
    PyObject *seq = args;
    if (PyTuple_GET_SIZE(args) == 1) {
        PyObject *only = PyTuple_GET_ITEM(args, 0);
        if (PyTuple_Check(only) || PyList_Check(only)) {
            seq = only;
        }
    }
    if (!PyTuple_Check(seq) && !PyList_Check(seq)) {
        return PF_ERRI(PyExc_TypeError, "%s: shape must be ints or a tuple of ints", op);
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > PF_MAX_DIMS) {
        return PF_ERRI(PyExc_ValueError, "%s: %zd dimensions requested; at most %d are allowed",
                       op, n, PF_MAX_DIMS);
    }
    int infer = -1;
    int64_t known = 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *o = PySequence_Fast_GET_ITEM(seq, i);
        int64_t v;
        if (pf_int_arg(o, op, "shape entry", &v) < 0) {
            return -1;
        }
        if (v == -1) {
            if (infer >= 0) {
                return PF_ERRI(PyExc_ValueError, "%s: only one dimension can be -1", op);
            }
            infer = (int)i;
            shape[i] = 1;
            continue;
        }
        if (v < 0) {
            return PF_ERRI(PyExc_ValueError,
                           "%s: invalid dimension %lld at position %zd; dimensions must be "
                           ">= 0, or -1 to infer one", op, (long long)v, i);
        }
        shape[i] = v;
        if (__builtin_mul_overflow(known, v, &known)) {
            return PF_ERRI(PyExc_ValueError, "%s: the requested shape is too big", op);
        }
    }
    *ndim = (int)n;
    if (infer >= 0) {
        if (known == 0 || numel % known != 0) {
            char a[PF_SHAPE_STRLEN];
            return PF_ERRI(PyExc_ValueError,
                           "%s: cannot reshape a tensor of shape %s (%lld elements) so that the "
                           "-1 dimension is whole: the other dimensions multiply to %lld",
                           op, pf_shape_str(self->shape, self->ndim, a, sizeof(a)),
                           (long long)numel, (long long)known);
        }
        shape[infer] = numel / known;
        known = numel;
    }
    if (known != numel) {
        char a[PF_SHAPE_STRLEN], b[PF_SHAPE_STRLEN];
        return PF_ERRI(PyExc_ValueError,
                       "%s: cannot reshape a tensor of shape %s (%lld elements) into shape %s "
                       "(%lld elements); the element counts must match",
                       op, pf_shape_str(self->shape, self->ndim, a, sizeof(a)), (long long)numel,
                       pf_shape_str(shape, (int)n, b, sizeof(b)), (long long)known);
    }
    return 0;
}

/*
 * Strides that let `new_shape` read the same elements in the same order
 * as the old geometry, or 0 if no such strides exist (a copy is needed).
 * Walks both shapes from the innermost dimension, matching runs of old
 * dimensions that are contiguous with each other ("chunks") to runs of
 * new dimensions with the same element count.
 */
static int view_strides(const int64_t *oshape, const int64_t *ostrides, int ond,
                        const int64_t *nshape, int nnd, int64_t *nstrides)
{
    if (pf_numel(oshape, ond) == 0 || ond == 0) {
        pf_contiguous_strides(nshape, nnd, nstrides);
        return 1;
    }
    int vd = nnd - 1;
    int64_t chunk_stride = ostrides[ond - 1];
    int64_t tnumel = 1, vnumel = 1;
    for (int td = ond - 1; td >= 0; td--) {
        tnumel *= oshape[td];
        int chunk_ends = td == 0 ||
                         (oshape[td - 1] != 1 && ostrides[td - 1] != tnumel * chunk_stride);
        if (!chunk_ends) {
            continue;
        }
        while (vd >= 0 && (vnumel < tnumel || nshape[vd] == 1)) {
            nstrides[vd] = vnumel * chunk_stride;
            vnumel *= nshape[vd];
            vd--;
        }
        if (vnumel != tnumel) {
            return 0;
        }
        if (td > 0) {
            chunk_stride = ostrides[td - 1];
            tnumel = 1;
            vnumel = 1;
        }
    }
    return vd == -1;
}

static PyObject *reshape_impl(PfTensor *self, PyObject *args, const char *op, int allow_copy)
{
    int64_t shape[PF_MAX_DIMS], strides[PF_MAX_DIMS];
    int ndim;
    int64_t numel = pf_numel(self->shape, self->ndim);
    if (parse_target_shape(args, numel, op, shape, &ndim, self) < 0) {
        return NULL;
    }
    if (view_strides(self->shape, self->strides, self->ndim, shape, ndim, strides)) {
        return pf_ag_record_unary(PF_NODE_RESHAPE, self,
                                  (PyObject *)pf_tensor_view(self, ndim, shape, strides,
                                                             self->offset), NULL, 0);
    }
    if (!allow_copy) {
        char a[PF_SHAPE_STRLEN], b[PF_SHAPE_STRLEN], c[PF_SHAPE_STRLEN];
        return PF_ERR(PyExc_RuntimeError,
                      "%s: a tensor of shape %s with strides %s cannot be viewed as shape %s "
                      "without copying; use .reshape(...) (which copies) or .contiguous() first",
                      op, pf_shape_str(self->shape, self->ndim, a, sizeof(a)),
                      pf_shape_str(self->strides, self->ndim, b, sizeof(b)),
                      pf_shape_str(shape, ndim, c, sizeof(c)));
    }
    PfTensor *c = pf_tensor_copy_as(self, self->dtype, op);
    if (c == NULL) {
        return NULL;
    }
    PyObject *r = (PyObject *)pf_tensor_view(c, ndim, shape, strides, 0);
    if (r != NULL) {
        pf_contiguous_strides(shape, ndim, ((PfTensor *)r)->strides);
    }
    Py_DECREF(c);
    return pf_ag_record_unary(PF_NODE_RESHAPE, self, r, NULL, 0);
}

static PyObject *tensor_reshape(PfTensor *self, PyObject *args)
{
    return reshape_impl(self, args, "Tensor.reshape", 1);
}

static PyObject *tensor_view(PfTensor *self, PyObject *args)
{
    return reshape_impl(self, args, "Tensor.view", 0);
}

/* Read an axis argument (int) and normalise it against ndim. */
static int axis_arg(PyObject *o, int ndim, const char *op, int *out)
{
    if (PyFloat_Check(o) || !PyIndex_Check(o)) {
        return PF_ERRI(PyExc_TypeError, "%s: axis must be an integer; got %.100s", op,
                       Py_TYPE(o)->tp_name);
    }
    Py_ssize_t a = PyNumber_AsSsize_t(o, PyExc_IndexError);
    if (a == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (pf_normalize_axis(&a, ndim, op) < 0) {
        return -1;
    }
    *out = (int)a;
    return 0;
}

static PyObject *permute_impl(PfTensor *self, const int *perm, const char *op)
{
    int64_t shape[PF_MAX_DIMS], strides[PF_MAX_DIMS];
    int seen[PF_MAX_DIMS] = {0};
    for (int i = 0; i < self->ndim; i++) {
        if (seen[perm[i]]++) {
            return PF_ERR(PyExc_ValueError, "%s: axis %d appears twice in the permutation", op,
                          perm[i]);
        }
        shape[i] = self->shape[perm[i]];
        strides[i] = self->strides[perm[i]];
    }
    int64_t iperm[PF_MAX_DIMS];
    for (int i = 0; i < self->ndim; i++) {
        iperm[i] = perm[i];
    }
    return pf_ag_record_unary(PF_NODE_PERMUTE, self,
                              (PyObject *)pf_tensor_view(self, self->ndim, shape, strides,
                                                         self->offset), iperm, self->ndim);
}

static PyObject *permute_from_seq(PfTensor *self, PyObject *seq, const char *op)
{
    int perm[PF_MAX_DIMS];
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n != self->ndim) {
        return PF_ERR(PyExc_ValueError,
                      "%s: the permutation has %zd axes but the tensor has %d dimensions", op, n,
                      self->ndim);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (axis_arg(PySequence_Fast_GET_ITEM(seq, i), self->ndim, op, &perm[i]) < 0) {
            return NULL;
        }
    }
    return permute_impl(self, perm, op);
}

static PyObject *tensor_permute(PfTensor *self, PyObject *args)
{
    PyObject *seq = args;
    if (PyTuple_GET_SIZE(args) == 1 &&
        (PyTuple_Check(PyTuple_GET_ITEM(args, 0)) || PyList_Check(PyTuple_GET_ITEM(args, 0)))) {
        seq = PyTuple_GET_ITEM(args, 0);
    }
    return permute_from_seq(self, seq, "Tensor.permute");
}

static PyObject *swap_impl(PfTensor *self, PyObject *a0, PyObject *a1, const char *op)
{
    int a, b, perm[PF_MAX_DIMS];
    if (axis_arg(a0, self->ndim, op, &a) < 0 || axis_arg(a1, self->ndim, op, &b) < 0) {
        return NULL;
    }
    for (int i = 0; i < self->ndim; i++) {
        perm[i] = i;
    }
    perm[a] = b;
    perm[b] = a;    /* a == b leaves the identity */
    return permute_impl(self, perm, op);
}

static PyObject *reverse_axes(PfTensor *self, const char *op)
{
    int perm[PF_MAX_DIMS];
    for (int i = 0; i < self->ndim; i++) {
        perm[i] = self->ndim - 1 - i;
    }
    return permute_impl(self, perm, op);
}

/*
 * transpose() reverses the axes (NumPy); transpose(axes) with a tuple or
 * list permutes (NumPy); transpose(d0, d1) with two ints swaps two axes
 * (PyTorch's idiom, and what a 2-D t.transpose(0, 1) means to its users);
 * transpose(*axes) with ndim != 2 ints permutes (NumPy).
 */
static PyObject *tensor_transpose(PfTensor *self, PyObject *args)
{
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    if (n == 0 || (n == 1 && PyTuple_GET_ITEM(args, 0) == Py_None)) {
        return reverse_axes(self, "Tensor.transpose");
    }
    if (n == 1 && (PyTuple_Check(PyTuple_GET_ITEM(args, 0)) ||
                   PyList_Check(PyTuple_GET_ITEM(args, 0)))) {
        return permute_from_seq(self, PyTuple_GET_ITEM(args, 0), "Tensor.transpose");
    }
    if (n == 2) {
        return swap_impl(self, PyTuple_GET_ITEM(args, 0), PyTuple_GET_ITEM(args, 1),
                         "Tensor.transpose");
    }
    if (n == self->ndim) {
        return permute_from_seq(self, args, "Tensor.transpose");
    }
    return PF_ERR(PyExc_ValueError,
                  "Tensor.transpose: got %zd axes for a tensor with %d dimensions; pass none "
                  "(reverse), all %d (permute) or two (swap)", n, self->ndim, self->ndim);
}

static PyObject *tensor_swapaxes(PfTensor *self, PyObject *args)
{
    PyObject *a, *b;
    if (!PyArg_ParseTuple(args, "OO:swapaxes", &a, &b)) {
        return NULL;
    }
    return swap_impl(self, a, b, "Tensor.swapaxes");
}

static PyObject *get_T(PfTensor *self, void *Py_UNUSED(c))
{
    return reverse_axes(self, "Tensor.T");
}

static PyObject *get_mT(PfTensor *self, void *Py_UNUSED(c))
{
    if (self->ndim < 2) {
        return PF_ERR(PyExc_ValueError,
                      "Tensor.mT: needs at least 2 dimensions (swaps the last two); got %d",
                      self->ndim);
    }
    PyObject *a = PyLong_FromLong(-1), *b = PyLong_FromLong(-2);
    PyObject *r = (a && b) ? swap_impl(self, a, b, "Tensor.mT") : NULL;
    Py_XDECREF(a);
    Py_XDECREF(b);
    return r;
}

/* squeeze(axis=None): drop size-1 axes; a named axis must have size 1 (as NumPy). */
static PyObject *tensor_squeeze(PfTensor *self, PyObject *args, PyObject *kwds)
{
    PyObject *axis = Py_None, *dim = Py_None;
    static char *kwlist[] = {"axis", "dim", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OO:squeeze", kwlist, &axis, &dim)) {
        return NULL;
    }
    if (axis == Py_None) {
        axis = dim;
    }
    int drop[PF_MAX_DIMS] = {0};
    if (axis == Py_None) {
        for (int i = 0; i < self->ndim; i++) {
            drop[i] = self->shape[i] == 1;
        }
    }
    else {
        PyObject *seq = (PyTuple_Check(axis) || PyList_Check(axis)) ? axis : NULL;
        Py_ssize_t n = seq ? PySequence_Fast_GET_SIZE(seq) : 1;
        for (Py_ssize_t i = 0; i < n; i++) {
            int a;
            if (axis_arg(seq ? PySequence_Fast_GET_ITEM(seq, i) : axis, self->ndim,
                         "Tensor.squeeze", &a) < 0) {
                return NULL;
            }
            if (self->shape[a] != 1) {
                return PF_ERR(PyExc_ValueError,
                              "Tensor.squeeze: cannot remove axis %d: it has size %lld, not 1",
                              a, (long long)self->shape[a]);
            }
            drop[a] = 1;
        }
    }
    int64_t shape[PF_MAX_DIMS], strides[PF_MAX_DIMS];
    int n = 0;
    for (int i = 0; i < self->ndim; i++) {
        if (!drop[i]) {
            shape[n] = self->shape[i];
            strides[n++] = self->strides[i];
        }
    }
    return pf_ag_record_unary(PF_NODE_RESHAPE, self,
                              (PyObject *)pf_tensor_view(self, n, shape, strides, self->offset),
                              NULL, 0);
}

static PyObject *unsqueeze_impl(PfTensor *self, PyObject *axis, const char *op)
{
    if (self->ndim >= PF_MAX_DIMS) {
        return PF_ERR(PyExc_ValueError, "%s: the tensor already has the maximum of %d dimensions",
                      op, PF_MAX_DIMS);
    }
    int a;
    if (axis_arg(axis, self->ndim + 1, op, &a) < 0) {
        return NULL;
    }
    int64_t shape[PF_MAX_DIMS], strides[PF_MAX_DIMS];
    for (int i = 0, j = 0; i <= self->ndim; i++) {
        if (i == a) {
            shape[i] = 1;
            /* any stride is valid for size 1; this one keeps contiguity visible */
            strides[i] = j < self->ndim ? self->shape[j] * self->strides[j] : 1;
        }
        else {
            shape[i] = self->shape[j];
            strides[i] = self->strides[j++];
        }
    }
    return pf_ag_record_unary(PF_NODE_RESHAPE, self,
                              (PyObject *)pf_tensor_view(self, self->ndim + 1, shape, strides,
                                                         self->offset), NULL, 0);
}

static PyObject *tensor_unsqueeze(PfTensor *self, PyObject *axis)
{
    return unsqueeze_impl(self, axis, "Tensor.unsqueeze");
}

static PyObject *tensor_expand_dims(PfTensor *self, PyObject *axis)
{
    return unsqueeze_impl(self, axis, "Tensor.expand_dims");
}

/* Broadcast self to `shape` as a view with zero strides. -1 keeps a size (PyTorch expand). */
static PyObject *expand_impl(PfTensor *self, const int64_t *req, int ndim, int allow_keep,
                             const char *op)
{
    if (ndim < self->ndim) {
        char a[PF_SHAPE_STRLEN], b[PF_SHAPE_STRLEN];
        return PF_ERR(PyExc_ValueError,
                      "%s: cannot broadcast shape %s to %s: the target has fewer dimensions", op,
                      pf_shape_str(self->shape, self->ndim, a, sizeof(a)),
                      pf_shape_str(req, ndim, b, sizeof(b)));
    }
    int64_t shape[PF_MAX_DIMS], strides[PF_MAX_DIMS];
    int lead = ndim - self->ndim;
    for (int i = 0; i < ndim; i++) {
        int j = i - lead;
        int64_t want = req[i];
        if (want == -1 && allow_keep && j >= 0) {
            want = self->shape[j];
        }
        if (want < 0) {
            return PF_ERR(PyExc_ValueError, "%s: invalid size %lld at position %d", op,
                          (long long)req[i], i);
        }
        if (j < 0) {
            shape[i] = want;
            strides[i] = 0;
        }
        else if (self->shape[j] == want) {
            shape[i] = want;
            strides[i] = self->strides[j];
        }
        else if (self->shape[j] == 1) {
            shape[i] = want;
            strides[i] = 0;
        }
        else {
            char a[PF_SHAPE_STRLEN], b[PF_SHAPE_STRLEN];
            return PF_ERR(PyExc_ValueError,
                          "%s: cannot broadcast shape %s to %s: dimension %d has size %lld; "
                          "only a size equal to the target's (%lld) or 1 broadcasts",
                          op, pf_shape_str(self->shape, self->ndim, a, sizeof(a)),
                          pf_shape_str(req, ndim, b, sizeof(b)), i, (long long)self->shape[j],
                          (long long)want);
        }
    }
    if (pf_check_shape(shape, ndim, op) < 0) {
        return NULL;
    }
    return pf_ag_record_unary(PF_NODE_EXPAND, self,
                              (PyObject *)pf_tensor_view(self, ndim, shape, strides,
                                                         self->offset), NULL, 0);
}

static int read_sizes(PyObject *args, int64_t *shape, int *ndim, const char *op)
{
    PyObject *seq = args;
    if (PyTuple_GET_SIZE(args) == 1 &&
        (PyTuple_Check(PyTuple_GET_ITEM(args, 0)) || PyList_Check(PyTuple_GET_ITEM(args, 0)))) {
        seq = PyTuple_GET_ITEM(args, 0);
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > PF_MAX_DIMS) {
        return PF_ERRI(PyExc_ValueError, "%s: %zd dimensions requested; at most %d are allowed",
                       op, n, PF_MAX_DIMS);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (pf_int_arg(PySequence_Fast_GET_ITEM(seq, i), op, "size", &shape[i]) < 0) {
            return -1;
        }
    }
    *ndim = (int)n;
    return 0;
}

static PyObject *tensor_expand(PfTensor *self, PyObject *args)
{
    int64_t shape[PF_MAX_DIMS];
    int ndim;
    if (read_sizes(args, shape, &ndim, "Tensor.expand") < 0) {
        return NULL;
    }
    return expand_impl(self, shape, ndim, 1, "Tensor.expand");
}

static PyObject *tensor_broadcast_to(PfTensor *self, PyObject *args)
{
    int64_t shape[PF_MAX_DIMS];
    int ndim;
    if (read_sizes(args, shape, &ndim, "Tensor.broadcast_to") < 0) {
        return NULL;
    }
    return expand_impl(self, shape, ndim, 0, "Tensor.broadcast_to");
}

/* flatten(start_dim=0, end_dim=-1): a view where strides allow, else a copy. */
static PyObject *tensor_flatten(PfTensor *self, PyObject *args, PyObject *kwds)
{
    PyObject *s_obj = NULL, *e_obj = NULL;
    static char *kwlist[] = {"start_dim", "end_dim", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OO:flatten", kwlist, &s_obj, &e_obj)) {
        return NULL;
    }
    int nd = self->ndim > 0 ? self->ndim : 1;
    int s = 0, e = nd - 1;
    if ((s_obj && axis_arg(s_obj, nd, "Tensor.flatten", &s) < 0) ||
        (e_obj && axis_arg(e_obj, nd, "Tensor.flatten", &e) < 0)) {
        return NULL;
    }
    if (s > e) {
        return PF_ERR(PyExc_ValueError,
                      "Tensor.flatten: start_dim (%d) must not come after end_dim (%d)", s, e);
    }
    PyObject *shape = PyTuple_New(self->ndim == 0 ? 1 : self->ndim - (e - s));
    if (shape == NULL) {
        return NULL;
    }
    int k = 0;
    int64_t merged = 1;
    for (int i = 0; i < self->ndim; i++) {
        if (i < s || i > e) {
            PyTuple_SET_ITEM(shape, k++, PyLong_FromLongLong(self->shape[i]));
        }
        else {
            merged *= self->shape[i];
            if (i == e) {
                PyTuple_SET_ITEM(shape, k++, PyLong_FromLongLong(merged));
            }
        }
    }
    if (self->ndim == 0) {
        PyTuple_SET_ITEM(shape, 0, PyLong_FromLong(1));
    }
    PyObject *wrapped = PyTuple_Pack(1, shape);
    Py_DECREF(shape);
    if (wrapped == NULL) {
        return NULL;
    }
    PyObject *r = reshape_impl(self, wrapped, "Tensor.flatten", 1);
    Py_DECREF(wrapped);
    return r;
}

PfTensor *pf_tensor_flat(PfTensor *x, const char *op)
{
    int64_t n = pf_numel(x->shape, x->ndim), one = 1;
    if (pf_tensor_is_contiguous(x)) {
        return pf_tensor_view(x, 1, &n, &one, x->offset);
    }
    PfTensor *c = pf_tensor_copy_as(x, x->dtype, op);
    if (c != NULL) {
        /* a fresh contiguous tensor nobody else sees: re-describe it as 1-D */
        c->ndim = 1;
        c->shape[0] = n;
        c->strides[0] = 1;
    }
    return c;
}

static PyObject *tensor_ravel(PfTensor *self, PyObject *Py_UNUSED(noargs))
{
    PyObject *empty = PyTuple_New(0);
    if (empty == NULL) {
        return NULL;
    }
    PyObject *r = tensor_flatten(self, empty, NULL);
    Py_DECREF(empty);
    return r;
}

/* view_as / reshape_as / expand_as(other): other's shape (PyTorch). */
static PyObject *as_shape_of(PfTensor *self, PyObject *other, const char *op,
                             PyObject *(*fn)(PfTensor *, PyObject *))
{
    if (!PfTensor_Check(other)) {
        return PF_ERR(PyExc_TypeError, "%s: expected a Tensor whose shape to take; got %.100s", op,
                      Py_TYPE(other)->tp_name);
    }
    PfTensor *o = (PfTensor *)other;
    PyObject *shape = pf_shape_tuple(o->shape, o->ndim);
    PyObject *args = shape ? PyTuple_Pack(1, shape) : NULL;
    Py_XDECREF(shape);
    if (args == NULL) {
        return NULL;
    }
    PyObject *r = fn(self, args);
    Py_DECREF(args);
    return r;
}

static PyObject *tensor_view_as(PfTensor *self, PyObject *other)
{
    return as_shape_of(self, other, "Tensor.view_as", tensor_view);
}

static PyObject *tensor_reshape_as(PfTensor *self, PyObject *other)
{
    return as_shape_of(self, other, "Tensor.reshape_as", tensor_reshape);
}

static PyObject *tensor_expand_as(PfTensor *self, PyObject *other)
{
    return as_shape_of(self, other, "Tensor.expand_as", tensor_expand);
}

PyMethodDef pf_view_methods[] = {
    {"view_as", (PyCFunction)tensor_view_as, METH_O, "view_as(other): view with other's shape"},
    {"reshape_as", (PyCFunction)tensor_reshape_as, METH_O,
     "reshape_as(other): reshape to other's shape"},
    {"expand_as", (PyCFunction)tensor_expand_as, METH_O,
     "expand_as(other): broadcast to other's shape (a view)"},
    {"reshape", (PyCFunction)tensor_reshape, METH_VARARGS,
     "reshape(*shape): same elements in a new shape; a view when the strides allow, else "
     "a copy.  One dimension may be -1."},
    {"view", (PyCFunction)tensor_view, METH_VARARGS,
     "view(*shape): as reshape, but never copies (raises instead)"},
    {"transpose", (PyCFunction)tensor_transpose, METH_VARARGS,
     "transpose() reverses axes; transpose(axes) permutes; transpose(d0, d1) swaps two"},
    {"permute", (PyCFunction)tensor_permute, METH_VARARGS, "permute(*axes): reorder axes"},
    {"swapaxes", (PyCFunction)tensor_swapaxes, METH_VARARGS, "swapaxes(a, b)"},
    {"swapdims", (PyCFunction)tensor_swapaxes, METH_VARARGS, "alias of swapaxes"},
    {"squeeze", (PyCFunction)(void (*)(void))tensor_squeeze, METH_VARARGS | METH_KEYWORDS,
     "squeeze(axis=None): remove axes of size 1"},
    {"unsqueeze", (PyCFunction)tensor_unsqueeze, METH_O, "unsqueeze(dim): insert an axis of 1"},
    {"expand_dims", (PyCFunction)tensor_expand_dims, METH_O,
     "expand_dims(axis): insert an axis of size 1"},
    {"expand", (PyCFunction)tensor_expand, METH_VARARGS,
     "expand(*sizes): broadcast view; -1 keeps a size"},
    {"broadcast_to", (PyCFunction)tensor_broadcast_to, METH_VARARGS,
     "broadcast_to(shape): broadcast view (read-only in effect: writes raise)"},
    {"flatten", (PyCFunction)(void (*)(void))tensor_flatten, METH_VARARGS | METH_KEYWORDS,
     "flatten(start_dim=0, end_dim=-1): merge axes; a view when possible, else a copy"},
    {"ravel", (PyCFunction)tensor_ravel, METH_NOARGS, "1-D view when possible, else a copy"},
    {NULL, NULL, 0, NULL},
};

PyGetSetDef pf_view_getset[] = {
    {"T", (getter)get_T, NULL, "axes reversed (as ndarray.T)", NULL},
    {"mT", (getter)get_mT, NULL, "last two axes swapped", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};
