/*
 * storage.c -- reference-counted memory, the 64-byte-aligned CPU allocator
 * with a free list for small blocks, device storages from the CUDA caching
 * allocator, and the live-memory counters per device that pf.memory_stats()
 * reports (the leak tests read them).
 *
 * Small blocks are recycled because a small model allocates and frees the
 * same few sizes thousands of times a second, and malloc + memset-free
 * reuse is measurably cheaper than aligned_alloc each time.
 *
 * A CUDA storage takes its block from libpyframe_cuda.so's caching
 * allocator (pf_cuda_alloc) and gives it back on its last reference.  The
 * cpu path pays one branch on the storage's device for this, on a field in
 * the same cache line as the reference count it touches anyway.
 */
#include "cuda_backend.h"
#include <stdlib.h>

/* Blocks up to 2^FREE_MAX_SHIFT bytes are recycled, in power-of-two classes. */
#define FREE_MIN_SHIFT 6
#define FREE_MAX_SHIFT 20
#define FREE_CLASSES (FREE_MAX_SHIFT - FREE_MIN_SHIFT + 1)
#define FREE_PER_CLASS 32

static struct {
    void *blocks[FREE_PER_CLASS];
    int count;
} free_lists[FREE_CLASSES];

static struct {
    int64_t live_storages;
    int64_t live_bytes;     /* bytes handed out by our allocator and not yet returned */
    int64_t peak_bytes;
    int64_t cached_bytes;   /* bytes parked in the free lists */
    int64_t foreign_storages;
    int64_t foreign_bytes;  /* memory borrowed from NumPy, buffers and DLPack */
    int64_t alloc_calls;
    int64_t free_list_hits;
} stats;

/* CUDA storages, per device index; `used` once a storage has lived there */
static struct {
    int used;
    int64_t live_storages;
    int64_t live_bytes;     /* bytes asked of the caching allocator and not yet returned */
    int64_t peak_bytes;
    int64_t foreign_storages;
    int64_t foreign_bytes;  /* device memory borrowed through DLPack */
    int64_t free_failures;  /* blocks the allocator refused back (it did not hand them out) */
} cuda_stats[PF_CUDA_MAX_DEVICES];

int64_t pf_live_tensors;    /* maintained by tensor.c */

static int size_class(size_t nbytes)
{
    int shift = FREE_MIN_SHIFT;
    while (((size_t)1 << shift) < nbytes) {
        shift++;
    }
    return shift > FREE_MAX_SHIFT ? -1 : shift - FREE_MIN_SHIFT;
}

static size_t class_bytes(int cls) { return (size_t)1 << (cls + FREE_MIN_SHIFT); }

static void *cpu_alloc(size_t nbytes, size_t *reserved)
{
    int cls = size_class(nbytes);
    stats.alloc_calls++;
    if (cls >= 0) {
        *reserved = class_bytes(cls);
        if (free_lists[cls].count > 0) {
            stats.free_list_hits++;
            stats.cached_bytes -= (int64_t)*reserved;
            return free_lists[cls].blocks[--free_lists[cls].count];
        }
    }
    else {
        /* aligned_alloc wants a multiple of the alignment */
        *reserved = (nbytes + PF_ALIGN - 1) / PF_ALIGN * PF_ALIGN;
    }
    return aligned_alloc(PF_ALIGN, *reserved);
}

static void cpu_free(void *p, size_t reserved)
{
    int cls = size_class(reserved);
    if (cls >= 0 && class_bytes(cls) == reserved && free_lists[cls].count < FREE_PER_CLASS) {
        free_lists[cls].blocks[free_lists[cls].count++] = p;
        stats.cached_bytes += (int64_t)reserved;
        return;
    }
    free(p);
}

/* The reserved size is what cpu_alloc rounded nbytes to; recompute it the same way. */
static size_t reserved_for(size_t nbytes)
{
    int cls = size_class(nbytes);
    return cls >= 0 ? class_bytes(cls) : (nbytes + PF_ALIGN - 1) / PF_ALIGN * PF_ALIGN;
}

