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
#include "../kernels/philox.h"
#include "../kernels/optim_kernels.h"

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
 * Streams and events, as handles (the cudaStream_t / cudaEvent_t as an
 * integer; stream 0 is the legacy default stream).  A stream belongs to the
 * device it was created on.  set_stream makes a stream current for the
 * calling thread on its device: pyframe's kernels, copies and allocations on
 * that device then go to it.  query answers *done = 1 when all work queued so
 * far has completed.  record_stream marks a live block as used on another
 * stream (Tensor.record_stream): its free then waits for that stream.
 */
typedef int pf_cuda_stream_create_fn(int device, int priority, uintptr_t *handle);
typedef int pf_cuda_stream_destroy_fn(int device, uintptr_t handle);
typedef int pf_cuda_stream_synchronize_fn(int device, uintptr_t handle);
typedef int pf_cuda_stream_query_fn(int device, uintptr_t handle, int *done);
typedef int pf_cuda_stream_wait_event_fn(int device, uintptr_t stream, uintptr_t event);
typedef int pf_cuda_set_stream_fn(int device, uintptr_t handle);
typedef int pf_cuda_get_stream_fn(int device, uintptr_t *handle);
typedef int pf_cuda_event_create_fn(int device, int timing, uintptr_t *handle);
typedef int pf_cuda_event_destroy_fn(int device, uintptr_t handle);
typedef int pf_cuda_event_record_fn(int device, uintptr_t event, uintptr_t stream);
typedef int pf_cuda_event_synchronize_fn(uintptr_t event);
typedef int pf_cuda_event_query_fn(uintptr_t event, int *done);
/* Milliseconds between two completed events created with timing. */
typedef int pf_cuda_event_elapsed_fn(uintptr_t start, uintptr_t end, float *ms);
typedef int pf_cuda_record_stream_fn(void *ptr, uintptr_t stream);

/*
 * Pinned (page-locked) host memory, from a caching allocator of its own, and
 * the asynchronous host-to-device copy out of it: queued on the current
 * stream of `device`, not waited for; src lies in the pinned block
 * src_block, which is not reused until the copy has read it.
 */
typedef int pf_cuda_host_alloc_fn(size_t size, void **ptr);
typedef int pf_cuda_host_free_fn(void *ptr);
typedef int pf_cuda_memcpy_h2d_async_fn(void *dst, int device, const void *src, void *src_block,
                                        size_t nbytes);

/*
 * Reductions and scans (reduce.cu).  The geometry is reduce_kernels.h's
 * pf_rgeom: output o lies at the row-major position o of the kept
 * dimensions, element r of its region at the row-major position r of the
 * reduced dimensions (both lists at least one dimension long; strides in
 * elements of `dtype`).  The kinds and finishing steps are numbered as
 * pf_rkind and pf_rfinish (reduce.c checks that).
 *
 * Every reduce entry takes a device, or PF_CUDA_HOST: then the pointers are
 * host memory and the same per-element functions run in a plain loop on the
 * calling thread, with no device and no driver (the host self-test).
 */
typedef struct PfCudaReduceGeom {
    const void *base;
    int dtype;                      /* the input's dtype (any) */
    int knd, rnd;
    int64_t kshape[PF_CUDA_MAX_DIMS], kstride[PF_CUDA_MAX_DIMS];
    int64_t rshape[PF_CUDA_MAX_DIMS], rstride[PF_CUDA_MAX_DIMS];
    int64_t outer;                  /* outputs */
    int64_t n;                      /* elements reduced into each output (>= 1) */
} PfCudaReduceGeom;
enum {
    PF_CUDA_RK_SUM, PF_CUDA_RK_PROD, PF_CUDA_RK_MAX, PF_CUDA_RK_MIN, PF_CUDA_RK_ALL,
    PF_CUDA_RK_ANY, PF_CUDA_RK_SUMABS, PF_CUDA_RK_SUMSQ, PF_CUDA_RK_MAXABS, PF_CUDA_RK_MINABS,
    PF_CUDA_RK_NNZ, PF_CUDA_RK_SUMPOW, PF_CUDA_RK_SUMSQDEV, PF_CUDA_RK_SUMEXP,
    PF_CUDA_RK_ARGMAX, PF_CUDA_RK_ARGMIN, PF_CUDA_RK_COUNT
};
enum {
    PF_CUDA_RF_SCALE, PF_CUDA_RF_SQRT, PF_CUDA_RF_SCALE_SQRT, PF_CUDA_RF_ROOT,
    PF_CUDA_RF_CENTER, PF_CUDA_RF_LOG_ADD,
    PF_CUDA_RF_NONE                 /* only the conversion to out_dtype */
};
/*
 * One reduction pass: g->outer values of `comp` (float32, float64 or int64;
 * the float-only kinds take no int64) to out, and for ARGMAX/ARGMIN the
 * first index of the extreme to idx.  center: g->outer values of comp for
 * SUMSQDEV and SUMEXP, else NULL; p the power of SUMPOW.  Queued, not waited for.
 */
