/*
 * pyframe.h -- the few definitions every part of the extension shares:
 * limits, the dtype and device enums, the storage and tensor structs, and
 * the error helpers.  Everything else has its own header-less section in
 * the file that owns it, declared here only when another file needs it.
 */
#ifndef PYFRAME_H
#define PYFRAME_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#define PF_MAX_DIMS 8

/* Allocation alignment: one cache line, and enough for AVX-512 loads. */
#define PF_ALIGN 64

/* ------------------------------------------------------------------ dtypes */

/*
 * The order matters: within a kind, a later dtype holds every value of an
 * earlier one, which the promotion table relies on.
 */
typedef enum {
    PF_BOOL = 0,
    PF_UINT8,
    PF_INT8,
    PF_INT16,
    PF_INT32,
    PF_INT64,
    PF_FLOAT16,
    PF_BFLOAT16,
    PF_FLOAT32,
    PF_FLOAT64,
    PF_NDTYPES
} pf_dtype;

typedef enum { PF_KIND_BOOL, PF_KIND_UINT, PF_KIND_INT, PF_KIND_FLOAT } pf_kind;

typedef struct {
    const char *name;       /* "float32" */
    int itemsize;
    pf_kind kind;
    char buffer_format;     /* struct-module code for the buffer protocol, 0 if none */
    const char *typestr;    /* __array_interface__ typestr, NULL if NumPy has none */
    uint8_t dl_code;        /* DLPack type code */
} pf_dtype_info;

extern const pf_dtype_info pf_dtypes[PF_NDTYPES];

#define PF_DEFAULT_FLOAT PF_FLOAT32
#define PF_DEFAULT_INT PF_INT64

static inline int pf_is_float(pf_dtype d) { return pf_dtypes[d].kind == PF_KIND_FLOAT; }
static inline int pf_is_int(pf_dtype d)
{
    return pf_dtypes[d].kind == PF_KIND_INT || pf_dtypes[d].kind == PF_KIND_UINT;
}

/* The Python objects pf.float32 ... (type pyframe.dtype). */
typedef struct {
    PyObject_HEAD
    pf_dtype id;
} PfDTypeObject;

extern PyTypeObject PfDType_Type;
extern PyObject *pf_dtype_objs[PF_NDTYPES];

/*
 * Parse anything a user may call a dtype: pf.float32, "float32", "f4",
 * np.float32, np.dtype("float32"), float, int, bool.  Returns 0 and sets
 * *out, or -1 with TypeError naming `op`.  None is refused here; callers
 * that accept None test for it first.
 */
int pf_dtype_from_object(PyObject *obj, const char *op, pf_dtype *out);
pf_dtype pf_promote(pf_dtype a, pf_dtype b);
int pf_dtype_init(PyObject *module);

/* ----------------------------------------------------------------- devices */

typedef enum { PF_DEV_CPU = 0, PF_DEV_CUDA = 1 } pf_device_type;

/* index -1: "cuda" without an index, the current device (resolved by pf_device_resolve) */
typedef struct {
    int8_t type;
    int16_t index;
} pf_device;

/* CUDA devices pyframe keeps per-device statistics for */
#define PF_CUDA_MAX_DEVICES 64

typedef struct {
    PyObject_HEAD
    pf_device dev;
} PfDeviceObject;

extern PyTypeObject PfDevice_Type;
PyObject *pf_device_new(pf_device dev);
/* Parse "cpu", "cuda", "cuda:1", an index, pf.device(...); -1 with an error naming op. */
int pf_device_from_object(PyObject *obj, const char *op, pf_device *out);
/*
 * Make dev a place a tensor can live (cuda_backend.c): the cpu, or a visible
 * CUDA device, "cuda" becoming the current one.  RuntimeError "<op>: CUDA is
 * not available: <reason>" when CUDA cannot be used, ValueError for an index
 * beyond the visible devices.
 */
int pf_device_resolve(pf_device *dev, const char *op);
/* "cpu", "cuda", "cuda:1" into buf. */
const char *pf_device_str(pf_device dev, char *buf, size_t size);
static inline int pf_device_eq(pf_device a, pf_device b)
{
    return a.type == b.type && (a.type == PF_DEV_CPU || a.index == b.index);
}
int pf_device_init(PyObject *module);

/* ----------------------------------------------------------------- storage */

struct pf_storage;
typedef void (*pf_release_fn)(struct pf_storage *);