/* A storage on a CUDA device, from the caching allocator. */
static pf_storage *cuda_storage_new(size_t nbytes, pf_device dev, const char *op)
{
    if (pf_device_resolve(&dev, op) < 0) {
        return NULL;
    }
    const PfCudaLib *lib = pf_cuda_loaded();
    pf_storage *s = PyMem_Calloc(1, sizeof(pf_storage));
    if (s == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    /* at least one byte, as on the cpu: an empty tensor still has a real address */
    void *ptr = NULL;
    int status = lib->alloc(nbytes ? nbytes : 1, dev.index, &ptr);
    if (status != 0) {
        PyMem_Free(s);
        pf_cuda_raise(lib, op, status);
        return NULL;
    }
    s->refcnt = 1;
    s->data = ptr;
    s->nbytes = nbytes;
    s->device = dev;
    cuda_stats[dev.index].used = 1;
    cuda_stats[dev.index].live_storages++;
    cuda_stats[dev.index].live_bytes += (int64_t)nbytes;
    if (cuda_stats[dev.index].live_bytes > cuda_stats[dev.index].peak_bytes) {
        cuda_stats[dev.index].peak_bytes = cuda_stats[dev.index].live_bytes;
    }
    return s;
}

/*
 * Only reached for a storage that cuda_storage_new made, so the library is
 * loaded.  A refused free cannot raise here (a tensor's dealloc): it is
 * counted instead, in memory_stats()["cuda:N"]["free_failures"].
 */
static void cuda_storage_free(pf_storage *s)
{
    const PfCudaLib *lib = pf_cuda_loaded();
    int i = s->device.index;
    cuda_stats[i].live_storages--;
    cuda_stats[i].live_bytes -= (int64_t)s->nbytes;
    if (lib == NULL || lib->free(s->data) != 0) {
        cuda_stats[i].free_failures++;
    }
}

pf_storage *pf_storage_new(size_t nbytes, pf_device dev, const char *op)
{
    if (dev.type != PF_DEV_CPU) {
        return cuda_storage_new(nbytes, dev, op);
    }
    if (nbytes > (size_t)PY_SSIZE_T_MAX / 2) {
        PyErr_Format(PyExc_MemoryError,
                     "%s: cannot allocate %zu bytes: larger than the address space allows; "
                     "use a smaller shape", op, nbytes);
        return NULL;
    }
    pf_storage *s = PyMem_Calloc(1, sizeof(pf_storage));
    if (s == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    size_t reserved;
    s->data = cpu_alloc(nbytes ? nbytes : 1, &reserved);
    if (s->data == NULL) {
        PyMem_Free(s);
        PyErr_Format(PyExc_MemoryError,
                     "%s: out of memory allocating %zu bytes on the cpu; use a smaller shape or "
                     "batch, or free tensors you no longer need", op, nbytes);
        return NULL;
    }
    s->refcnt = 1;
    s->nbytes = nbytes;
    s->device = dev;
    stats.live_storages++;
    stats.live_bytes += (int64_t)nbytes;
    if (stats.live_bytes > stats.peak_bytes) {
        stats.peak_bytes = stats.live_bytes;
    }
    return s;
}

pf_storage *pf_storage_foreign(char *data, size_t nbytes, PyObject *owner, int readonly)
{
    pf_device cpu = {PF_DEV_CPU, 0};
    return pf_storage_foreign_on(data, nbytes, owner, readonly, cpu);
}

/* dev must be resolved: the cpu, or a CUDA index below PF_CUDA_MAX_DEVICES */
pf_storage *pf_storage_foreign_on(char *data, size_t nbytes, PyObject *owner, int readonly,
                                  pf_device dev)
{
    pf_storage *s = PyMem_Calloc(1, sizeof(pf_storage));
    if (s == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    s->refcnt = 1;
    s->data = data;
    s->nbytes = nbytes;
    s->device = dev;
    s->owner = Py_XNewRef(owner);
    s->readonly = readonly;
    if (dev.type == PF_DEV_CPU) {
        stats.foreign_storages++;
        stats.foreign_bytes += (int64_t)nbytes;
    }
    else {
        cuda_stats[dev.index].used = 1;
        cuda_stats[dev.index].foreign_storages++;
        cuda_stats[dev.index].foreign_bytes += (int64_t)nbytes;
    }
    return s;
}

static int storage_is_foreign(const pf_storage *s)
{
    return s->owner != NULL || s->view != NULL || s->release != NULL;
}

void pf_storage_decref(pf_storage *s)
{
    if (s == NULL || --s->refcnt > 0) {
        return;
    }
    if (storage_is_foreign(s)) {
        if (s->device.type == PF_DEV_CPU) {
            stats.foreign_storages--;
            stats.foreign_bytes -= (int64_t)s->nbytes;
        }
        else {
            cuda_stats[s->device.index].foreign_storages--;
            cuda_stats[s->device.index].foreign_bytes -= (int64_t)s->nbytes;
        }
        if (s->view != NULL) {
            PyBuffer_Release(s->view);
            PyMem_Free(s->view);
        }
        if (s->release != NULL) {
            s->release(s);
        }
        Py_XDECREF(s->owner);
    }
    else if (s->device.type != PF_DEV_CPU) {
        cuda_storage_free(s);
    }
    else {
        stats.live_storages--;
        stats.live_bytes -= (int64_t)s->nbytes;
        cpu_free(s->data, reserved_for(s->nbytes ? s->nbytes : 1));
    }
    PyMem_Free(s);
}

int pf_storage_resize(pf_storage *s, size_t nbytes, const char *op)
{
    if (s->exports > 0) {
        PyErr_Format(PyExc_BufferError,
                     "%s: cannot resize: %zd buffer export(s) of this tensor's memory are alive "
                     "(a NumPy array or memoryview made from it); delete them first, or resize "
                     "a clone()", op, s->exports);
        return -1;
    }
    if (storage_is_foreign(s)) {
        return PF_ERRI(PyExc_RuntimeError,
                       "%s: cannot resize memory borrowed from another library (NumPy, a "
                       "buffer or DLPack); resize a clone() instead", op);
    }
    if (nbytes <= s->nbytes) {
        return 0;
    }
    pf_storage *fresh = pf_storage_new(nbytes, s->device, op);
    if (fresh == NULL) {
        return -1;
    }
    if (s->device.type == PF_DEV_CPU) {
        memcpy(fresh->data, s->data, s->nbytes);
    }
    else if (pf_copy_bytes(fresh->data, s->device, s->data, s->device, s->nbytes, op) < 0) {
        pf_storage_decref(fresh);
        return -1;
    }
    /* swap the blocks so that every view of `s` sees the new memory */
    char *old = s->data;
    size_t oldn = s->nbytes;
    s->data = fresh->data;
    s->nbytes = fresh->nbytes;
    fresh->data = old;
    fresh->nbytes = oldn;
    s->version++;
    pf_storage_decref(fresh);
    return 0;
}

/*
 * {"cpu": {...}, "cuda:N": {...}}: a CUDA device appears once a storage has
 * lived on it.  Its counters are pyframe's storages; the caching
 * allocator's own (blocks, cache) are pf.cuda.memory_stats().
 */
PyObject *pf_memory_stats(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(noargs))
{
    PyObject *d = Py_BuildValue("{s:{s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L}}", "cpu",
                         "live_tensors", (long long)pf_live_tensors,
                         "live_storages", (long long)stats.live_storages,
                         "live_bytes", (long long)stats.live_bytes,
                         "peak_bytes", (long long)stats.peak_bytes,
                         "cached_bytes", (long long)stats.cached_bytes,
                         "foreign_storages", (long long)stats.foreign_storages,
                         "foreign_bytes", (long long)stats.foreign_bytes,
                         "alloc_calls", (long long)stats.alloc_calls,
                         "free_list_hits", (long long)stats.free_list_hits);
    for (int i = 0; d != NULL && i < PF_CUDA_MAX_DEVICES; i++) {
        if (!cuda_stats[i].used) {
            continue;
        }
        char key[16];
        snprintf(key, sizeof(key), "cuda:%d", i);
        PyObject *v = Py_BuildValue("{s:L,s:L,s:L,s:L,s:L,s:L}",
                                    "live_storages", (long long)cuda_stats[i].live_storages,
                                    "live_bytes", (long long)cuda_stats[i].live_bytes,
                                    "peak_bytes", (long long)cuda_stats[i].peak_bytes,
                                    "foreign_storages", (long long)cuda_stats[i].foreign_storages,
                                    "foreign_bytes", (long long)cuda_stats[i].foreign_bytes,
                                    "free_failures", (long long)cuda_stats[i].free_failures);
        if (v == NULL || PyDict_SetItemString(d, key, v) < 0) {
            Py_XDECREF(v);
            Py_CLEAR(d);
            break;
        }
        Py_DECREF(v);
    }
    return d;
}

PyObject *pf_empty_cache(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(noargs))
{
    for (int c = 0; c < FREE_CLASSES; c++) {
        while (free_lists[c].count > 0) {
            free(free_lists[c].blocks[--free_lists[c].count]);
            stats.cached_bytes -= (int64_t)class_bytes(c);
        }
    }
    Py_RETURN_NONE;
}
