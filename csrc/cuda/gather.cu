/*
 * gather.cu -- gathering and scattering on a device: along an axis
 * (take_along_axis, gather, scatter, scatter_add, put_along_axis), the two
 * steps of advanced indexing (index arrays to byte offsets, then the copy
 * through them: take, index_select, x[idx], x[idx] = v), nonzero (a
 * compaction), one_hot, masked_fill, and the sorts (sort, argsort, topk,
 * searchsorted, unique).  Declared in pf_cuda.h.
 *
 * Each op's work for one element is a functor whose operator() is
 * __host__ __device__: the kernel calls it per index in a grid-stride
 * loop, and with device == PF_CUDA_HOST the entry point calls the same
 * functor in a plain loop over host pointers.  That host path is the
 * self-test the cpu-only CI runs against the cpu backend: it covers the
 * index arithmetic, the bounds checks, the dtype handling; the launches,
 * the atomics and device memory are left to a run on a GPU.
 *
 * Bounds: a thread that meets an index out of range records its flat
 * position with atomicMin in an 8-byte device slot (so the one reported
 * is the first in row-major order, as the cpu's serial loop finds) and
 * touches nothing through it; the entry point reads the slot back once
 * (8 bytes, a wait for the stream) and, on a hit, the offending index.
 */
#include "internal.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

PF_CUDA_EXPORT pf_cuda_alloc_fn pf_cuda_alloc;
PF_CUDA_EXPORT pf_cuda_free_fn pf_cuda_free;

PF_CUDA_EXPORT pf_cuda_gather_along_fn pf_cuda_gather_along;
PF_CUDA_EXPORT pf_cuda_scatter_along_fn pf_cuda_scatter_along;
PF_CUDA_EXPORT pf_cuda_index_offsets_fn pf_cuda_index_offsets;
PF_CUDA_EXPORT pf_cuda_index_copy_fn pf_cuda_index_copy;
PF_CUDA_EXPORT pf_cuda_nonzero_count_fn pf_cuda_nonzero_count;
PF_CUDA_EXPORT pf_cuda_nonzero_write_fn pf_cuda_nonzero_write;
PF_CUDA_EXPORT pf_cuda_one_hot_fn pf_cuda_one_hot;
PF_CUDA_EXPORT pf_cuda_masked_fill_fn pf_cuda_masked_fill;
PF_CUDA_EXPORT pf_cuda_sort_rows_fn pf_cuda_sort_rows;
PF_CUDA_EXPORT pf_cuda_search_sorted_fn pf_cuda_search_sorted;
PF_CUDA_EXPORT pf_cuda_unique_marks_fn pf_cuda_unique_marks;
PF_CUDA_EXPORT pf_cuda_unique_groups_fn pf_cuda_unique_groups;

#define PFC_HD __host__ __device__

/* Data movement only: every dtype. */
#define PFC_ALL_DTYPES ((1u << PF_CUDA_NDTYPES) - 1u)
static pfc_register r_take_along_axis(PFC_OP_TAKE_ALONG_AXIS, PFC_ALL_DTYPES);
static pfc_register r_gather(PFC_OP_GATHER, PFC_ALL_DTYPES);
static pfc_register r_put_along_axis(PFC_OP_PUT_ALONG_AXIS, PFC_ALL_DTYPES);
static pfc_register r_scatter(PFC_OP_SCATTER, PFC_ALL_DTYPES);
static pfc_register r_scatter_(PFC_OP_SCATTER_INPLACE, PFC_ALL_DTYPES);
static pfc_register r_scatter_add(PFC_OP_SCATTER_ADD, PFC_ALL_DTYPES);
static pfc_register r_scatter_add_(PFC_OP_SCATTER_ADD_INPLACE, PFC_ALL_DTYPES);
static pfc_register r_index_select(PFC_OP_INDEX_SELECT, PFC_ALL_DTYPES);
static pfc_register r_take(PFC_OP_TAKE, PFC_ALL_DTYPES);
static pfc_register r_nonzero(PFC_OP_NONZERO, PFC_ALL_DTYPES);
static pfc_register r_argwhere(PFC_OP_ARGWHERE, PFC_ALL_DTYPES);
static pfc_register r_one_hot(PFC_OP_ONE_HOT, PFC_ALL_DTYPES);
static pfc_register r_masked_fill(PFC_OP_MASKED_FILL, PFC_ALL_DTYPES);
static pfc_register r_masked_fill_(PFC_OP_MASKED_FILL_, PFC_ALL_DTYPES);
static pfc_register r_sort(PFC_OP_SORT, PFC_ALL_DTYPES);
static pfc_register r_argsort(PFC_OP_ARGSORT, PFC_ALL_DTYPES);
static pfc_register r_topk(PFC_OP_TOPK, PFC_ALL_DTYPES);
static pfc_register r_searchsorted(PFC_OP_SEARCHSORTED, PFC_ALL_DTYPES);
static pfc_register r_unique(PFC_OP_UNIQUE, PFC_ALL_DTYPES);

/* ------------------------------------------------------- shared pieces */

static int dtype_size(int dtype)
{
    switch (dtype) {
    case PF_CUDA_BOOL: case PF_CUDA_UINT8: case PF_CUDA_INT8: return 1;
    case PF_CUDA_INT16: case PF_CUDA_FLOAT16: case PF_CUDA_BFLOAT16: return 2;
    case PF_CUDA_INT32: case PF_CUDA_FLOAT32: return 4;
    default: return 8;
    }
}

static bool is_index_dtype(int dtype)
{
    return dtype == PF_CUDA_UINT8 || dtype == PF_CUDA_INT8 || dtype == PF_CUDA_INT16 ||
           dtype == PF_CUDA_INT32 || dtype == PF_CUDA_INT64;
}

/* One element of an integer index array, widened. */
PFC_HD static inline int64_t read_index(const char *p, int dtype)
{
    switch (dtype) {
    case PF_CUDA_UINT8: return *(const uint8_t *)p;
    case PF_CUDA_INT8: return *(const int8_t *)p;
    case PF_CUDA_INT16: return *(const int16_t *)p;
    case PF_CUDA_INT32: return *(const int32_t *)p;
    default: return *(const int64_t *)p;
    }
}

/* Offset (in elements) of flat position i of shape, under strides. */
PFC_HD static inline int64_t offset_of(int ndim, const int64_t *shape, const int64_t *strides,
                                       int64_t i)
{
    int64_t o = 0;
    for (int k = ndim - 1; k >= 0; k--) {
        int64_t c = i % shape[k];
        i /= shape[k];
        o += c * strides[k];
    }
    return o;
}

/* Where a bad index is recorded: keep the smallest flat position. */
PFC_HD static inline void note_bad(unsigned long long *slot, int64_t i)
{
#ifdef __CUDA_ARCH__
    atomicMin(slot, (unsigned long long)i);
#else
    if ((unsigned long long)i < *slot) {
        *slot = (unsigned long long)i;
    }
#endif
}

static const int THREADS = 256;
static const int64_t MAX_BLOCKS = 65535;

template <typename F> __global__ void each_kernel(int64_t n, F f)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
        f(i);
    }
}

/*
 * f(i) for 0 <= i < n: a plain loop on the host, or a grid-stride kernel
 * queued on pyframe's stream (the caller has made the device current).
 */
