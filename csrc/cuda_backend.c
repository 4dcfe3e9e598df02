/*
 * cuda_backend.c -- loading libpyframe_cuda.so on first use, the reason CUDA
 * is unavailable when it is, and the private functions behind pf.cuda.
 *
 * Why dlopen from C rather than ctypes from Python: the callers that matter
 * are in C (device storage, dispatch, the copy paths of the next steps), and
 * they need the entry points as function pointers without a trip through
 * Python; C never imports pyframe's Python modules.  pf.cuda's functions are
 * thin Python over the bindings below, and every message is formed here, so
 * a tensor op and pf.cuda.set_device report an unusable CUDA the same way.
 */
#include "cuda_backend.h"
#include "ops.h"
#include "nn_conv.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

static struct {
    int probed;
    int loaded;                 /* the library is loaded and compatible, device or not */
    int available;
    void *handle;
    char path[4096];
    const char *kind;           /* "not built", "load failed", ..., "available" */
    char reason[1536];
    PfCudaLib lib;
} cuda;

static void version_string(int v, char *buf, size_t size)
{
    snprintf(buf, size, "%d.%d", v / 1000, (v % 1000) / 10);
}

/* The directory pyframe._C was loaded from: the library is installed beside it. */
static int library_path(char *buf, size_t size)
{
    Dl_info info;
    if (dladdr((void *)&pf_cuda_lib, &info) == 0 || info.dli_fname == NULL) {
        return -1;
    }
    const char *slash = strrchr(info.dli_fname, '/');
    int dir_len = slash == NULL ? 1 : (int)(slash - info.dli_fname);
    const char *dir = slash == NULL ? "." : info.dli_fname;
    int n = snprintf(buf, size, "%.*s/%s", dir_len, dir, PF_CUDA_LIBRARY_NAME);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

static void unavailable(const char *kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cuda.reason, sizeof(cuda.reason), fmt, ap);
    va_end(ap);
    cuda.kind = kind;
    cuda.available = 0;
}

static void visible_devices_hint(char *buf, size_t size)
{
    const char *v = getenv("CUDA_VISIBLE_DEVICES");
    if (v != NULL) {
        snprintf(buf, size, "; CUDA_VISIBLE_DEVICES is set to '%.100s'", v);
    }
    else {
        buf[0] = '\0';
    }
}