/*
 * A reference-counted block of memory.  It is a plain C struct, not a
 * Python object: every access happens with the GIL held, and tensors
 * (views) are the only holders.  Memory is either ours (from the aligned
 * allocator) or foreign: kept alive by `owner` (a NumPy array, a buffer
 * exporter) or released through `release` (a DLPack deleter).
 */
typedef struct pf_storage {
    Py_ssize_t refcnt;
    char *data;
    size_t nbytes;
    pf_device device;
    PyObject *owner;            /* foreign memory: the object that owns it */
    Py_buffer *view;            /* foreign memory taken through the buffer protocol */
    pf_release_fn release;      /* foreign memory with a custom release (DLPack) */
    void *release_ctx;
    Py_ssize_t exports;         /* live buffer-protocol exports of any view */
    uint64_t version;           /* bumped by every in-place write (autograd) */
    int readonly;
} pf_storage;

pf_storage *pf_storage_new(size_t nbytes, pf_device dev, const char *op);
pf_storage *pf_storage_foreign(char *data, size_t nbytes, PyObject *owner, int readonly);
/* Foreign memory on a device (DLPack from a CUDA producer). */
pf_storage *pf_storage_foreign_on(char *data, size_t nbytes, PyObject *owner, int readonly,
                                  pf_device dev);
void pf_storage_decref(pf_storage *s);
static inline void pf_storage_incref(pf_storage *s) { s->refcnt++; }
/* Reallocate a storage we own; BufferError while exported. */
int pf_storage_resize(pf_storage *s, size_t nbytes, const char *op);
PyObject *pf_memory_stats(PyObject *self, PyObject *noargs);
PyObject *pf_empty_cache(PyObject *self, PyObject *noargs);

/* ------------------------------------------------------------------ tensor */

typedef struct {
    PyObject_HEAD
    pf_storage *storage;
    int64_t offset;                 /* in elements */
    int64_t shape[PF_MAX_DIMS];
    int64_t strides[PF_MAX_DIMS];   /* in elements */
    int ndim;
    pf_dtype dtype;
    /* autograd (autograd.h) */
    char requires_grad;
    char retains_grad;
    int output_nr;                  /* which output of grad_fn this tensor is */
    PyObject *grad;
    PyObject *grad_fn;              /* a PfNode, NULL for leaves */
    PyObject *hooks;                /* leaf gradient hooks: dict id -> callable */
    PyObject *weakreflist;
} PfTensor;

extern PyTypeObject PfTensor_Type;
#define PfTensor_Check(op) PyObject_TypeCheck(op, &PfTensor_Type)

/* The address of the first element: device memory for a tensor not on the cpu. */
static inline char *pf_tensor_data(const PfTensor *t)
{
    return t->storage->data + t->offset * pf_dtypes[t->dtype].itemsize;
}

static inline int pf_tensor_on_cpu(const PfTensor *t)
{
    return t->storage->device.type == PF_DEV_CPU;
}

int64_t pf_numel(const int64_t *shape, int ndim);
int pf_is_contiguous_shape(const int64_t *shape, const int64_t *strides, int ndim);
static inline int pf_tensor_is_contiguous(const PfTensor *t)
{
    return pf_is_contiguous_shape(t->shape, t->strides, t->ndim);
}
void pf_contiguous_strides(const int64_t *shape, int ndim, int64_t *strides);

/* New contiguous tensor with uninitialised memory. */
PfTensor *pf_tensor_empty(int ndim, const int64_t *shape, pf_dtype dtype, pf_device dev,
                          const char *op);
/* New tensor sharing `base`'s storage with the given geometry. */
PfTensor *pf_tensor_view(PfTensor *base, int ndim, const int64_t *shape,
                         const int64_t *strides, int64_t offset);
PfTensor *pf_tensor_wrap(pf_storage *s, pf_dtype dtype, int ndim, const int64_t *shape,
                         const int64_t *strides, int64_t offset);
