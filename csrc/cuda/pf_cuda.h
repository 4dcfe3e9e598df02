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
 * Gathering, scattering and indexing (gather.cu).  Each entry point takes a
 * device index, or PF_CUDA_HOST to run the very same per-element code in a
 * plain loop over host pointers: the host self-test, which needs no device.
 * Strides count elements unless their name says bytes.  Index arrays may
 * hold any integer dtype (index_dtype: a PF_CUDA_* number); an index is
 * counted from the end when negative.  Where an op raises for an index out
 * of range, *bad reports the first one in row-major order of the op's
 * iteration shape: pos its flat position there (-1: none), value the index
 * read at it.  Finding out costs one 8-byte device->host read, which waits
 * for the work queued before it.
 */
typedef struct PfCudaBad {
    int64_t pos;
    int64_t value;
} PfCudaBad;

/*
 * Along an axis (take_along_axis, gather, scatter, scatter_add,
 * put_along_axis): element i (row-major over shape) reads index[i]; data
 * is the tensor indexed along the axis (its strides are 0 along the axis;
 * index * axis_stride selects there), other the gather's output or the
 * scatter's source.  A scatter checks every index before writing any.
 */
typedef struct PfCudaAlong {
    int ndim;                               /* 1 .. PF_CUDA_MAX_DIMS */
    int64_t shape[PF_CUDA_MAX_DIMS];
    int64_t data_strides[PF_CUDA_MAX_DIMS];
    int64_t index_strides[PF_CUDA_MAX_DIMS];
    int64_t other_strides[PF_CUDA_MAX_DIMS];
    int64_t axis_size;
    int64_t axis_stride;
    int dtype;                              /* of data and other */
    int index_dtype;
    int add;                                /* scatter: add (atomically) instead of assign */
    int scalar;                             /* scatter: other is NULL, every source is value */
    unsigned char value[8];
} PfCudaAlong;
/* out (shape, other_strides) = data[..., index, ...] */
typedef int pf_cuda_gather_along_fn(int device, void *out, const void *data, const void *index,
                                    const PfCudaAlong *g, PfCudaBad *bad);
/* data[..., index, ...] (=|+=) src (shape, other_strides); nothing written when *bad */
typedef int pf_cuda_scatter_along_fn(int device, void *data, const void *index, const void *src,
                                     const PfCudaAlong *g, PfCudaBad *bad);

/*
 * Advanced indexing, step 1: the byte offset of every position of the
 * broadcast index shape B (contiguous int64 `offsets`), one index array at
 * a time: offsets[b] (= or +=) index[b] * stride_bytes, after counting
 * negative indices from the end (wrap is added to them: the size, or 0),
 * and for an index still outside [0, size): mode 0 reports it in *bad,
 * 1 wraps it around, 2 clips it.  is_offset: the array (int64) holds byte
 * offsets already (a mask's nonzero positions).
 */
typedef struct PfCudaIndexOffsets {
    int ndim;
    int64_t shape[PF_CUDA_MAX_DIMS];
    int64_t index_strides[PF_CUDA_MAX_DIMS];
    int index_dtype;
    int is_offset;
    int first;
    int mode;
    int64_t size;
    int64_t wrap;
    int64_t stride_bytes;
} PfCudaIndexOffsets;
typedef int pf_cuda_index_offsets_fn(int device, int64_t *offsets, const void *index,
                                     const PfCudaIndexOffsets *g, PfCudaBad *bad);

/*
 * Advanced indexing, step 2: a copy over the result's shape (dims before
 * B, B's bnd dims from bfirst, dims after), byte strides on each side;
 * on one side (table_side 0: src, a read; 1: dst, a write) the B dims
 * have stride 0 and the table of step 1, indexed by the position within
 * B, is added instead.  scalar: every source element is value.  A write
 * with repeated positions keeps one of the values, not necessarily the
 * last (the cpu keeps the last).
 */
typedef struct PfCudaIndexCopy {
    int ndim;
    int bfirst;
    int bnd;
    int64_t shape[PF_CUDA_MAX_DIMS];
    int64_t dst_strides[PF_CUDA_MAX_DIMS];
    int64_t src_strides[PF_CUDA_MAX_DIMS];
    int table_side;
    int itemsize;
    int scalar;
    unsigned char value[8];
} PfCudaIndexCopy;
typedef int pf_cuda_index_copy_fn(int device, void *dst, const void *src, const int64_t *table,
                                  const PfCudaIndexCopy *g);

/*
 * nonzero / argwhere / masks: the positions of the nonzero elements of x
 * (shape, strides, dtype; a float's -0.0 is zero and NaN is not), in
 * row-major order.  Two calls around the output's allocation: count
 * fills scratch (PF_CUDA_NONZERO_SCRATCH int64s on the same device) and
 * reads the total back (one device->host read); write then puts hit j's
 * coordinate k at out[j * row_step + k * col_step] (offsets 0), or the
 * byte offset sum(coordinate * offset_strides) at out[j] (offsets 1).
 */
#define PF_CUDA_NONZERO_SCRATCH 1025
typedef struct PfCudaNonzero {
    int ndim;
    int64_t shape[PF_CUDA_MAX_DIMS];
    int64_t strides[PF_CUDA_MAX_DIMS];
    int dtype;
    int offsets;
    int64_t row_step;
    int64_t col_step;
    int64_t offset_strides[PF_CUDA_MAX_DIMS];
} PfCudaNonzero;
typedef int pf_cuda_nonzero_count_fn(int device, const void *x, const PfCudaNonzero *g,
                                     int64_t *scratch, int64_t *count);
