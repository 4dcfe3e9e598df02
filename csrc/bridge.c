/*
 * bridge.c -- zero-copy exchange with NumPy and other libraries: the buffer
 * protocol (export and release, with an export count that blocks resizes),
 * __array_interface__, __array__, DLPack both ways, and from_numpy; for
 * CUDA tensors __cuda_array_interface__ and DLPack on kDLCUDA, while every
 * host-memory export refuses them with TypeError (call .cpu() first).
 *
 * NumPy is imported lazily, on the first exchange, so that `import pyframe`
 * does not pay for it.
 *
 * Negative strides are kept, not copied: a tensor's strides are signed and
 * its storage starts at the lowest address the view touches.
 */
#include "cuda_backend.h"
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#define PY_ARRAY_UNIQUE_SYMBOL pf_ARRAY_API
#include <numpy/arrayobject.h>

static int numpy_ready = 0;
PyObject *pf_pandas_hook = NULL;
/* set from Python: pyframe._display.tensor_html, Jupyter's rich view of a tensor */
static PyObject *pf_html_hook = NULL;

int pf_numpy_ensure(void)
{
    if (numpy_ready) {
        return 0;
    }
    if (_import_array() < 0) {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_Format(PyExc_RuntimeError,
                     "pyframe: NumPy is needed for this operation but could not be imported "
                     "(%S); install it with `pip install numpy`", value ? value : Py_None);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        return -1;
    }
    numpy_ready = 1;
    return 0;
}

int pf_is_ndarray(PyObject *obj)
{
    if (!numpy_ready) {
        /* if NumPy was never imported, nothing can be one of its arrays */
        if (PyDict_GetItemString(PyImport_GetModuleDict(), "numpy") == NULL) {
            return 0;
        }
        if (pf_numpy_ensure() < 0) {
            PyErr_Clear();
            return 0;
        }
    }
    return PyArray_Check(obj);
}

/* ------------------------------------------------------------- dtype maps */

static int dtype_from_descr(PyArray_Descr *d, pf_dtype *out)
{
    int isz = (int)PyDataType_ELSIZE(d);
    switch (d->kind) {
    case 'b': *out = PF_BOOL; return 1;
    case 'u':
        if (isz == 1) {
            *out = PF_UINT8;
            return 1;
        }
        return 0;
    case 'i':
        switch (isz) {
        case 1: *out = PF_INT8; return 1;
        case 2: *out = PF_INT16; return 1;
        case 4: *out = PF_INT32; return 1;
        case 8: *out = PF_INT64; return 1;
        }
        return 0;
    case 'f':
        switch (isz) {
        case 2: *out = PF_FLOAT16; return 1;
        case 4: *out = PF_FLOAT32; return 1;
        case 8: *out = PF_FLOAT64; return 1;
        }
        return 0;
    case 'V':
        /* ml_dtypes.bfloat16 */
        if (isz == 2 && (strcmp(d->typeobj->tp_name, "bfloat16") == 0 ||
                         strcmp(d->typeobj->tp_name, "ml_dtypes.bfloat16") == 0)) {
            *out = PF_BFLOAT16;
            return 1;
        }
        return 0;
    }
    return 0;
}

/* NumPy descr for a pyframe dtype; bfloat16 comes from ml_dtypes.  New reference. */
static PyArray_Descr *descr_for(pf_dtype d, const char *op)
{
    static const int typenums[PF_NDTYPES] = {
        NPY_BOOL, NPY_UINT8, NPY_INT8, NPY_INT16, NPY_INT32, NPY_INT64, NPY_FLOAT16, -1,
        NPY_FLOAT32, NPY_FLOAT64,
    };
    if (d != PF_BFLOAT16) {
        return PyArray_DescrFromType(typenums[d]);
    }
    PyObject *ml = PyImport_ImportModule("ml_dtypes");
    if (ml == NULL) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError,
                     "%s: NumPy has no bfloat16 dtype of its own; install ml_dtypes (`pip "
                     "install ml_dtypes`) to exchange bfloat16 tensors with NumPy, or convert "
                     "first with t.astype(pf.float32)", op);
        return NULL;
    }
    PyObject *bf = PyObject_GetAttrString(ml, "bfloat16");
    Py_DECREF(ml);
    if (bf == NULL) {
        return NULL;
    }
    PyArray_Descr *descr = NULL;
    int ok = PyArray_DescrConverter(bf, &descr);
    Py_DECREF(bf);
    return ok ? descr : NULL;
}

/* --------------------------------------------------- foreign memory in */

/*
 * A tensor over foreign memory with the given geometry (strides in
 * elements, may be negative).  The storage spans exactly the bytes the
 * view touches; `owner` keeps them alive.
 */
