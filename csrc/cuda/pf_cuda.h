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
#define PF_CUDA_EW_ENTRIES(X)
#define PF_CUDA_REDUCE_ENTRIES(X)
#define PF_CUDA_BLAS_ENTRIES(X)
#define PF_CUDA_RNG_ENTRIES(X)
#define PF_CUDA_OPTIM_ENTRIES(X)
/*
 * The nn family (conv.cu, pool.cu, norm.cu).  Each takes a device, or
 * PF_CUDA_HOST for its host self-test: the pointers are then host memory and
 * the same per-tile / per-element functions the kernels run are called in
 * plain loops (no device needed), so the tests check the kernels' index
 * arithmetic and dtype handling on any machine.  dtype is one of
 * PF_CUDA_FLOAT16, _BFLOAT16, _FLOAT32, _FLOAT64 (sums in float32, or float64
 * for float64; the norms' statistics in float64).
 */
/* A strided 4-D operand (N, C, H, W) or (O, C / groups, KH, KW): element strides. */
typedef struct PfCudaNd4 {
    void *data;
    int64_t s[4];
} PfCudaNd4;
/* A vector of any float dtype (its own), element stride; data NULL: absent. */
typedef struct PfCudaVec {
    void *data;
    int dtype;
    int64_t stride;
} PfCudaVec;
/* A convolution's geometry, as csrc/kernels/conv.h's pf_conv_geom. */
typedef struct PfCudaConvGeom {
    int64_t n, c, h, w, o, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw, groups;
} PfCudaConvGeom;
enum { PF_CUDA_CONV_FORWARD, PF_CUDA_CONV_INPUT_GRAD, PF_CUDA_CONV_WEIGHT_GRAD };
/*
 * FORWARD: out (N, O, OH, OW) = conv(a = x (N, C, H, W), b = w) + bias (O);
 * INPUT_GRAD: out (N, C, H, W) = the transposed convolution of a = gy
 *   (N, O, OH, OW) with b = w, + bias (C) (conv_transpose2d);
 * WEIGHT_GRAD: out (O, C / groups, KH, KW) from a = x and b = gy (bias unused).
 * Every operand takes any strides; bias is of dtype, or NULL.
 */
typedef int pf_cuda_conv_fn(int device, int kind, int dtype, const PfCudaConvGeom *g,
                            const PfCudaNd4 *a, const PfCudaNd4 *b, const PfCudaVec *bias,
                            const PfCudaNd4 *out);
/* A pooling window's geometry, as pf_pool_geom. */
typedef struct PfCudaPoolGeom {
    int64_t n, c, h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw;
    int64_t count_include_pad, divisor;
} PfCudaPoolGeom;
enum {
    PF_CUDA_MAX_POOL, PF_CUDA_AVG_POOL,     /* out (N, C, OH, OW) from a = x */
    PF_CUDA_MAX_POOL_BACKWARD,              /* out (N, C, H, W) from a = gy, b = x */
    PF_CUDA_MAX_POOL_SELECT,                /* out (N, C, OH, OW) from a = values, b = x */
    PF_CUDA_AVG_POOL_BACKWARD               /* out (N, C, H, W) from a = gy */
};
typedef int pf_cuda_pool_fn(int device, int kind, int dtype, const PfCudaPoolGeom *g,
                            const PfCudaNd4 *a, const PfCudaNd4 *b, const PfCudaNd4 *out);
/* pf_rownorm: rows of n contiguous elements; weight block r % groups of nch, each for inner. */
typedef struct PfCudaRowNorm {
    int64_t rows, n, groups, nch, inner;
    double eps;
    int rms;
} PfCudaRowNorm;
/* y (rows, n) = the norm of x (rows, n), contiguous; w, b (groups * nch) or absent. */
typedef int pf_cuda_rownorm_fn(int device, int dtype, const PfCudaRowNorm *P, const void *x,
                               const PfCudaVec *w, const PfCudaVec *b, void *y);
/* Its gradient: dx (rows, n, may be NULL), dw and db (written in their own dtypes, or absent). */
typedef int pf_cuda_rownorm_backward_fn(int device, int dtype, const PfCudaRowNorm *P,
                                        const void *g, const void *x, const PfCudaVec *w,
                                        void *dx, const PfCudaVec *dw, const PfCudaVec *db);
/* batch_norm over x (outer, C, inner), contiguous. */
typedef struct PfCudaBatchNorm {
    int64_t outer, c, inner;
    int training;
    double momentum, eps;
} PfCudaBatchNorm;
/*
 * y = (x - mean) / sqrt(var + eps) * w + b with the batch's statistics
 * (training) or running_mean / running_var; training updates the running
 * buffers (when given) in place with the unbiased variance.
 */
typedef int pf_cuda_batch_norm_fn(int device, int dtype, const PfCudaBatchNorm *B, const void *x,
                                  void *y, const PfCudaVec *running_mean,
                                  const PfCudaVec *running_var, const PfCudaVec *w,
                                  const PfCudaVec *b);
/* Its gradient: dx (may be NULL), dw and db (absent when not wanted). */
typedef int pf_cuda_batch_norm_backward_fn(int device, int dtype, const PfCudaBatchNorm *B,
                                           const void *g, const void *x,
                                           const PfCudaVec *running_mean,
                                           const PfCudaVec *running_var, const PfCudaVec *w,
                                           void *dx, const PfCudaVec *dw, const PfCudaVec *db);
#define PF_CUDA_NN_ENTRIES(X)                                                                \
    X(conv) X(pool) X(rownorm) X(rownorm_backward) X(batch_norm) X(batch_norm_backward)

#define PF_CUDA_ENTRY_POINTS(X)                                                              \
    PF_CUDA_CORE_ENTRIES(X) PF_CUDA_COPY_ENTRIES(X) PF_CUDA_EW_ENTRIES(X)                    \
    PF_CUDA_REDUCE_ENTRIES(X) PF_CUDA_BLAS_ENTRIES(X) PF_CUDA_RNG_ENTRIES(X)                 \
    PF_CUDA_OPTIM_ENTRIES(X) PF_CUDA_NN_ENTRIES(X)

#ifdef __cplusplus
}
#endif

#endif