typedef int pf_cuda_reduce_fn(int device, const PfCudaReduceGeom *g, int kind, int comp,
                              double p, const void *center, void *out, int64_t *idx);
/*
 * out[i] = finish(v[i]) converted to out_dtype, for i < count: v holds
 * values of comp, aux (LOG_ADD) count more; out may be v when out_dtype is comp.
 */
typedef int pf_cuda_reduce_finish_fn(int device, int finish, int comp, const void *v,
                                     const void *aux, int64_t count, double a, int out_dtype,
                                     void *out);
/*
 * Inclusive sum (prod = 0) or product scan along the middle axis of the
 * contiguous (pre, n, post) block x of x_dtype, into y of comp (float32,
 * float64 or int64), contiguous of the same shape.
 */
typedef int pf_cuda_scan_fn(int device, const void *x, int x_dtype, void *y, int comp,
                            int64_t pre, int64_t n, int64_t post, int prod);

/*
 * Matrix products through cuBLAS (blas.cu), which the library does not
 * link: pf_cuda_blas_load dlopen()s libcublas.so.13 on first use, from the
 * loader's search path and then from each of `dirs` (pyframe/cuda.py finds
 * the nvidia-cublas wheel's and a toolkit's directories).  It returns 0 once
 * loaded (then every later call too), else PF_CUDA_ERROR_LIBRARY; either
 * way `report` says where it was found, or everything that was tried.
 */
#define PF_CUDA_ERROR_LIBRARY 1000  /* a library loaded at run time (cuBLAS) is missing or failed */
typedef int pf_cuda_blas_load_fn(const char *const *dirs, int ndirs, char *report,
                                 size_t report_size);
/*
 * C = A B for every index of the batch shape, as gemm.h's pf_gemm (strides
 * in elements, batch strides 0 where an operand broadcasts), in one dtype:
 * float16 and bfloat16 (accumulated in float32), float32 (TF32 tensor cores
 * only when allow_tf32 is set), float64.  A and B must each have contiguous
 * rows or columns, and so must C; k == 0 writes zeros.  Queued, not waited for.
 * With device == PF_CUDA_HOST the same mapping onto cuBLAS's column-major
 * parameters (transposes, leading dimensions, batch strides) is run by a
 * plain host loop over host pointers, with no cuBLAS and no device: the
 * host self-test of the mapping.
 */
typedef struct PfCudaGemmMat {
    void *data;
    int64_t bstrides[PF_CUDA_MAX_DIMS];
    int64_t rs, cs;
} PfCudaGemmMat;
typedef struct PfCudaGemm {
    int dtype;
    int allow_tf32;
    int nb;
    int64_t bshape[PF_CUDA_MAX_DIMS];
    int64_t m, n, k;
    PfCudaGemmMat a, b, c;
} PfCudaGemm;
typedef int pf_cuda_gemm_fn(int device, const PfCudaGemm *g);

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
#define PF_CUDA_STREAM_ENTRIES(X)                                                            \
    X(stream_create) X(stream_destroy) X(stream_synchronize) X(stream_query)                 \
    X(stream_wait_event) X(set_stream) X(get_stream) X(event_create) X(event_destroy)        \
    X(event_record) X(event_synchronize) X(event_query) X(event_elapsed) X(record_stream)     \
    X(host_alloc) X(host_free) X(memcpy_h2d_async)
/* csrc/cuda/elementwise.cu: the elementwise ops of the op table and the dtype cast */
#define PF_CUDA_EW_ENTRIES(X) X(ew) X(ew_host) X(cast_strided) X(cast_host)
/* reduce.cu: reductions, their finishing steps, scans */
#define PF_CUDA_REDUCE_ENTRIES(X) X(reduce) X(reduce_finish) X(scan)
/* blas.cu: cuBLAS, loaded at run time, and the batched GEMM of linalg.c */
#define PF_CUDA_BLAS_ENTRIES(X) X(blas_load) X(gemm)
/*
 * Random draws (random.cu), the same numbers as the cpu's for the same state
 * (the transforms of kernels/philox.h, shared with random.c).  rng_fill
 * writes n elements of `dtype` (a pf_dtype number) contiguously at out: the
 * draw described by d (uniform and normal: float dtypes; int: any dtype the
 * range fits).  dropout_mask writes the mask of dropout(p) for p in [0, 1):
 * 1 / (1 - p) where rand's uniform is >= p, else 0, in a float dtype.
 * Queued, not waited for.  The _host twins run the same per-element code on
 * the calling thread over host memory (device ignored; no GPU needed): the
 * host self-test of the kernels.
 */
