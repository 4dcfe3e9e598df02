/*
 * caching_allocator_py.c -- _C._HostCachingAllocator: the caching device
 * allocator's bookkeeping (csrc/cuda/caching_allocator.c) over host memory,
 * so that tests/test_cuda_runtime.py checks its policy on any machine.
 *
 * The raw allocator here is malloc under a byte budget (`limit`), which runs
 * out exactly when the test wants the out-of-memory path; `fail_with_error`
 * makes it fail the way a broken device would.  It counts its calls, so a
 * test sees the retry.  Addresses are handed to Python as integers.
 */
#include "cuda_backend.h"

#include <stdlib.h>

typedef struct {
    PyObject_HEAD
    PfCachingAllocator *ca;
    int ndevices;
    uint64_t limit;             /* raw bytes malloc may hold; UINT64_MAX for no limit */
    uint64_t raw_bytes;         /* bytes it holds now */
    uint64_t raw_attempts;      /* raw allocation calls, failed ones included */
    int fail_with_error;
    uint64_t events_made;       /* fake events: numbered 1, 2, ... in order of recording */
    uint64_t events_completed;  /* events numbered up to this have completed */
    uint64_t events_destroyed;
    int fail_events;            /* make recording an event fail */
} HarnessObject;

/*
 * Fake events: an event is its number, and "completes" when the test calls
 * complete_events(), standing for a stream that has caught up.
 */
static int harness_event_record(void *ctx, int device, uintptr_t stream, void **event,
                                char *msg, size_t msg_size)
{
    HarnessObject *h = (HarnessObject *)ctx;
    if (h->fail_events) {
        snprintf(msg, msg_size, "simulated failure to record an event on stream %llu of host:%d",
                 (unsigned long long)stream, device);
        return PF_CA_ERROR;
    }
    *event = (void *)(uintptr_t)++h->events_made;
    return PF_CA_OK;
}

static int harness_event_query(void *ctx, void *event)
{
    HarnessObject *h = (HarnessObject *)ctx;
    return (uint64_t)(uintptr_t)event <= h->events_completed;
}

static void harness_event_destroy(void *ctx, void *Py_UNUSED(event))
{
    ((HarnessObject *)ctx)->events_destroyed++;
}

static const PfCaEvents harness_events = {harness_event_record, harness_event_query,
                                          harness_event_destroy};

static int harness_raw_alloc(void *ctx, int device, size_t size, void **ptr, char *msg,
                             size_t msg_size)
{
    HarnessObject *h = (HarnessObject *)ctx;
    h->raw_attempts++;
    if (h->fail_with_error) {
        snprintf(msg, msg_size, "simulated failure of the raw allocator on host:%d", device);
        return PF_CA_ERROR;
    }
    if (h->raw_bytes > h->limit || size > h->limit - h->raw_bytes) {
        return PF_CA_OOM;
    }
    /* cudaMalloc's blocks are 256-byte aligned; keep the table's hashing honest */
    if (posix_memalign(ptr, 256, size) != 0) {
        return PF_CA_OOM;
    }
    h->raw_bytes += size;
    return PF_CA_OK;
}

static void harness_raw_free(void *ctx, int Py_UNUSED(device), void *ptr, size_t size)
{
    HarnessObject *h = (HarnessObject *)ctx;
    free(ptr);
    h->raw_bytes -= size;
}

PyObject *pf_ca_stats_dict(const PfCaStats *s)
{
    return Py_BuildValue(
        "{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K}",
        "allocated_bytes", (unsigned long long)s->allocated_bytes,
        "reserved_bytes", (unsigned long long)s->reserved_bytes,
        "cached_bytes", (unsigned long long)s->cached_bytes,
        "peak_allocated_bytes", (unsigned long long)s->peak_allocated_bytes,
        "peak_reserved_bytes", (unsigned long long)s->peak_reserved_bytes,
        "alloc_calls", (unsigned long long)s->alloc_calls,
        "free_calls", (unsigned long long)s->free_calls,
        "cache_hits", (unsigned long long)s->cache_hits,
        "raw_alloc_calls", (unsigned long long)s->raw_alloc_calls,
        "raw_free_calls", (unsigned long long)s->raw_free_calls,
        "oom_retries", (unsigned long long)s->oom_retries,
        "ooms", (unsigned long long)s->ooms,
        "pending_bytes", (unsigned long long)s->pending_bytes);
}

static int parse_limit(PyObject *obj, uint64_t *limit)
{
    if (obj == Py_None) {
        *limit = UINT64_MAX;
        return 0;
    }
    unsigned long long v = PyLong_AsUnsignedLongLong(obj);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        return -1;
    }
    *limit = v;
    return 0;
}