static PfTensor *wrap_foreign(char *ptr, int ndim, const int64_t *shape, const int64_t *strides,
                              pf_dtype dtype, int readonly, PyObject *owner,
                              pf_release_fn release, void *release_ctx, pf_device dev)
{
    int64_t isz = pf_dtypes[dtype].itemsize;
    int64_t lo = 0, hi = 0, empty = 0;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == 0) {
            empty = 1;
        }
        int64_t span = (shape[i] - 1) * strides[i];
        if (span < 0) {
            lo += span;
        }
        else {
            hi += span;
        }
    }
    if (empty) {
        lo = hi = 0;
    }
    size_t nbytes = empty ? 0 : (size_t)((hi - lo + 1) * isz);
    pf_storage *s = pf_storage_foreign_on(ptr + lo * isz, nbytes, owner, readonly, dev);
    if (s == NULL) {
        return NULL;
    }
    s->release = release;
    s->release_ctx = release_ctx;
    PfTensor *t = pf_tensor_wrap(s, dtype, ndim, shape, strides, -lo);
    pf_storage_decref(s);
    return t;
}

PyObject *pf_from_numpy_impl(PyObject *obj, const char *op, int allow_copy)
{
    if (pf_numpy_ensure() < 0) {
        return NULL;
    }
    if (!PyArray_Check(obj)) {
        return PF_ERR(PyExc_TypeError,
                      "%s: expected a numpy.ndarray; got %.100s (use pf.tensor(data) for lists "
                      "and other data)", op, Py_TYPE(obj)->tp_name);
    }
    PyArrayObject *arr = (PyArrayObject *)obj;
    PyArray_Descr *descr = PyArray_DESCR(arr);
    int ndim = PyArray_NDIM(arr);
    if (ndim > PF_MAX_DIMS) {
        return PF_ERR(PyExc_ValueError,
                      "%s: the array has %d dimensions; pyframe tensors have at most %d", op,
                      ndim, PF_MAX_DIMS);
    }
    pf_dtype dtype = PF_FLOAT32;
    int known = dtype_from_descr(descr, &dtype);
    int isz = (int)PyArray_ITEMSIZE(arr);
    int aligned = ((uintptr_t)PyArray_DATA(arr) % (uintptr_t)(isz ? isz : 1)) == 0;
    for (int i = 0; i < ndim && aligned; i++) {
        aligned = PyArray_STRIDES(arr)[i] % isz == 0;
    }
    int swapped = !PyArray_ISNOTSWAPPED(arr);
    if (known && aligned && !swapped) {
        int64_t shape[PF_MAX_DIMS], strides[PF_MAX_DIMS];
        for (int i = 0; i < ndim; i++) {
            shape[i] = PyArray_DIMS(arr)[i];
            strides[i] = PyArray_STRIDES(arr)[i] / isz;
        }
        pf_device cpu = {PF_DEV_CPU, 0};
        return (PyObject *)wrap_foreign(PyArray_DATA(arr), ndim, shape, strides, dtype,
                                        !PyArray_ISWRITEABLE(arr), obj, NULL, NULL, cpu);
    }
    /* not shareable as it is: explain, or convert to a native aligned copy */
    const char *why = !known ? "has a dtype pyframe does not support"
                      : swapped ? "is byte-swapped (non-native byte order)"
                                : "is misaligned (its data or strides are not a multiple of "
                                  "the item size)";
    int convertible = 0;
    pf_dtype target = PF_FLOAT32;
    if (known) {
        convertible = 1;
        target = dtype;
    }
    else if (descr->kind == 'u' && (isz == 2 || isz == 4)) {
        convertible = 1;    /* widened without loss: uint16 -> int32, uint32 -> int64 */
        target = isz == 2 ? PF_INT32 : PF_INT64;
    }
    if (!allow_copy || !convertible) {
        PyObject *dstr = PyObject_Str((PyObject *)descr);
        PyErr_Format(PyExc_TypeError,
                     "%s: the NumPy array (dtype %s) %s, so it cannot be shared without a copy; "
                     "pyframe supports bool, uint8, int8, int16, int32, int64, float16, "
                     "float32, float64 and ml_dtypes.bfloat16.  %s",
                     op, dstr ? PyUnicode_AsUTF8(dstr) : "?", why,
                     convertible ? "Use pf.tensor(a), which copies, or a.copy()."
                                 : "Convert it first, e.g. a.astype(np.float32).");
        Py_XDECREF(dstr);
        return NULL;
    }
    PyArray_Descr *nd = descr_for(target, op);
    if (nd == NULL) {
        return NULL;
    }
    PyObject *copy = PyArray_FromAny(obj, nd, 0, 0, NPY_ARRAY_CARRAY | NPY_ARRAY_ENSURECOPY,
                                     NULL);
    if (copy == NULL) {
        return NULL;
    }
    PyObject *t = pf_from_numpy_impl(copy, op, 0);
    Py_DECREF(copy);
    return t;
}

int pf_ndarray_owns_data(PyObject *arr)
{
    return pf_is_ndarray(arr) && (PyArray_FLAGS((PyArrayObject *)arr) & NPY_ARRAY_OWNDATA) &&
           PyArray_BASE((PyArrayObject *)arr) == NULL;
}