template <typename F> static int run_each(int device, const char *what, int64_t n, const F &f)
{
    if (n <= 0) {
        return 0;
    }
    if (device == PF_CUDA_HOST) {
        for (int64_t i = 0; i < n; i++) {
            f(i);
        }
        return 0;
    }
    int64_t b = (n + THREADS - 1) / THREADS;
    each_kernel<<<(unsigned)(b < MAX_BLOCKS ? b : MAX_BLOCKS), THREADS, 0, pfc_stream()>>>(n, f);
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) {
        return pfc_fail(err, "%s kernel launch (%lld elements, cuda:%d)", what, (long long)n,
                        device);
    }
    return 0;
}

/* Runs body with device current, or at once on the host. */
template <typename Body> static int on(int device, Body body)
{
    return device == PF_CUDA_HOST ? body() : pfc_on_device(device, body);
}

/* Copies nbytes from device memory (or host memory, on the host path) and waits. */
static int read_back(int device, void *dst, const void *src, size_t nbytes, const char *what)
{
    if (device == PF_CUDA_HOST) {
        memcpy(dst, src, nbytes);
        return 0;
    }
    cudaError_t err = cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, pfc_stream());
    if (err == cudaSuccess) {
        err = cudaStreamSynchronize(pfc_stream());
    }
    return err == cudaSuccess ? 0 : pfc_fail(err, "reading back %s (%zu bytes, cuda:%d)", what,
                                             nbytes, device);
}

/*
 * The 8-byte slot a kernel records its first bad position in: device
 * memory from the caching allocator, set to all ones before the kernel;
 * on the host path a local.
 */
struct BadSlot {
    int device;
    unsigned long long host = ~0ull;
    unsigned long long *dev = nullptr;

    explicit BadSlot(int d) : device(d) {}
    ~BadSlot()
    {
        if (dev != nullptr) {
            pf_cuda_free(dev);
        }
    }
    int open()
    {
        if (device == PF_CUDA_HOST) {
            return 0;
        }
        void *p = nullptr;
        int status = pf_cuda_alloc(sizeof(unsigned long long), device, &p);
        if (status != 0) {
            return status;
        }
        dev = (unsigned long long *)p;
        cudaError_t err = cudaMemsetAsync(dev, 0xff, sizeof(*dev), pfc_stream());
        return err == cudaSuccess ? 0 : pfc_fail(err, "cudaMemsetAsync(bad-index slot)");
    }
    unsigned long long *ptr() { return device == PF_CUDA_HOST ? &host : dev; }
    /* the recorded position, or -1 */
    int read(int64_t *pos)
    {
        unsigned long long v = host;
        int status = device == PF_CUDA_HOST ? 0 : read_back(device, &v, dev, sizeof(v),
                                                            "the bad-index slot");
        *pos = v == ~0ull ? -1 : (int64_t)v;
        return status;
    }
};

/* bad = {pos, the index at element offset `at` of index}; pos -1 leaves value 0 */
static int report_bad(int device, int64_t pos, const void *index, int index_dtype, int64_t at,
                      PfCudaBad *bad)
{
    bad->pos = pos;
    bad->value = 0;
    if (pos < 0) {
        return 0;
    }
    int isz = dtype_size(index_dtype);
    int64_t raw = 0;
    int status = read_back(device, &raw, (const char *)index + at * isz, (size_t)isz,
                           "the bad index");
    bad->value = read_index((const char *)&raw, index_dtype);
    return status;
}

static int invalid(const char *fn, const char *what)
{
    char msg[256];
    snprintf(msg, sizeof(msg), "%s: %s", fn, what);
    return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, msg);
}

/* 0 when 1 <= ndim <= max and sizes >= 0, with *n the element count. */
static int check_shape(const char *fn, int ndim, const int64_t *shape, int64_t *n)
{
    if (ndim < 1 || ndim > PF_CUDA_MAX_DIMS) {
        return invalid(fn, "ndim must be 1 to 8");
    }
    int64_t count = 1;
    for (int k = 0; k < ndim; k++) {
        if (shape[k] < 0) {
            return invalid(fn, "a negative size");
        }
        count *= shape[k];
    }
    *n = count;
    return 0;
}

/* The element types moved as bits, by item size. */
template <int N> struct Bits;
template <> struct Bits<1> { typedef uint8_t T; };
template <> struct Bits<2> { typedef uint16_t T; };
template <> struct Bits<4> { typedef uint32_t T; };
template <> struct Bits<8> { typedef uint64_t T; };

/* Calls f.template run<T>() with T the bits type of itemsize. */
template <typename F> static int by_size(int itemsize, F &f)
{
    switch (itemsize) {
    case 1: return f.template run<uint8_t>();
    case 2: return f.template run<uint16_t>();
    case 4: return f.template run<uint32_t>();
    default: return f.template run<uint64_t>();
    }
}

/* ----------------------------------------------------------- along an axis */

/* Offsets of element i on the three operands of g. */
PFC_HD static inline void along_offsets(const PfCudaAlong &g, int64_t i, int64_t *d, int64_t *x,
                                        int64_t *o)
{
    int64_t dd = 0, xx = 0, oo = 0;
    for (int k = g.ndim - 1; k >= 0; k--) {
        int64_t c = i % g.shape[k];
        i /= g.shape[k];
        dd += c * g.data_strides[k];
        xx += c * g.index_strides[k];
        oo += c * g.other_strides[k];
    }
    *d = dd;
    *x = xx;
    *o = oo;
}

/* The position an index selects along an axis of `size`, or -1 when out of range. */
PFC_HD static inline int64_t along_position(int64_t v, int64_t size)
{
    int64_t w = v < 0 ? v + size : v;
    return (uint64_t)w < (uint64_t)size ? w : -1;
}

/* out (shape, other_strides) = data at index along the axis; data (.., 0 along axis) */
template <typename T> struct GatherAlong {
    PfCudaAlong g;
    T *out;
    const T *data;
    const char *index;
    int isz;
    unsigned long long *bad;

    PFC_HD void operator()(int64_t i) const
    {
        int64_t d, x, o;
        along_offsets(g, i, &d, &x, &o);
        int64_t w = along_position(read_index(index + x * isz, g.index_dtype), g.axis_size);
        if (w < 0) {
            note_bad(bad, i);
            return;
        }
        out[o] = data[d + w * g.axis_stride];
    }
};

/* Records every index out of range: a scatter checks all before it writes any. */
struct CheckAlong {
    PfCudaAlong g;
    const char *index;
    int isz;
    unsigned long long *bad;

    PFC_HD void operator()(int64_t i) const
    {
        int64_t d, x, o;
        along_offsets(g, i, &d, &x, &o);
        if (along_position(read_index(index + x * isz, g.index_dtype), g.axis_size) < 0) {
            note_bad(bad, i);
        }
    }
};

/*
 * Addition as the cpu's scatter_add does it: integers wrap (unsigned
 * arithmetic), bool saturates (or), half and bfloat16 add in float and
 * round once.
 */