static PyObject *harness_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"devices", "limit", NULL};
    int ndevices = 1;
    PyObject *limit_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|iO:_HostCachingAllocator", kwlist,
                                     &ndevices, &limit_obj)) {
        return NULL;
    }
    if (ndevices < 1 || ndevices > 64) {
        return PF_ERR(PyExc_ValueError,
                      "_HostCachingAllocator: devices must be 1 to 64; got %d", ndevices);
    }
    uint64_t limit;
    if (parse_limit(limit_obj, &limit) < 0) {
        return NULL;
    }
    HarnessObject *h = (HarnessObject *)type->tp_alloc(type, 0);
    if (h == NULL) {
        return NULL;
    }
    h->ndevices = ndevices;
    h->limit = limit;
    h->ca = pf_ca_new(ndevices, harness_raw_alloc, harness_raw_free, &harness_events, h, "host");
    if (h->ca == NULL) {
        Py_DECREF(h);
        return PyErr_NoMemory();
    }
    return (PyObject *)h;
}

static void harness_dealloc(HarnessObject *h)
{
    pf_ca_destroy(h->ca);
    Py_TYPE(h)->tp_free((PyObject *)h);
}

static int raise_status(int status, const char *method, const char *msg)
{
    PyObject *exc = status == PF_CA_OOM       ? PyExc_MemoryError
                    : status == PF_CA_INVALID ? PyExc_ValueError
                                              : PyExc_RuntimeError;
    return PF_ERRI(exc, "_HostCachingAllocator.%s: %s", method, msg);
}

