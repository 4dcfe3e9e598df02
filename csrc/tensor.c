/*
 * tensor.c -- the Tensor type object: life cycle, properties, copying and
 * conversion to Python values, repr.  Views live in views.c, indexing in
 * indexing.c, the NumPy/DLPack bridge in bridge.c, constructors in
 * create.c.
 */
#include "autograd.h"
#include "cuda_backend.h"

extern int64_t pf_live_tensors;

/*
 * A free list of Tensor objects: a small model creates and drops thousands
 * of tensors a second, and reusing their memory skips the allocator and the
 * zeroing of the GC header.  Only exact pf.Tensor objects are kept (not
 * subclasses); all access holds the GIL.
 */
#define TENSOR_FREELIST 256
static PfTensor *tensor_freelist[TENSOR_FREELIST];
static int tensor_freelist_n;

static PfTensor *tensor_alloc(void)
{
    if (tensor_freelist_n > 0) {
        PfTensor *t = tensor_freelist[--tensor_freelist_n];
        /* reset everything but the object header, then give it a fresh reference */
        memset((char *)t + sizeof(PyObject), 0, sizeof(PfTensor) - sizeof(PyObject));
        PyObject_Init((PyObject *)t, &PfTensor_Type);
        PyObject_GC_Track(t);
        return t;
    }
    return (PfTensor *)PfTensor_Type.tp_alloc(&PfTensor_Type, 0);
}

/* ------------------------------------------------------------- life cycle */

PfTensor *pf_tensor_wrap(pf_storage *s, pf_dtype dtype, int ndim, const int64_t *shape,
                         const int64_t *strides, int64_t offset)
{
    PfTensor *t = tensor_alloc();
    if (t == NULL) {
        return NULL;
    }
    pf_storage_incref(s);
    t->storage = s;
    t->offset = offset;
    t->ndim = ndim;
    t->dtype = dtype;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->strides[i] = strides[i];
    }
    pf_live_tensors++;
    return t;
}

PfTensor *pf_tensor_empty(int ndim, const int64_t *shape, pf_dtype dtype, pf_device dev,
                          const char *op)
{
    int64_t nbytes = pf_checked_nbytes(shape, ndim, pf_dtypes[dtype].itemsize, op);
    if (nbytes < 0) {
        return NULL;
    }
    pf_storage *s = pf_storage_new((size_t)nbytes, dev, op);
    if (s == NULL) {
        return NULL;
    }
    int64_t strides[PF_MAX_DIMS];
    pf_contiguous_strides(shape, ndim, strides);
    PfTensor *t = pf_tensor_wrap(s, dtype, ndim, shape, strides, 0);
    pf_storage_decref(s);
    return t;
}

PfTensor *pf_tensor_view(PfTensor *base, int ndim, const int64_t *shape, const int64_t *strides,
                         int64_t offset)
{
    return pf_tensor_wrap(base->storage, base->dtype, ndim, shape, strides, offset);
}

/*
 * _C._make_subclass(cls, t, requires_grad): an instance of the Tensor
 * subclass cls over t's memory and geometry, a leaf (nn.Parameter).
 * Ops on it return plain Tensors, as in PyTorch.
 */
PyObject *pf_make_subclass(PyObject *Py_UNUSED(m), PyObject *args)
{
    PyTypeObject *cls;
    PfTensor *t;
    int rg;
    if (!PyArg_ParseTuple(args, "O!O!p:_make_subclass", &PyType_Type, &cls, &PfTensor_Type, &t,
                          &rg)) {
        return NULL;
    }
    if (!PyType_IsSubtype(cls, &PfTensor_Type)) {
        return PF_ERR(PyExc_TypeError, "_make_subclass: %s is not a subclass of pf.Tensor",
                      cls->tp_name);
    }
    if (rg && !pf_is_float(t->dtype)) {
        return PF_ERR(PyExc_TypeError, "%s: only floating-point tensors can require gradients; "
                      "got %s (cast with .astype(pf.float32), or pass requires_grad=False)",
                      cls->tp_name, pf_dtypes[t->dtype].name);
    }
    PfTensor *r = (PfTensor *)cls->tp_alloc(cls, 0);
    if (r == NULL) {
        return NULL;
    }
    pf_storage_incref(t->storage);
    r->storage = t->storage;
    r->offset = t->offset;
    r->ndim = t->ndim;
    r->dtype = t->dtype;
    memcpy(r->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    memcpy(r->strides, t->strides, sizeof(int64_t) * (size_t)t->ndim);
    r->requires_grad = (char)rg;
    pf_live_tensors++;
    return (PyObject *)r;
}

static int tensor_traverse(PfTensor *self, visitproc visit, void *arg)
{
    Py_VISIT(self->grad);
    Py_VISIT(self->grad_fn);
    Py_VISIT(self->hooks);
    /* storage->owner is shared by every view of the storage, so no single
       tensor owns that reference: it is not visited */
    return 0;
}

static int tensor_clear(PfTensor *self)
{
    Py_CLEAR(self->grad);
    Py_CLEAR(self->grad_fn);
    Py_CLEAR(self->hooks);
    return 0;
}

static void tensor_dealloc(PfTensor *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    tensor_clear(self);
    pf_storage_decref(self->storage);
    pf_live_tensors--;
    if (Py_IS_TYPE(self, &PfTensor_Type) && tensor_freelist_n < TENSOR_FREELIST) {
        tensor_freelist[tensor_freelist_n++] = self;
        return;
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *tensor_new(PyTypeObject *Py_UNUSED(type), PyObject *args, PyObject *kwds)
{
    PyObject *data, *dtype_obj = Py_None;
    int requires_grad = 0;
    static char *kwlist[] = {"data", "dtype", "requires_grad", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O$p:Tensor", kwlist, &data, &dtype_obj,
                                     &requires_grad)) {
        return NULL;
    }
    pf_dtype d = PF_FLOAT32;
    if (dtype_obj != Py_None && pf_dtype_from_object(dtype_obj, "pf.Tensor", &d) < 0) {
        return NULL;
    }
    PyObject *t = pf_tensor_from_data(data, dtype_obj != Py_None, d, "pf.Tensor");
    if (t != NULL && requires_grad) {
        if (!pf_is_float(((PfTensor *)t)->dtype)) {
            pf_dtype got = ((PfTensor *)t)->dtype;
            Py_DECREF(t);
            return PF_ERR(PyExc_TypeError,
                          "pf.Tensor: requires_grad=True needs a floating-point dtype; got %s",
                          pf_dtypes[got].name);
        }
        ((PfTensor *)t)->requires_grad = 1;
    }
    return t;
}

/* ------------------------------------------------------- copying, casting */

int pf_tensor_check_writable(PfTensor *t, const char *op)
{
    if (t->storage->readonly) {
        return PF_ERRI(PyExc_ValueError,
                       "%s: tensor is read-only (it shares memory with a read-only NumPy array "
                       "or buffer); make a writable copy with .clone() first", op);
    }
    for (int i = 0; i < t->ndim; i++) {
        if (t->strides[i] == 0 && t->shape[i] > 1) {
            return PF_ERRI(PyExc_RuntimeError,
                           "%s: cannot write into an expanded (broadcast) tensor: several "
                           "elements share one memory location; write into .clone() instead",
                           op);
        }
    }
    return 0;
}

/* Byte range [lo, hi) a tensor touches within its storage. */
static void byte_extent(const PfTensor *t, char **lo, char **hi)
{
    int64_t isz = pf_dtypes[t->dtype].itemsize;
    char *base = pf_tensor_data(t);
    int64_t first = 0, last = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] == 0) {
            *lo = *hi = base;
            return;
        }
        int64_t span = (t->shape[i] - 1) * t->strides[i];
        if (span < 0) {
            first += span;
        }
        else {
            last += span;
        }
    }
    *lo = base + first * isz;
    *hi = base + (last + 1) * isz;
}

