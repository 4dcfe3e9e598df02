/*
 * pf_cuda.h -- the C ABI between pyframe._C and libpyframe_cuda.so.
 *
 * pyframe._C never links the CUDA runtime: it dlopen()s libpyframe_cuda.so on
 * first use and looks up the entry points listed in PF_CUDA_ENTRY_POINTS by
 * name (csrc/cuda_backend.c).  This header therefore declares only types: the
 * signature of each entry point as a function type, the structs they fill and
 * the status codes.  The library (csrc/cuda/runtime.cu) declares its
 * functions with these types, so a signature that drifts breaks its build.
 *
 * Every entry point returns a status: 0 on success, otherwise the CUDA runtime
 * error code (cudaError_t) of the call that failed, with a message naming the
 * call in pf_cuda_last_error() (per thread).  Nothing aborts or prints.
 *
 * Bump PF_CUDA_ABI_VERSION when a signature or struct changes: the loader
 * refuses a library of another version rather than calling it wrongly.
 */
#ifndef PF_CUDA_H
#define PF_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "caching_allocator.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PF_CUDA_ABI_VERSION 3
#define PF_CUDA_LIBRARY_NAME "libpyframe_cuda.so"

/* The cudaError_t values pyframe._C tells apart (runtime.cu checks them). */
#define PF_CUDA_SUCCESS 0
#define PF_CUDA_ERROR_INVALID_VALUE 1
#define PF_CUDA_ERROR_OUT_OF_MEMORY 2
#define PF_CUDA_ERROR_INSUFFICIENT_DRIVER 35
#define PF_CUDA_ERROR_NO_DEVICE 100
#define PF_CUDA_ERROR_INVALID_DEVICE 101

typedef struct PfCudaDeviceProps {
    char name[256];
    uint64_t total_memory;          /* bytes */
    int major;                      /* compute capability major.minor */
    int minor;
    int multi_processor_count;
} PfCudaDeviceProps;

typedef PfCaStats PfCudaMemStats;

typedef int pf_cuda_abi_version_fn(void);
/* The message of the calling thread's last failed call ("" before any). */
typedef const char *pf_cuda_last_error_fn(void);
/* cudaRuntimeGetVersion, cudaDriverGetVersion (0 when no driver is installed). */
typedef int pf_cuda_versions_fn(int *runtime, int *driver);
/* cudaGetDeviceCount; *count is 0 on failure. */
typedef int pf_cuda_device_count_fn(int *count);
typedef int pf_cuda_get_device_fn(int *device);
typedef int pf_cuda_set_device_fn(int device);
typedef int pf_cuda_device_properties_fn(int device, PfCudaDeviceProps *props);
/* Waits for all work on the device; the caller's current device is kept. */
typedef int pf_cuda_synchronize_fn(int device);
typedef int pf_cuda_mem_get_info_fn(int device, uint64_t *free_bytes, uint64_t *total_bytes);
/*
 * The caching allocator.  alloc returns PF_CUDA_ERROR_OUT_OF_MEMORY when the
 * device is full even after the cache was released, PF_CUDA_ERROR_INVALID_VALUE
 * for a bad device or a pointer free() does not know.
 */
typedef int pf_cuda_alloc_fn(size_t size, int device, void **ptr);
typedef int pf_cuda_free_fn(void *ptr);
typedef int pf_cuda_memory_stats_fn(int device, PfCudaMemStats *stats);
typedef int pf_cuda_reset_peak_memory_stats_fn(int device);
/* Returns every cached block of every device to CUDA. */
typedef int pf_cuda_empty_cache_fn(uint64_t *released_bytes);

/*
 * Copies between host and device memory.  A device of PF_CUDA_HOST marks
 * host memory (pageable: pyframe's own allocations).
 *   host -> device, device -> host: queued on the stream pyframe uses, then
 *     waited for, so the host side may be read or freed on return;
 *   device -> device on one device: queued, ordered with later work there;
 *   device -> device across devices: cudaMemcpyPeer, ordered with the work
 *     on both devices.
 * Both ranges must be contiguous; 0 bytes is a no-op.
 */
#define PF_CUDA_HOST (-1)
typedef int pf_cuda_memcpy_fn(void *dst, int dst_device, const void *src, int src_device,
                              size_t nbytes);

/*
 * The geometry of a strided copy or fill on one device: element (i_0, ...,
 * i_{ndim-1}) of `shape` lies at dst + sum(i_k * dst_strides[k]) * itemsize
 * (and likewise for src).  Strides count elements and may be 0 (a
 * broadcast source) or negative.
 */
#define PF_CUDA_MAX_DIMS 8
typedef struct PfCudaStrided {
    int ndim;
    int64_t shape[PF_CUDA_MAX_DIMS];
    int64_t dst_strides[PF_CUDA_MAX_DIMS];
    int64_t src_strides[PF_CUDA_MAX_DIMS];
} PfCudaStrided;

/*
 * dst = src element by element over g->shape, on `device`, for an itemsize
 * of 1, 2, 4 or 8 bytes (the bits are copied, so any dtype of that size);
 * queued, not waited for.  Both pointers must be aligned to the itemsize.
 */
typedef int pf_cuda_copy_strided_fn(int device, void *dst, const void *src, int itemsize,
                                    const PfCudaStrided *g);
/* Every element of dst (g->dst_strides; src_strides unused) set to the itemsize bytes at value. */
typedef int pf_cuda_fill_strided_fn(int device, void *dst, const void *value, int itemsize,
                                    const PfCudaStrided *g);