template <typename T> PFC_HD inline T add_as_cpu(T a, T b)
{
    return a + b;
}
PFC_HD inline bool add_as_cpu(bool a, bool b) { return a || b; }
PFC_HD inline uint8_t add_as_cpu(uint8_t a, uint8_t b) { return (uint8_t)(a + b); }
PFC_HD inline int8_t add_as_cpu(int8_t a, int8_t b)
{
    return (int8_t)(uint8_t)((uint8_t)a + (uint8_t)b);
}
PFC_HD inline int16_t add_as_cpu(int16_t a, int16_t b)
{
    return (int16_t)(uint16_t)((uint16_t)a + (uint16_t)b);
}
PFC_HD inline int32_t add_as_cpu(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}
PFC_HD inline int64_t add_as_cpu(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}
PFC_HD inline __half add_as_cpu(__half a, __half b)
{
    return __float2half(__half2float(a) + __half2float(b));
}
PFC_HD inline __nv_bfloat16 add_as_cpu(__nv_bfloat16 a, __nv_bfloat16 b)
{
    return __float2bfloat16(__bfloat162float(a) + __bfloat162float(b));
}

#ifdef __CUDA_ARCH__
/*
 * *p = add_as_cpu(*p, v) atomically for 1- and 2-byte types: a
 * compare-and-swap loop on the aligned 32-bit word holding them.  The
 * word never leaves the allocation: device blocks are 512-byte aligned
 * and sized in multiples of 64 bytes.
 */
template <typename T> __device__ static void atomic_add_small(T *p, T v)
{
    uintptr_t a = (uintptr_t)p;
    unsigned int *word = (unsigned int *)(a & ~(uintptr_t)3);
    unsigned int shift = (unsigned int)(a & 3) * 8u;
    unsigned int mask = (sizeof(T) == 1 ? 0xffu : 0xffffu) << shift;
    unsigned int old = *word, assumed;
    do {
        assumed = old;
        typename Bits<sizeof(T)>::T bits = (typename Bits<sizeof(T)>::T)((assumed & mask) >> shift);
        T cur;
        memcpy(&cur, &bits, sizeof(T));
        T sum = add_as_cpu(cur, v);
        memcpy(&bits, &sum, sizeof(T));
        unsigned int next = (assumed & ~mask) | ((unsigned int)bits << shift);
        old = atomicCAS(word, assumed, next);
    } while (assumed != old);
}

template <typename T> __device__ static inline void atomic_add(T *p, T v)
{
    atomic_add_small(p, v);
}
template <> __device__ inline void atomic_add<float>(float *p, float v) { atomicAdd(p, v); }
template <> __device__ inline void atomic_add<double>(double *p, double v) { atomicAdd(p, v); }
template <> __device__ inline void atomic_add<int32_t>(int32_t *p, int32_t v) { atomicAdd(p, v); }
template <> __device__ inline void atomic_add<int64_t>(int64_t *p, int64_t v)
{
    atomicAdd((unsigned long long *)p, (unsigned long long)v);   /* wraps as the cpu's */
}
template <> __device__ inline void atomic_add<__half>(__half *p, __half v) { atomicAdd(p, v); }
template <> __device__ inline void atomic_add<__nv_bfloat16>(__nv_bfloat16 *p, __nv_bfloat16 v)
{
    atomicAdd(p, v);
}
#endif

/* data at index along the axis (=|+=) src (or the scalar value); indices checked before */
template <typename T> struct ScatterAlong {
    PfCudaAlong g;
    T *data;
    const T *src;
    T value;
    const char *index;
    int isz;
    const unsigned long long *bad;   /* on the device: skip everything once a check failed */

    PFC_HD void operator()(int64_t i) const
    {
        if (*bad != ~0ull) {
            return;
        }
        int64_t d, x, o;
        along_offsets(g, i, &d, &x, &o);
        int64_t w = along_position(read_index(index + x * isz, g.index_dtype), g.axis_size);
        T v = g.scalar ? value : src[o];
        T *p = data + d + w * g.axis_stride;
        if (!g.add) {
            *p = v;
            return;
        }
#ifdef __CUDA_ARCH__
        atomic_add(p, v);
#else
        *p = add_as_cpu(*p, v);
#endif
    }
};

static int check_along(const char *fn, const PfCudaAlong *g, int64_t *n)
{
    int status = check_shape(fn, g->ndim, g->shape, n);
    if (status == 0 && !is_index_dtype(g->index_dtype)) {
        status = invalid(fn, "the index dtype must be an integer type");
    }
    if (status == 0 && (g->dtype < 0 || g->dtype >= PF_CUDA_NDTYPES)) {
        status = invalid(fn, "unknown dtype");
    }
    return status;
}

struct GatherAlongRun {
    int device;
    void *out;
    const void *data;
    const void *index;
    const PfCudaAlong *g;
    unsigned long long *bad;
    int64_t n;

    template <typename T> int run()
    {
        GatherAlong<T> f{*g, (T *)out, (const T *)data, (const char *)index,
                         dtype_size(g->index_dtype), bad};
        return run_each(device, "gather along an axis", n, f);
    }
};

int pf_cuda_gather_along(int device, void *out, const void *data, const void *index,
                         const PfCudaAlong *g, PfCudaBad *bad)
{
    int64_t n = 0;
    bad->pos = -1;
    bad->value = 0;
    int status = check_along("pf_cuda_gather_along", g, &n);
    if (status != 0 || n == 0) {
        return status;
    }
    return on(device, [&] {
        BadSlot slot(device);
        int64_t pos = -1;
        int st = slot.open();
        GatherAlongRun r{device, out, data, index, g, slot.ptr(), n};
        if (st == 0) {
            st = by_size(dtype_size(g->dtype), r);
        }
        if (st == 0) {
            st = slot.read(&pos);
        }
        if (st == 0 && pos >= 0) {
            int64_t d, x, o;
            along_offsets(*g, pos, &d, &x, &o);
            st = report_bad(device, pos, index, g->index_dtype, x, bad);
        }
        return st;
    });
}

template <typename T> static int scatter_typed(int device, void *data, const void *index,
                                               const void *src, const PfCudaAlong *g,
                                               const unsigned long long *bad, int64_t n)
{
    ScatterAlong<T> f{*g, (T *)data, (const T *)src, T(), (const char *)index,
                      dtype_size(g->index_dtype), bad};
    memcpy((void *)&f.value, g->value, sizeof(T));
    return run_each(device, g->add ? "scatter_add along an axis" : "scatter along an axis", n,
                    f);
}

struct ScatterRun {
    int device;
    void *data;
    const void *index;
    const void *src;
    const PfCudaAlong *g;
    const unsigned long long *bad;
    int64_t n;

    template <typename T> int run()
    {
        return scatter_typed<T>(device, data, index, src, g, bad, n);
    }
};

/* Calls f.template run<T>() with T the element type of dtype. */
template <typename F> static int by_dtype(int dtype, F &f)
{
    switch (dtype) {
    case PF_CUDA_BOOL: return f.template run<bool>();
    case PF_CUDA_UINT8: return f.template run<uint8_t>();
    case PF_CUDA_INT8: return f.template run<int8_t>();
    case PF_CUDA_INT16: return f.template run<int16_t>();
    case PF_CUDA_INT32: return f.template run<int32_t>();
    case PF_CUDA_INT64: return f.template run<int64_t>();
    case PF_CUDA_FLOAT16: return f.template run<__half>();
    case PF_CUDA_BFLOAT16: return f.template run<__nv_bfloat16>();
    case PF_CUDA_FLOAT32: return f.template run<float>();
    default: return f.template run<double>();
    }
}