int pf_tensor_may_overlap(const PfTensor *a, const PfTensor *b)
{
    if (a->storage != b->storage) {
        return 0;
    }
    char *alo, *ahi, *blo, *bhi;
    byte_extent(a, &alo, &ahi);
    byte_extent(b, &blo, &bhi);
    return alo < bhi && blo < ahi;
}

/*
 * dst = src where either is on a CUDA device (pf_tensor_assign has checked
 * the shapes and that dst is writable; src has no extra leading 1-dims).
 * Into the cpu: bring src's values over, then the cpu loop.  Into a device:
 * from the same device, one copy (or cast) kernel with src broadcast; from
 * elsewhere, bring src there in dst's dtype first.
 */
static int assign_across_devices(PfTensor *dst, PfTensor *src, const char *op)
{
    if (pf_tensor_on_cpu(dst)) {
        PfTensor *h = pf_tensor_on_host(src, op);
        if (h == NULL) {
            return -1;
        }
        int r = pf_tensor_assign(dst, h, op);
        Py_DECREF(h);
        return r;
    }
    PfTensor *s;
    if (pf_device_eq(src->storage->device, dst->storage->device)) {
        s = (PfTensor *)Py_NewRef(src);
    }
    else {
        s = pf_tensor_to_device(src, dst->storage->device, dst->dtype, op);
        if (s == NULL) {
            return -1;
        }
    }
    int r = pf_device_assign(dst, s, op);
    Py_DECREF(s);
    return r;
}

int pf_tensor_assign(PfTensor *dst, PfTensor *src, const char *op)
{
    int64_t shape[PF_MAX_DIMS];
    int n;
    /* NumPy allows extra leading size-1 dimensions on the source */
    int sdim = src->ndim, skip = 0;
    while (sdim > dst->ndim && src->shape[skip] == 1) {
        skip++;
        sdim--;
    }
    if (pf_broadcast_shapes(src->shape + skip, sdim, dst->shape, dst->ndim, shape, &n, op) < 0) {
        return -1;
    }
    if (n != dst->ndim || memcmp(shape, dst->shape, sizeof(int64_t) * (size_t)n) != 0) {
        char a[PF_SHAPE_STRLEN], b[PF_SHAPE_STRLEN];
        return PF_ERRI(PyExc_ValueError,
                       "%s: cannot broadcast a value of shape %s into a tensor of shape %s",
                       op, pf_shape_str(src->shape, src->ndim, a, sizeof(a)),
                       pf_shape_str(dst->shape, dst->ndim, b, sizeof(b)));
    }
    if (pf_tensor_check_writable(dst, op) < 0) {
        return -1;
    }
    PfTensor *tmp = NULL;
    if (pf_tensor_may_overlap(dst, src)) {
        /* t[1:] = t[:-1]: read everything before writing anything */
        tmp = pf_tensor_copy_as(src, src->dtype, op);
        if (tmp == NULL) {
            return -1;
        }
        src = tmp;
    }
    if (!pf_tensor_on_cpu(dst) || !pf_tensor_on_cpu(src)) {
        PfTensor *v = pf_tensor_view(src, sdim, src->shape + skip, src->strides + skip,
                                     src->offset);
        int r = v == NULL ? -1 : assign_across_devices(dst, v, op);
        Py_XDECREF(v);
        Py_XDECREF(tmp);
        return r;
    }
    PfTensor view = *src;   /* the source without its skipped leading 1-dims */
    view.ndim = sdim;
    memmove(view.shape, src->shape + skip, sizeof(int64_t) * (size_t)sdim);
    memmove(view.strides, src->strides + skip, sizeof(int64_t) * (size_t)sdim);
    PfTensor *ops[2] = {&view, dst};
    pf_iter it;
    pf_iter_build(&it, 2, ops, dst->shape, dst->ndim);
    pf_loop loop = src->dtype == dst->dtype ? pf_copy_loop(pf_dtypes[dst->dtype].itemsize)
                                            : pf_cast_loops[src->dtype][dst->dtype];
    pf_iter_run(&it, loop, NULL);
    dst->storage->version++;
    Py_XDECREF(tmp);
    return 0;
}

/*
 * out (rows, cols) contiguous = src whose rows are columns in memory
 * (src strides (1, ld)): the transpose of a matrix, copied in 32 x 32 tiles
 * so that both sides stay in cache.  Element by element, one side would
 * touch a new cache line per element (8 ms instead of 1 for 1024 x 1024).
 */
#define TILE 32
#define TRANSPOSE_COPY(T)                                                                 \
    for (int64_t i0 = 0; i0 < rows; i0 += TILE) {                                         \
        for (int64_t j0 = 0; j0 < cols; j0 += TILE) {                                     \
            int64_t i1 = i0 + TILE < rows ? i0 + TILE : rows;                             \
            int64_t j1 = j0 + TILE < cols ? j0 + TILE : cols;                             \
            for (int64_t i = i0; i < i1; i++) {                                           \
                for (int64_t j = j0; j < j1; j++) {                                       \
                    ((T *)d)[i * cols + j] = ((const T *)s)[j * ld + i];                  \
                }                                                                         \
            }                                                                             \
        }                                                                                 \
    }

static int copy_transposed(PfTensor *src, PfTensor *out)
{
    int isz = pf_dtypes[src->dtype].itemsize;
    if (src->ndim != 2 || out->dtype != src->dtype || src->strides[0] != 1 ||
        src->strides[1] < src->shape[0] || src->shape[0] < TILE || src->shape[1] < TILE ||
        (isz != 4 && isz != 8 && isz != 2)) {
        return 0;
    }
    int64_t rows = src->shape[0], cols = src->shape[1], ld = src->strides[1];
    const char *s = pf_tensor_data(src);
    char *d = out->storage->data;
    if (isz == 4) {
        TRANSPOSE_COPY(uint32_t)
    }
    else if (isz == 8) {
        TRANSPOSE_COPY(uint64_t)
    }
    else {
        TRANSPOSE_COPY(uint16_t)
    }
    return 1;
}
#undef TRANSPOSE_COPY
#undef TILE