static PyObject *harness_alloc(HarnessObject *h, PyObject *args)
{
    PyObject *size_obj;
    int device = 0;
    unsigned long long stream = 0;
    if (!PyArg_ParseTuple(args, "O|iK:alloc", &size_obj, &device, &stream)) {
        return NULL;
    }
    unsigned long long size = PyLong_AsUnsignedLongLong(size_obj);
    if (size == (unsigned long long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    void *ptr = NULL;
    char msg[768];
    int status = pf_ca_alloc(h->ca, device, (uintptr_t)stream, (size_t)size, &ptr, msg,
                             sizeof(msg));
    if (status != PF_CA_OK) {
        raise_status(status, "alloc", msg);
        return NULL;
    }
    return PyLong_FromVoidPtr(ptr);
}

static PyObject *harness_free(HarnessObject *h, PyObject *addr)
{
    void *ptr = PyLong_AsVoidPtr(addr);
    if (ptr == NULL && PyErr_Occurred()) {
        return NULL;
    }
    char msg[256];
    int status = pf_ca_free(h->ca, ptr, msg, sizeof(msg));
    if (status != PF_CA_OK) {
        raise_status(status, "free", msg);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *harness_record_stream(HarnessObject *h, PyObject *args)
{
    PyObject *addr;
    unsigned long long stream;
    if (!PyArg_ParseTuple(args, "OK:record_stream", &addr, &stream)) {
        return NULL;
    }
    void *ptr = PyLong_AsVoidPtr(addr);
    if (ptr == NULL && PyErr_Occurred()) {
        return NULL;
    }
    char msg[256];
    int status = pf_ca_record_stream(h->ca, ptr, (uintptr_t)stream, msg, sizeof(msg));
    if (status != PF_CA_OK) {
        raise_status(status, "record_stream", msg);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *harness_complete_events(HarnessObject *h, PyObject *Py_UNUSED(noargs))
{
    h->events_completed = h->events_made;
    Py_RETURN_NONE;
}

static int device_arg(HarnessObject *h, PyObject *args, const char *fmt, int *device)
{
    *device = 0;
    if (!PyArg_ParseTuple(args, fmt, device)) {
        return -1;
    }
    if (*device < 0 || *device >= h->ndevices) {
        return PF_ERRI(PyExc_ValueError, "_HostCachingAllocator: no device %d (devices 0 to %d)",
                       *device, h->ndevices - 1);
    }
    return 0;
}

static PyObject *harness_empty_cache(HarnessObject *h, PyObject *args)
{
    PyObject *dev = Py_None;
    if (!PyArg_ParseTuple(args, "|O:empty_cache", &dev)) {
        return NULL;
    }
    int device = -1;
    if (dev != Py_None) {
        long d = PyLong_AsLong(dev);
        if (d == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (d < 0 || d >= h->ndevices) {
            return PF_ERR(PyExc_ValueError,
                          "_HostCachingAllocator.empty_cache: no device %ld (devices 0 to %d)", d,
                          h->ndevices - 1);
        }
        device = (int)d;
    }
    return PyLong_FromUnsignedLongLong(
        (unsigned long long)pf_ca_empty_cache(h->ca, device));
}

static PyObject *harness_stats(HarnessObject *h, PyObject *args)
{
    int device;
    if (device_arg(h, args, "|i:stats", &device) < 0) {
        return NULL;
    }
    PfCaStats s;
    pf_ca_stats(h->ca, device, &s);
    return pf_ca_stats_dict(&s);
}

static PyObject *harness_reset_peak(HarnessObject *h, PyObject *args)
{
    int device;
    if (device_arg(h, args, "|i:reset_peak", &device) < 0) {
        return NULL;
    }
    pf_ca_reset_peak(h->ca, device);
    Py_RETURN_NONE;
}

static PyObject *harness_round_size(PyObject *Py_UNUSED(cls), PyObject *size_obj)
{
    unsigned long long size = PyLong_AsUnsignedLongLong(size_obj);
    if (size == (unsigned long long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    return PyLong_FromSize_t(pf_ca_round_size((size_t)size));
}

static PyObject *harness_get_limit(HarnessObject *h, void *Py_UNUSED(c))
{
    if (h->limit == UINT64_MAX) {
        Py_RETURN_NONE;
    }
    return PyLong_FromUnsignedLongLong((unsigned long long)h->limit);
}

static int harness_set_limit(HarnessObject *h, PyObject *value, void *Py_UNUSED(c))
{
    if (value == NULL) {
        return PF_ERRI(PyExc_AttributeError, "limit cannot be deleted; set None for no limit");
    }
    return parse_limit(value, &h->limit);
}

static PyObject *harness_get_counter(HarnessObject *h, void *which)
{
    uintptr_t w = (uintptr_t)which;
    uint64_t v = w == 0 ? h->raw_bytes : w == 1 ? h->raw_attempts
               : w == 2 ? h->events_made : h->events_destroyed;
    return PyLong_FromUnsignedLongLong((unsigned long long)v);
}

static PyObject *harness_get_fail(HarnessObject *h, void *Py_UNUSED(c))
{
    return PyBool_FromLong(h->fail_with_error);
}

static int harness_set_fail(HarnessObject *h, PyObject *value, void *Py_UNUSED(c))
{
    int v = value == NULL ? 0 : PyObject_IsTrue(value);
    if (v < 0) {
        return -1;
    }
    h->fail_with_error = v;
    return 0;
}

static PyObject *harness_get_fail_events(HarnessObject *h, void *Py_UNUSED(c))
{
    return PyBool_FromLong(h->fail_events);
}

static int harness_set_fail_events(HarnessObject *h, PyObject *value, void *Py_UNUSED(c))
{
    int v = value == NULL ? 0 : PyObject_IsTrue(value);
    if (v < 0) {
        return -1;
    }
    h->fail_events = v;
    return 0;
}

static PyMethodDef harness_methods[] = {
    {"alloc", (PyCFunction)harness_alloc, METH_VARARGS,
     "alloc(size, device=0, stream=0) -> address (int); MemoryError when out of memory"},
    {"free", (PyCFunction)harness_free, METH_O, "free(address): the block goes to its free list"},
    {"record_stream", (PyCFunction)harness_record_stream, METH_VARARGS,
     "record_stream(address, stream): the block is also used on that stream"},
    {"complete_events", (PyCFunction)harness_complete_events, METH_NOARGS,
     "every event recorded so far completes (the streams have caught up)"},
    {"empty_cache", (PyCFunction)harness_empty_cache, METH_VARARGS,
     "empty_cache(device=None) -> bytes returned to malloc (every device for None)"},
    {"stats", (PyCFunction)harness_stats, METH_VARARGS, "stats(device=0) -> dict of counters"},
    {"reset_peak", (PyCFunction)harness_reset_peak, METH_VARARGS, "reset_peak(device=0)"},
    {"round_size", (PyCFunction)harness_round_size, METH_O | METH_STATIC,
     "round_size(size) -> the block size a request gets"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef harness_getset[] = {
    {"limit", (getter)harness_get_limit, (setter)harness_set_limit,
     "bytes the raw allocator may hold (None: no limit)", NULL},
    {"raw_bytes", (getter)harness_get_counter, NULL, "bytes the raw allocator holds", (void *)0},
    {"raw_attempts", (getter)harness_get_counter, NULL,
     "raw allocation calls, failed ones included", (void *)1},
    {"fail_with_error", (getter)harness_get_fail, (setter)harness_set_fail,
     "make raw allocations fail with an error other than out-of-memory", NULL},
    {"fail_events", (getter)harness_get_fail_events, (setter)harness_set_fail_events,
     "make recording an event fail", NULL},
    {"events_made", (getter)harness_get_counter, NULL, "events recorded", (void *)2},
    {"events_destroyed", (getter)harness_get_counter, NULL, "events destroyed", (void *)3},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject Harness_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "pyframe._C._HostCachingAllocator",
    .tp_basicsize = sizeof(HarnessObject),
    .tp_dealloc = (destructor)harness_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "_HostCachingAllocator(devices=1, limit=None): the CUDA caching allocator's "
              "bookkeeping over malloc, for tests",
    .tp_methods = harness_methods,
    .tp_getset = harness_getset,
    .tp_new = harness_new,
};

int pf_caching_allocator_harness_init(PyObject *module)
{
    if (PyType_Ready(&Harness_Type) < 0) {
        return -1;
    }
    Py_INCREF(&Harness_Type);
    if (PyModule_AddObject(module, "_HostCachingAllocator", (PyObject *)&Harness_Type) < 0) {
        Py_DECREF(&Harness_Type);
        return -1;
    }
    return 0;
}