typedef int pf_cuda_rng_fill_fn(int device, void *out, int dtype, int64_t n,
                                const pf_rng_dist *d);
typedef int pf_cuda_dropout_mask_fn(int device, void *out, int dtype, int64_t n, double p,
                                    uint64_t seed, uint64_t offset);
typedef pf_cuda_rng_fill_fn pf_cuda_rng_fill_host_fn;
typedef pf_cuda_dropout_mask_fn pf_cuda_dropout_mask_host_fn;
#define PF_CUDA_RNG_ENTRIES(X) X(rng_fill) X(rng_fill_host) X(dropout_mask) X(dropout_mask_host)
/*
 * Optimizer updates (optim.cu): optim_update runs the cpu's update loop of
 * `algo` (a pf_optim_algo) on one parameter of n float32 (is_double 0) or
 * float64 elements at p, with its gradient g and state arrays s[0..2] (NULL
 * where the algorithm's variant uses none), all contiguous on `device`, and
 * the per-step constants c (optim.c); queued.  optim_update_host does the
 * same per-element work on host memory (device ignored): the host
 * self-test.  optim_sumsq sums the squares of x (n elements) in double into
 * *out, waiting for the result (clipnorm, global_clipnorm).
 */
typedef int pf_cuda_optim_update_fn(int device, int algo, int is_double, void *p, const void *g,
                                    void *const *s, int64_t n, const pf_optim_coef *c);
typedef pf_cuda_optim_update_fn pf_cuda_optim_update_host_fn;
typedef int pf_cuda_optim_sumsq_fn(int device, const void *x, int64_t n, int is_double,
                                   double *out);
#define PF_CUDA_OPTIM_ENTRIES(X) X(optim_update) X(optim_update_host) X(optim_sumsq)
/*
 * softmax / log_softmax (softmax.cu) of x, a contiguous (pre, n, post) block
 * of float32 (is_double 0) or float64 on `device`, along its n axis, into y
 * (the same shape; may be x); queued.  softmax_host runs the kernel's
 * per-lane code on host memory (device ignored): the host self-test.
 */
typedef int pf_cuda_softmax_fn(int device, const void *x, void *y, int64_t pre, int64_t n,
                               int64_t post, int is_double, int is_log);
typedef pf_cuda_softmax_fn pf_cuda_softmax_host_fn;
/*
 * layer_norm (layer_norm.cu): x, y (rows, n) contiguous float32 (is_double
 * 0) or float64 on `device`, w and b (n) or NULL; y = (x - mean) rstd w + b
 * per row.  layer_norm_bwd: from g and x (rows, n) and w (n) or NULL, dx
 * (rows, n), dw and db (n), each NULL when not wanted.  Queued.  The _host
 * twins run the kernels' code on host memory (device ignored).
 */
typedef int pf_cuda_layer_norm_fn(int device, const void *x, const void *w, const void *b,
                                  void *y, int64_t rows, int64_t n, double eps, int is_double);
typedef pf_cuda_layer_norm_fn pf_cuda_layer_norm_host_fn;
typedef int pf_cuda_layer_norm_bwd_fn(int device, const void *g, const void *x, const void *w,
                                      void *dx, void *dw, void *db, int64_t rows, int64_t n,
                                      double eps, int is_double);
typedef pf_cuda_layer_norm_bwd_fn pf_cuda_layer_norm_bwd_host_fn;
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
    X(softmax) X(softmax_host) X(layer_norm) X(layer_norm_host) X(layer_norm_bwd)            \
    X(layer_norm_bwd_host) X(conv) X(pool) X(rownorm) X(rownorm_backward) X(batch_norm)      \
    X(batch_norm_backward)
/* gather.cu: gathers, scatters, advanced indexing, nonzero, one_hot, masked_fill, sorts */
#define PF_CUDA_GATHER_ENTRIES(X)                                                            \
    X(gather_along) X(scatter_along) X(index_offsets) X(index_copy) X(nonzero_count)        \
    X(nonzero_write) X(one_hot) X(masked_fill) X(sort_rows) X(search_sorted)                \
    X(unique_marks) X(unique_groups)

#define PF_CUDA_ENTRY_POINTS(X)                                                              \
    PF_CUDA_CORE_ENTRIES(X) PF_CUDA_COPY_ENTRIES(X) PF_CUDA_STREAM_ENTRIES(X)                \
    PF_CUDA_EW_ENTRIES(X)                                                                    \
    PF_CUDA_REDUCE_ENTRIES(X) PF_CUDA_BLAS_ENTRIES(X) PF_CUDA_RNG_ENTRIES(X)                 \
    PF_CUDA_OPTIM_ENTRIES(X) PF_CUDA_NN_ENTRIES(X) PF_CUDA_GATHER_ENTRIES(X)

#ifdef __cplusplus
}
#endif

#endif