PfTensor *pf_tensor_copy_as(PfTensor *src, pf_dtype dtype, const char *op)
{
    PfTensor *out = pf_tensor_empty(src->ndim, src->shape, dtype, src->storage->device, op);
    if (out == NULL) {
        return NULL;
    }
    if (!pf_tensor_on_cpu(src)) {
        /* a contiguous copy on the device: the strided-copy or cast kernel, or one memcpy */
        if (pf_device_assign(out, src, op) < 0) {
            Py_DECREF(out);
            return NULL;
        }
        return out;
    }
    if (copy_transposed(src, out)) {
        return out;
    }
    PfTensor *ops[2] = {src, out};
    pf_iter it;
    pf_iter_build(&it, 2, ops, src->shape, src->ndim);
    pf_loop loop = src->dtype == dtype ? pf_copy_loop(pf_dtypes[dtype].itemsize)
                                       : pf_cast_loops[src->dtype][dtype];
    pf_iter_run(&it, loop, NULL);
    return out;
}

int pf_tensor_fill_scalar(PfTensor *dst, PyObject *value, const char *op)
{
    union {
        double d;
        int64_t i;
        char raw[8];
    } v;
    if (pf_tensor_check_writable(dst, op) < 0 || pf_scalar_to_raw(value, dst->dtype, &v, op) < 0) {
        return -1;
    }
    if (!pf_tensor_on_cpu(dst)) {
        return pf_device_fill(dst, v.raw, op);
    }
    PfTensor *ops[1] = {dst};
    pf_iter it;
    pf_iter_build(&it, 1, ops, dst->shape, dst->ndim);
    pf_iter_run(&it, pf_fill_loop(pf_dtypes[dst->dtype].itemsize), v.raw);
    dst->storage->version++;
    return 0;
}

/* ----------------------------------------------------- scalars and lists */

static int int_in_range(long long v, pf_dtype d)
{
    switch (d) {
    case PF_UINT8: return v >= 0 && v <= UINT8_MAX;
    case PF_INT8: return v >= INT8_MIN && v <= INT8_MAX;
    case PF_INT16: return v >= INT16_MIN && v <= INT16_MAX;
    case PF_INT32: return v >= INT32_MIN && v <= INT32_MAX;
    default: return 1;
    }
}

int pf_scalar_to_raw(PyObject *obj, pf_dtype dtype, void *out, const char *op)
{
    if (PyBool_Check(obj)) {
        uint8_t b = obj == Py_True;
        pf_cast_one(&b, PF_BOOL, out, dtype);
        return 0;
    }
    if (PfTensor_Check(obj)) {
        PfTensor *t = (PfTensor *)obj;
        if (pf_numel(t->shape, t->ndim) != 1) {
            char buf[PF_SHAPE_STRLEN];
            return PF_ERRI(PyExc_ValueError,
                           "%s: expected a scalar or a one-element tensor; got a tensor of "
                           "shape %s", op, pf_shape_str(t->shape, t->ndim, buf, sizeof(buf)));
        }
        if (!pf_tensor_on_cpu(t)) {
            /* the one element, read back from the device */
            PfTensor *h = pf_tensor_on_host(t, op);
            if (h == NULL) {
                return -1;
            }
            pf_cast_one(pf_tensor_data(h), h->dtype, out, dtype);
            Py_DECREF(h);
            return 0;
        }
        pf_cast_one(pf_tensor_data(t), t->dtype, out, dtype);
        return 0;
    }
    if (PyLong_Check(obj) || (!PyFloat_Check(obj) && PyIndex_Check(obj))) {
        int overflow = 0;
        PyObject *idx = PyNumber_Index(obj);
        if (idx == NULL) {
            return -1;
        }
        long long v = PyLong_AsLongLongAndOverflow(idx, &overflow);
        if (v == -1 && PyErr_Occurred()) {
            Py_DECREF(idx);
            return -1;
        }
        if (overflow && pf_is_float(dtype)) {
            double d = PyLong_AsDouble(idx);
            Py_DECREF(idx);
            if (d == -1.0 && PyErr_Occurred()) {
                PyErr_Clear();
                return PF_ERRI(PyExc_ValueError,
                               "%s: the Python integer is too large for any float dtype "
                               "(float64 ends near 2**1024); use a smaller value", op);
            }
            pf_cast_one(&d, PF_FLOAT64, out, dtype);
            return 0;
        }
        Py_DECREF(idx);
        if (overflow || (dtype != PF_BOOL && pf_is_int(dtype) && !int_in_range(v, dtype))) {
            return PF_ERRI(PyExc_ValueError,
                           "%s: Python integer %S is out of range for dtype %s; use a wider "
                           "dtype (int64, float64) or a value in range",
                           op, obj, pf_dtypes[dtype].name);
        }
        int64_t i = v;
        pf_cast_one(&i, PF_INT64, out, dtype);
        return 0;
    }
    if (PyFloat_Check(obj) || PyNumber_Check(obj)) {
        if (PyComplex_Check(obj)) {
            return PF_ERRI(PyExc_TypeError,
                           "%s: complex values are not supported (got %S); pyframe has no "
                           "complex dtype", op, obj);
        }
        double d = PyFloat_AsDouble(obj);
        if (d == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            return PF_ERRI(PyExc_TypeError, "%s: expected a number; got %.100s", op,
                           Py_TYPE(obj)->tp_name);
        }
        if (pf_is_int(dtype) && !(d == d && d < 1e300 && d > -1e300)) {
            return PF_ERRI(PyExc_ValueError,
                           "%s: cannot convert %R to integer dtype %s; only finite values "
                           "can be stored in an integer tensor", op, obj, pf_dtypes[dtype].name);
        }
        pf_cast_one(&d, PF_FLOAT64, out, dtype);
        return 0;
    }
    return PF_ERRI(PyExc_TypeError, "%s: expected a number (bool, int or float); got %.100s", op,
                   Py_TYPE(obj)->tp_name);
}

PyObject *pf_raw_to_scalar(const char *p, pf_dtype dtype)
{
    switch (pf_dtypes[dtype].kind) {
    case PF_KIND_BOOL:
        return PyBool_FromLong(*(const uint8_t *)p != 0);
    case PF_KIND_UINT:
    case PF_KIND_INT: {
        int64_t v;
        pf_cast_one(p, dtype, &v, PF_INT64);
        return PyLong_FromLongLong(v);
    }
    default: {
        double v;
        pf_cast_one(p, dtype, &v, PF_FLOAT64);
        return PyFloat_FromDouble(v);
    }
    }
}

static PyObject *tolist_rec(PfTensor *t, int dim, const char *p)
{
    if (dim == t->ndim) {
        return pf_raw_to_scalar(p, t->dtype);
    }
    PyObject *list = PyList_New(t->shape[dim]);
    if (list == NULL) {
        return NULL;
    }
    int64_t step = t->strides[dim] * pf_dtypes[t->dtype].itemsize;
    for (int64_t i = 0; i < t->shape[dim]; i++) {
        PyObject *v = tolist_rec(t, dim + 1, p + i * step);
        if (v == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, v);
    }
    return list;
}

/*
 * The Python-value methods read a CUDA tensor through a copy on the host
 * (as PyTorch's item() and tolist() do): the values are needed on the cpu.
 */
static PyObject *via_host(PfTensor *self, const char *op, PyObject *(*fn)(PfTensor *))
{
    PfTensor *h = pf_tensor_on_host(self, op);
    if (h == NULL) {
        return NULL;
    }
    PyObject *r = fn(h);
    Py_DECREF(h);
    return r;
}

static PyObject *tolist_host(PfTensor *t)
{
    return tolist_rec(t, 0, pf_tensor_data(t));
}