int pf_cuda_scatter_along(int device, void *data, const void *index, const void *src,
                          const PfCudaAlong *g, PfCudaBad *bad)
{
    int64_t n = 0;
    bad->pos = -1;
    bad->value = 0;
    int status = check_along("pf_cuda_scatter_along", g, &n);
    if (status == 0 && !g->scalar && src == nullptr) {
        status = invalid("pf_cuda_scatter_along", "src is NULL and scalar is not set");
    }
    if (status != 0 || n == 0) {
        return status;
    }
    return on(device, [&] {
        BadSlot slot(device);
        int64_t pos = -1;
        int st = slot.open();
        CheckAlong chk{*g, (const char *)index, dtype_size(g->index_dtype), slot.ptr()};
        if (st == 0) {
            st = run_each(device, "scatter index check", n, chk);
        }
        /* the host path knows the outcome already; the device's kernel reads the slot */
        if (st == 0 && !(device == PF_CUDA_HOST && slot.host != ~0ull)) {
            ScatterRun sr{device, data, index, src, g, slot.ptr(), n};
            /* assignment moves bits; addition needs the element type */
            st = g->add ? by_dtype(g->dtype, sr) : by_size(dtype_size(g->dtype), sr);
        }
        if (st == 0) {
            st = slot.read(&pos);
        }
        if (st == 0 && pos >= 0) {
            int64_t d, x, o;
            along_offsets(*g, pos, &d, &x, &o);
            st = report_bad(device, pos, index, g->index_dtype, x, bad);
        }
        return st;
    });
}

/* ------------------------------------------------------ advanced indexing */

/* offsets[b] (= | +=) the byte offset index[b] selects (see PfCudaIndexOffsets) */
struct IndexOffsets {
    PfCudaIndexOffsets g;
    int64_t *offsets;
    const char *index;
    int isz;
    unsigned long long *bad;

    PFC_HD void operator()(int64_t i) const
    {
        const char *p = index + offset_of(g.ndim, g.shape, g.index_strides, i) * isz;
        int64_t o;
        if (g.is_offset) {
            o = *(const int64_t *)p;
        }
        else {
            int64_t v = read_index(p, g.index_dtype), w = v < 0 ? v + g.wrap : v;
            if ((uint64_t)w >= (uint64_t)g.size) {
                if (g.mode == 1) {
                    w = v % g.size;
                    w = w < 0 ? w + g.size : w;
                }
                else if (g.mode == 2) {
                    w = v < 0 ? 0 : g.size - 1;
                }
                else {
                    note_bad(bad, i);
                    w = 0;
                }
            }
            o = w * g.stride_bytes;
        }
        offsets[i] = g.first ? o : offsets[i] + o;
    }
};

int pf_cuda_index_offsets(int device, int64_t *offsets, const void *index,
                          const PfCudaIndexOffsets *g, PfCudaBad *bad)
{
    const char *fn = "pf_cuda_index_offsets";
    int64_t n = 0;
    bad->pos = -1;
    bad->value = 0;
    int status = g->ndim == 0 ? 0 : check_shape(fn, g->ndim, g->shape, &n);
    if (g->ndim == 0) {
        n = 1;
    }
    if (status == 0 && !g->is_offset && !is_index_dtype(g->index_dtype)) {
        status = invalid(fn, "the index dtype must be an integer type");
    }
    if (status == 0 && g->mode != 0 && g->size <= 0) {
        status = invalid(fn, "wrap and clip need an axis of size > 0");
    }
    if (status != 0 || n == 0) {
        return status;
    }
    return on(device, [&] {
        BadSlot slot(device);
        int64_t pos = -1;
        int st = slot.open();
        int isz = g->is_offset ? 8 : dtype_size(g->index_dtype);
        IndexOffsets f{*g, offsets, (const char *)index, isz, slot.ptr()};
        if (st == 0) {
            st = run_each(device, "index offsets", n, f);
        }
        if (st == 0 && g->mode == 0 && !g->is_offset) {
            st = slot.read(&pos);
        }
        if (st == 0 && pos >= 0) {
            st = report_bad(device, pos, index, g->index_dtype,
                            offset_of(g->ndim, g->shape, g->index_strides, pos), bad);
        }
        return st;
    });
}

/* dst = src over the result's shape, through the offset table on one side */
template <typename T> struct IndexCopy {
    PfCudaIndexCopy g;
    char *dst;
    const char *src;
    const int64_t *table;
    T value;

    PFC_HD void operator()(int64_t i) const
    {
        int64_t d = 0, s = 0, b = 0, bmul = 1;
        for (int k = g.ndim - 1; k >= 0; k--) {
            int64_t c = i % g.shape[k];
            i /= g.shape[k];
            d += c * g.dst_strides[k];
            s += c * g.src_strides[k];
            if (k >= g.bfirst && k < g.bfirst + g.bnd) {
                b += c * bmul;
                bmul *= g.shape[k];
            }
        }
        if (g.table_side == 0) {
            s += table[b];
        }
        else {
            d += table[b];
        }
        *(T *)(dst + d) = g.scalar ? value : *(const T *)(src + s);
    }
};

struct IndexCopyRun {
    int device;
    void *dst;
    const void *src;
    const int64_t *table;
    const PfCudaIndexCopy *g;
    int64_t n;

    template <typename T> int run()
    {
        IndexCopy<T> f{*g, (char *)dst, (const char *)src, table, T()};
        memcpy((void *)&f.value, g->value, sizeof(T));
        return run_each(device, g->table_side ? "indexed write" : "indexed read", n, f);
    }
};

int pf_cuda_index_copy(int device, void *dst, const void *src, const int64_t *table,
                       const PfCudaIndexCopy *g)
{
    const char *fn = "pf_cuda_index_copy";
    int64_t n = 1;
    int status = g->ndim == 0 ? 0 : check_shape(fn, g->ndim, g->shape, &n);
    if (status == 0 && (g->bfirst < 0 || g->bnd < 0 || g->bfirst + g->bnd > g->ndim)) {
        status = invalid(fn, "B's dims lie outside the shape");
    }
    if (status == 0 && g->itemsize != 1 && g->itemsize != 2 && g->itemsize != 4 &&
        g->itemsize != 8) {
        status = invalid(fn, "item size must be 1, 2, 4 or 8");
    }
    if (status == 0 && !g->scalar && src == nullptr) {
        status = invalid(fn, "src is NULL and scalar is not set");
    }
    if (status != 0 || n == 0) {
        return status;
    }
    return on(device, [&] {
        IndexCopyRun r{device, dst, src, table, g, n};
        return by_size(g->itemsize, r);
    });
}

/* -------------------------------------------------------------- nonzero */

/*
 * The compaction runs in chunks of consecutive flat positions, one block
 * per chunk: count the hits of each chunk, scan the counts into each
 * chunk's first output position (one thread: at most 1024 of them), read
 * the total back (the output's size), then each block walks its chunk in
 * tiles of THREADS elements, ranks the hits of a tile with warp ballots,
 * and writes them in order.  The host path walks the chunks in a loop.
 */
static const int64_t NZ_MAX_CHUNKS = PF_CUDA_NONZERO_SCRATCH - 1;
static const int64_t NZ_MIN_CHUNK = 4096;

static int64_t nz_chunks(int64_t n)
{
    int64_t c = (n + NZ_MIN_CHUNK - 1) / NZ_MIN_CHUNK;
    return c < 1 ? 1 : c > NZ_MAX_CHUNKS ? NZ_MAX_CHUNKS : c;
}

