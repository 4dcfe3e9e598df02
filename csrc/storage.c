/*
 * storage.c -- reference-counted memory, the 64-byte-aligned CPU allocator
 * with a free list for small blocks, and the live-memory counters that
 * pf.memory_stats() reports (the leak tests read them).
 *
 * Small blocks are recycled because a small model allocates and frees the
 * same few sizes thousands of times a second, and malloc + memset-free
 * reuse is measurably cheaper than aligned_alloc each time.
 */
#include "pyframe.h"
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

pf_storage *pf_storage_new(size_t nbytes, pf_device dev, const char *op)
{
    if (pf_device_check_available(dev, op) < 0) {
        return NULL;
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
    pf_storage *s = PyMem_Calloc(1, sizeof(pf_storage));
    if (s == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    s->refcnt = 1;
    s->data = data;
    s->nbytes = nbytes;
    s->device.type = PF_DEV_CPU;
    s->owner = Py_XNewRef(owner);
    s->readonly = readonly;
    stats.foreign_storages++;
    stats.foreign_bytes += (int64_t)nbytes;
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
        stats.foreign_storages--;
        stats.foreign_bytes -= (int64_t)s->nbytes;
        if (s->view != NULL) {
            PyBuffer_Release(s->view);
            PyMem_Free(s->view);
        }
        if (s->release != NULL) {
            s->release(s);
        }
        Py_XDECREF(s->owner);
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
    memcpy(fresh->data, s->data, s->nbytes);
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

PyObject *pf_memory_stats(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(noargs))
{
    return Py_BuildValue("{s:{s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L}}", "cpu",
                         "live_tensors", (long long)pf_live_tensors,
                         "live_storages", (long long)stats.live_storages,
                         "live_bytes", (long long)stats.live_bytes,
                         "peak_bytes", (long long)stats.peak_bytes,
                         "cached_bytes", (long long)stats.cached_bytes,
                         "foreign_storages", (long long)stats.foreign_storages,
                         "foreign_bytes", (long long)stats.foreign_bytes,
                         "alloc_calls", (long long)stats.alloc_calls,
                         "free_list_hits", (long long)stats.free_list_hits);
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