static PyObject *tensor_tolist(PfTensor *self, PyObject *Py_UNUSED(noargs))
{
    if (!pf_tensor_on_cpu(self)) {
        return via_host(self, "Tensor.tolist", tolist_host);
    }
    return tolist_host(self);
}

static int require_one_element(PfTensor *self, const char *op)
{
    if (pf_numel(self->shape, self->ndim) != 1) {
        char buf[PF_SHAPE_STRLEN];
        return PF_ERRI(PyExc_ValueError,
                       "%s: only a tensor with exactly one element can be converted to a "
                       "Python scalar; got shape %s (use .tolist() for many values)",
                       op, pf_shape_str(self->shape, self->ndim, buf, sizeof(buf)));
    }
    return 0;
}

static PyObject *item_host(PfTensor *t)
{
    return pf_raw_to_scalar(pf_tensor_data(t), t->dtype);
}

static PyObject *tensor_item(PfTensor *self, PyObject *Py_UNUSED(noargs))
{
    if (require_one_element(self, "Tensor.item") < 0) {
        return NULL;
    }
    if (!pf_tensor_on_cpu(self)) {
        return via_host(self, "Tensor.item", item_host);
    }
    return item_host(self);
}

static int tensor_bool(PfTensor *self)
{
    if (pf_numel(self->shape, self->ndim) != 1) {
        char buf[PF_SHAPE_STRLEN];
        return PF_ERRI(PyExc_ValueError,
                       "bool(Tensor): the truth value of a tensor with shape %s is ambiguous; "
                       "only one-element tensors have one (use .any() or .all())",
                       pf_shape_str(self->shape, self->ndim, buf, sizeof(buf)));
    }
    uint8_t b;
    if (!pf_tensor_on_cpu(self)) {
        PfTensor *h = pf_tensor_on_host(self, "bool(Tensor)");
        if (h == NULL) {
            return -1;
        }
        pf_cast_one(pf_tensor_data(h), h->dtype, &b, PF_BOOL);
        Py_DECREF(h);
        return b != 0;
    }
    pf_cast_one(pf_tensor_data(self), self->dtype, &b, PF_BOOL);
    return b != 0;
}

static PyObject *tensor_float(PfTensor *self)
{
    if (require_one_element(self, "float(Tensor)") < 0) {
        return NULL;
    }
    if (!pf_tensor_on_cpu(self)) {
        return via_host(self, "float(Tensor)", tensor_float);
    }
    double d;
    pf_cast_one(pf_tensor_data(self), self->dtype, &d, PF_FLOAT64);
    return PyFloat_FromDouble(d);
}

static PyObject *tensor_int(PfTensor *self)
{
    if (require_one_element(self, "int(Tensor)") < 0) {
        return NULL;
    }
    if (!pf_tensor_on_cpu(self)) {
        return via_host(self, "int(Tensor)", tensor_int);
    }
    if (pf_is_float(self->dtype)) {
        double d;
        pf_cast_one(pf_tensor_data(self), self->dtype, &d, PF_FLOAT64);
        return PyLong_FromDouble(d);
    }
    int64_t v;
    pf_cast_one(pf_tensor_data(self), self->dtype, &v, PF_INT64);
    return PyLong_FromLongLong(v);
}

static PyObject *tensor_index(PfTensor *self)
{
    if (pf_is_float(self->dtype) || self->dtype == PF_BOOL) {
        return PF_ERR(PyExc_TypeError,
                      "Tensor.__index__: only integer tensors with one element can be used as "
                      "an index; got dtype %s", pf_dtypes[self->dtype].name);
    }
    return tensor_int(self);
}

/* -------------------------------------------------------------- properties */

static PyObject *get_shape(PfTensor *self, void *Py_UNUSED(c))
{
    return pf_shape_tuple(self->shape, self->ndim);
}

static PyObject *get_strides(PfTensor *self, void *Py_UNUSED(c))
{
    int64_t b[PF_MAX_DIMS];
    for (int i = 0; i < self->ndim; i++) {
        b[i] = self->strides[i] * pf_dtypes[self->dtype].itemsize;
    }
    return pf_shape_tuple(b, self->ndim);
}

static PyObject *get_dtype(PfTensor *self, void *Py_UNUSED(c))
{
    return Py_NewRef(pf_dtype_objs[self->dtype]);
}

static PyObject *get_device(PfTensor *self, void *Py_UNUSED(c))
{
    return pf_device_new(self->storage->device);
}

static PyObject *get_ndim(PfTensor *self, void *Py_UNUSED(c))
{
    return PyLong_FromLong(self->ndim);
}

static PyObject *get_size(PfTensor *self, void *Py_UNUSED(c))
{
    return PyLong_FromLongLong(pf_numel(self->shape, self->ndim));
}

static PyObject *get_itemsize(PfTensor *self, void *Py_UNUSED(c))
{
    return PyLong_FromLong(pf_dtypes[self->dtype].itemsize);
}

static PyObject *get_nbytes(PfTensor *self, void *Py_UNUSED(c))
{
    return PyLong_FromLongLong(pf_numel(self->shape, self->ndim) *
                               pf_dtypes[self->dtype].itemsize);
}

static PyObject *get_requires_grad(PfTensor *self, void *Py_UNUSED(c))
{
    return PyBool_FromLong(self->requires_grad);
}

static int set_requires_grad_flag(PfTensor *self, int flag, const char *op)
{
    if (flag && !pf_is_float(self->dtype)) {
        return PF_ERRI(PyExc_TypeError,
                       "%s: only floating-point tensors can require gradients; this tensor is "
                       "%s (cast it with .astype(pf.float32) first)",
                       op, pf_dtypes[self->dtype].name);
    }
    if (!flag && self->grad_fn != NULL) {
        return PF_ERRI(PyExc_RuntimeError,
                       "%s: only leaf tensors can stop requiring grad; this one was computed "
                       "(grad_fn %R). Use .detach() to get a tensor outside the graph",
                       op, self->grad_fn);
    }
    self->requires_grad = (char)flag;
    return 0;
}

static int set_requires_grad(PfTensor *self, PyObject *value, void *Py_UNUSED(c))
{
    if (value == NULL || !PyBool_Check(value)) {
        return PF_ERRI(PyExc_TypeError, "Tensor.requires_grad must be set to True or False");
    }
    return set_requires_grad_flag(self, value == Py_True, "Tensor.requires_grad");
}

static PyObject *get_grad(PfTensor *self, void *Py_UNUSED(c))
{
    return Py_NewRef(self->grad ? self->grad : Py_None);
}

static int set_grad(PfTensor *self, PyObject *value, void *Py_UNUSED(c))
{
    if (value == NULL || value == Py_None) {
        Py_CLEAR(self->grad);
        return 0;
    }
    if (!PfTensor_Check(value)) {
        return PF_ERRI(PyExc_TypeError, "Tensor.grad must be a Tensor or None; got %.100s",
                       Py_TYPE(value)->tp_name);
    }
    PfTensor *g = (PfTensor *)value;
    if (g->ndim != self->ndim ||
        memcmp(g->shape, self->shape, sizeof(int64_t) * (size_t)self->ndim) != 0) {
        char a[PF_SHAPE_STRLEN], b[PF_SHAPE_STRLEN];
        return PF_ERRI(PyExc_ValueError,
                       "Tensor.grad: gradient of shape %s does not match the tensor's shape %s",
                       pf_shape_str(g->shape, g->ndim, a, sizeof(a)),
                       pf_shape_str(self->shape, self->ndim, b, sizeof(b)));
    }
    Py_INCREF(value);
    Py_XSETREF(self->grad, value);
    return 0;
}