/* Is element i of x nonzero?  Floats ignore the sign bit (-0.0 is zero; NaN is not). */
template <typename T> struct NzTest {
    PfCudaNonzero g;
    const T *x;
    T mask;

    PFC_HD bool operator()(int64_t i) const
    {
        return (x[offset_of(g.ndim, g.shape, g.strides, i)] & mask) != 0;
    }
};

/* Hit number j is element i: write its coordinates, or its byte offset. */
PFC_HD static inline void nz_emit(const PfCudaNonzero &g, int64_t *out, int64_t j, int64_t i)
{
    int64_t off = 0;
    for (int k = g.ndim - 1; k >= 0; k--) {
        int64_t c = i % g.shape[k];
        i /= g.shape[k];
        if (g.offsets) {
            off += c * g.offset_strides[k];
        }
        else {
            out[j * g.row_step + k * g.col_step] = c;
        }
    }
    if (g.offsets) {
        out[j] = off;
    }
}

template <typename T> __global__ void nz_count_kernel(NzTest<T> t, int64_t n, int64_t chunks,
                                                      int64_t *counts)
{
    __shared__ unsigned long long total;
    int64_t lo = n * blockIdx.x / chunks, hi = n * (blockIdx.x + 1) / chunks;
    if (threadIdx.x == 0) {
        total = 0;
    }
    __syncthreads();
    unsigned long long c = 0;
    for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
        c += t(i);
    }
    atomicAdd(&total, c);
    __syncthreads();
    if (threadIdx.x == 0) {
        counts[blockIdx.x] = (int64_t)total;
    }
}

/* counts[0..chunks) -> exclusive starts in place, the total in counts[chunks] */
__global__ void nz_scan_kernel(int64_t *counts, int64_t chunks)
{
    int64_t run = 0;
    for (int64_t c = 0; c < chunks; c++) {
        int64_t k = counts[c];
        counts[c] = run;
        run += k;
    }
    counts[chunks] = run;
}

template <typename T> __global__ void nz_write_kernel(NzTest<T> t, int64_t n, int64_t chunks,
                                                      const int64_t *starts, int64_t *out)
{
    __shared__ int warp_base[THREADS / 32 + 1];
    int64_t lo = n * blockIdx.x / chunks, hi = n * (blockIdx.x + 1) / chunks;
    int64_t pos = starts[blockIdx.x];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    for (int64_t base = lo; base < hi; base += blockDim.x) {
        int64_t i = base + threadIdx.x;
        bool hit = i < hi && t(i);
        unsigned int ballot = __ballot_sync(0xffffffffu, hit);
        int rank = __popc(ballot & ((1u << lane) - 1u));
        if (lane == 0) {
            warp_base[warp + 1] = __popc(ballot);
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            warp_base[0] = 0;
            for (int w = 1; w <= nwarps; w++) {
                warp_base[w] += warp_base[w - 1];
            }
        }
        __syncthreads();
        if (hit) {
            nz_emit(t.g, out, pos + warp_base[warp] + rank, i);
        }
        pos += warp_base[nwarps];
        __syncthreads();
    }
}

/* T: the bits of x's item size; the sign bit is masked for floats */
template <typename T> static NzTest<T> nz_test(const PfCudaNonzero *g, const void *x)
{
    bool fl = g->dtype == PF_CUDA_FLOAT16 || g->dtype == PF_CUDA_BFLOAT16 ||
              g->dtype == PF_CUDA_FLOAT32 || g->dtype == PF_CUDA_FLOAT64;
    T mask = (T)~(T)0;
    if (fl) {
        mask = (T)(mask >> 1);
    }
    return NzTest<T>{*g, (const T *)x, mask};
}

static int check_nonzero(const char *fn, const PfCudaNonzero *g, int64_t *n)
{
    if (g->ndim == 0) {
        *n = 1;
        return 0;
    }
    int status = check_shape(fn, g->ndim, g->shape, n);
    if (status == 0 && (g->dtype < 0 || g->dtype >= PF_CUDA_NDTYPES)) {
        status = invalid(fn, "unknown dtype");
    }
    return status;
}

struct NzCountRun {
    int device;
    const void *x;
    const PfCudaNonzero *g;
    int64_t *scratch;
    int64_t n;

    template <typename T> int run()
    {
        NzTest<T> t = nz_test<T>(g, x);
        int64_t chunks = nz_chunks(n);
        if (device == PF_CUDA_HOST) {
            for (int64_t c = 0; c < chunks; c++) {
                int64_t k = 0;
                for (int64_t i = n * c / chunks; i < n * (c + 1) / chunks; i++) {
                    k += t(i);
                }
                scratch[c] = k;
            }
            int64_t run = 0;
            for (int64_t c = 0; c < chunks; c++) {
                int64_t k = scratch[c];
                scratch[c] = run;
                run += k;
            }
            scratch[chunks] = run;
            return 0;
        }
        nz_count_kernel<<<(unsigned)chunks, THREADS, 0, pfc_stream()>>>(t, n, chunks, scratch);
        cudaError_t err = cudaGetLastError();
        if (err == cudaSuccess) {
            nz_scan_kernel<<<1, 1, 0, pfc_stream()>>>(scratch, chunks);
            err = cudaGetLastError();
        }
        return err == cudaSuccess ? 0 : pfc_fail(err, "nonzero count kernel launch (%lld "
                                                 "elements, cuda:%d)", (long long)n, device);
    }
};

int pf_cuda_nonzero_count(int device, const void *x, const PfCudaNonzero *g, int64_t *scratch,
                          int64_t *count)
{
    int64_t n = 0;
    *count = 0;
    int status = check_nonzero("pf_cuda_nonzero_count", g, &n);
    if (status != 0 || n == 0) {
        return status;
    }
    NzCountRun r{device, x, g, scratch, n};
    return on(device, [&] {
        int st = by_size(dtype_size(g->dtype), r);
        if (st == 0) {
            st = read_back(device, count, scratch + nz_chunks(n), sizeof(int64_t),
                           "the nonzero count");
        }
        return st;
    });
}

struct NzWriteRun {
    int device;
    int64_t *out;
    const void *x;
    const PfCudaNonzero *g;
    const int64_t *scratch;
    int64_t n;

    template <typename T> int run()
    {
        NzTest<T> t = nz_test<T>(g, x);
        int64_t chunks = nz_chunks(n);
        if (device == PF_CUDA_HOST) {
            for (int64_t c = 0; c < chunks; c++) {
                int64_t j = scratch[c];
                for (int64_t i = n * c / chunks; i < n * (c + 1) / chunks; i++) {
                    if (t(i)) {
                        nz_emit(*g, out, j++, i);
                    }
                }
            }
            return 0;
        }
        nz_write_kernel<<<(unsigned)chunks, THREADS, 0, pfc_stream()>>>(t, n, chunks, scratch,
                                                                        out);
        cudaError_t err = cudaGetLastError();
        return err == cudaSuccess ? 0 : pfc_fail(err, "nonzero write kernel launch (%lld "
                                                 "elements, cuda:%d)", (long long)n, device);
    }
};

int pf_cuda_nonzero_write(int device, int64_t *out, const void *x, const PfCudaNonzero *g,
                          const int64_t *scratch)
{
    int64_t n = 0;
    int status = check_nonzero("pf_cuda_nonzero_write", g, &n);
    if (status != 0 || n == 0) {
        return status;
    }
    NzWriteRun r{device, out, x, g, scratch, n};
    return on(device, [&] { return by_size(dtype_size(g->dtype), r); });
}

/* -------------------------------------------------------------- one_hot */