/* x's elements as a contiguous 1-D tensor: a view when x is contiguous, else a copy. */
PfTensor *pf_tensor_flat(PfTensor *x, const char *op);
/* A tensor argument (tensor, array, list, scalar) as a new reference, sharing memory when it can. */
#define pf_as_tensor_arg(o, op) pf_as_tensor((o), 0, PF_FLOAT32, (op))
/* Contiguous copy (always a new storage) in dtype `dtype`. */
PfTensor *pf_tensor_copy_as(PfTensor *src, pf_dtype dtype, const char *op);
/* Copy src into dst, broadcasting src to dst's shape and casting. */
int pf_tensor_assign(PfTensor *dst, PfTensor *src, const char *op);
int pf_tensor_check_writable(PfTensor *t, const char *op);
/* True if the byte ranges two tensors touch intersect (same storage only). */
int pf_tensor_may_overlap(const PfTensor *a, const PfTensor *b);
int pf_tensor_fill_scalar(PfTensor *dst, PyObject *value, const char *op);

/* Shape helpers: parse a shape from args `(2, 3)`, `((2, 3),)` or a sequence. */
int pf_parse_shape(PyObject *obj, const char *op, int64_t *shape, int *ndim);
int pf_check_shape(const int64_t *shape, int ndim, const char *op);
PyObject *pf_shape_tuple(const int64_t *shape, int ndim);
/* Byte count of a tensor of this shape, or -1 with ValueError on overflow. */
int64_t pf_checked_nbytes(const int64_t *shape, int ndim, int itemsize, const char *op);
int pf_broadcast_shapes(const int64_t *a, int na, const int64_t *b, int nb, int64_t *out,
                        int *nout, const char *op);
int pf_normalize_axis(Py_ssize_t *axis, int ndim, const char *op);
/* Argument readers that name the op and the argument in their errors. */
int pf_int_arg(PyObject *o, const char *op, const char *what, int64_t *out);
int pf_double_arg(PyObject *o, const char *op, const char *what, double *out);
/* A double formatted for an error message (PyErr_Format has no %g). */
const char *pf_fmt_double(double v, char *buf, size_t size);
/* Format "(2, 3)" into buf. */
const char *pf_shape_str(const int64_t *shape, int ndim, char *buf, size_t size);
#define PF_SHAPE_STRLEN 200

/* Converting Python values.  `pf_tensor_from_data` is pf.tensor. */
PyObject *pf_tensor_from_data(PyObject *data, int has_dtype, pf_dtype dtype, const char *op);
/* Any tensor-like (tensor, scalar, list, array) as a tensor; new reference. */
PfTensor *pf_as_tensor(PyObject *obj, int has_dtype, pf_dtype dtype, const char *op);
/* Python scalar -> one element written in dtype. */
int pf_scalar_to_raw(PyObject *obj, pf_dtype dtype, void *out, const char *op);
PyObject *pf_raw_to_scalar(const char *p, pf_dtype dtype);

/* --------------------------------------------- devices (transfer.c) */

/*
 * Tensors on a CUDA device.  Until the CUDA kernels exist, pyframe can place
 * tensors on a device, copy them between devices and view them (reshape,
 * transpose, slicing); arithmetic on them raises through pf_no_cuda_kernel.
 */

/* NotImplementedError "<op>: the CUDA kernel for <what> is not written yet ..."; -1. */
int pf_no_cuda_kernel(const char *op, const char *what, pf_device dev);
/* 0 for a cpu tensor; otherwise pf_no_cuda_kernel(op, what, its device). */
int pf_require_cpu(const PfTensor *t, const char *op, const char *what);
/*
 * A new contiguous tensor with src's values on dev in dtype.  A dtype
 * conversion runs on the cpu side of a copy (on the host before a
 * cpu -> cuda copy, after a cuda -> cpu one); between two CUDA tensors it
 * needs a kernel that is not written yet.  dev must be resolved.
 */
PfTensor *pf_tensor_to_device(PfTensor *src, pf_device dev, pf_dtype dtype, const char *op);
/* pf_tensor_to_device without waiting when src is pinned (a contiguous host->device copy). */
PfTensor *pf_tensor_to_device_async(PfTensor *src, pf_device dev, pf_dtype dtype,
                                    const char *op);
/* A copy of a cpu tensor in pinned (page-locked) memory: needs a usable CUDA. */
PfTensor *pf_tensor_pin_memory(PfTensor *t, const char *op);
int pf_storage_is_pinned(const pf_storage *s);
/* t itself (new reference) on the cpu, else a copy of it on the cpu. */
PfTensor *pf_tensor_on_host(PfTensor *t, const char *op);
/* Copy nbytes between the memory of two devices (either may be the cpu). */
int pf_copy_bytes(void *dst, pf_device dst_dev, const void *src, pf_device src_dev,
                  size_t nbytes, const char *op);