static PyObject *get_grad_fn(PfTensor *self, void *Py_UNUSED(c))
{
    return Py_NewRef(self->grad_fn ? self->grad_fn : Py_None);
}

static PyObject *get_is_leaf(PfTensor *self, void *Py_UNUSED(c))
{
    return PyBool_FromLong(self->grad_fn == NULL);
}

/* t.data: the same memory outside the graph (PyTorch); assigning swaps the memory in */
static PyObject *get_data(PfTensor *self, void *Py_UNUSED(c))
{
    return (PyObject *)pf_tensor_view(self, self->ndim, self->shape, self->strides, self->offset);
}

static int set_data(PfTensor *self, PyObject *value, void *Py_UNUSED(c))
{
    if (value == NULL || !PfTensor_Check(value)) {
        return PF_ERRI(PyExc_TypeError, "Tensor.data must be set to a Tensor; got %.100s",
                       value ? Py_TYPE(value)->tp_name : "deletion");
    }
    PfTensor *v = (PfTensor *)value;
    if (self->requires_grad && !pf_is_float(v->dtype)) {
        return PF_ERRI(PyExc_TypeError, "Tensor.data: this tensor requires grad, so its data "
                       "must be floating point; got %s", pf_dtypes[v->dtype].name);
    }
    pf_storage_incref(v->storage);
    pf_storage_decref(self->storage);
    self->storage = v->storage;
    self->offset = v->offset;
    self->ndim = v->ndim;
    self->dtype = v->dtype;
    memcpy(self->shape, v->shape, sizeof(int64_t) * (size_t)v->ndim);
    memcpy(self->strides, v->strides, sizeof(int64_t) * (size_t)v->ndim);
    return 0;
}

static PyObject *get_version(PfTensor *self, void *Py_UNUSED(c))
{
    return PyLong_FromUnsignedLongLong(self->storage->version);
}

static PyObject *get_readonly(PfTensor *self, void *Py_UNUSED(c))
{
    return PyBool_FromLong(self->storage->readonly);
}