static PyObject *py_from_numpy(PyObject *Py_UNUSED(m), PyObject *arr)
{
    return pf_from_numpy_impl(arr, "pf.from_numpy", 0);
}

/* --------------------------------------------------------- buffer export */

static const char *buffer_formats[PF_NDTYPES] = {
    "?", "B", "b", "h", "i", "q", "e", NULL, "f", "d",
};

/*
 * TypeError for an export of host memory from a CUDA tensor: its memory is
 * on the GPU (PyTorch refuses the same way).
 */
static int refuse_device(PfTensor *t, const char *op)
{
    char d[32];
    return PF_ERRI(PyExc_TypeError,
                   "%s: this tensor is on %s; NumPy and the buffer protocol read host memory "
                   "only, so copy it to the cpu with .cpu() first (np.asarray(t.cpu()))", op,
                   pf_device_str(t->storage->device, d, sizeof(d)));
}

static int tensor_getbuffer(PfTensor *self, Py_buffer *view, int flags)
{
    if (!pf_tensor_on_cpu(self)) {
        return refuse_device(self, "Tensor (buffer protocol)");
    }
    const char *fmt = buffer_formats[self->dtype];
    if (fmt == NULL) {
        PyErr_SetString(PyExc_BufferError,
                        "bfloat16 tensors have no buffer-protocol format; use np.asarray(t) "
                        "with ml_dtypes installed, or t.astype(pf.float32)");
        return -1;
    }
    if ((flags & PyBUF_WRITABLE) == PyBUF_WRITABLE && self->storage->readonly) {
        PyErr_SetString(PyExc_BufferError,
                        "this tensor is read-only; a writable buffer of it cannot be made");
        return -1;
    }
    int contiguous = pf_tensor_is_contiguous(self);
    if ((flags & PyBUF_STRIDES) != PyBUF_STRIDES && !contiguous) {
        PyErr_SetString(PyExc_BufferError,
                        "this tensor is not contiguous and the consumer did not ask for "
                        "strides; call .contiguous() first");
        return -1;
    }
    Py_ssize_t *geom = PyMem_Malloc(sizeof(Py_ssize_t) * 2 * (size_t)(self->ndim + 1));
    if (geom == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    int64_t isz = pf_dtypes[self->dtype].itemsize;
    for (int i = 0; i < self->ndim; i++) {
        geom[i] = (Py_ssize_t)self->shape[i];
        geom[self->ndim + 1 + i] = (Py_ssize_t)(self->strides[i] * isz);
    }
    view->obj = Py_NewRef(self);
    view->buf = pf_tensor_data(self);
    view->len = (Py_ssize_t)(pf_numel(self->shape, self->ndim) * isz);
    view->readonly = self->storage->readonly;
    view->itemsize = (Py_ssize_t)isz;
    view->format = (flags & PyBUF_FORMAT) == PyBUF_FORMAT ? (char *)fmt : NULL;
    view->ndim = self->ndim;
    view->shape = (flags & PyBUF_ND) == PyBUF_ND ? geom : NULL;
    view->strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES ? geom + self->ndim + 1 : NULL;
    view->suboffsets = NULL;
    view->internal = geom;
    self->storage->exports++;
    return 0;
}

static void tensor_releasebuffer(PfTensor *self, Py_buffer *view)
{
    self->storage->exports--;
    PyMem_Free(view->internal);
}

PyBufferProcs pf_tensor_as_buffer = {
    .bf_getbuffer = (getbufferproc)tensor_getbuffer,
    .bf_releasebuffer = (releasebufferproc)tensor_releasebuffer,
};

/* ------------------------------------------------ NumPy arrays out */

/*
 * An export handle: a capsule that holds the tensor and counts as one
 * export of its storage until NumPy drops it.
 */
static void export_capsule_free(PyObject *cap)
{
    PfTensor *t = PyCapsule_GetPointer(cap, "pyframe.export");
    if (t != NULL) {
        t->storage->exports--;
        Py_DECREF(t);
    }
}

static PyObject *export_capsule(PfTensor *t)
{
    PyObject *cap = PyCapsule_New(t, "pyframe.export", export_capsule_free);
    if (cap != NULL) {
        Py_INCREF(t);
        t->storage->exports++;
    }
    return cap;
}

PyObject *pf_tensor_to_numpy(PfTensor *t, const char *op)
{
    if (!pf_tensor_on_cpu(t)) {
        refuse_device(t, op);
        return NULL;
    }
    if (pf_numpy_ensure() < 0) {
        return NULL;
    }
    PyArray_Descr *descr = descr_for(t->dtype, op);
    if (descr == NULL) {
        return NULL;
    }
    npy_intp dims[PF_MAX_DIMS], strides[PF_MAX_DIMS];
    int64_t isz = pf_dtypes[t->dtype].itemsize;
    for (int i = 0; i < t->ndim; i++) {
        dims[i] = (npy_intp)t->shape[i];
        strides[i] = (npy_intp)(t->strides[i] * isz);
    }
    int flags = t->storage->readonly ? 0 : NPY_ARRAY_WRITEABLE;
    PyObject *arr = PyArray_NewFromDescr(&PyArray_Type, descr, t->ndim, dims, strides,
                                         pf_tensor_data(t), flags, NULL);
    if (arr == NULL) {
        return NULL;
    }
    PyObject *base = export_capsule(t);
    if (base == NULL || PyArray_SetBaseObject((PyArrayObject *)arr, base) < 0) {
        Py_XDECREF(base);
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

/* __array__(dtype=None, copy=None) with NumPy 2 semantics for copy. */
static PyObject *tensor_array(PfTensor *self, PyObject *args, PyObject *kwds)
{
    PyObject *dtype = Py_None, *copy = Py_None;
    static char *kwlist[] = {"dtype", "copy", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O$O:__array__", kwlist, &dtype, &copy)) {
        return NULL;
    }
    PyObject *arr = pf_tensor_to_numpy(self, "Tensor.__array__");
    if (arr == NULL) {
        return NULL;
    }
    int must_copy = copy == Py_True;
    if (dtype != Py_None) {
        PyArray_Descr *want = NULL;
        if (!PyArray_DescrConverter(dtype, &want)) {
            Py_DECREF(arr);
            return NULL;
        }
        int same = PyArray_EquivTypes(want, PyArray_DESCR((PyArrayObject *)arr));
        if (!same && copy == Py_False) {
            Py_DECREF(want);
            Py_DECREF(arr);
            return PF_ERR(PyExc_ValueError,
                          "Tensor.__array__: converting %s to the requested dtype needs a copy, "
                          "but copy=False was given", pf_dtypes[self->dtype].name);
        }
        if (!same) {
            PyObject *conv = PyArray_FromAny(arr, want, 0, 0, NPY_ARRAY_FORCECAST |
                                             NPY_ARRAY_ENSURECOPY, NULL);
            Py_DECREF(arr);
            return conv;
        }
        Py_DECREF(want);
    }
    if (must_copy) {
        PyObject *c = PyArray_NewCopy((PyArrayObject *)arr, NPY_KEEPORDER);
        Py_DECREF(arr);
        return c;
    }
    return arr;
}

static PyObject *tensor_numpy(PfTensor *self, PyObject *Py_UNUSED(noargs))
{
    return pf_tensor_to_numpy(self, "Tensor.numpy");
}

/* The array interfaces' "strides": None when contiguous, else byte strides. */
static PyObject *interface_strides(PfTensor *self)
{
    if (pf_tensor_is_contiguous(self)) {
        return Py_NewRef(Py_None);
    }
    int64_t isz = pf_dtypes[self->dtype].itemsize;
    int64_t b[PF_MAX_DIMS];
    for (int i = 0; i < self->ndim; i++) {
        b[i] = self->strides[i] * isz;
    }
    return pf_shape_tuple(b, self->ndim);
}

static PyObject *get_array_interface(PfTensor *self, void *Py_UNUSED(c))
{
    if (!pf_tensor_on_cpu(self)) {
        refuse_device(self, "Tensor.__array_interface__");
        return NULL;
    }
    const char *typestr = pf_dtypes[self->dtype].typestr;
    if (typestr == NULL) {
        /* AttributeError makes NumPy fall back to __array__, which handles bfloat16 */
        return PF_ERR(PyExc_AttributeError,
                      "bfloat16 tensors have no __array_interface__ typestr; np.asarray(t) "
                      "uses __array__ (needs ml_dtypes)");
    }
    PyObject *strides = interface_strides(self);
    PyObject *shape = pf_shape_tuple(self->shape, self->ndim);
    PyObject *r = NULL;
    if (shape != NULL && strides != NULL) {
        r = Py_BuildValue("{s:O,s:s,s:(NO),s:O,s:i}", "shape", shape, "typestr", typestr, "data",
                          PyLong_FromVoidPtr(pf_tensor_data(self)),
                          self->storage->readonly ? Py_True : Py_False, "strides", strides,
                          "version", 3);
    }
    Py_XDECREF(shape);
    Py_XDECREF(strides);
    return r;
}

/*
 * __cuda_array_interface__ (version 3) of a CUDA tensor, for CuPy, Numba and
 * the like.  `stream` is 1, the legacy default stream, which all of
 * pyframe's work is queued on: a consumer on another stream waits for it
 * before reading.  A cpu tensor has none (AttributeError, so hasattr() is
 * False), as in PyTorch.
 */
static PyObject *get_cuda_array_interface(PfTensor *self, void *Py_UNUSED(c))
{
    if (pf_tensor_on_cpu(self)) {
        return PF_ERR(PyExc_AttributeError,
                      "Tensor.__cuda_array_interface__: only CUDA tensors have one; this tensor "
                      "is on the cpu (NumPy reads it through __array_interface__)");
    }
    const char *typestr = pf_dtypes[self->dtype].typestr;
    if (typestr == NULL) {
        return PF_ERR(PyExc_TypeError,
                      "Tensor.__cuda_array_interface__: bfloat16 has no typestr in the array "
                      "interface; exchange it through DLPack (__dlpack__) or cast it to "
                      "float32 first");
    }
    PyObject *strides = interface_strides(self);
    PyObject *shape = pf_shape_tuple(self->shape, self->ndim);
    /* an empty array's pointer is 0 (the protocol's rule) */
    void *ptr = pf_numel(self->shape, self->ndim) == 0 ? NULL : pf_tensor_data(self);
    PyObject *r = NULL;
    if (shape != NULL && strides != NULL) {
        r = Py_BuildValue("{s:O,s:s,s:(NO),s:O,s:i,s:i}", "shape", shape, "typestr", typestr,
                          "data", PyLong_FromVoidPtr(ptr),
                          self->storage->readonly ? Py_True : Py_False, "strides", strides,
                          "version", 3, "stream", 1);
    }
    Py_XDECREF(shape);
    Py_XDECREF(strides);
    return r;
}

/* ------------------------------------------------------------- DLPack */

/* The DLPack ABI (v1.0), written out from the published specification. */
typedef struct {
    int32_t device_type;
    int32_t device_id;
} DLDevice;

typedef struct {
    uint8_t code;
    uint8_t bits;
    uint16_t lanes;
} DLDataType;

typedef struct {
    void *data;
    DLDevice device;
    int32_t ndim;
    DLDataType dtype;
    int64_t *shape;
    int64_t *strides;
    uint64_t byte_offset;
} DLTensor;

typedef struct DLManagedTensor {
    DLTensor dl_tensor;
    void *manager_ctx;
    void (*deleter)(struct DLManagedTensor *self);
} DLManagedTensor;

typedef struct {
    uint32_t major;
    uint32_t minor;
} DLPackVersion;

typedef struct DLManagedTensorVersioned {
    DLPackVersion version;
    void *manager_ctx;
    void (*deleter)(struct DLManagedTensorVersioned *self);
    uint64_t flags;
    DLTensor dl_tensor;
} DLManagedTensorVersioned;

#define DL_CPU 1
#define DL_CUDA 2
#define DL_FLAG_READ_ONLY (1ULL << 0)
#define DL_FLAG_IS_COPIED (1ULL << 1)

/* What an export owns: the tensor, and shape/strides storage for DLTensor. */
typedef struct {
    PfTensor *tensor;
    int64_t shape[PF_MAX_DIMS];
    int64_t strides[PF_MAX_DIMS];
    union {
        DLManagedTensor legacy;
        DLManagedTensorVersioned versioned;
    } m;
} dl_export;

static void dl_export_release(dl_export *e)
{
    PyGILState_STATE g = PyGILState_Ensure();
    e->tensor->storage->exports--;
    Py_DECREF(e->tensor);
    PyMem_RawFree(e);
    PyGILState_Release(g);
}

static void dl_deleter_legacy(DLManagedTensor *m) { dl_export_release(m->manager_ctx); }
static void dl_deleter_versioned(DLManagedTensorVersioned *m) { dl_export_release(m->manager_ctx); }

static void dl_capsule_destructor(PyObject *cap)
{
    /* only an unconsumed capsule still owns its tensor */
    if (PyCapsule_IsValid(cap, "dltensor")) {
        DLManagedTensor *m = PyCapsule_GetPointer(cap, "dltensor");
        m->deleter(m);
    }
    else if (PyCapsule_IsValid(cap, "dltensor_versioned")) {
        DLManagedTensorVersioned *m = PyCapsule_GetPointer(cap, "dltensor_versioned");
        m->deleter(m);
    }
    PyErr_Clear();
}

static PyObject *tensor_dlpack(PfTensor *self, PyObject *args, PyObject *kwds)
{
    PyObject *stream = Py_None, *max_version = Py_None, *dl_device = Py_None, *copy = Py_None;
    static char *kwlist[] = {"stream", "max_version", "dl_device", "copy", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$OOOO:__dlpack__", kwlist, &stream,
                                     &max_version, &dl_device, &copy)) {
        return NULL;
    }
    const char *op = "Tensor.__dlpack__";
    pf_device here = self->storage->device, want = here;
    if (dl_device != Py_None) {
        int dt, di;
        if (!PyArg_ParseTuple(dl_device, "ii", &dt, &di)) {
            return NULL;
        }
        if (dt == DL_CPU) {
            want.type = PF_DEV_CPU;
            want.index = 0;
        }
        else if (dt == DL_CUDA && di >= 0 && di < PF_CUDA_MAX_DEVICES) {
            want.type = PF_DEV_CUDA;
            want.index = (int16_t)di;
        }
        else {
            return PF_ERR(PyExc_BufferError, "%s: cannot export to DLPack device (%d, %d); "
                          "pyframe tensors live on the cpu (1, 0) or a CUDA device (2, N)",
                          op, dt, di);
        }
        if (!pf_device_eq(want, here) && copy != Py_True) {
            char a[32], b[32];
            return PF_ERR(PyExc_BufferError,
                          "%s: the tensor is on %s and the consumer asked for %s; pass "
                          "copy=True, or move it first with .to('%s')", op,
                          pf_device_str(here, a, sizeof(a)), pf_device_str(want, b, sizeof(b)),
                          b);
        }
        if (want.type != PF_DEV_CPU && pf_device_resolve(&want, op) < 0) {
            return NULL;
        }
    }
    int versioned = 0;
    if (max_version != Py_None) {
        unsigned major, minor;
        if (!PyArg_ParseTuple(max_version, "II", &major, &minor)) {
            return NULL;
        }
        versioned = major >= 1;
    }
    PfTensor *src = self;
    int copied = copy == Py_True;
    if (copied) {
        src = pf_tensor_to_device(self, want, self->dtype, op);
        if (src == NULL) {
            return NULL;
        }
    }
    else {
        Py_INCREF(src);
    }
    if (!pf_tensor_on_cpu(src) && stream != Py_None) {
        /*
         * The consumer reads on `stream`.  pyframe's work is queued on the
         * legacy default stream, which a consumer on it (1) or one that asks
         * for no synchronisation (-1) need not wait for; any other stream
         * gets the device synchronised, since pyframe has no events yet.
         */
        long sv = PyLong_AsLong(stream);
        if (sv == -1 && PyErr_Occurred()) {
            Py_DECREF(src);
            return NULL;
        }
        if (sv == 0) {
            Py_DECREF(src);
            return PF_ERR(PyExc_ValueError, "%s: stream 0 is ambiguous for CUDA (DLPack "
                          "forbids it); pass 1 for the legacy default stream, 2 for the "
                          "per-thread default stream, or a stream handle", op);
        }
        if (sv != 1 && sv != -1) {
            const PfCudaLib *lib = pf_cuda_lib(op);
            int status = lib == NULL ? -1 : lib->synchronize(src->storage->device.index);
            if (status != 0) {
                if (lib != NULL) {
                    pf_cuda_raise(lib, op, status);
                }
                Py_DECREF(src);
                return NULL;
            }
        }
    }
    if (src->storage->readonly && !versioned) {
        Py_DECREF(src);
        return PF_ERR(PyExc_BufferError,
                      "Tensor.__dlpack__: this tensor is read-only, and the consumer asked for "
                      "the old DLPack format that cannot mark memory read-only; pass "
                      "max_version=(1, 0) or export a clone()");
    }
    dl_export *e = PyMem_RawCalloc(1, sizeof(dl_export));
    if (e == NULL) {
        Py_DECREF(src);
        return PyErr_NoMemory();
    }
    e->tensor = src;    /* owns the reference taken above */
    memcpy(e->shape, src->shape, sizeof(int64_t) * (size_t)src->ndim);
    memcpy(e->strides, src->strides, sizeof(int64_t) * (size_t)src->ndim);
    DLTensor *dl = versioned ? &e->m.versioned.dl_tensor : &e->m.legacy.dl_tensor;
    dl->data = src->storage->data;
    dl->byte_offset = (uint64_t)(src->offset * pf_dtypes[src->dtype].itemsize);
    dl->device.device_type = pf_tensor_on_cpu(src) ? DL_CPU : DL_CUDA;
    dl->device.device_id = pf_tensor_on_cpu(src) ? 0 : src->storage->device.index;
    dl->ndim = src->ndim;
    dl->dtype.code = pf_dtypes[src->dtype].dl_code;
    dl->dtype.bits = (uint8_t)(pf_dtypes[src->dtype].itemsize * 8);
    dl->dtype.lanes = 1;
    dl->shape = e->shape;
    dl->strides = e->strides;
    src->storage->exports++;
    PyObject *cap;
    if (versioned) {
        e->m.versioned.version.major = 1;
        e->m.versioned.version.minor = 0;
        e->m.versioned.manager_ctx = e;
        e->m.versioned.deleter = dl_deleter_versioned;
        e->m.versioned.flags = (src->storage->readonly ? DL_FLAG_READ_ONLY : 0) |
                               (copied ? DL_FLAG_IS_COPIED : 0);
        cap = PyCapsule_New(&e->m.versioned, "dltensor_versioned", dl_capsule_destructor);
    }
    else {
        e->m.legacy.manager_ctx = e;
        e->m.legacy.deleter = dl_deleter_legacy;
        cap = PyCapsule_New(&e->m.legacy, "dltensor", dl_capsule_destructor);
    }
    if (cap == NULL) {
        dl_export_release(e);
    }
    return cap;
}

static PyObject *tensor_dlpack_device(PfTensor *self, PyObject *Py_UNUSED(noargs))
{
    if (pf_tensor_on_cpu(self)) {
        return Py_BuildValue("(ii)", DL_CPU, 0);
    }
    return Py_BuildValue("(ii)", DL_CUDA, (int)self->storage->device.index);
}

/* Release of imported DLPack memory: call the producer's deleter. */
static void dl_import_release_legacy(pf_storage *s)
{
    DLManagedTensor *m = s->release_ctx;
    if (m->deleter) {
        m->deleter(m);
    }
}

static void dl_import_release_versioned(pf_storage *s)
{
    DLManagedTensorVersioned *m = s->release_ctx;
    if (m->deleter) {
        m->deleter(m);
    }
}

static int dtype_from_dl(DLDataType t, pf_dtype *out)
{
    if (t.lanes != 1) {
        return 0;
    }
    for (int i = 0; i < PF_NDTYPES; i++) {
        if (pf_dtypes[i].dl_code == t.code && pf_dtypes[i].itemsize * 8 == t.bits) {
            /* uint code 1 with 8 bits is uint8; int code 0 with 8 bits is int8 */
            *out = (pf_dtype)i;
            return 1;
        }
    }
    return 0;
}

static PyObject *py_from_dlpack(PyObject *Py_UNUSED(m), PyObject *obj)
{
    const char *op = "pf.from_dlpack";
    if (PfTensor_Check(obj)) {
        return Py_NewRef(obj);
    }
    PyObject *cap;
    if (PyCapsule_CheckExact(obj)) {
        cap = Py_NewRef(obj);
    }
    else {
        PyObject *meth = PyObject_GetAttrString(obj, "__dlpack__");
        if (meth == NULL) {
            PyErr_Clear();
            return PF_ERR(PyExc_TypeError,
                          "%s: %.100s does not support DLPack (it has no __dlpack__ method)", op,
                          Py_TYPE(obj)->tp_name);
        }
        /*
         * A CUDA producer is told which stream we read on: the legacy default
         * stream (1), where all of pyframe's work goes; it then orders its
         * own work before our reads.  A cpu producer gets no stream.
         */
        int on_cuda = 0;
        PyObject *devf = PyObject_GetAttrString(obj, "__dlpack_device__");
        if (devf == NULL) {
            PyErr_Clear();
        }
        else {
            PyObject *d = PyObject_CallNoArgs(devf);
            Py_DECREF(devf);
            int dt = 0, di = 0;
            if (d == NULL || !PyArg_ParseTuple(d, "ii", &dt, &di)) {
                Py_XDECREF(d);
                Py_DECREF(meth);
                return NULL;
            }
            Py_DECREF(d);
            on_cuda = dt == DL_CUDA;
        }
        PyObject *noargs = PyTuple_New(0);
        PyObject *kw = on_cuda ? Py_BuildValue("{s:(ii),s:i}", "max_version", 1, 0, "stream", 1)
                               : Py_BuildValue("{s:(ii)}", "max_version", 1, 0);
        cap = (noargs && kw) ? PyObject_Call(meth, noargs, kw) : NULL;
        if (cap == NULL && PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();     /* a producer from before DLPack 1.0 */
            PyObject *kw_old = on_cuda ? Py_BuildValue("{s:i}", "stream", 1) : NULL;
            cap = on_cuda ? (kw_old ? PyObject_Call(meth, noargs, kw_old) : NULL)
                          : PyObject_CallNoArgs(meth);
            Py_XDECREF(kw_old);
        }
        Py_XDECREF(noargs);
        Py_XDECREF(kw);
        Py_DECREF(meth);
        if (cap == NULL) {
            return NULL;
        }
    }
    int versioned = PyCapsule_IsValid(cap, "dltensor_versioned");
    if (!versioned && !PyCapsule_IsValid(cap, "dltensor")) {
        Py_DECREF(cap);
        return PF_ERR(PyExc_ValueError,
                      "%s: expected an unconsumed DLPack capsule ('dltensor'); this one was "
                      "already used or is not a DLPack capsule", op);
    }
    void *m = PyCapsule_GetPointer(cap, versioned ? "dltensor_versioned" : "dltensor");
    DLTensor *dl = versioned ? &((DLManagedTensorVersioned *)m)->dl_tensor
                             : &((DLManagedTensor *)m)->dl_tensor;
    int readonly = versioned && (((DLManagedTensorVersioned *)m)->flags & DL_FLAG_READ_ONLY);
    pf_dtype dtype;
    pf_device dev = {PF_DEV_CPU, 0};
    if (dl->device.device_type == DL_CUDA) {
        if (dl->device.device_id < 0 || dl->device.device_id > 1000) {
            Py_DECREF(cap);
            return PF_ERR(PyExc_ValueError, "%s: the producer names CUDA device %d", op,
                          dl->device.device_id);
        }
        dev.type = PF_DEV_CUDA;
        dev.index = (int16_t)dl->device.device_id;
        /* before the capsule is consumed: on failure its producer keeps it */
        if (pf_device_resolve(&dev, op) < 0) {
            Py_DECREF(cap);
            return NULL;
        }
    }
    else if (dl->device.device_type != DL_CPU) {
        Py_DECREF(cap);
        return PF_ERR(PyExc_RuntimeError,
                      "%s: the producer's memory is on DLPack device type %d; pyframe reads "
                      "cpu memory (type 1) and CUDA memory (type 2); copy it to one of those "
                      "first", op, dl->device.device_type);
    }
    if (!dtype_from_dl(dl->dtype, &dtype)) {
        Py_DECREF(cap);
        return PF_ERR(PyExc_TypeError,
                      "%s: DLPack dtype (code %d, %d bits, %d lanes) has no pyframe equivalent",
                      op, dl->dtype.code, dl->dtype.bits, dl->dtype.lanes);
    }
    if (dl->ndim < 0 || dl->ndim > PF_MAX_DIMS) {
        Py_DECREF(cap);
        return PF_ERR(PyExc_ValueError, "%s: the DLPack tensor has %d dimensions; at most %d",
                      op, dl->ndim, PF_MAX_DIMS);
    }
    int64_t strides[PF_MAX_DIMS];
    if (dl->strides != NULL) {
        memcpy(strides, dl->strides, sizeof(int64_t) * (size_t)dl->ndim);
    }
    else {
        pf_contiguous_strides(dl->shape, dl->ndim, strides);
    }
    /* consume the capsule: from now on we own the producer's memory */
    if (PyCapsule_SetName(cap, versioned ? "used_dltensor_versioned" : "used_dltensor") < 0) {
        Py_DECREF(cap);
        return NULL;
    }
    PfTensor *t = wrap_foreign((char *)dl->data + dl->byte_offset, dl->ndim, dl->shape, strides,
                               dtype, readonly, NULL,
                               versioned ? dl_import_release_versioned : dl_import_release_legacy,
                               m, dev);
    Py_DECREF(cap);
    if (t == NULL) {
        /* we own it now: give it back */
        if (versioned) {
            ((DLManagedTensorVersioned *)m)->deleter(m);
        }
        else {
            ((DLManagedTensor *)m)->deleter(m);
        }
        return NULL;
    }
    return (PyObject *)t;
}

/* ------------------------------------------------------------- tables */

static PyObject *py_set_pandas_hook(PyObject *Py_UNUSED(m), PyObject *fn)
{
    Py_XSETREF(pf_pandas_hook, Py_NewRef(fn));
    Py_RETURN_NONE;
}

static PyObject *py_set_html_hook(PyObject *Py_UNUSED(m), PyObject *fn)
{
    if (!PyCallable_Check(fn)) {
        PyErr_SetString(PyExc_TypeError, "_set_html_hook: expected a callable");
        return NULL;
    }
    Py_XSETREF(pf_html_hook, Py_NewRef(fn));
    Py_RETURN_NONE;
}

/* Jupyter calls _repr_html_; the table is built in Python (formatting, not
 * arithmetic), and without the hook IPython falls back to repr(). */
static PyObject *tensor_repr_html(PyObject *self, PyObject *Py_UNUSED(arg))
{
    if (pf_html_hook == NULL) {
        Py_RETURN_NONE;
    }
    return PyObject_CallOneArg(pf_html_hook, self);
}

PyMethodDef pf_bridge_methods[] = {
    {"_repr_html_", (PyCFunction)tensor_repr_html, METH_NOARGS,
     "an HTML view for Jupyter: shape, dtype, device and a preview of the values"},
    {"__array__", (PyCFunction)(void (*)(void))tensor_array, METH_VARARGS | METH_KEYWORDS,
     "__array__(dtype=None, copy=None): a NumPy array sharing this tensor's memory"},
    {"numpy", (PyCFunction)tensor_numpy, METH_NOARGS,
     "a NumPy array sharing this tensor's memory (as np.asarray(t))"},
    {"__dlpack__", (PyCFunction)(void (*)(void))tensor_dlpack, METH_VARARGS | METH_KEYWORDS,
     "__dlpack__(*, stream=None, max_version=None, dl_device=None, copy=None)"},
    {"__dlpack_device__", (PyCFunction)tensor_dlpack_device, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

PyGetSetDef pf_bridge_getset[] = {
    {"__array_interface__", (getter)get_array_interface, NULL, NULL, NULL},
    {"__cuda_array_interface__", (getter)get_cuda_array_interface, NULL,
     "the CUDA array interface (version 3) of a CUDA tensor", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyMethodDef pf_bridge_module_methods[] = {
    {"from_numpy", py_from_numpy, METH_O,
     "from_numpy(a): a tensor sharing the NumPy array's memory (never copies; raises "
     "TypeError when sharing is impossible)"},
    {"from_dlpack", py_from_dlpack, METH_O,
     "from_dlpack(x): a tensor sharing the memory of any DLPack producer"},
    {"_set_pandas_hook", py_set_pandas_hook, METH_O, NULL},
    {"_set_html_hook", py_set_html_hook, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};