/* Copy src into dst element by element on one CUDA device; shapes as pf_tensor_assign
   (src broadcast to dst), both on dst's device; another dtype is converted on the way. */
int pf_device_assign(PfTensor *dst, PfTensor *src, const char *op);
/* Set every element of a CUDA tensor to the raw value (itemsize bytes). */
int pf_device_fill(PfTensor *dst, const void *raw, const char *op);
/* A new contiguous tensor of zeros on dev (which must be resolved). */
PfTensor *pf_tensor_zeros(int ndim, const int64_t *shape, pf_dtype dtype, pf_device dev,
                          const char *op);
extern PyMethodDef pf_transfer_module_methods[];

/* ------------------------------------------------------------------ bridge */

int pf_numpy_ensure(void);
int pf_is_ndarray(PyObject *obj);
/* True for an array that owns its memory (a fresh copy nobody else sees). */
int pf_ndarray_owns_data(PyObject *arr);
PyObject *pf_from_numpy_impl(PyObject *arr, const char *op, int allow_copy);
PyObject *pf_tensor_to_numpy(PfTensor *t, const char *op);
int pf_bridge_init(PyObject *module);
extern PyBufferProcs pf_tensor_as_buffer;
extern PyMethodDef pf_bridge_methods[];
extern PyGetSetDef pf_bridge_getset[];
extern PyMethodDef pf_bridge_module_methods[];
extern PyObject *pf_pandas_hook;   /* set from Python: pyframe._pandas.to_numpy */

/* ------------------------------------------------------------ method lists */

extern PyMethodDef pf_view_methods[];
extern PyGetSetDef pf_view_getset[];
int pf_tensor_type_init(PyObject *module);
extern PyMethodDef pf_create_module_methods[];
extern PyMethodDef pf_random_module_methods[];
/* _cuda_host_softmax (reduce.c): the CUDA softmax kernel run on the host, for tests */
extern PyMethodDef pf_softmax_cuda_host_methods[];
/* _cuda_host_layer_norm(_bwd) (nn_ops.c): the CUDA layer_norm kernels on the host */
extern PyMethodDef pf_layer_norm_cuda_host_methods[];
extern PyMethodDef pf_nn_losses_cuda_host_methods[];
extern PyMethodDef pf_bench_methods[];
extern PyMappingMethods pf_tensor_as_mapping;
PyObject *pf_tensor_getitem(PyObject *self, PyObject *key);
int pf_tensor_setitem(PyObject *self, PyObject *key, PyObject *value);

/* Shared by the constructors in create.c and random.c. */
int pf_parse_creation(PyObject *args, PyObject *kwds, const char *op, int64_t *shape, int *ndim,
                      pf_dtype *dtype, int *has_dtype, int *requires_grad, pf_device *dev);
PyObject *pf_finish_creation(PyObject *t, int requires_grad, const char *op);
/* t (stolen) on dev: itself when it is there, else a copy there; NULL passes through. */
PyObject *pf_place_on(PyObject *t, pf_device dev, const char *op);

/* ------------------------------------------------------------- optimizers */

/* _optim_step and _optim_grad_norm (optim.c): the fused updates pyframe.optim calls */
extern PyMethodDef pf_optim_module_methods[];

/* ------------------------------------------------------------------- misc */

uint64_t pf_random_next_offset(uint64_t count);
/* The generator's seed (with pf_random_next_offset: the state a draw starts from). */
uint64_t pf_random_seed(void);
/* The two uniforms in [0, 1) of Philox block `block` under `seed`: the values pf.rand
   gives elements 2j and 2j + 1 of a draw at offset o, for block = o + j. */
void pf_random_uniform_pair(uint64_t seed, uint64_t block, double out[2]);
/*
 * The mask of dropout(x, p) for x on a CUDA device, drawn there from the
 * generator (advancing it as the cpu's mask does), in x's dtype: the
 * values of the cpu's mask for the same state.  New reference, or NULL.
 */
PfTensor *pf_dropout_mask_cuda(const PfTensor *x, double p, const char *op);
int pf_get_num_threads(void);

/*
 * Errors.  Every message names the op, what it received, what it expected
 * and how to fix it; these wrappers only save typing.
 */
#define PF_ERR(exc, ...) (PyErr_Format(exc, __VA_ARGS__), NULL)
#define PF_ERRI(exc, ...) (PyErr_Format(exc, __VA_ARGS__), -1)

#endif /* PYFRAME_H */