static PyGetSetDef tensor_getset[] = {
    {"shape", (getter)get_shape, NULL, "dimensions as a tuple", NULL},
    {"strides", (getter)get_strides, NULL, "byte steps per dimension, as NumPy", NULL},
    {"dtype", (getter)get_dtype, NULL, "element type", NULL},
    {"device", (getter)get_device, NULL, "device holding the data", NULL},
    {"ndim", (getter)get_ndim, NULL, "number of dimensions", NULL},
    {"size", (getter)get_size, NULL, "number of elements (as ndarray.size)", NULL},
    {"itemsize", (getter)get_itemsize, NULL, "bytes per element", NULL},
    {"nbytes", (getter)get_nbytes, NULL, "bytes of the elements (size * itemsize)", NULL},
    {"requires_grad", (getter)get_requires_grad, (setter)set_requires_grad, NULL, NULL},
    {"grad", (getter)get_grad, (setter)set_grad, "accumulated gradient or None", NULL},
    {"grad_fn", (getter)get_grad_fn, NULL, "the node that produced this tensor", NULL},
    {"is_leaf", (getter)get_is_leaf, NULL, NULL, NULL},
    {"_version", (getter)get_version, NULL, "in-place write counter of the storage", NULL},
    {"data", (getter)get_data, (setter)set_data,
     "the same memory outside the autograd graph; assigning a tensor swaps the memory in", NULL},
    {"readonly", (getter)get_readonly, NULL, "True if writes are refused", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

/* ----------------------------------------------------------------- methods */

static PyObject *tensor_numel(PfTensor *self, PyObject *Py_UNUSED(noargs))
{
    return get_size(self, NULL);
}

static PyObject *tensor_dim(PfTensor *self, PyObject *Py_UNUSED(noargs))
{
    return get_ndim(self, NULL);
}

static PyObject *tensor_is_contiguous(PfTensor *self, PyObject *Py_UNUSED(noargs))
{
    return PyBool_FromLong(pf_tensor_is_contiguous(self));
}

static PyObject *tensor_stride(PfTensor *self, PyObject *args)
{
    PyObject *dim = Py_None;
    if (!PyArg_ParseTuple(args, "|O:stride", &dim)) {
        return NULL;
    }
    if (dim == Py_None) {
        return pf_shape_tuple(self->strides, self->ndim);
    }
    Py_ssize_t d = PyNumber_AsSsize_t(dim, PyExc_IndexError);
    if ((d == -1 && PyErr_Occurred()) || pf_normalize_axis(&d, self->ndim, "Tensor.stride") < 0) {
        return NULL;
    }
    return PyLong_FromLongLong(self->strides[d]);
}

static PyObject *tensor_contiguous(PfTensor *self, PyObject *Py_UNUSED(noargs))
{
    if (pf_tensor_is_contiguous(self)) {
        return Py_NewRef(self);
    }
    return pf_ag_record_unary(PF_NODE_IDENTITY, self,
                              (PyObject *)pf_tensor_copy_as(self, self->dtype,
                                                            "Tensor.contiguous"), NULL, 0);
}

static PyObject *tensor_clone(PfTensor *self, PyObject *Py_UNUSED(noargs))
{
    return pf_ag_record_unary(PF_NODE_IDENTITY, self,
                              (PyObject *)pf_tensor_copy_as(self, self->dtype, "Tensor.clone"),
                              NULL, 0);
}

/*
 * Autograd for copy_ / fill_ / zero_: check the write is allowed and, when
 * self or src is in the graph, make the node whose output self becomes.
 * Returns 0 with *node NULL when nothing is recorded, -1 on error.
 */
static int inplace_node(PfTensor *self, PyObject *src, int kind, const char *op, PfNode **node)
{
    *node = NULL;
    if (!pf_grad_enabled()) {
        return 0;
    }
    int rec = self->requires_grad || (src != NULL && pf_needs_grad(src));
    PyObject *alias;
    if (pf_ag_inplace_begin(self, rec, 1, op, &alias) < 0) {
        return -1;
    }
    if (alias == NULL) {
        return 0;
    }
    PfNode *n = pf_node_new(kind, src ? 2 : 1, 1);
    if (n != NULL) {
        pf_node_set_input(n, 0, alias, 0);
        if (src != NULL) {
            pf_node_set_input(n, 1, src, 0);
        }
    }
    Py_DECREF(alias);
    *node = n;
    return n == NULL ? -1 : 0;
}

static PyObject *inplace_done(PfTensor *self, PfNode *n, int r)
{
    if (n != NULL) {
        if (r == 0) {
            r = pf_ag_inplace_finish(n, self, 0);
        }
        Py_DECREF(n);
    }
    return r < 0 ? NULL : Py_NewRef(self);
}

static PyObject *tensor_copy_(PfTensor *self, PyObject *src)
{
    PfTensor *s = pf_as_tensor(src, 0, PF_FLOAT32, "Tensor.copy_");
    if (s == NULL) {
        return NULL;
    }
    PfNode *n;
    int r = inplace_node(self, (PyObject *)s, PF_NODE_COPY_, "Tensor.copy_", &n);
    if (r == 0) {
        r = pf_tensor_assign(self, s, "Tensor.copy_");
    }
    Py_DECREF(s);
    return inplace_done(self, n, r);
}

static PyObject *tensor_fill_(PfTensor *self, PyObject *value)
{
    PfNode *n;
    int r = inplace_node(self, NULL, PF_NODE_FILL_, "Tensor.fill_", &n);
    if (r == 0) {
        r = pf_tensor_fill_scalar(self, value, "Tensor.fill_");
    }
    return inplace_done(self, n, r);
}

static PyObject *tensor_zero_(PfTensor *self, PyObject *Py_UNUSED(noargs))
{
    PfNode *n;
    int r = inplace_node(self, NULL, PF_NODE_FILL_, "Tensor.zero_", &n);
    PyObject *zero = PyLong_FromLong(0);
    if (r == 0) {
        r = zero == NULL ? -1 : pf_tensor_fill_scalar(self, zero, "Tensor.zero_");
    }
    Py_XDECREF(zero);
    return inplace_done(self, n, r);
}

/*
 * astype of a dense tensor whose dimensions are permuted (a transpose of a
 * contiguous tensor, say): the result keeps that layout, as NumPy's
 * astype(order='K') and PyTorch's .to(dtype) do, and the conversion runs as
 * one flat pass over the block instead of a strided walk (four times faster
 * for a transposed weight, which autocast converts every step).  NULL with
 * no error when the tensor is not such a permutation.
 */
static PfTensor *astype_keep_layout(PfTensor *t, pf_dtype d, const char *op)
{
    int nd = t->ndim;
    if (nd < 2 || !pf_tensor_on_cpu(t) || pf_tensor_is_contiguous(t)) {
        return NULL;
    }
    /* the dimensions of size > 1 by decreasing stride must tile the block exactly */
    int order[PF_MAX_DIMS], n = 0;
    for (int k = 0; k < nd; k++) {
        if (t->shape[k] > 1) {
            order[n++] = k;
        }
    }
    for (int i = 1; i < n; i++) {
        for (int j = i; j > 0 && t->strides[order[j]] > t->strides[order[j - 1]]; j--) {
            int tmp = order[j];
            order[j] = order[j - 1];
            order[j - 1] = tmp;
        }
    }
    int64_t expect = 1;
    for (int i = n - 1; i >= 0; i--) {
        if (t->strides[order[i]] != expect) {
            return NULL;
        }
        expect *= t->shape[order[i]];
    }
    int64_t numel = expect;
    PfTensor *flat_out = pf_tensor_empty(1, &numel, d, t->storage->device, op);
    if (flat_out == NULL) {
        return NULL;
    }
    int64_t one = 1;
    PfTensor *flat_in = pf_tensor_view(t, 1, &numel, &one, t->offset);
    PfTensor *out = flat_in == NULL ? NULL
                    : pf_tensor_wrap(flat_out->storage, d, nd, t->shape, t->strides, 0);
    if (out == NULL || pf_tensor_assign(flat_out, flat_in, op) < 0) {
        Py_CLEAR(out);
    }
    Py_XDECREF(flat_in);
    Py_DECREF(flat_out);
    if (out == NULL && !PyErr_Occurred()) {
        PyErr_NoMemory();
    }
    return out;
}

static PyObject *tensor_astype(PfTensor *self, PyObject *args, PyObject *kwds)
{
    PyObject *dt;
    int copy = 1;
    static char *kwlist[] = {"dtype", "copy", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|p:astype", kwlist, &dt, &copy)) {
        return NULL;
    }
    pf_dtype d;
    if (pf_dtype_from_object(dt, "Tensor.astype", &d) < 0) {
        return NULL;
    }
    if (!copy && d == self->dtype) {
        return Py_NewRef(self);
    }
    PfTensor *out = astype_keep_layout(self, d, "Tensor.astype");
    if (out == NULL && PyErr_Occurred()) {
        return NULL;
    }
    if (out == NULL) {
        out = pf_tensor_copy_as(self, d, "Tensor.astype");
    }
    return pf_ag_record_unary(PF_NODE_IDENTITY, self, (PyObject *)out, NULL, 0);
}

/*
 * self on dev (resolved) in dtype: self itself when nothing changes and
 * copy is false, else a copy that autograd follows back to self's device
 * and dtype.
 */
static PyObject *move_to(PfTensor *self, pf_device dev, pf_dtype d, int copy, int non_blocking,
                         const char *op)
{
    int same_device = pf_device_eq(dev, self->storage->device);
    if (!copy && d == self->dtype && same_device) {
        return Py_NewRef(self);
    }
    PfTensor *out = same_device    ? pf_tensor_copy_as(self, d, op)
                    : non_blocking ? pf_tensor_to_device_async(self, dev, d, op)
                                   : pf_tensor_to_device(self, dev, d, op);
    return pf_ag_record_unary(PF_NODE_IDENTITY, self, (PyObject *)out, NULL, 0);
}

/*
 * to(dtype), to(device), to(device, dtype), to(other_tensor), with
 * dtype=/device=/copy= keywords, as in PyTorch.  Returns self when
 * nothing changes and copy is False.  A device is "cpu", "cuda", "cuda:N",
 * an index N or a pf.device; "cuda" is the current CUDA device.
 */
static PyObject *tensor_to(PfTensor *self, PyObject *args, PyObject *kwds)
{
    const char *op = "Tensor.to";
    PyObject *a = Py_None, *b = Py_None, *dev_obj = Py_None, *dt_obj = Py_None;
    int copy = 0, non_blocking = 0;
    static char *kwlist[] = {"", "", "device", "dtype", "non_blocking", "copy", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OO$OOpp:to", kwlist, &a, &b, &dev_obj,
                                     &dt_obj, &non_blocking, &copy)) {
        return NULL;
    }
    pf_dtype d = self->dtype;
    pf_device dev = self->storage->device;
    PyObject *pos[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        PyObject *o = pos[i];
        if (o == Py_None) {
            continue;
        }
        if (PfTensor_Check(o)) {
            d = ((PfTensor *)o)->dtype;
            dev = ((PfTensor *)o)->storage->device;
        }
        else if (Py_IS_TYPE(o, &PfDevice_Type) || PyLong_CheckExact(o)) {
            if (pf_device_from_object(o, op, &dev) < 0) {
                return NULL;
            }
        }
        else if (!(PyUnicode_Check(o) && pf_device_from_object(o, op, &dev) == 0)) {
            PyErr_Clear();
            if (pf_dtype_from_object(o, op, &d) < 0) {
                return NULL;
            }
        }
    }
    if (dev_obj != Py_None && pf_device_from_object(dev_obj, op, &dev) < 0) {
        return NULL;
    }
    if (dt_obj != Py_None && pf_dtype_from_object(dt_obj, op, &d) < 0) {
        return NULL;
    }
    /* a tensor's own device needs no resolving (nor a working CUDA to name it) */
    if (!pf_device_eq(dev, self->storage->device) && pf_device_resolve(&dev, op) < 0) {
        return NULL;
    }
    return move_to(self, dev, d, copy, non_blocking, op);
}

static PyObject *tensor_pin_memory(PfTensor *self, PyObject *Py_UNUSED(noargs))
{
    return (PyObject *)pf_tensor_pin_memory(self, "Tensor.pin_memory");
}

static PyObject *tensor_is_pinned(PfTensor *self, PyObject *Py_UNUSED(noargs))
{
    return PyBool_FromLong(pf_storage_is_pinned(self->storage));
}

static PyObject *tensor_cpu(PfTensor *self, PyObject *Py_UNUSED(noargs))
{
    pf_device cpu = {PF_DEV_CPU, 0};
    return move_to(self, cpu, self->dtype, 0, 0, "Tensor.cpu");
}

/* cuda(device=None, non_blocking=False): device None is the current CUDA device. */
static PyObject *tensor_cuda(PfTensor *self, PyObject *args, PyObject *kwds)
{
    const char *op = "Tensor.cuda";
    PyObject *dev_obj = Py_None;
    int non_blocking = 0;
    static char *kwlist[] = {"device", "non_blocking", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|Op:cuda", kwlist, &dev_obj, &non_blocking)) {
        return NULL;
    }
    pf_device dev = {PF_DEV_CUDA, -1};
    if (dev_obj != Py_None && pf_device_from_object(dev_obj, op, &dev) < 0) {
        return NULL;
    }
    if (dev.type != PF_DEV_CUDA) {
        return PF_ERR(PyExc_ValueError, "%s: expected a CUDA device ('cuda', 'cuda:N' or an "
                      "index); got 'cpu' (use .cpu() or .to('cpu'))", op);
    }
    if (pf_device_resolve(&dev, op) < 0) {
        return NULL;
    }
    return move_to(self, dev, self->dtype, 0, non_blocking, op);
}

static PyObject *tensor_requires_grad_(PfTensor *self, PyObject *args)
{
    int flag = 1;
    if (!PyArg_ParseTuple(args, "|p:requires_grad_", &flag)) {
        return NULL;
    }
    if (set_requires_grad_flag(self, flag, "Tensor.requires_grad_") < 0) {
        return NULL;
    }
    return Py_NewRef(self);
}

static PyObject *tensor_detach(PfTensor *self, PyObject *Py_UNUSED(noargs))
{
    return (PyObject *)pf_tensor_view(self, self->ndim, self->shape, self->strides, self->offset);
}

static PyObject *tensor_resize_(PfTensor *self, PyObject *args)
{
    int64_t shape[PF_MAX_DIMS];
    int ndim;
    if (pf_parse_shape(args, "Tensor.resize_", shape, &ndim) < 0) {
        return NULL;
    }
    if (self->requires_grad && pf_grad_enabled()) {
        return PF_ERR(PyExc_RuntimeError, "Tensor.resize_: cannot resize a tensor that "
                      "requires grad; resize a detach()ed tensor or work under pf.no_grad()");
    }
    int64_t nbytes = pf_checked_nbytes(shape, ndim, pf_dtypes[self->dtype].itemsize,
                                       "Tensor.resize_");
    if (nbytes < 0) {
        return NULL;
    }
    size_t need = (size_t)nbytes + (size_t)self->offset * (size_t)pf_dtypes[self->dtype].itemsize;
    if (need > self->storage->nbytes || self->storage->exports > 0) {
        if (pf_storage_resize(self->storage, need, "Tensor.resize_") < 0) {
            return NULL;
        }
    }
    self->ndim = ndim;
    memcpy(self->shape, shape, sizeof(int64_t) * (size_t)ndim);
    pf_contiguous_strides(shape, ndim, self->strides);
    return Py_NewRef(self);
}

static PyObject *tensor_repr(PfTensor *self)
{
    PyObject *np = NULL, *arr = NULL, *fn = NULL, *s = NULL, *res = NULL, *kw = NULL;
    PfTensor *tmp = NULL, *host = NULL;
    PfTensor *src = self;
    if (!pf_tensor_on_cpu(self)) {
        /* the values of a CUDA tensor, copied to the host to be printed */
        host = pf_tensor_on_host(self, "repr");
        if (host == NULL) {
            return NULL;
        }
        src = host;
    }
    if (self->dtype == PF_BFLOAT16) {
        /* NumPy has no bfloat16: print the exact float32 values */
        tmp = pf_tensor_copy_as(src, PF_FLOAT32, "repr");
        if (tmp == NULL) {
            Py_XDECREF(host);
            return NULL;
        }
        src = tmp;
    }
    np = PyImport_ImportModule("numpy");
    if (np == NULL) {
        goto fail;
    }
    arr = pf_tensor_to_numpy(src, "repr");
    if (arr == NULL) {
        goto fail;
    }
    fn = PyObject_GetAttrString(np, "array2string");
    kw = Py_BuildValue("{s:s,s:s,s:i}", "separator", ", ", "prefix", "tensor(", "threshold", 1000);
    if (fn == NULL || kw == NULL) {
        goto fail;
    }
    PyObject *posargs = PyTuple_Pack(1, arr);
    if (posargs == NULL) {
        goto fail;
    }
    s = PyObject_Call(fn, posargs, kw);
    Py_DECREF(posargs);
    if (s == NULL) {
        goto fail;
    }
    char dev[48] = "";
    if (!pf_tensor_on_cpu(self)) {
        char d[32];
        snprintf(dev, sizeof(dev), ", device='%s'", pf_device_str(self->storage->device, d,
                                                                 sizeof(d)));
    }
    res = PyUnicode_FromFormat("tensor(%U, dtype=%s%s%s)", s, pf_dtypes[self->dtype].name, dev,
                               self->requires_grad ? ", requires_grad=True" : "");
fail:
    Py_XDECREF(np);
    Py_XDECREF(arr);
    Py_XDECREF(fn);
    Py_XDECREF(kw);
    Py_XDECREF(s);
    Py_XDECREF((PyObject *)tmp);
    Py_XDECREF((PyObject *)host);
    return res;
}

static PyMethodDef tensor_methods[] = {
    {"numel", (PyCFunction)tensor_numel, METH_NOARGS, "number of elements"},
    {"dim", (PyCFunction)tensor_dim, METH_NOARGS, "number of dimensions"},
    {"is_contiguous", (PyCFunction)tensor_is_contiguous, METH_NOARGS,
     "True if the elements are laid out row-major without gaps"},
    {"stride", (PyCFunction)tensor_stride, METH_VARARGS,
     "stride(dim=None): steps in elements, as PyTorch (t.strides gives bytes, as NumPy)"},
    {"contiguous", (PyCFunction)tensor_contiguous, METH_NOARGS,
     "self if contiguous, else a contiguous copy"},
    {"clone", (PyCFunction)tensor_clone, METH_NOARGS, "a contiguous copy with its own memory"},
    {"copy_", (PyCFunction)tensor_copy_, METH_O,
     "copy_(src): copy src into self in place, broadcasting and casting"},
    {"fill_", (PyCFunction)tensor_fill_, METH_O, "fill_(value): set every element"},
    {"zero_", (PyCFunction)tensor_zero_, METH_NOARGS, "set every element to zero"},
    {"astype", (PyCFunction)(void (*)(void))tensor_astype, METH_VARARGS | METH_KEYWORDS,
     "astype(dtype, copy=True): a copy converted to dtype"},
    {"to", (PyCFunction)(void (*)(void))tensor_to, METH_VARARGS | METH_KEYWORDS,
     "to(dtype) / to(device) / to(device, dtype) / to(tensor); copy=False returns self "
     "when nothing changes"},
    {"pin_memory", (PyCFunction)tensor_pin_memory, METH_NOARGS,
     "pin_memory(): a copy in page-locked host memory (itself when already pinned), which "
     ".to('cuda', non_blocking=True) copies without waiting"},
    {"is_pinned", (PyCFunction)tensor_is_pinned, METH_NOARGS,
     "is_pinned(): True when the tensor lies in page-locked host memory"},
    {"record_stream", (PyCFunction)pf_tensor_record_stream, METH_O,
     "record_stream(stream): the tensor is used by work on that CUDA stream; its memory is "
     "reused only after that work"},
    {"cpu", (PyCFunction)tensor_cpu, METH_NOARGS,
     "the tensor on the cpu: self when it is there, else a copy"},
    {"cuda", (PyCFunction)(void (*)(void))tensor_cuda, METH_VARARGS | METH_KEYWORDS,
     "cuda(device=None): the tensor on a CUDA device (default: the current one); self when "
     "it is there, else a copy"},
    {"item", (PyCFunction)tensor_item, METH_NOARGS, "the value of a one-element tensor"},
    {"tolist", (PyCFunction)tensor_tolist, METH_NOARGS, "nested Python lists of the values"},
    {"requires_grad_", (PyCFunction)tensor_requires_grad_, METH_VARARGS,
     "requires_grad_(flag=True): set requires_grad in place"},
    {"detach", (PyCFunction)tensor_detach, METH_NOARGS,
     "a view of the same memory outside the autograd graph"},
    {"resize_", (PyCFunction)tensor_resize_, METH_VARARGS,
     "resize_(*shape): change shape in place, growing the memory if needed; raises "
     "BufferError while a NumPy array or memoryview of it is alive"},
    {NULL, NULL, 0, NULL},
};

/* -------------------------------------------------------- sequence slots */

static Py_ssize_t tensor_len(PfTensor *self)
{
    if (self->ndim == 0) {
        PyErr_SetString(PyExc_TypeError, "len() of a 0-d tensor: it has no first dimension");
        return -1;
    }
    return (Py_ssize_t)self->shape[0];
}

/* Row i: used by iteration. */
static PyObject *tensor_sq_item(PfTensor *self, Py_ssize_t i)
{
    if (self->ndim == 0) {
        return PF_ERR(PyExc_TypeError, "iteration over a 0-d tensor");
    }
    if (i < 0 || i >= self->shape[0]) {
        return PF_ERR(PyExc_IndexError,
                      "index %zd is out of bounds for dimension 0 with size %lld", i,
                      (long long)self->shape[0]);
    }
    return (PyObject *)pf_tensor_view(self, self->ndim - 1, self->shape + 1, self->strides + 1,
                                      self->offset + i * self->strides[0]);
}

static PySequenceMethods tensor_as_sequence = {
    .sq_length = (lenfunc)tensor_len,
    .sq_item = (ssizeargfunc)tensor_sq_item,
};

static PyNumberMethods tensor_as_number = {
    .nb_bool = (inquiry)tensor_bool,
    .nb_int = (unaryfunc)tensor_int,
    .nb_float = (unaryfunc)tensor_float,
    .nb_index = (unaryfunc)tensor_index,
};

PyTypeObject PfTensor_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "pyframe.Tensor",
    .tp_basicsize = sizeof(PfTensor),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "An n-dimensional array on a device, with autograd fields.\n\n"
              "Create with pf.tensor(data), pf.zeros(shape), pf.from_numpy(array)...",
    .tp_new = tensor_new,
    .tp_dealloc = (destructor)tensor_dealloc,
    .tp_traverse = (traverseproc)tensor_traverse,
    .tp_clear = (inquiry)tensor_clear,
    .tp_repr = (reprfunc)tensor_repr,
    .tp_as_number = &tensor_as_number,
    .tp_as_sequence = &tensor_as_sequence,
    .tp_as_mapping = &pf_tensor_as_mapping,
    .tp_as_buffer = &pf_tensor_as_buffer,
    .tp_weaklistoffset = offsetof(PfTensor, weakreflist),
};