/*
 * An elementwise op of the op table (csrc/ops.def) over one shape, every
 * operand already in the dtype the kernel reads or writes: `dtype` for the
 * values (float16 and bfloat16 are stored as such and computed in float32),
 * bool for where's condition, the logical ops' operands and the bool
 * results of predicates and comparisons (pyframe._C converts the rest
 * first, with the cast below).  Operands are the nin inputs, then the
 * output.  Element (i_0, ..., i_{ndim-1}) of operand k lies at
 * data[k] + sum(i_j * strides[k][j]) elements; strides may be 0 (a
 * broadcast) or negative.  An input with bit k of scalar_mask set is the
 * one value in scalars[k] (its bits, in the input's dtype), and data[k] is
 * not read.  params are the op's parameters (clip's bounds, gelu's
 * approximate, ...).  One thread per output element.
 */
#define PF_CUDA_EW_MAX_OPERANDS 4
typedef struct PfCudaEw {
    int op;                         /* PF_OP_* (ops.def order) */
    int dtype;                      /* PF_CUDA_* */
    int nin;                        /* 1 to PF_CUDA_EW_MAX_OPERANDS - 1 */
    int ndim;                       /* 1 to PF_CUDA_MAX_DIMS */
    int64_t shape[PF_CUDA_MAX_DIMS];
    int64_t strides[PF_CUDA_EW_MAX_OPERANDS][PF_CUDA_MAX_DIMS];
    uint32_t scalar_mask;
    uint64_t scalars[PF_CUDA_EW_MAX_OPERANDS];
    double params[2];
} PfCudaEw;

/* Queues the op on `device` (data are device pointers); not waited for. */
typedef int pf_cuda_ew_fn(int device, void *const *data, const PfCudaEw *g);
/*
 * The same per-element code over host buffers, on the calling thread: the
 * host self-test of the kernels (needs no device; tests only).
 */
typedef int pf_cuda_ew_host_fn(void *const *data, const PfCudaEw *g);
/*
 * dst (dst_dtype) = src (src_dtype) converted element by element over
 * g->shape, as pyframe's cpu conversions do (to bool: nonzero; float to
 * integer: truncation, saturating, NaN to 0; integer to narrower integer:
 * wraps; to float16 / bfloat16: round to nearest even).  Queued, not
 * waited for.  cast_host: the same over host buffers (tests only).
 */
typedef int pf_cuda_cast_strided_fn(int device, void *dst, int dst_dtype, const void *src,
                                    int src_dtype, const PfCudaStrided *g);
typedef int pf_cuda_cast_host_fn(void *dst, int dst_dtype, const void *src, int src_dtype,
                                 const PfCudaStrided *g);

/*
 * The kernels the library has, as pyframe._C's op table numbers its ops
 * (csrc/ops.def, included by the library too): op_count is the number of
 * rows the library was built with (the loader refuses another), and
 * kernel_dtypes(op) a mask with bit (1 << dtype) set for every dtype
 * (pyframe.h's pf_dtype numbering, mirrored below) the op runs in on a
 * device; 0 for an op without CUDA kernels.  Neither needs a device.
 */
enum {
    PF_CUDA_BOOL, PF_CUDA_UINT8, PF_CUDA_INT8, PF_CUDA_INT16, PF_CUDA_INT32, PF_CUDA_INT64,
    PF_CUDA_FLOAT16, PF_CUDA_BFLOAT16, PF_CUDA_FLOAT32, PF_CUDA_FLOAT64, PF_CUDA_NDTYPES
};
typedef int pf_cuda_op_count_fn(void);
typedef uint32_t pf_cuda_kernel_dtypes_fn(int op);

/*
 * The entry points, by family: each family's list names the entry points of
 * one .cu file, so that work on one family touches one line here.
 */
#define PF_CUDA_CORE_ENTRIES(X)                                                              \
    X(abi_version) X(last_error) X(versions) X(device_count) X(get_device) X(set_device)     \
    X(device_properties) X(synchronize) X(mem_get_info) X(alloc) X(free) X(memory_stats)    \
    X(reset_peak_memory_stats) X(empty_cache) X(op_count) X(kernel_dtypes)
#define PF_CUDA_COPY_ENTRIES(X) X(memcpy) X(copy_strided) X(fill_strided)
/* csrc/cuda/elementwise.cu: the elementwise ops of the op table and the dtype cast */
#define PF_CUDA_EW_ENTRIES(X) X(ew) X(ew_host) X(cast_strided) X(cast_host)
#define PF_CUDA_REDUCE_ENTRIES(X)
#define PF_CUDA_BLAS_ENTRIES(X)
#define PF_CUDA_RNG_ENTRIES(X)
#define PF_CUDA_OPTIM_ENTRIES(X)
#define PF_CUDA_NN_ENTRIES(X)

#define PF_CUDA_ENTRY_POINTS(X)                                                              \
    PF_CUDA_CORE_ENTRIES(X) PF_CUDA_COPY_ENTRIES(X) PF_CUDA_EW_ENTRIES(X)                    \
    PF_CUDA_REDUCE_ENTRIES(X) PF_CUDA_BLAS_ENTRIES(X) PF_CUDA_RNG_ENTRIES(X)                 \
    PF_CUDA_OPTIM_ENTRIES(X) PF_CUDA_NN_ENTRIES(X)

#ifdef __cplusplus
}
#endif

#endif
