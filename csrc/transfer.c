/*
 * transfer.c -- tensors on CUDA devices: copies between the cpu and the
 * devices and between devices, copies and fills within a device (through
 * the data-movement kernels of libpyframe_cuda.so), the error for work that
 * has no CUDA kernel yet, and _C._fake_cuda_tensor for the tests.
 *
 * A copy between the cpu and a device moves contiguous bytes only: a
 * non-contiguous source is first made contiguous on its own device (on the
 * host for cpu -> cuda, by the strided-copy kernel for cuda -> cpu), and a
 * dtype conversion runs on the host side of the copy.  Everything that
 * would compute on a device raises pf_no_cuda_kernel until the kernels
 * exist: pyframe never moves work to the cpu behind the user's back.
 */
#include "autograd.h"
#include "cuda_backend.h"

#include <sys/mman.h>
#include <unistd.h>

int pf_no_cuda_kernel(const char *op, const char *what, pf_device dev)
{
    char d[32];
    return PF_ERRI(PyExc_NotImplementedError,
                   "%s: the CUDA kernel for %s is not written yet (the tensor is on %s); move "
                   "the tensors to the cpu with .cpu() to run it there", op, what,
                   pf_device_str(dev, d, sizeof(d)));
}

int pf_require_cpu(const PfTensor *t, const char *op, const char *what)
{
    if (pf_tensor_on_cpu(t)) {
        return 0;
    }
    return pf_no_cuda_kernel(op, what != NULL ? what : op, t->storage->device);
}

/* ------------------------------------------------------------ byte copies */

static int lib_device(pf_device d)
{
    return d.type == PF_DEV_CPU ? PF_CUDA_HOST : d.index;
}

/*
 * nbytes from src (at byte offset src_off) to dst (at dst_off).  A copy that
 * waits for the device runs without the GIL; both storages count as
 * exported meanwhile, so that no other thread can resize_ them away.
 */
static int copy_storage_bytes(pf_storage *dst, size_t dst_off, pf_storage *src, size_t src_off,
                              size_t nbytes, const char *op)
{
    if (nbytes == 0) {
        return 0;
    }
    if (dst->device.type == PF_DEV_CPU && src->device.type == PF_DEV_CPU) {
        memcpy(dst->data + dst_off, src->data + src_off, nbytes);
        return 0;
    }
    const PfCudaLib *lib = pf_cuda_lib(op);
    if (lib == NULL) {
        return -1;
    }
    int status;
    dst->exports++;
    src->exports++;
    Py_BEGIN_ALLOW_THREADS
    status = lib->memcpy(dst->data + dst_off, lib_device(dst->device), src->data + src_off,
                         lib_device(src->device), nbytes);
    Py_END_ALLOW_THREADS
    dst->exports--;
    src->exports--;
    return status == 0 ? 0 : pf_cuda_raise(lib, op, status);
}

int pf_copy_bytes(void *dst, pf_device dst_dev, const void *src, pf_device src_dev,
                  size_t nbytes, const char *op)
{
    if (nbytes == 0) {
        return 0;
    }
    if (dst_dev.type == PF_DEV_CPU && src_dev.type == PF_DEV_CPU) {
        memcpy(dst, src, nbytes);
        return 0;
    }
    const PfCudaLib *lib = pf_cuda_lib(op);
    if (lib == NULL) {
        return -1;
    }
    int status = lib->memcpy(dst, lib_device(dst_dev), src, lib_device(src_dev), nbytes);
    return status == 0 ? 0 : pf_cuda_raise(lib, op, status);
}

/* --------------------------------------------------- within one device */

/*
 * The geometry of dst = src with src broadcast to dst's shape (src has at
 * most dst's dimensions, aligned to the right).  Returns 1 when no
 * broadcast happens and both are contiguous: one memcpy does it.
 */
static int assign_geometry(const PfTensor *dst, const PfTensor *src, PfCudaStrided *g)
{
    int n = dst->ndim, lead = dst->ndim - src->ndim;
    int same = lead == 0;
    g->ndim = n;
    for (int k = 0; k < n; k++) {
        int sk = k - lead;
        int broadcast = sk < 0 || (src->shape[sk] == 1 && dst->shape[k] != 1);
        g->shape[k] = dst->shape[k];
        g->dst_strides[k] = dst->strides[k];
        g->src_strides[k] = broadcast ? 0 : src->strides[sk];
        same &= !broadcast;
    }
    return same && pf_tensor_is_contiguous(dst) && pf_tensor_is_contiguous(src);
}