/* Methods and properties come from several files; join them into one table. */
static void *join_tables(const void *const *tables, const size_t *counts, int n, size_t elem)
{
    size_t total = 1;
    for (int i = 0; i < n; i++) {
        total += counts[i];
    }
    char *out = PyMem_Calloc(total, elem);
    if (out == NULL) {
        return NULL;
    }
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        memcpy(out + at * elem, tables[i], counts[i] * elem);
        at += counts[i];
    }
    return out;
}

static size_t count_methods(const PyMethodDef *m)
{
    size_t n = 0;
    while (m[n].ml_name != NULL) {
        n++;
    }
    return n;
}

static size_t count_getset(const PyGetSetDef *g)
{
    size_t n = 0;
    while (g[n].name != NULL) {
        n++;
    }
    return n;
}

int pf_tensor_type_init(PyObject *module)
{
    PyMethodDef *op_methods = pf_ops_tensor_methods();
    if (op_methods == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    const void *mt[] = {tensor_methods, pf_view_methods, pf_bridge_methods, op_methods,
                        pf_autograd_tensor_methods};
    size_t mc[] = {count_methods(tensor_methods), count_methods(pf_view_methods),
                   count_methods(pf_bridge_methods), count_methods(op_methods),
                   count_methods(pf_autograd_tensor_methods)};
    const void *gt[] = {tensor_getset, pf_view_getset, pf_bridge_getset,
                        pf_autograd_tensor_getset};
    size_t gc[] = {count_getset(tensor_getset), count_getset(pf_view_getset),
                   count_getset(pf_bridge_getset), count_getset(pf_autograd_tensor_getset)};
    PfTensor_Type.tp_methods = join_tables(mt, mc, 5, sizeof(PyMethodDef));
    PfTensor_Type.tp_getset = join_tables(gt, gc, 4, sizeof(PyGetSetDef));
    PyMem_Free(op_methods);
    if (PfTensor_Type.tp_methods == NULL || PfTensor_Type.tp_getset == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    pf_ops_install_slots(&PfTensor_Type);
    if (PyType_Ready(&PfTensor_Type) < 0) {
        return -1;
    }
    /* NumPy's binary operators defer to ours (ndarray + tensor gives a tensor) */
    PyObject *prio = PyFloat_FromDouble(1000.0);
    if (prio == NULL || PyDict_SetItemString(PfTensor_Type.tp_dict, "__array_priority__", prio) < 0) {
        Py_XDECREF(prio);
        return -1;
    }
    Py_DECREF(prio);
    PyType_Modified(&PfTensor_Type);
    return PyModule_AddObjectRef(module, "Tensor", (PyObject *)&PfTensor_Type);
}