/* out[o, index[p], q] = one for p = o * inner + q */
template <typename T> struct OneHot {
    PfCudaOneHot g;
    T *out;
    const char *index;
    int isz;
    T one;
    unsigned long long *bad;

    PFC_HD void operator()(int64_t p) const
    {
        int64_t v = read_index(index + offset_of(g.ndim, g.shape, g.index_strides, p) * isz,
                               g.index_dtype);
        if (v < 0 || v >= g.classes) {
            note_bad(bad, p);
            return;
        }
        int64_t o = p / g.inner, q = p % g.inner;
        out[(o * g.classes + v) * g.inner + q] = one;
    }
};

struct OneHotRun {
    int device;
    void *out;
    const void *index;
    const PfCudaOneHot *g;
    unsigned long long *bad;
    int64_t n;

    template <typename T> int run()
    {
        OneHot<T> f{*g, (T *)out, (const char *)index, dtype_size(g->index_dtype), T(), bad};
        memcpy((void *)&f.one, g->one, sizeof(T));
        return run_each(device, "one_hot", n, f);
    }
};

int pf_cuda_one_hot(int device, void *out, const void *index, const PfCudaOneHot *g,
                    PfCudaBad *bad)
{
    const char *fn = "pf_cuda_one_hot";
    int64_t n = 1;
    bad->pos = -1;
    bad->value = 0;
    int status = g->ndim == 0 ? 0 : check_shape(fn, g->ndim, g->shape, &n);
    if (status == 0 && !is_index_dtype(g->index_dtype)) {
        status = invalid(fn, "the index dtype must be an integer type");
    }
    if (status == 0 && (g->classes < 0 || g->inner < 1)) {
        status = invalid(fn, "classes must be >= 0 and inner >= 1");
    }
    if (status == 0 && g->itemsize != 1 && g->itemsize != 2 && g->itemsize != 4 &&
        g->itemsize != 8) {
        status = invalid(fn, "item size must be 1, 2, 4 or 8");
    }
    if (status != 0 || n == 0) {
        return status;
    }
    size_t nbytes = (size_t)n * (size_t)g->classes * (size_t)g->itemsize;
    return on(device, [&] {
        BadSlot slot(device);
        int64_t pos = -1;
        int st = slot.open();
        if (st == 0 && nbytes > 0) {
            if (device == PF_CUDA_HOST) {
                memset(out, 0, nbytes);
            }
            else {
                cudaError_t err = cudaMemsetAsync(out, 0, nbytes, pfc_stream());
                st = err == cudaSuccess ? 0 : pfc_fail(err, "cudaMemsetAsync(one_hot, %zu bytes)",
                                                       nbytes);
            }
        }
        OneHotRun r{device, out, index, g, slot.ptr(), n};
        if (st == 0) {
            st = by_size(g->itemsize, r);
        }
        if (st == 0) {
            st = slot.read(&pos);
        }
        if (st == 0 && pos >= 0) {
            st = report_bad(device, pos, index, g->index_dtype,
                            offset_of(g->ndim, g->shape, g->index_strides, pos), bad);
        }
        return st;
    });
}

/* ---------------------------------------------------------- masked_fill */

/* out = mask ? value : x, element by element over shape */
template <typename T> struct MaskedFill {
    PfCudaMaskedFill g;
    T *out;
    const T *x;
    const uint8_t *mask;
    T value;

    PFC_HD void operator()(int64_t i) const
    {
        int64_t xo = 0, mo = 0, oo = 0;
        for (int k = g.ndim - 1; k >= 0; k--) {
            int64_t c = i % g.shape[k];
            i /= g.shape[k];
            xo += c * g.x_strides[k];
            mo += c * g.mask_strides[k];
            oo += c * g.out_strides[k];
        }
        out[oo] = mask[mo] ? value : x[xo];
    }
};

struct MaskedFillRun {
    int device;
    void *out;
    const void *x;
    const void *mask;
    const PfCudaMaskedFill *g;
    int64_t n;

    template <typename T> int run()
    {
        MaskedFill<T> f{*g, (T *)out, (const T *)x, (const uint8_t *)mask, T()};
        memcpy((void *)&f.value, g->value, sizeof(T));
        return run_each(device, "masked_fill", n, f);
    }
};

int pf_cuda_masked_fill(int device, void *out, const void *x, const void *mask,
                        const PfCudaMaskedFill *g)
{
    const char *fn = "pf_cuda_masked_fill";
    int64_t n = 1;
    int status = g->ndim == 0 ? 0 : check_shape(fn, g->ndim, g->shape, &n);
    if (status == 0 && g->itemsize != 1 && g->itemsize != 2 && g->itemsize != 4 &&
        g->itemsize != 8) {
        status = invalid(fn, "item size must be 1, 2, 4 or 8");
    }
    if (status != 0 || n == 0) {
        return status;
    }
    MaskedFillRun r{device, out, x, mask, g, n};
    return on(device, [&] { return by_size(g->itemsize, r); });
}

/* ------------------------------------------------------------- sorting */

/*
 * Sort keys, as the cpu's sort.c makes them: an unsigned key of the
 * dtype's width whose order is the value order, every NaN on the largest
 * key, -0.0 on 0.0's; descending complements the key within its width.
 * Widened to 64 bits, which keeps the order.
 */
PFC_HD static inline uint64_t sort_key(const char *p, int dtype, bool desc)
{
    switch (dtype) {
    case PF_CUDA_BOOL:
        return (uint8_t)((*(const uint8_t *)p != 0) ^ (desc ? 0xffu : 0u));
    case PF_CUDA_UINT8:
        return (uint8_t)(*(const uint8_t *)p ^ (desc ? 0xffu : 0u));
    case PF_CUDA_INT8:
        return (uint8_t)(*(const uint8_t *)p ^ 0x80u ^ (desc ? 0xffu : 0u));
    case PF_CUDA_INT16:
        return (uint16_t)(*(const uint16_t *)p ^ 0x8000u ^ (desc ? 0xffffu : 0u));
    case PF_CUDA_INT32:
        return (uint32_t)(*(const uint32_t *)p ^ 0x80000000u ^ (desc ? 0xffffffffu : 0u));
    case PF_CUDA_INT64:
        return *(const uint64_t *)p ^ (1ull << 63) ^ (desc ? ~0ull : 0ull);
    case PF_CUDA_FLOAT16:
    case PF_CUDA_BFLOAT16: {
        uint16_t h = *(const uint16_t *)p, mag = h & 0x7fffu, k;
        if (mag > (dtype == PF_CUDA_BFLOAT16 ? 0x7f80u : 0x7c00u)) {
            k = 0xffffu;
        }
        else {
            h = mag == 0 ? 0 : h;
            k = (h & 0x8000u) ? (uint16_t)~h : (uint16_t)(h | 0x8000u);
        }
        return (uint16_t)(k ^ (desc ? 0xffffu : 0u));
    }
    case PF_CUDA_FLOAT32: {
        uint32_t u = *(const uint32_t *)p, k;
        if ((u & 0x7fffffffu) > 0x7f800000u) {
            k = 0xffffffffu;
        }
        else {
            u = (u & 0x7fffffffu) == 0 ? 0 : u;
            k = (u & 0x80000000u) ? ~u : u | 0x80000000u;
        }
        return k ^ (desc ? 0xffffffffu : 0u);
    }
    default: {
        uint64_t u = *(const uint64_t *)p, k;
        const uint64_t sign = 1ull << 63;
        if ((u & ~sign) > 0x7ff0000000000000ull) {
            k = ~0ull;
        }
        else {
            u = (u & ~sign) == 0 ? 0 : u;
            k = (u & sign) ? ~u : u | sign;
        }
        return k ^ (desc ? ~0ull : 0ull);
    }
    }
}

