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

#define PF_CUDA_ABI_VERSION 1
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

#define PF_CUDA_ENTRY_POINTS(X)                                                              \
    X(abi_version) X(last_error) X(versions) X(device_count) X(get_device) X(set_device)     \
    X(device_properties) X(synchronize) X(mem_get_info) X(alloc) X(free) X(memory_stats)    \
    X(reset_peak_memory_stats) X(empty_cache)

#ifdef __cplusplus
}
#endif

#endif