int pf_device_assign(PfTensor *dst, PfTensor *src, const char *op)
{
    /* of another dtype: the cast kernel (elementwise.cu) converts on the way */
    const PfCudaLib *lib = pf_cuda_lib(op);
    if (lib == NULL) {
        return -1;
    }
    int64_t numel = pf_numel(dst->shape, dst->ndim);
    if (numel == 0) {
        return 0;
    }
    int isz = pf_dtypes[dst->dtype].itemsize;
    int device = dst->storage->device.index;
    PfCudaStrided g;
    int status;
    int plain = assign_geometry(dst, src, &g);
    if (src->dtype != dst->dtype) {
        status = lib->cast_strided(device, pf_tensor_data(dst), (int)dst->dtype,
                                   pf_tensor_data(src), (int)src->dtype, &g);
    }
    else if (plain) {
        status = lib->memcpy(pf_tensor_data(dst), device, pf_tensor_data(src), device,
                             (size_t)numel * (size_t)isz);
    }
    else {
        status = lib->copy_strided(device, pf_tensor_data(dst), pf_tensor_data(src), isz, &g);
    }
    if (status != 0) {
        return pf_cuda_raise(lib, op, status);
    }
    dst->storage->version++;
    return 0;
}

int pf_device_fill(PfTensor *dst, const void *raw, const char *op)
{
    const PfCudaLib *lib = pf_cuda_lib(op);
    if (lib == NULL) {
        return -1;
    }
    PfCudaStrided g;
    g.ndim = dst->ndim;
    for (int k = 0; k < dst->ndim; k++) {
        g.shape[k] = dst->shape[k];
        g.dst_strides[k] = dst->strides[k];
        g.src_strides[k] = 0;
    }
    int status = lib->fill_strided(dst->storage->device.index, pf_tensor_data(dst), raw,
                                   pf_dtypes[dst->dtype].itemsize, &g);
    if (status != 0) {
        return pf_cuda_raise(lib, op, status);
    }
    dst->storage->version++;
    return 0;
}

PfTensor *pf_tensor_zeros(int ndim, const int64_t *shape, pf_dtype dtype, pf_device dev,
                          const char *op)
{
    PfTensor *t = pf_tensor_empty(ndim, shape, dtype, dev, op);
    if (t == NULL) {
        return NULL;
    }
    if (dev.type == PF_DEV_CPU) {
        memset(t->storage->data, 0, t->storage->nbytes);
        return t;
    }
    static const char zero[8] = {0};
    if (pf_device_fill(t, zero, op) < 0) {
        Py_DECREF(t);
        return NULL;
    }
    return t;
}

/* ----------------------------------------------------- between devices */

/* src itself when contiguous, else a contiguous copy on its own device; new reference */
static PfTensor *contiguous_here(PfTensor *src, const char *op)
{
    if (pf_tensor_is_contiguous(src)) {
        return (PfTensor *)Py_NewRef(src);
    }
    return pf_tensor_copy_as(src, src->dtype, op);
}