typedef int pf_cuda_nonzero_write_fn(int device, int64_t *out, const void *x,
                                     const PfCudaNonzero *g, const int64_t *scratch);

/*
 * one_hot: out, contiguous (outer, classes, inner) in a dtype of itemsize
 * bytes, is zeroed, then out[o, index[p], q] = one for p = o * inner + q
 * over the index array (shape, index_strides); an index outside
 * [0, classes) is reported in *bad.
 */
typedef struct PfCudaOneHot {
    int ndim;
    int64_t shape[PF_CUDA_MAX_DIMS];
    int64_t index_strides[PF_CUDA_MAX_DIMS];
    int index_dtype;
    int itemsize;
    int64_t classes;
    int64_t inner;
    unsigned char one[8];
} PfCudaOneHot;
typedef int pf_cuda_one_hot_fn(int device, void *out, const void *index, const PfCudaOneHot *g,
                               PfCudaBad *bad);

/* masked_fill: out = mask ? value : x over shape (mask: bool, 0 strides where it broadcasts) */
typedef struct PfCudaMaskedFill {
    int ndim;
    int64_t shape[PF_CUDA_MAX_DIMS];
    int64_t x_strides[PF_CUDA_MAX_DIMS];
    int64_t mask_strides[PF_CUDA_MAX_DIMS];
    int64_t out_strides[PF_CUDA_MAX_DIMS];
    int itemsize;
    unsigned char value[8];
} PfCudaMaskedFill;
typedef int pf_cuda_masked_fill_fn(int device, void *out, const void *x, const void *mask,
                                   const PfCudaMaskedFill *g);

/*
 * sort, argsort, topk: every row of x along `axis` (x: shape, strides in
 * elements) sorted stably as the cpu sorts it (the same keys: NaN last,
 * -0.0 tied with 0.0; descending complements them, so NaN comes first and
 * ties keep their order); the first k of each sorted row go to vals (x's
 * dtype) and inds (int64), either may be NULL, over x's shape with k along
 * the axis (strides in elements).
 */
typedef struct PfCudaSort {
    int ndim;
    int axis;
    int64_t shape[PF_CUDA_MAX_DIMS];
    int64_t strides[PF_CUDA_MAX_DIMS];
    int64_t vals_strides[PF_CUDA_MAX_DIMS];
    int64_t inds_strides[PF_CUDA_MAX_DIMS];
    int dtype;
    int descending;
    int64_t k;
} PfCudaSort;
typedef int pf_cuda_sort_rows_fn(int device, void *vals, int64_t *inds, const void *x,
                                 const PfCudaSort *g);

/*
 * searchsorted: for element i of v (contiguous, nv elements, of dtype),
 * out[i] = the first position in row i / m of a (contiguous rows of n,
 * sorted as sort sorts) whose value is > (right) or >= v[i].
 */
typedef struct PfCudaSearch {
    int dtype;
    int right;
    int64_t n;
    int64_t m;
    int64_t nv;
} PfCudaSearch;
typedef int pf_cuda_search_sorted_fn(int device, int64_t *out, const void *a, const void *v,
                                     const PfCudaSearch *g);

/*
 * unique, after an argsort (perm) of the flat x (n elements, stride in
 * elements): marks[i] = 1 where sorted position i starts a group (its key
 * differs from the one before; every NaN alone with nan_alone); then, with
 * starts the positions of the marks (groups of them), per group g the
 * value x[perm[starts[g]]], first occurrence perm[starts[g]] and count,
 * and per element inverse[perm[i]] = its group.  Outputs may be NULL.
 */
typedef struct PfCudaUnique {
    int dtype;
    int nan_alone;
    int64_t n;
    int64_t stride;
    int64_t groups;
} PfCudaUnique;
typedef int pf_cuda_unique_marks_fn(int device, uint8_t *marks, const void *x,
                                    const int64_t *perm, const PfCudaUnique *g);
typedef int pf_cuda_unique_groups_fn(int device, void *vals, int64_t *first, int64_t *inverse,
                                     int64_t *counts, const void *x, const int64_t *perm,
                                     const int64_t *starts, const PfCudaUnique *g);

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
#define PF_CUDA_NN_ENTRIES(X)
/* gather.cu: gathers, scatters, advanced indexing, nonzero, one_hot, masked_fill, sorts */
#define PF_CUDA_GATHER_ENTRIES(X)                                                            \
    X(gather_along) X(scatter_along) X(index_offsets) X(index_copy) X(nonzero_count)        \
    X(nonzero_write) X(one_hot) X(masked_fill) X(sort_rows) X(search_sorted)                \
    X(unique_marks) X(unique_groups)

#define PF_CUDA_ENTRY_POINTS(X)                                                              \
    PF_CUDA_CORE_ENTRIES(X) PF_CUDA_COPY_ENTRIES(X) PF_CUDA_EW_ENTRIES(X)                    \
    PF_CUDA_REDUCE_ENTRIES(X) PF_CUDA_BLAS_ENTRIES(X) PF_CUDA_RNG_ENTRIES(X)                 \
    PF_CUDA_OPTIM_ENTRIES(X) PF_CUDA_NN_ENTRIES(X) PF_CUDA_GATHER_ENTRIES(X)

#ifdef __cplusplus
}
#endif

#endif