/*
 * The rows are sorted as (key, position) pairs, which are all distinct, so
 * any correct sort gives the one stable order.  Each row is padded to a
 * power of two P with pairs (~0, position >= n) that sort after every real
 * one, and one block per row runs a bitonic network on it in global
 * scratch: log2(P) (log2(P) + 1) / 2 steps, each a compare-exchange of
 * every pair (i, i ^ j), with a barrier between steps.  A few long rows
 * instead take one grid-wide launch per step.  The host path runs the same
 * steps in loops.
 */
struct SortGeom {
    PfCudaSort g;
    int64_t n;          /* row length */
    int64_t P;          /* padded row length */
    int isz;
};

/* Element offsets of row r's start in x, vals and inds. */
PFC_HD static inline void row_starts(const PfCudaSort &g, int64_t r, int64_t *x, int64_t *v,
                                     int64_t *ix)
{
    int64_t xo = 0, vo = 0, io = 0;
    for (int d = g.ndim - 1; d >= 0; d--) {
        if (d == g.axis) {
            continue;
        }
        int64_t c = r % g.shape[d];
        r /= g.shape[d];
        xo += c * g.strides[d];
        vo += c * g.vals_strides[d];
        io += c * g.inds_strides[d];
    }
    *x = xo;
    *v = vo;
    *ix = io;
}

/* pair t = r * P + i of the scratch: x's key at position i of row r, or padding */
struct SortFill {
    SortGeom s;
    const char *x;
    uint64_t *keys;
    int64_t *pos;

    PFC_HD void operator()(int64_t t) const
    {
        int64_t r = t / s.P, i = t % s.P, xo, vo, io;
        if (i >= s.n) {
            keys[t] = ~0ull;
            pos[t] = i;
            return;
        }
        row_starts(s.g, r, &xo, &vo, &io);
        int64_t at = xo + i * (s.g.ndim ? s.g.strides[s.g.axis] : 0);
        keys[t] = sort_key(x + at * s.isz, s.g.dtype, s.g.descending != 0);
        pos[t] = i;
    }
};

/* One compare-exchange of the bitonic network on a row: pair (i, i ^ j) in stage k. */
PFC_HD static inline void bitonic_step(uint64_t *keys, int64_t *pos, int64_t i, int64_t j,
                                       int64_t k)
{
    int64_t l = i ^ j;
    if (l <= i) {
        return;
    }
    bool up = (i & k) == 0;
    bool greater = keys[i] > keys[l] || (keys[i] == keys[l] && pos[i] > pos[l]);
    if (greater == up) {
        uint64_t tk = keys[i];
        keys[i] = keys[l];
        keys[l] = tk;
        int64_t tp = pos[i];
        pos[i] = pos[l];
        pos[l] = tp;
    }
}

/* one block per row (blockIdx.x, or blockIdx.x + row0) */
__global__ void bitonic_rows_kernel(uint64_t *keys, int64_t *pos, int64_t P, int64_t row0)
{
    int64_t r = row0 + blockIdx.x;
    uint64_t *rk = keys + r * P;
    int64_t *rp = pos + r * P;
    for (int64_t k = 2; k <= P; k *= 2) {
        for (int64_t j = k / 2; j > 0; j /= 2) {
            for (int64_t i = threadIdx.x; i < P; i += blockDim.x) {
                bitonic_step(rk, rp, i, j, k);
            }
            __syncthreads();
        }
    }
}

/*
 * One step of the network over every row at once, a thread per pair
 * position: for a few long rows, where one block per row would leave most
 * of the GPU idle.  One launch per step, log2(P) (log2(P) + 1) / 2 of them.
 */
struct BitonicStep {
    uint64_t *keys;
    int64_t *pos;
    int64_t P, j, k;

    PFC_HD void operator()(int64_t t) const
    {
        int64_t r = t / P;
        bitonic_step(keys + r * P, pos + r * P, t % P, j, k);
    }
};

/* Rows at most this many, of at least LONG_ROW padded pairs, take the step-per-launch path. */
static const int64_t FEW_ROWS = 64;
static const int64_t LONG_ROW = 8192;

/* output t = r * k + i: the i-th of row r's sorted pairs */
template <typename T> struct SortWrite {
    SortGeom s;
    const T *x;
    T *vals;
    int64_t *inds;
    const int64_t *pos;

    PFC_HD void operator()(int64_t t) const
    {
        int64_t r = t / s.g.k, i = t % s.g.k, xo, vo, io;
        row_starts(s.g, r, &xo, &vo, &io);
        int64_t p = pos[r * s.P + i];
        int ax = s.g.axis;
        if (vals != nullptr) {
            vals[vo + i * (s.g.ndim ? s.g.vals_strides[ax] : 0)] =
                x[xo + p * (s.g.ndim ? s.g.strides[ax] : 0)];
        }
        if (inds != nullptr) {
            inds[io + i * (s.g.ndim ? s.g.inds_strides[ax] : 0)] = p;
        }
    }
};

struct SortWriteRun {
    int device;
    const SortGeom *s;
    const void *x;
    void *vals;
    int64_t *inds;
    const int64_t *pos;
    int64_t n;

    template <typename T> int run()
    {
        SortWrite<T> f{*s, (const T *)x, (T *)vals, inds, pos};
        return run_each(device, "sort output", n, f);
    }
};

