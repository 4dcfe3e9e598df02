/*
 * cuda_backend.h -- pyframe._C's side of the CUDA backend: the lazily loaded
 * libpyframe_cuda.so and the table of its entry points.
 *
 * pyframe._C never links the CUDA runtime.  The first caller of pf_cuda_lib()
 * dlopen()s libpyframe_cuda.so from the directory pyframe._C was loaded from,
 * resolves its entry points, checks its ABI version and asks the runtime for
 * the devices; the outcome (the table, or the reason CUDA is unavailable) is
 * kept for the life of the process.  Callers hold the GIL.
 */
#ifndef PF_CUDA_BACKEND_H
#define PF_CUDA_BACKEND_H

#include "pyframe.h"
#include "cuda/pf_cuda.h"

typedef struct PfCudaLib {
#define PF_CUDA_FIELD(name) pf_cuda_##name##_fn *name;
    PF_CUDA_ENTRY_POINTS(PF_CUDA_FIELD)
#undef PF_CUDA_FIELD
    int ndevices;               /* devices visible when the library was probed */
    int runtime_version;        /* 13000 for CUDA 13.0 */
    int driver_version;         /* the newest CUDA the driver supports; 0 without a driver */
} PfCudaLib;

/*
 * The loaded library when CUDA is usable (at least one device); otherwise
 * NULL with a RuntimeError "<caller>: CUDA is not available: <reason>".
 */
const PfCudaLib *pf_cuda_lib(const char *caller);

/*
 * The library when it is built, loaded and compatible, whether or not a
 * device is usable: for what needs no device (its kernel table, the host
 * self-tests of its kernels).  Otherwise NULL with a RuntimeError.
 */
const PfCudaLib *pf_cuda_library(const char *caller);

/*
 * Raises for a failed entry point's status: MemoryError for out of memory,
 * ValueError for a bad value, RuntimeError for the rest, each with the
 * library's message after "<caller>: ".  Returns -1.
 */
int pf_cuda_raise(const PfCudaLib *lib, const char *caller, int status);

/*
 * The library when it is loaded and CUDA is usable, else NULL; never loads
 * it and never raises.  For paths that can only be reached once a device
 * storage exists (freeing one, copying out of one), and for statistics that
 * must not load CUDA.
 */
const PfCudaLib *pf_cuda_loaded(void);

/* 0 when device is a visible device index, else -1 with a ValueError naming caller. */
int pf_cuda_check_device(const PfCudaLib *lib, const char *caller, int device);

/* The allocator's counters as a dict (caching_allocator_py.c). */
PyObject *pf_ca_stats_dict(const PfCaStats *s);

/* Tensor.record_stream(stream): the tensor's block is also used on that stream. */
PyObject *pf_tensor_record_stream(PyObject *self, PyObject *stream);

extern PyMethodDef pf_cuda_module_methods[];
int pf_caching_allocator_harness_init(PyObject *module);

#endif