static void probe(void)
{
    cuda.probed = 1;
    if (library_path(cuda.path, sizeof(cuda.path)) < 0) {
        unavailable("load failed", "could not locate the directory of pyframe._C to find %s",
                    PF_CUDA_LIBRARY_NAME);
        return;
    }
    if (access(cuda.path, F_OK) != 0) {
        unavailable("not built",
                    "not built: %s does not exist (this pyframe was built without nvcc; install "
                    "the CUDA toolkit and rebuild, with PYFRAME_CUDA=1 to make a missing nvcc "
                    "an error)", cuda.path);
        return;
    }
    /* RTLD_LOCAL: the library's symbols stay out of the process's global scope */
    cuda.handle = dlopen(cuda.path, RTLD_NOW | RTLD_LOCAL);
    if (cuda.handle == NULL) {
        const char *err = dlerror();
        unavailable("load failed", "%s failed to load: %s", cuda.path,
                    err != NULL ? err : "unknown error");
        return;
    }
    PfCudaLib *lib = &cuda.lib;
#define PF_CUDA_RESOLVE(name)                                                                \
    lib->name = (pf_cuda_##name##_fn *)dlsym(cuda.handle, "pf_cuda_" #name);                 \
    if (lib->name == NULL) {                                                                 \
        unavailable("incompatible",                                                          \
                    "%s lacks the entry point pf_cuda_" #name " (it was built from other "   \
                    "sources than this pyframe._C); rebuild pyframe", cuda.path);            \
        return;                                                                              \
    }
    PF_CUDA_ENTRY_POINTS(PF_CUDA_RESOLVE)
#undef PF_CUDA_RESOLVE
    int abi = lib->abi_version();
    if (abi != PF_CUDA_ABI_VERSION) {
        unavailable("incompatible",
                    "%s has ABI version %d where this pyframe._C expects %d; rebuild pyframe",
                    cuda.path, abi, PF_CUDA_ABI_VERSION);
        return;
    }
    if (lib->op_count() != PF_OP_COUNT) {
        unavailable("incompatible",
                    "%s was built with an op table of %d rows where this pyframe._C has %d; "
                    "rebuild pyframe", cuda.path, lib->op_count(), (int)PF_OP_COUNT);
        return;
    }
    cuda.loaded = 1;
    int status = lib->versions(&lib->runtime_version, &lib->driver_version);
    if (status != 0) {
        unavailable("error", "the CUDA runtime failed: %s", lib->last_error());
        return;
    }
    char runtime[16], driver[64], hint[160];
    version_string(lib->runtime_version, runtime, sizeof(runtime));
    if (lib->driver_version > 0) {
        char v[16];
        version_string(lib->driver_version, v, sizeof(v));
        snprintf(driver, sizeof(driver), "the installed driver supports CUDA %s", v);
    }
    else {
        snprintf(driver, sizeof(driver), "none is installed");
    }
    visible_devices_hint(hint, sizeof(hint));
    status = lib->device_count(&lib->ndevices);
    if (status == PF_CUDA_ERROR_INSUFFICIENT_DRIVER) {
        unavailable("no driver",
                    "no usable NVIDIA driver (%s): pyframe's CUDA backend uses the CUDA %s "
                    "runtime and needs a driver for CUDA %s or newer; %s",
                    lib->last_error(), runtime, runtime, driver);
    }
    else if (status == PF_CUDA_ERROR_NO_DEVICE) {
        unavailable("no device", "no CUDA device: %s%s", lib->last_error(), hint);
    }
    else if (status != 0) {
        unavailable("error", "CUDA failed to start: %s%s", lib->last_error(), hint);
    }
    else if (lib->ndevices == 0) {
        unavailable("no device", "0 CUDA devices are visible%s", hint);
    }
    else {
        cuda.kind = "available";
        cuda.reason[0] = '\0';
        cuda.available = 1;
    }
}

const PfCudaLib *pf_cuda_lib(const char *caller)
{
    if (!cuda.probed) {
        probe();
    }
    if (!cuda.available) {
        return PF_ERR(PyExc_RuntimeError, "%s: CUDA is not available: %s", caller, cuda.reason);
    }
    return &cuda.lib;
}

const PfCudaLib *pf_cuda_library(const char *caller)
{
    if (!cuda.probed) {
        probe();
    }
    if (!cuda.loaded) {
        return PF_ERR(PyExc_RuntimeError, "%s: the CUDA library is not usable: %s", caller,
                      cuda.reason);
    }
    return &cuda.lib;
}

const PfCudaLib *pf_cuda_loaded(void)
{
    return cuda.probed && cuda.available ? &cuda.lib : NULL;
}

int pf_cuda_raise(const PfCudaLib *lib, const char *caller, int status)
{
    PyObject *exc = status == PF_CUDA_ERROR_OUT_OF_MEMORY ? PyExc_MemoryError
                    : status == PF_CUDA_ERROR_INVALID_VALUE ? PyExc_ValueError
                                                            : PyExc_RuntimeError;
    return PF_ERRI(exc, "%s: %s", caller, lib->last_error());
}

/*
 * A device a tensor can live on: the cpu, or a visible CUDA device, with
 * "cuda" (index -1) resolved to the calling thread's current device.  An
 * unusable CUDA raises "<op>: CUDA is not available: <reason>".
 */
int pf_device_resolve(pf_device *dev, const char *op)
{
    if (dev->type == PF_DEV_CPU) {
        return 0;
    }
    const PfCudaLib *lib = pf_cuda_lib(op);
    if (lib == NULL) {
        return -1;
    }
    if (dev->index < 0) {
        int current = 0;
        int status = lib->get_device(&current);
        if (status != 0) {
            return pf_cuda_raise(lib, op, status);
        }
        dev->index = (int16_t)current;
    }
    if (dev->index >= PF_CUDA_MAX_DEVICES) {
        return PF_ERRI(PyExc_ValueError,
                       "%s: device cuda:%d is beyond the %d devices pyframe keeps statistics "
                       "for; make fewer devices visible with CUDA_VISIBLE_DEVICES", op,
                       (int)dev->index, PF_CUDA_MAX_DEVICES);
    }
    return pf_cuda_check_device(lib, op, dev->index);
}

/* ---------------------------------------------------------------- bindings */

/* A device index the library can be called with, or -1 with a ValueError. */
int pf_cuda_check_device(const PfCudaLib *lib, const char *caller, int device)
{
    if (device >= 0 && device < lib->ndevices) {
        return 0;
    }
    if (lib->ndevices == 1) {
        return PF_ERRI(PyExc_ValueError,
                       "%s: device cuda:%d does not exist: 1 CUDA device is visible (cuda:0)",
                       caller, device);
    }
    return PF_ERRI(PyExc_ValueError,
                   "%s: device cuda:%d does not exist: %d CUDA devices are visible (cuda:0 to "
                   "cuda:%d)", caller, device, lib->ndevices, lib->ndevices - 1);
}

/* Parses (caller, device) and returns the library, or NULL with an error. */
static const PfCudaLib *caller_and_device(PyObject *args, const char *fmt, const char **caller,
                                          int *device)
{
    if (!PyArg_ParseTuple(args, fmt, caller, device)) {
        return NULL;
    }
    const PfCudaLib *lib = pf_cuda_lib(*caller);
    if (lib == NULL || pf_cuda_check_device(lib, *caller, *device) < 0) {
        return NULL;
    }
    return lib;
}

static PyObject *py_cuda_status(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(noargs))
{
    if (!cuda.probed) {
        probe();
    }
    const PfCudaLib *lib = &cuda.lib;
    return Py_BuildValue("{s:O,s:s,s:s,s:s,s:i,s:i,s:i}",
                         "available", cuda.available ? Py_True : Py_False,
                         "kind", cuda.kind,
                         "reason", cuda.reason,
                         "library", cuda.path,
                         "device_count", cuda.available ? lib->ndevices : 0,
                         "runtime_version", lib->runtime_version,
                         "driver_version", lib->driver_version);
}

static PyObject *py_cuda_require(PyObject *Py_UNUSED(m), PyObject *args)
{
    const char *caller;
    if (!PyArg_ParseTuple(args, "s:_cuda_require", &caller) || pf_cuda_lib(caller) == NULL) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *py_cuda_current_device(PyObject *Py_UNUSED(m), PyObject *args)
{
    const char *caller;
    if (!PyArg_ParseTuple(args, "s:_cuda_current_device", &caller)) {
        return NULL;
    }
    const PfCudaLib *lib = pf_cuda_lib(caller);
    if (lib == NULL) {
        return NULL;
    }
    int device = 0;
    int status = lib->get_device(&device);
    if (status != 0) {
        pf_cuda_raise(lib, caller, status);
        return NULL;
    }
    return PyLong_FromLong(device);
}

static PyObject *py_cuda_set_device(PyObject *Py_UNUSED(m), PyObject *args)
{
    const char *caller;
    int device;
    const PfCudaLib *lib = caller_and_device(args, "si:_cuda_set_device", &caller, &device);
    if (lib == NULL) {
        return NULL;
    }
    int status = lib->set_device(device);
    if (status != 0) {
        pf_cuda_raise(lib, caller, status);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *py_cuda_device_properties(PyObject *Py_UNUSED(m), PyObject *args)
{
    const char *caller;
    int device;
    const PfCudaLib *lib = caller_and_device(args, "si:_cuda_device_properties", &caller,
                                             &device);
    if (lib == NULL) {
        return NULL;
    }
    PfCudaDeviceProps p;
    int status = lib->device_properties(device, &p);
    if (status != 0) {
        pf_cuda_raise(lib, caller, status);
        return NULL;
    }
    return Py_BuildValue("{s:s,s:K,s:(ii),s:i}", "name", p.name,
                         "total_memory", (unsigned long long)p.total_memory,
                         "capability", p.major, p.minor,
                         "multi_processor_count", p.multi_processor_count);
}

static PyObject *py_cuda_synchronize(PyObject *Py_UNUSED(m), PyObject *args)
{
    const char *caller;
    int device;
    const PfCudaLib *lib = caller_and_device(args, "si:_cuda_synchronize", &caller, &device);
    if (lib == NULL) {
        return NULL;
    }
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = lib->synchronize(device);
    Py_END_ALLOW_THREADS
    if (status != 0) {
        pf_cuda_raise(lib, caller, status);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *py_cuda_mem_get_info(PyObject *Py_UNUSED(m), PyObject *args)
{
    const char *caller;
    int device;
    const PfCudaLib *lib = caller_and_device(args, "si:_cuda_mem_get_info", &caller, &device);
    if (lib == NULL) {
        return NULL;
    }
    uint64_t free_bytes = 0, total_bytes = 0;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = lib->mem_get_info(device, &free_bytes, &total_bytes);
    Py_END_ALLOW_THREADS
    if (status != 0) {
        pf_cuda_raise(lib, caller, status);
        return NULL;
    }
    return Py_BuildValue("(KK)", (unsigned long long)free_bytes,
                         (unsigned long long)total_bytes);
}

static PyObject *py_cuda_memory_stats(PyObject *Py_UNUSED(m), PyObject *args)
{
    const char *caller;
    int device;
    const PfCudaLib *lib = caller_and_device(args, "si:_cuda_memory_stats", &caller, &device);
    if (lib == NULL) {
        return NULL;
    }
    PfCudaMemStats s;
    int status = lib->memory_stats(device, &s);
    if (status != 0) {
        pf_cuda_raise(lib, caller, status);
        return NULL;
    }
    return pf_ca_stats_dict(&s);
}

static PyObject *py_cuda_reset_peak_memory_stats(PyObject *Py_UNUSED(m), PyObject *args)
{
    const char *caller;
    int device;
    const PfCudaLib *lib = caller_and_device(args, "si:_cuda_reset_peak_memory_stats", &caller,
                                             &device);
    if (lib == NULL) {
        return NULL;
    }
    int status = lib->reset_peak_memory_stats(device);
    if (status != 0) {
        pf_cuda_raise(lib, caller, status);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *py_cuda_empty_cache(PyObject *Py_UNUSED(m), PyObject *args)
{
    const char *caller;
    if (!PyArg_ParseTuple(args, "s:_cuda_empty_cache", &caller)) {
        return NULL;
    }
    const PfCudaLib *lib = pf_cuda_lib(caller);
    if (lib == NULL) {
        return NULL;
    }
    uint64_t released = 0;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = lib->empty_cache(&released);
    Py_END_ALLOW_THREADS
    if (status != 0) {
        pf_cuda_raise(lib, caller, status);
        return NULL;
    }
    return PyLong_FromUnsignedLongLong((unsigned long long)released);
}

/*
 * Raw blocks from the caching allocator, as integers: for the GPU tests of
 * the allocator until device storages call it themselves.
 */
static PyObject *py_cuda_alloc(PyObject *Py_UNUSED(m), PyObject *args)
{
    const char *caller;
    unsigned long long size;
    int device;
    if (!PyArg_ParseTuple(args, "sKi:_cuda_alloc", &caller, &size, &device)) {
        return NULL;
    }
    const PfCudaLib *lib = pf_cuda_lib(caller);
    if (lib == NULL || pf_cuda_check_device(lib, caller, device) < 0) {
        return NULL;
    }
    void *ptr = NULL;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = lib->alloc((size_t)size, device, &ptr);
    Py_END_ALLOW_THREADS
    if (status != 0) {
        pf_cuda_raise(lib, caller, status);
        return NULL;
    }
    return PyLong_FromVoidPtr(ptr);
}

static PyObject *py_cuda_free(PyObject *Py_UNUSED(m), PyObject *args)
{
    const char *caller;
    PyObject *addr;
    if (!PyArg_ParseTuple(args, "sO:_cuda_free", &caller, &addr)) {
        return NULL;
    }
    const PfCudaLib *lib = pf_cuda_lib(caller);
    if (lib == NULL) {
        return NULL;
    }
    void *ptr = PyLong_AsVoidPtr(addr);
    if (ptr == NULL && PyErr_Occurred()) {
        return NULL;
    }
    int status = lib->free(ptr);
    if (status != 0) {
        pf_cuda_raise(lib, caller, status);
        return NULL;
    }
    Py_RETURN_NONE;
}

/*
 * Each binding takes the name of the public call first, so that every error
 * names what the user called (pf.cuda.memory_allocated, not _cuda_memory_stats).
 */
/*
 * _cuda_stream_op(caller, what, device, a=0, b=0): the stream and event entry
 * points behind pf.cuda.Stream and pf.cuda.Event, by name (handles are ints):
 *   stream_create(priority) -> handle, stream_destroy(h), stream_synchronize(h),
 *   stream_query(h) -> bool, stream_wait_event(stream, event), set_stream(h),
 *   get_stream() -> handle, event_create(timing) -> handle, event_destroy(h),
 *   event_record(event, stream), event_synchronize(h), event_query(h) -> bool,
 *   event_elapsed(start, end) -> milliseconds.
 * Waiting calls release the GIL.
 */
static PyObject *py_cuda_stream_op(PyObject *Py_UNUSED(m), PyObject *args)
{
    const char *caller, *what;
    int device;
    unsigned long long a = 0, b = 0;
    if (!PyArg_ParseTuple(args, "ssi|KK:_cuda_stream_op", &caller, &what, &device, &a, &b)) {
        return NULL;
    }
    const PfCudaLib *lib = pf_cuda_lib(caller);
    if (lib == NULL || pf_cuda_check_device(lib, caller, device) < 0) {
        return NULL;
    }
    uintptr_t ha = (uintptr_t)a, hb = (uintptr_t)b, out = 0;
    int status, flag = 0;
    float ms = 0.0f;
    enum { NONE, HANDLE, FLAG, MS } result = NONE;
    if (strcmp(what, "stream_create") == 0) {
        status = lib->stream_create(device, (int)(long long)a, &out);
        result = HANDLE;
    }
    else if (strcmp(what, "stream_destroy") == 0) {
        status = lib->stream_destroy(device, ha);
    }
    else if (strcmp(what, "stream_synchronize") == 0) {
        Py_BEGIN_ALLOW_THREADS
        status = lib->stream_synchronize(device, ha);
        Py_END_ALLOW_THREADS
    }
    else if (strcmp(what, "stream_query") == 0) {
        status = lib->stream_query(device, ha, &flag);
        result = FLAG;
    }
    else if (strcmp(what, "stream_wait_event") == 0) {
        status = lib->stream_wait_event(device, ha, hb);
    }
    else if (strcmp(what, "set_stream") == 0) {
        status = lib->set_stream(device, ha);
    }
    else if (strcmp(what, "get_stream") == 0) {
        status = lib->get_stream(device, &out);
        result = HANDLE;
    }
    else if (strcmp(what, "event_create") == 0) {
        status = lib->event_create(device, a != 0, &out);
        result = HANDLE;
    }
    else if (strcmp(what, "event_destroy") == 0) {
        status = lib->event_destroy(device, ha);
    }
    else if (strcmp(what, "event_record") == 0) {
        status = lib->event_record(device, ha, hb);
    }
    else if (strcmp(what, "event_synchronize") == 0) {
        Py_BEGIN_ALLOW_THREADS
        status = lib->event_synchronize(ha);
        Py_END_ALLOW_THREADS
    }
    else if (strcmp(what, "event_query") == 0) {
        status = lib->event_query(ha, &flag);
        result = FLAG;
    }
    else if (strcmp(what, "event_elapsed") == 0) {
        status = lib->event_elapsed(ha, hb, &ms);
        result = MS;
    }
    else {
        return PF_ERR(PyExc_ValueError, "%s: unknown stream operation '%s'", caller, what);
    }
    if (status != 0) {
        pf_cuda_raise(lib, caller, status);
        return NULL;
    }
    switch (result) {
    case HANDLE:
        return PyLong_FromUnsignedLongLong((unsigned long long)out);
    case FLAG:
        return PyBool_FromLong(flag);
    case MS:
        return PyFloat_FromDouble((double)ms);
    default:
        Py_RETURN_NONE;
    }
}

/* _cuda_record_stream(caller, tensor, stream handle): Tensor.record_stream */
static PyObject *py_cuda_record_stream(PyObject *Py_UNUSED(m), PyObject *args)
{
    const char *caller;
    PyObject *t;
    unsigned long long stream;
    if (!PyArg_ParseTuple(args, "sOK:_cuda_record_stream", &caller, &t, &stream)) {
        return NULL;
    }
    if (!PfTensor_Check(t)) {
        return PF_ERR(PyExc_TypeError, "%s: expected a tensor; got %s", caller,
                      Py_TYPE(t)->tp_name);
    }
    pf_storage *st = ((PfTensor *)t)->storage;
    if (st->device.type != PF_DEV_CUDA) {
        char d[32];
        return PF_ERR(PyExc_ValueError,
                      "%s: the tensor is on %s; record_stream is for tensors on a CUDA device",
                      caller, pf_device_str(st->device, d, sizeof(d)));
    }
    if (st->owner != NULL || st->release != NULL) {
        /* memory from another library (DLPack, __cuda_array_interface__): not our block */
        return PF_ERR(PyExc_ValueError,
                      "%s: the tensor's memory belongs to another library (it came through "
                      "DLPack or __cuda_array_interface__); keep the source alive instead",
                      caller);
    }
    const PfCudaLib *lib = pf_cuda_lib(caller);
    if (lib == NULL) {
        return NULL;
    }
    if (st->nbytes == 0) {
        Py_RETURN_NONE;
    }
    int status = lib->record_stream(st->data, (uintptr_t)stream);
    if (status != 0) {
        pf_cuda_raise(lib, caller, status);
        return NULL;
    }
    Py_RETURN_NONE;
}

PyObject *pf_tensor_record_stream(PyObject *self, PyObject *stream)
{
    /* a pf.cuda.Stream (or any object with an integer cuda_stream, as PyTorch's streams) */
    PyObject *h = PyLong_Check(stream) ? Py_NewRef(stream)
                                       : PyObject_GetAttrString(stream, "cuda_stream");
    if (h == NULL || !PyLong_Check(h)) {
        Py_XDECREF(h);
        PyErr_Clear();
        return PF_ERR(PyExc_TypeError,
                      "Tensor.record_stream: expected a pf.cuda.Stream; got %s",
                      Py_TYPE(stream)->tp_name);
    }
    PyObject *args = Py_BuildValue("(sON)", "Tensor.record_stream", self, h);
    if (args == NULL) {
        return NULL;
    }
    PyObject *r = py_cuda_record_stream(NULL, args);
    Py_DECREF(args);
    return r;
}

/* The library's numbering of dtypes is pf_dtype's. */
_Static_assert((int)PF_CUDA_BOOL == (int)PF_BOOL && (int)PF_CUDA_INT64 == (int)PF_INT64 &&
                   (int)PF_CUDA_FLOAT16 == (int)PF_FLOAT16 &&
                   (int)PF_CUDA_BFLOAT16 == (int)PF_BFLOAT16 &&
                   (int)PF_CUDA_FLOAT64 == (int)PF_FLOAT64 && (int)PF_CUDA_NDTYPES == (int)PF_NDTYPES,
               "pf_cuda.h's dtype numbers must follow pf_dtype");

/* {op name: [dtype names]} for every op the loaded library has kernels for. */
static PyObject *py_cuda_kernel_dtypes(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(noargs))
{
    const PfCudaLib *lib = pf_cuda_library("pyframe.cuda.kernel_dtypes");
    if (lib == NULL) {
        return NULL;
    }
    PyObject *d = PyDict_New();
    for (int op = 0; d != NULL && op < PF_OP_COUNT; op++) {
        uint32_t mask = lib->kernel_dtypes(op);
        if (mask == 0) {
            continue;
        }
        PyObject *names = PyList_New(0);
        for (int t = 0; names != NULL && t < PF_NDTYPES; t++) {
            if (mask & (1u << t)) {
                PyObject *s = PyUnicode_FromString(pf_dtypes[t].name);
                if (s == NULL || PyList_Append(names, s) < 0) {
                    Py_XDECREF(s);
                    Py_CLEAR(names);
                }
                Py_XDECREF(s);
            }
        }
        if (names == NULL || PyDict_SetItemString(d, pf_ops[op].name, names) < 0) {
            Py_XDECREF(names);
            Py_CLEAR(d);
            break;
        }
        Py_DECREF(names);
    }
    return d;
}

PyMethodDef pf_cuda_module_methods[] = {
    {"_cuda_stream_op", py_cuda_stream_op, METH_VARARGS,
     "_cuda_stream_op(caller, what, device, a=0, b=0): streams and events (pf.cuda)"},
    {"_cuda_record_stream", py_cuda_record_stream, METH_VARARGS,
     "_cuda_record_stream(caller, tensor, stream): the tensor's block is used on stream"},
    {"_cuda_host_nn_selftest", pf_nn_cuda_selftest_py, METH_O,
     "_cuda_host_nn_selftest(on) -> previous: run the nn ops' cpu tensors through the CUDA "
     "library's host self-test of its kernels (tests only)"},
    {"_cuda_kernel_dtypes", py_cuda_kernel_dtypes, METH_NOARGS,
     "{op: [dtypes]} the CUDA library has kernels for (loads it; needs no device)"},
    {"_cuda_status", py_cuda_status, METH_NOARGS,
     "load the CUDA backend if not yet tried; dict: available, kind, reason, library, "
     "device_count, runtime_version, driver_version"},
    {"_cuda_require", py_cuda_require, METH_VARARGS,
     "_cuda_require(caller): RuntimeError naming caller and the reason unless CUDA is usable"},
    {"_cuda_current_device", py_cuda_current_device, METH_VARARGS, "(caller) -> int"},
    {"_cuda_set_device", py_cuda_set_device, METH_VARARGS, "(caller, device)"},
    {"_cuda_device_properties", py_cuda_device_properties, METH_VARARGS,
     "(caller, device) -> dict"},
    {"_cuda_synchronize", py_cuda_synchronize, METH_VARARGS, "(caller, device)"},
    {"_cuda_mem_get_info", py_cuda_mem_get_info, METH_VARARGS,
     "(caller, device) -> (free, total)"},
    {"_cuda_memory_stats", py_cuda_memory_stats, METH_VARARGS,
     "(caller, device) -> the caching allocator's counters"},
    {"_cuda_reset_peak_memory_stats", py_cuda_reset_peak_memory_stats, METH_VARARGS,
     "(caller, device)"},
    {"_cuda_empty_cache", py_cuda_empty_cache, METH_VARARGS, "(caller) -> bytes released"},
    {"_cuda_alloc", py_cuda_alloc, METH_VARARGS,
     "(caller, size, device) -> address of a block from the caching allocator (tests)"},
    {"_cuda_free", py_cuda_free, METH_VARARGS, "(caller, address): give a block back (tests)"},
    {NULL, NULL, 0, NULL},
};