/* The contiguous bytes of c (a contiguous tensor) into a new contiguous tensor on dev. */
static PfTensor *copy_contiguous_to(PfTensor *c, pf_device dev, const char *op)
{
    PfTensor *out = pf_tensor_empty(c->ndim, c->shape, c->dtype, dev, op);
    if (out == NULL) {
        return NULL;
    }
    int isz = pf_dtypes[c->dtype].itemsize;
    size_t nbytes = (size_t)pf_numel(c->shape, c->ndim) * (size_t)isz;
    if (copy_storage_bytes(out->storage, 0, c->storage, (size_t)c->offset * (size_t)isz, nbytes,
                           op) < 0) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

PfTensor *pf_tensor_to_device(PfTensor *src, pf_device dev, pf_dtype dtype, const char *op)
{
    pf_device from = src->storage->device;
    if (pf_device_eq(from, dev)) {
        return pf_tensor_copy_as(src, dtype, op);
    }
    PfTensor *c, *out;
    if (from.type == PF_DEV_CPU) {
        /* convert and make contiguous on the host, then one copy */
        c = src->dtype == dtype ? contiguous_here(src, op) : pf_tensor_copy_as(src, dtype, op);
        if (c == NULL) {
            return NULL;
        }
        out = copy_contiguous_to(c, dev, op);
        Py_DECREF(c);
        return out;
    }
    /* to another device: convert on this one first (the cast kernel), then one copy */
    c = dev.type != PF_DEV_CPU && src->dtype != dtype ? pf_tensor_copy_as(src, dtype, op)
                                                       : contiguous_here(src, op);
    if (c == NULL) {
        return NULL;
    }
    out = copy_contiguous_to(c, dev, op);
    Py_DECREF(c);
    if (out != NULL && out->dtype != dtype) {
        /* cuda -> cpu: convert on the host */
        Py_SETREF(out, pf_tensor_copy_as(out, dtype, op));
    }
    return out;
}

/* ------------------------------------------------------- pinned host memory */

/* A pinned storage goes back to the library's pinned allocator (it is only made once CUDA works). */
static void pinned_release(pf_storage *s)
{
    const PfCudaLib *lib = pf_cuda_loaded();
    if (lib != NULL) {
        lib->host_free(s->data);
    }
}

int pf_storage_is_pinned(const pf_storage *s) { return s->release == pinned_release; }

PfTensor *pf_tensor_pin_memory(PfTensor *t, const char *op)
{
    if (!pf_tensor_on_cpu(t)) {
        char d[32];
        return PF_ERR(PyExc_ValueError,
                      "%s: only tensors on the cpu can be pinned; this one is on %s", op,
                      pf_device_str(t->storage->device, d, sizeof(d)));
    }
    if (pf_storage_is_pinned(t->storage)) {
        return (PfTensor *)Py_NewRef(t);
    }
    const PfCudaLib *lib = pf_cuda_lib(op);
    if (lib == NULL) {
        return NULL;
    }
    PfTensor *c = contiguous_here(t, op);
    if (c == NULL) {
        return NULL;
    }
    size_t nbytes = (size_t)pf_numel(c->shape, c->ndim) * (size_t)pf_dtypes[c->dtype].itemsize;
    void *p = NULL;
    int status = lib->host_alloc(nbytes, &p);
    if (status != 0) {
        Py_DECREF(c);
        pf_cuda_raise(lib, op, status);
        return NULL;
    }
    pf_device cpu = {PF_DEV_CPU, 0};
    pf_storage *st = pf_storage_foreign_on((char *)p, nbytes, NULL, 0, cpu);
    if (st == NULL) {
        lib->host_free(p);
        Py_DECREF(c);
        return NULL;
    }
    st->release = pinned_release;
    int64_t strides[PF_MAX_DIMS];
    pf_contiguous_strides(c->shape, c->ndim, strides);
    PfTensor *out = pf_tensor_wrap(st, c->dtype, c->ndim, c->shape, strides, 0);
    pf_storage_decref(st);
    if (out != NULL && nbytes > 0) {
        memcpy(st->data, c->storage->data + (size_t)c->offset * pf_dtypes[c->dtype].itemsize,
               nbytes);
    }
    Py_DECREF(c);
    return out;
}

PfTensor *pf_tensor_to_device_async(PfTensor *src, pf_device dev, pf_dtype dtype,
                                    const char *op)
{
    /* only a pinned, contiguous source of the same dtype can be copied without waiting */
    if (!(pf_tensor_on_cpu(src) && dev.type == PF_DEV_CUDA && src->dtype == dtype &&
          pf_storage_is_pinned(src->storage) && pf_tensor_is_contiguous(src))) {
        return pf_tensor_to_device(src, dev, dtype, op);
    }
    const PfCudaLib *lib = pf_cuda_lib(op);
    if (lib == NULL) {
        return NULL;
    }
    PfTensor *out = pf_tensor_empty(src->ndim, src->shape, src->dtype, dev, op);
    if (out == NULL) {
        return NULL;
    }
    int isz = pf_dtypes[src->dtype].itemsize;
    size_t nbytes = (size_t)pf_numel(src->shape, src->ndim) * (size_t)isz;
    int status = lib->memcpy_h2d_async(out->storage->data, dev.index,
                                       src->storage->data + (size_t)src->offset * (size_t)isz,
                                       src->storage->data, nbytes);
    if (status != 0) {
        Py_DECREF(out);
        pf_cuda_raise(lib, op, status);
        return NULL;
    }
    return out;
}

PfTensor *pf_tensor_on_host(PfTensor *t, const char *op)
{
    if (pf_tensor_on_cpu(t)) {
        return (PfTensor *)Py_NewRef(t);
    }
    pf_device cpu = {PF_DEV_CPU, 0};
    return pf_tensor_to_device(t, cpu, t->dtype, op);
}

/* ------------------------------------------------- _C._fake_cuda_tensor */

typedef struct {
    void *addr;
    size_t len;
} fake_mapping;

static void fake_release(pf_storage *s)
{
    fake_mapping *m = s->release_ctx;
    munmap(m->addr, m->len);
    PyMem_RawFree(m);
}

/*
 * _fake_cuda_tensor(shape, dtype="float32", index=0): a tensor that says it
 * lives on cuda:<index>, over host pages mapped with no access at all, so
 * that the tests can check on a machine without a GPU that every path
 * refuses such a tensor (or only reads its geometry) before touching its
 * memory: a missed check is a segmentation fault, not a wrong answer.  It
 * is not a way to run anything on a GPU.
 */
static PyObject *py_fake_cuda_tensor(PyObject *Py_UNUSED(m), PyObject *args, PyObject *kwds)
{
    const char *op = "_fake_cuda_tensor";
    PyObject *shape_obj, *dtype_obj = Py_None;
    int index = 0;
    static char *kwlist[] = {"shape", "dtype", "index", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|Oi:_fake_cuda_tensor", kwlist, &shape_obj,
                                     &dtype_obj, &index)) {
        return NULL;
    }
    int64_t shape[PF_MAX_DIMS];
    int ndim;
    pf_dtype dtype = PF_FLOAT32;
    if (pf_parse_shape(shape_obj, op, shape, &ndim) < 0 ||
        (dtype_obj != Py_None && pf_dtype_from_object(dtype_obj, op, &dtype) < 0)) {
        return NULL;
    }
    if (index < 0 || index >= PF_CUDA_MAX_DEVICES) {
        return PF_ERR(PyExc_ValueError, "%s: index must be 0 to %d; got %d", op,
                      PF_CUDA_MAX_DEVICES - 1, index);
    }
    int64_t nbytes = pf_checked_nbytes(shape, ndim, pf_dtypes[dtype].itemsize, op);
    if (nbytes < 0) {
        return NULL;
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    fake_mapping *fm = PyMem_RawMalloc(sizeof(fake_mapping));
    if (fm == NULL) {
        return PyErr_NoMemory();
    }
    fm->len = ((size_t)nbytes + page) / page * page;
    fm->addr = mmap(NULL, fm->len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (fm->addr == MAP_FAILED) {
        PyMem_RawFree(fm);
        return PyErr_NoMemory();
    }
    pf_device dev = {PF_DEV_CUDA, (int16_t)index};
    pf_storage *s = pf_storage_foreign_on(fm->addr, (size_t)nbytes, NULL, 0, dev);
    if (s == NULL) {
        munmap(fm->addr, fm->len);
        PyMem_RawFree(fm);
        return NULL;
    }
    s->release = fake_release;
    s->release_ctx = fm;
    int64_t strides[PF_MAX_DIMS];
    pf_contiguous_strides(shape, ndim, strides);
    PfTensor *t = pf_tensor_wrap(s, dtype, ndim, shape, strides, 0);
    pf_storage_decref(s);
    return (PyObject *)t;
}

/* _resolve_device(device, caller): the pf.device a tensor sent to `device` lands on. */
static PyObject *py_resolve_device(PyObject *Py_UNUSED(m), PyObject *args)
{
    PyObject *obj;
    const char *caller;
    if (!PyArg_ParseTuple(args, "Os:_resolve_device", &obj, &caller)) {
        return NULL;
    }
    pf_device dev;
    if (pf_device_from_object(obj, caller, &dev) < 0 || pf_device_resolve(&dev, caller) < 0) {
        return NULL;
    }
    return pf_device_new(dev);
}

PyMethodDef pf_transfer_module_methods[] = {
    {"_resolve_device", py_resolve_device, METH_VARARGS,
     "_resolve_device(device, caller): the device tensors sent to `device` land on ('cuda' "
     "becomes the current device); raises naming caller when it cannot be used"},
    {"_fake_cuda_tensor", (PyCFunction)(void (*)(void))py_fake_cuda_tensor,
     METH_VARARGS | METH_KEYWORDS,
     "_fake_cuda_tensor(shape, dtype='float32', index=0): a tensor that claims to live on "
     "cuda:<index> over host memory that cannot be read or written, for testing that device "
     "tensors are refused before their memory is touched (tests only)"},
    {NULL, NULL, 0, NULL},
};