int pf_cuda_sort_rows(int device, void *vals, int64_t *inds, const void *x, const PfCudaSort *g)
{
    const char *fn = "pf_cuda_sort_rows";
    int64_t total = 1;
    int status = g->ndim == 0 ? 0 : check_shape(fn, g->ndim, g->shape, &total);
    if (status == 0 && g->ndim > 0 && (g->axis < 0 || g->axis >= g->ndim)) {
        status = invalid(fn, "axis out of range");
    }
    if (status == 0 && (g->dtype < 0 || g->dtype >= PF_CUDA_NDTYPES)) {
        status = invalid(fn, "unknown dtype");
    }
    SortGeom s{*g, g->ndim ? g->shape[g->axis] : 1, 1, dtype_size(g->dtype)};
    if (status == 0 && (g->k < 0 || g->k > s.n)) {
        status = invalid(fn, "k must be between 0 and the row length");
    }
    if (status != 0 || total == 0 || g->k == 0) {
        return status;
    }
    while (s.P < s.n) {
        s.P *= 2;
    }
    int64_t nrows = total / s.n;
    if (nrows > INT64_MAX / 16 / s.P) {
        return invalid(fn, "too many elements to sort");
    }
    return on(device, [&] {
        size_t nbytes = (size_t)(nrows * s.P) * (sizeof(uint64_t) + sizeof(int64_t));
        void *scratch = nullptr;
        int st = 0;
        if (device == PF_CUDA_HOST) {
            scratch = malloc(nbytes);
            if (scratch == nullptr) {
                return pfc_fail_with(PF_CUDA_ERROR_OUT_OF_MEMORY,
                                     "pf_cuda_sort_rows: out of host memory for the scratch");
            }
        }
        else if ((st = pf_cuda_alloc(nbytes, device, &scratch)) != 0) {
            return st;
        }
        uint64_t *keys = (uint64_t *)scratch;
        int64_t *pos = (int64_t *)(keys + nrows * s.P);
        SortFill fill{s, (const char *)x, keys, pos};
        st = run_each(device, "sort keys", nrows * s.P, fill);
        /* the host path runs the step-per-launch form, for rows of any length */
        if (st == 0 && (device == PF_CUDA_HOST || (s.P >= LONG_ROW && nrows <= FEW_ROWS))) {
            for (int64_t k = 2; st == 0 && k <= s.P; k *= 2) {
                for (int64_t j = k / 2; st == 0 && j > 0; j /= 2) {
                    BitonicStep step{keys, pos, s.P, j, k};
                    st = run_each(device, "bitonic sort step", nrows * s.P, step);
                }
            }
        }
        else if (st == 0 && s.P > 1) {
            int threads = s.P / 2 < THREADS ? (int)(s.P / 2) : THREADS;
            /* gridDim.x is capped at 2^31 - 1: launch the rows in slices */
            const int64_t slice = 1 << 30;
            for (int64_t r0 = 0; st == 0 && r0 < nrows; r0 += slice) {
                int64_t count = nrows - r0 < slice ? nrows - r0 : slice;
                bitonic_rows_kernel<<<(unsigned)count, threads, 0, pfc_stream()>>>(keys, pos,
                                                                                  s.P, r0);
                cudaError_t err = cudaGetLastError();
                if (err != cudaSuccess) {
                    st = pfc_fail(err, "bitonic sort kernel launch (%lld rows of %lld, cuda:%d)",
                                  (long long)nrows, (long long)s.P, device);
                }
            }
        }
        SortWriteRun w{device, &s, x, vals, inds, pos, nrows * g->k};
        if (st == 0) {
            st = by_size(s.isz, w);
        }
        if (device == PF_CUDA_HOST) {
            free(scratch);
        }
        else {
            pf_cuda_free(scratch);      /* stream-ordered reuse: later work only */
        }
        return st;
    });
}

/* out[i]: where v[i] goes in its row of a (see PfCudaSearch) */
struct SearchSorted {
    PfCudaSearch g;
    const char *a;
    const char *v;
    int64_t *out;
    int isz;

    PFC_HD void operator()(int64_t i) const
    {
        int64_t row = g.m > 0 ? i / g.m : 0;
        const char *ra = a + row * g.n * isz;
        uint64_t key = sort_key(v + i * isz, g.dtype, false);
        int64_t lo = 0, hi = g.n;
        while (lo < hi) {
            int64_t mid = lo + (hi - lo) / 2;
            uint64_t k = sort_key(ra + mid * isz, g.dtype, false);
            if (g.right ? k <= key : k < key) {
                lo = mid + 1;
            }
            else {
                hi = mid;
            }
        }
        out[i] = lo;
    }
};

int pf_cuda_search_sorted(int device, int64_t *out, const void *a, const void *v,
                          const PfCudaSearch *g)
{
    const char *fn = "pf_cuda_search_sorted";
    if (g->dtype < 0 || g->dtype >= PF_CUDA_NDTYPES || g->n < 0 || g->m < 0 || g->nv < 0) {
        return invalid(fn, "bad dtype or sizes");
    }
    if (g->nv == 0) {
        return 0;
    }
    SearchSorted f{*g, (const char *)a, (const char *)v, out, dtype_size(g->dtype)};
    return on(device, [&] { return run_each(device, "searchsorted", g->nv, f); });
}

/* --------------------------------------------------------------- unique */

/* marks[i]: does sorted position i start a group? */
struct UniqueMarks {
    PfCudaUnique g;
    const char *x;
    const int64_t *perm;
    uint8_t *marks;
    int isz;
    uint64_t nan_key;

    PFC_HD void operator()(int64_t i) const
    {
        uint64_t k = sort_key(x + perm[i] * g.stride * isz, g.dtype, false);
        bool start = i == 0 || (g.nan_alone && k == nan_key) ||
                     k != sort_key(x + perm[i - 1] * g.stride * isz, g.dtype, false);
        marks[i] = start;
    }
};

int pf_cuda_unique_marks(int device, uint8_t *marks, const void *x, const int64_t *perm,
                         const PfCudaUnique *g)
{
    if (g->dtype < 0 || g->dtype >= PF_CUDA_NDTYPES || g->n < 0) {
        return invalid("pf_cuda_unique_marks", "bad dtype or size");
    }
    int isz = dtype_size(g->dtype);
    bool fl = g->dtype == PF_CUDA_FLOAT16 || g->dtype == PF_CUDA_BFLOAT16 ||
              g->dtype == PF_CUDA_FLOAT32 || g->dtype == PF_CUDA_FLOAT64;
    /* the key every NaN sorts under; only floats have one */
    uint64_t nan_key = isz == 8 ? ~0ull : (1ull << (8 * isz)) - 1;
    UniqueMarks f{*g, (const char *)x, perm, marks, isz, nan_key};
    f.g.nan_alone = g->nan_alone && fl;
    return on(device, [&] { return run_each(device, "unique marks", g->n, f); });
}

/* per group (t < groups) or per element (t >= groups: element t - groups) */
template <typename T> struct UniqueGroups {
    PfCudaUnique g;
    const T *x;
    const int64_t *perm;
    const int64_t *starts;
    T *vals;
    int64_t *first;
    int64_t *inverse;
    int64_t *counts;

    PFC_HD void operator()(int64_t t) const
    {
        if (t < g.groups) {
            int64_t s = starts[t], p = perm[s];
            if (vals != nullptr) {
                vals[t] = x[p * g.stride];
            }
            if (first != nullptr) {
                first[t] = p;
            }
            if (counts != nullptr) {
                counts[t] = (t + 1 < g.groups ? starts[t + 1] : g.n) - s;
            }
            return;
        }
        /* element i's group: the last start <= i */
        int64_t i = t - g.groups, lo = 0, hi = g.groups;
        while (lo < hi) {
            int64_t mid = lo + (hi - lo) / 2;
            if (starts[mid] <= i) {
                lo = mid + 1;
            }
            else {
                hi = mid;
            }
        }
        inverse[perm[i]] = lo - 1;
    }
};

struct UniqueGroupsRun {
    int device;
    const PfCudaUnique *g;
    const void *x;
    const int64_t *perm;
    const int64_t *starts;
    void *vals;
    int64_t *first;
    int64_t *inverse;
    int64_t *counts;

    template <typename T> int run()
    {
        UniqueGroups<T> f{*g, (const T *)x, perm, starts, (T *)vals, first, inverse, counts};
        return run_each(device, "unique groups", g->groups + (inverse ? g->n : 0), f);
    }
};

int pf_cuda_unique_groups(int device, void *vals, int64_t *first, int64_t *inverse,
                          int64_t *counts, const void *x, const int64_t *perm,
                          const int64_t *starts, const PfCudaUnique *g)
{
    if (g->dtype < 0 || g->dtype >= PF_CUDA_NDTYPES || g->n < 0 || g->groups < 0 ||
        g->groups > g->n) {
        return invalid("pf_cuda_unique_groups", "bad dtype or sizes");
    }
    UniqueGroupsRun r{device, g, x, perm, starts, vals, first, inverse, counts};
    return on(device, [&] { return by_size(dtype_size(g->dtype), r); });
}
