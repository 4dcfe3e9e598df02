/*
 * reduce.cu -- reductions, their finishing steps and scans on a device
 * (pf_cuda_reduce, pf_cuda_reduce_finish, pf_cuda_scan; pf_cuda.h).
 *
 * reduce.c keeps everything but the loops: argument parsing, dtypes, output
 * shapes, empty reductions and the passes of multi-pass ops (mean, var,
 * logsumexp, norm).  Each pass comes here with reduce_kernels.h's geometry.
 *
 * One reduction kind is a functor of four __host__ __device__ steps over a
 * state (a value of the compute dtype A and, for argmax/argmin, an index):
 * init, push (fold element x at reduced position r into a state), combine
 * (fold two states) and the write of the result.  The kernels only decide
 * who pushes what and in which tree the states are combined:
 *
 *   small    n <= SMALL_N: one thread per output, pushing its n elements in
 *            order (many short regions: sum over the last axis of (N, 3)).
 *   columns  the innermost kept dimension is contiguous and the reduced one
 *            is not (sum over the batch): a block takes 32 neighbouring
 *            outputs (threadIdx.x, coalesced reads) and COL_ROWS threads per
 *            output split the region (threadIdx.y); their states are
 *            combined through shared memory.  Few outputs over a long
 *            region (a tall, narrow input): the region is also cut into
 *            segments (blockIdx.y), combined as below.
 *   rows     the rest: a block per output, or per segment of one when there
 *            are too few outputs to fill the GPU (then a second kernel
 *            combines each output's segment states).  Threads stride over
 *            the region, states combine by warp shuffles, then across warps
 *            through shared memory.
 *
 * The host self-test (device == PF_CUDA_HOST) runs the same functors in a
 * plain loop: for each output, init, then push every element in order.  So
 * integer kinds, max/min, all/any and argmax/argmin give the same bits as
 * the device (their combine is exact and argmax/argmin break ties by the
 * smaller index, whatever the tree); float sums differ by the order of
 * additions, within n * eps * sum|x| (the tests allow a few ulp times
 * sqrt(n) relative, per dtype).
 *
 * Inputs of any dtype are converted to A as they are read, through a switch
 * on the dtype that is the same for every thread: one kernel per (kind, A)
 * rather than per (kind, A, input dtype) keeps the build small.
 */
#include "internal.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <type_traits>

PF_CUDA_EXPORT pf_cuda_reduce_fn pf_cuda_reduce;
PF_CUDA_EXPORT pf_cuda_reduce_finish_fn pf_cuda_reduce_finish;
PF_CUDA_EXPORT pf_cuda_scan_fn pf_cuda_scan;
/* the caching allocator's entry points (runtime.cu), for the segment states */
PF_CUDA_EXPORT pf_cuda_alloc_fn pf_cuda_alloc;
PF_CUDA_EXPORT pf_cuda_free_fn pf_cuda_free;

#define HD __host__ __device__

static const uint32_t ALL_DTYPES = (1u << PF_CUDA_NDTYPES) - 1;
static pfc_register r_sum(PFC_OP_SUM, ALL_DTYPES);
static pfc_register r_mean(PFC_OP_MEAN, ALL_DTYPES);
static pfc_register r_prod(PFC_OP_PROD, ALL_DTYPES);
static pfc_register r_max(PFC_OP_MAX, ALL_DTYPES);
static pfc_register r_min(PFC_OP_MIN, ALL_DTYPES);
static pfc_register r_argmax(PFC_OP_ARGMAX, ALL_DTYPES);
static pfc_register r_argmin(PFC_OP_ARGMIN, ALL_DTYPES);
static pfc_register r_var(PFC_OP_VAR, ALL_DTYPES);
static pfc_register r_std(PFC_OP_STD, ALL_DTYPES);
static pfc_register r_lse(PFC_OP_LOGSUMEXP, ALL_DTYPES);
static pfc_register r_norm(PFC_OP_NORM, ALL_DTYPES);
static pfc_register r_all(PFC_OP_ALL, ALL_DTYPES);
static pfc_register r_any(PFC_OP_ANY, ALL_DTYPES);
static pfc_register r_cumsum(PFC_OP_CUMSUM, ALL_DTYPES);
static pfc_register r_cumprod(PFC_OP_CUMPROD, ALL_DTYPES);

/* ------------------------------------------------------- element access */

/* element i of a buffer of `dtype`, as A (bool reads as 0 or 1) */
template <typename A> HD static inline A load_as(const void *p, int dtype, int64_t i)
{
    switch (dtype) {
    case PF_CUDA_BOOL: return (A)(((const uint8_t *)p)[i] != 0);
    case PF_CUDA_UINT8: return (A)((const uint8_t *)p)[i];
    case PF_CUDA_INT8: return (A)((const int8_t *)p)[i];
    case PF_CUDA_INT16: return (A)((const int16_t *)p)[i];
    case PF_CUDA_INT32: return (A)((const int32_t *)p)[i];
    case PF_CUDA_INT64: return (A)((const int64_t *)p)[i];
    case PF_CUDA_FLOAT16: return (A)__half2float(((const __half *)p)[i]);
    case PF_CUDA_BFLOAT16: return (A)__bfloat162float(((const __nv_bfloat16 *)p)[i]);
    case PF_CUDA_FLOAT32: return (A)((const float *)p)[i];
    default: return (A)((const double *)p)[i];
    }
}

/* element i of a buffer of `dtype` = v (half types round to nearest even) */
template <typename A> HD static inline void store_as(void *p, int dtype, int64_t i, A v)
{
    switch (dtype) {
    case PF_CUDA_BOOL: ((uint8_t *)p)[i] = v != (A)0; break;
    case PF_CUDA_UINT8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case PF_CUDA_INT8: ((int8_t *)p)[i] = (int8_t)v; break;
    case PF_CUDA_INT16: ((int16_t *)p)[i] = (int16_t)v; break;
    case PF_CUDA_INT32: ((int32_t *)p)[i] = (int32_t)v; break;
    case PF_CUDA_INT64: ((int64_t *)p)[i] = (int64_t)v; break;
    case PF_CUDA_FLOAT16: ((__half *)p)[i] = __float2half_rn((float)v); break;
    case PF_CUDA_BFLOAT16: ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn((float)v); break;
    case PF_CUDA_FLOAT32: ((float *)p)[i] = (float)v; break;
    default: ((double *)p)[i] = (double)v; break;
    }
}

/* element offset of row-major position r of (nd, shape, stride) */
HD static inline int64_t flat_offset(int64_t r, int nd, const int64_t *shape,
                                     const int64_t *stride)
{
    if (nd == 1) {
        return r * stride[0];
    }
    int64_t off = 0;
    for (int d = nd - 1; d >= 0; d--) {
        off += (r % shape[d]) * stride[d];
        r /= shape[d];
    }
    return off;
}

/* ------------------------------------------------------------ the math */

HD static inline float m_abs(float x) { return fabsf(x); }
HD static inline double m_abs(double x) { return fabs(x); }
HD static inline float m_pow(float x, float y) { return powf(x, y); }
HD static inline double m_pow(double x, double y) { return pow(x, y); }
HD static inline float m_exp(float x) { return expf(x); }
HD static inline double m_exp(double x) { return exp(x); }
HD static inline float m_log(float x) { return logf(x); }
HD static inline double m_log(double x) { return log(x); }
HD static inline float m_sqrt(float x) { return sqrtf(x); }
HD static inline double m_sqrt(double x) { return sqrt(x); }

template <typename A> HD static inline bool is_nan(A x)
{
    if constexpr (std::is_floating_point<A>::value) {
        return isnan(x);
    }
    else {
        (void)x;
        return false;
    }
}

template <typename A> HD static inline A lowest()
{
    if constexpr (std::is_floating_point<A>::value) {
        return (A)-INFINITY;
    }
    else {
        return INT64_MIN;
    }
}

template <typename A> HD static inline A highest()
{
    if constexpr (std::is_floating_point<A>::value) {
        return (A)INFINITY;
    }
    else {
        return INT64_MAX;
    }
}

/* integer sums and products wrap, as NumPy's (and the cpu loops') do */
template <typename A> HD static inline A add(A a, A b)
{
    if constexpr (std::is_floating_point<A>::value) {
        return a + b;
    }
    else {
        return (A)((uint64_t)a + (uint64_t)b);
    }
}

template <typename A> HD static inline A mul(A a, A b)
{
    if constexpr (std::is_floating_point<A>::value) {
        return a * b;
    }
    else {
        return (A)((uint64_t)a * (uint64_t)b);
    }
}

/* the larger (smaller) of a and b, NaN wins: both orders give the same value */
template <typename A> HD static inline A vmax(A a, A b) { return (b > a || is_nan(b)) ? b : a; }
template <typename A> HD static inline A vmin(A a, A b) { return (b < a || is_nan(b)) ? b : a; }

template <typename A> struct State {
    A v;
    int64_t i;  /* argmax/argmin: the position of v, -1 while empty */
};

/*
 * Kind K in compute dtype A.  push folds element x at position r (c is
 * the output's center, p the power); combine folds another state, of any
 * positions: for argmax/argmin the better value wins, and of equal values
 * (or two NaNs, NaN being the best) the smaller position, so the first
 * occurrence is found whatever the order of combining.
 */
template <int K, typename A> struct Red {
    static constexpr bool arg = K == PF_CUDA_RK_ARGMAX || K == PF_CUDA_RK_ARGMIN;

    HD static State<A> init()
    {
        State<A> s;
        s.i = -1;
        switch (K) {
        case PF_CUDA_RK_PROD:
        case PF_CUDA_RK_ALL: s.v = (A)1; break;
        case PF_CUDA_RK_MAX:
        case PF_CUDA_RK_MAXABS: s.v = lowest<A>(); break;
        case PF_CUDA_RK_MIN:
        case PF_CUDA_RK_MINABS: s.v = highest<A>(); break;
        default: s.v = (A)0; break;
        }
        return s;
    }

    /* x mapped before it is accumulated */
    HD static A map(A x, A c, A p)
    {
        (void)c;
        (void)p;
        if constexpr (K == PF_CUDA_RK_ALL || K == PF_CUDA_RK_ANY || K == PF_CUDA_RK_NNZ) {
            return (A)(x != (A)0);
        }
        else if constexpr (std::is_floating_point<A>::value) {
            switch (K) {
            case PF_CUDA_RK_SUMABS:
            case PF_CUDA_RK_MAXABS:
            case PF_CUDA_RK_MINABS: return m_abs(x);
            case PF_CUDA_RK_SUMSQ: return x * x;
            case PF_CUDA_RK_SUMPOW: return m_pow(m_abs(x), p);
            case PF_CUDA_RK_SUMSQDEV: return (x - c) * (x - c);
            case PF_CUDA_RK_SUMEXP: return m_exp(x - c);
            default: return x;
            }
        }
        else {
            return x;
        }
    }

    /* a better than b as the extreme argmax (argmin) looks for */
    HD static bool better(A a, A b)
    {
        if (K == PF_CUDA_RK_ARGMAX) {
            return a > b || (is_nan(a) && !is_nan(b));
        }
        return a < b || (is_nan(a) && !is_nan(b));
    }

    HD static A fold(A a, A b)
    {
        switch (K) {
        case PF_CUDA_RK_PROD: return mul(a, b);
        case PF_CUDA_RK_MAX:
        case PF_CUDA_RK_MAXABS:
        case PF_CUDA_RK_ANY: return vmax(a, b);
        case PF_CUDA_RK_MIN:
        case PF_CUDA_RK_MINABS:
        case PF_CUDA_RK_ALL: return vmin(a, b);
        default: return add(a, b);
        }
    }

    HD static void combine(State<A> &a, const State<A> &b)
    {
        if constexpr (arg) {
            if (b.i < 0) {
                return;
            }
            bool same = a.v == b.v || (is_nan(a.v) && is_nan(b.v));
            if (a.i < 0 || better(b.v, a.v) || (same && b.i < a.i)) {
                a = b;
            }
        }
        else {
            a.v = fold(a.v, b.v);
        }
    }

    HD static void push(State<A> &s, A x, int64_t r, A c, A p)
    {
        if constexpr (arg) {
            State<A> b;
            b.v = x;
            b.i = r;
            combine(s, b);
        }
        else {
            s.v = fold(s.v, map(x, c, p));
        }
    }

    HD static void write(const State<A> &s, A *out, int64_t *idx, int64_t o)
    {
        out[o] = s.v;
        if (arg) {
            idx[o] = s.i;
        }
    }
};

/* The reduction of one output's positions [r0, r1) pushed in order from `s`. */
template <int K, typename A>
HD static inline void push_range(State<A> &s, const PfCudaReduceGeom &g, int64_t base,
                                 int64_t r0, int64_t r1, int64_t step, A c, A p)
{
    for (int64_t r = r0; r < r1; r += step) {
        int64_t off = base + flat_offset(r, g.rnd, g.rshape, g.rstride);
        Red<K, A>::push(s, load_as<A>(g.base, g.dtype, off), r, c, p);
    }
}

/* ------------------------------------------------------------- kernels */

static const int THREADS = 256;
static const int WARP = 32;
static const unsigned FULL_MASK = 0xffffffffu;
static const int64_t SMALL_N = 32;
static const int COL_ROWS = 16;          /* threads per output in the column kernel */
static const int64_t SEGMENT = 16384;   /* the least elements a row segment gets */
static const int64_t COL_SEGMENT = 1024; /* the least rows a column segment gets */
static const int64_t TARGET_BLOCKS = 1024;
static const int64_t MAX_BLOCKS = 65535;

template <typename A> __device__ static inline State<A> shfl_down(const State<A> &s, int w)
{
    State<A> b;
    b.v = __shfl_down_sync(FULL_MASK, s.v, w);
    b.i = __shfl_down_sync(FULL_MASK, s.i, w);
    return b;
}

/* The state of the whole block, in thread 0 (every thread of the block must call it). */
template <int K, typename A> __device__ static State<A> block_combine(State<A> s)
{
    __shared__ State<A> part[THREADS / WARP];
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
    for (int w = WARP / 2; w > 0; w /= 2) {
        Red<K, A>::combine(s, shfl_down(s, w));
    }
    if (lane == 0) {
        part[warp] = s;
    }
    __syncthreads();
    if (warp == 0) {
        s = lane < (int)(blockDim.x / WARP) ? part[lane] : Red<K, A>::init();
        for (int w = WARP / 2; w > 0; w /= 2) {
            Red<K, A>::combine(s, shfl_down(s, w));
        }
    }
    __syncthreads();  /* part is free again for the next output */
    return s;
}

/* small: thread per output, elements in order */
template <int K, typename A>
__global__ void reduce_small_kernel(PfCudaReduceGeom g, A p, const A *center, A *out,
                                    int64_t *idx)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t o = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; o < g.outer; o += step) {
        State<A> s = Red<K, A>::init();
        int64_t base = flat_offset(o, g.knd, g.kshape, g.kstride);
        push_range<K, A>(s, g, base, 0, g.n, 1, center ? center[o] : (A)0, p);
        Red<K, A>::write(s, out, idx, o);
    }
}

/*
 * columns: block (32, COL_ROWS) per 32 neighbouring outputs, and per
 * segment blockIdx.y of the region (positions [seg * chunk, seg * chunk +
 * chunk)); with one segment it writes the results, else each output's
 * state to partial[o * nseg + seg].
 */
template <int K, typename A>
__global__ void reduce_cols_kernel(PfCudaReduceGeom g, A p, const A *center, A *out,
                                   int64_t *idx, int64_t nseg, int64_t chunk,
                                   State<A> *partial)
{
    __shared__ State<A> part[COL_ROWS][WARP];
    int64_t seg = blockIdx.y;
    int64_t r0 = seg * chunk, r1 = r0 + chunk < g.n ? r0 + chunk : g.n;
    for (int64_t o0 = (int64_t)blockIdx.x * WARP; o0 < g.outer; o0 += (int64_t)gridDim.x * WARP) {
        int64_t o = o0 + threadIdx.x;
        State<A> s = Red<K, A>::init();
        if (o < g.outer) {
            int64_t base = flat_offset(o, g.knd, g.kshape, g.kstride);
            push_range<K, A>(s, g, base, r0 + threadIdx.y, r1, blockDim.y,
                             center ? center[o] : (A)0, p);
        }
        part[threadIdx.y][threadIdx.x] = s;
        __syncthreads();
        if (threadIdx.y == 0 && o < g.outer) {
            for (int j = 1; j < (int)blockDim.y; j++) {
                Red<K, A>::combine(s, part[j][threadIdx.x]);
            }
            if (nseg == 1) {
                Red<K, A>::write(s, out, idx, o);
            }
            else {
                partial[o * nseg + seg] = s;
            }
        }
        __syncthreads();
    }
}

/*
 * rows: block b takes segment b % nseg of output b / nseg (positions
 * [seg * chunk, seg * chunk + chunk)); with one segment it writes the
 * result, else its state to partial[b].
 */
template <int K, typename A>
__global__ void reduce_rows_kernel(PfCudaReduceGeom g, A p, const A *center, A *out,
                                   int64_t *idx, int64_t nseg, int64_t chunk,
                                   State<A> *partial)
{
    int64_t total = g.outer * nseg;
    for (int64_t b = blockIdx.x; b < total; b += gridDim.x) {
        int64_t o = b / nseg, seg = b % nseg;
        int64_t r0 = seg * chunk, r1 = r0 + chunk < g.n ? r0 + chunk : g.n;
        int64_t base = flat_offset(o, g.knd, g.kshape, g.kstride);
        State<A> s = Red<K, A>::init();
        push_range<K, A>(s, g, base, r0 + threadIdx.x, r1, blockDim.x,
                         center ? center[o] : (A)0, p);
        s = block_combine<K, A>(s);
        if (threadIdx.x == 0) {
            if (nseg == 1) {
                Red<K, A>::write(s, out, idx, o);
            }
            else {
                partial[b] = s;
            }
        }
    }
}

/* the nseg segment states of each output, combined */
template <int K, typename A>
__global__ void combine_segments_kernel(int64_t outer, int64_t nseg, const State<A> *partial,
                                        A *out, int64_t *idx)
{
    for (int64_t o = blockIdx.x; o < outer; o += gridDim.x) {
        State<A> s = Red<K, A>::init();
        for (int64_t j = threadIdx.x; j < nseg; j += blockDim.x) {
            Red<K, A>::combine(s, partial[o * nseg + j]);
        }
        s = block_combine<K, A>(s);
        if (threadIdx.x == 0) {
            Red<K, A>::write(s, out, idx, o);
        }
    }
}

static unsigned clamp_blocks(int64_t b)
{
    return (unsigned)(b < 1 ? 1 : b < MAX_BLOCKS ? b : MAX_BLOCKS);
}

static int check_launch(const char *kernel, int device)
{
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) {
        return pfc_fail(err, "%s launch on cuda:%d", kernel, device);
    }
    return 0;
}

/* Kind K in A: on the host, in order; or the kernel the geometry calls for. */
template <int K, typename A>
static int run_kind(int device, const PfCudaReduceGeom &g, A p, const A *center, A *out,
                    int64_t *idx)
{
    if (device == PF_CUDA_HOST) {
        for (int64_t o = 0; o < g.outer; o++) {
            State<A> s = Red<K, A>::init();
            int64_t base = flat_offset(o, g.knd, g.kshape, g.kstride);
            push_range<K, A>(s, g, base, 0, g.n, 1, center ? center[o] : (A)0, p);
            Red<K, A>::write(s, out, idx, o);
        }
        return 0;
    }
    return pfc_on_device(device, [&] {
        cudaStream_t st = pfc_stream();
        if (g.n <= SMALL_N) {
            reduce_small_kernel<K, A><<<clamp_blocks((g.outer + THREADS - 1) / THREADS),
                                        THREADS, 0, st>>>(g, p, center, out, idx);
            return check_launch("reduce_small_kernel", device);
        }
        bool cols = g.kstride[g.knd - 1] == 1 && g.kshape[g.knd - 1] >= 2 &&
                    g.rstride[g.rnd - 1] != 1;
        /* segments of the region when the outputs alone leave the GPU idle */
        int64_t units = cols ? (g.outer + WARP - 1) / WARP : g.outer;
        int64_t least = cols ? COL_SEGMENT : SEGMENT;
        int64_t nseg = 1;
        if (units < TARGET_BLOCKS && g.n >= 2 * least) {
            int64_t want = TARGET_BLOCKS / units, most = g.n / least;
            nseg = want < most ? want : most;
            nseg = nseg < MAX_BLOCKS ? nseg : MAX_BLOCKS;
        }
        int64_t chunk = (g.n + nseg - 1) / nseg;
        nseg = (g.n + chunk - 1) / chunk;
        State<A> *partial = nullptr;
        if (nseg > 1) {
            int status = pf_cuda_alloc(sizeof(State<A>) * (size_t)(g.outer * nseg), device,
                                       (void **)&partial);
            if (status != 0) {
                return status;
            }
        }
        const char *kernel = cols ? "reduce_cols_kernel" : "reduce_rows_kernel";
        if (cols) {
            reduce_cols_kernel<K, A><<<dim3(clamp_blocks(units), (unsigned)nseg),
                                       dim3(WARP, COL_ROWS), 0, st>>>(g, p, center, out, idx,
                                                                      nseg, chunk, partial);
        }
        else {
            reduce_rows_kernel<K, A><<<clamp_blocks(g.outer * nseg), THREADS, 0, st>>>(
                g, p, center, out, idx, nseg, chunk, partial);
        }
        int status = check_launch(kernel, device);
        if (status == 0 && nseg > 1) {
            combine_segments_kernel<K, A><<<clamp_blocks(g.outer), THREADS, 0, st>>>(
                g.outer, nseg, partial, out, idx);
            status = check_launch("combine_segments_kernel", device);
        }
        /* the stream runs the kernels before whatever is queued with this block next */
        if (partial != nullptr) {
            int freed = pf_cuda_free(partial);
            status = status != 0 ? status : freed;
        }
        return status;
    });
}

#define KIND_CASE(K)                                                                         \
    case K:                                                                                  \
        return run_kind<K, A>(device, g, (A)p, (const A *)center, (A *)out, idx);

template <typename A>
static int run_comp(int device, const PfCudaReduceGeom &g, int kind, double p,
                    const void *center, void *out, int64_t *idx)
{
    switch (kind) {
        KIND_CASE(PF_CUDA_RK_SUM)
        KIND_CASE(PF_CUDA_RK_PROD)
        KIND_CASE(PF_CUDA_RK_MAX)
        KIND_CASE(PF_CUDA_RK_MIN)
        KIND_CASE(PF_CUDA_RK_ALL)
        KIND_CASE(PF_CUDA_RK_ANY)
        KIND_CASE(PF_CUDA_RK_ARGMAX)
        KIND_CASE(PF_CUDA_RK_ARGMIN)
    default:
        break;
    }
    if constexpr (std::is_floating_point<A>::value) {
        switch (kind) {
            KIND_CASE(PF_CUDA_RK_SUMABS)
            KIND_CASE(PF_CUDA_RK_SUMSQ)
            KIND_CASE(PF_CUDA_RK_MAXABS)
            KIND_CASE(PF_CUDA_RK_MINABS)
            KIND_CASE(PF_CUDA_RK_NNZ)
            KIND_CASE(PF_CUDA_RK_SUMPOW)
            KIND_CASE(PF_CUDA_RK_SUMSQDEV)
            KIND_CASE(PF_CUDA_RK_SUMEXP)
        default:
            break;
        }
    }
    char msg[160];
    snprintf(msg, sizeof(msg), "pf_cuda_reduce: no kernel for reduction kind %d in compute "
             "dtype %s", kind, std::is_same<A, int64_t>::value ? "int64"
                               : std::is_same<A, float>::value ? "float32" : "float64");
    return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, msg);
}
#undef KIND_CASE

static int check_reduce(const PfCudaReduceGeom *g, int comp)
{
    char msg[200];
    if (g->knd < 1 || g->knd > PF_CUDA_MAX_DIMS || g->rnd < 1 || g->rnd > PF_CUDA_MAX_DIMS ||
        g->dtype < 0 || g->dtype >= PF_CUDA_NDTYPES || g->outer < 0 || g->n < 0) {
        snprintf(msg, sizeof(msg), "pf_cuda_reduce: a bad geometry (%d kept and %d reduced "
                 "dimensions, dtype %d, %lld outputs of %lld elements)", g->knd, g->rnd,
                 g->dtype, (long long)g->outer, (long long)g->n);
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, msg);
    }
    if (comp != PF_CUDA_FLOAT32 && comp != PF_CUDA_FLOAT64 && comp != PF_CUDA_INT64) {
        snprintf(msg, sizeof(msg), "pf_cuda_reduce: compute dtype %d; expected float32, "
                 "float64 or int64", comp);
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, msg);
    }
    return 0;
}

int pf_cuda_reduce(int device, const PfCudaReduceGeom *g, int kind, int comp, double p,
                   const void *center, void *out, int64_t *idx)
{
    int status = check_reduce(g, comp);
    if (status != 0 || g->outer == 0 || g->n == 0) {
        return status;
    }
    switch (comp) {
    case PF_CUDA_FLOAT32: return run_comp<float>(device, *g, kind, p, center, out, idx);
    case PF_CUDA_FLOAT64: return run_comp<double>(device, *g, kind, p, center, out, idx);
    default: return run_comp<int64_t>(device, *g, kind, p, center, out, idx);
    }
}

/* ------------------------------------------------------------ finishing */

/* out[i] = finish(v[i]) in out_dtype; as reduce_kernels.c's pf_reduce_finish */
template <typename A>
HD static inline void finish_one(int f, const A *v, const A *aux, int64_t i, double a,
                                 int out_dtype, void *out)
{
    A x = v[i];
    if constexpr (std::is_floating_point<A>::value) {
        switch (f) {
        case PF_CUDA_RF_SCALE: x = (A)((double)x / a); break;
        case PF_CUDA_RF_SQRT: x = m_sqrt(x); break;
        case PF_CUDA_RF_SCALE_SQRT: x = (A)sqrt((double)x / a); break;
        case PF_CUDA_RF_ROOT: x = m_pow(x, (A)(1.0 / a)); break;
        case PF_CUDA_RF_CENTER: x = isfinite(x) ? x : (A)0; break;
        case PF_CUDA_RF_LOG_ADD: x = m_log(x) + aux[i]; break;
        default: break;
        }
    }
    else {
        (void)f, (void)aux, (void)a;
    }
    store_as<A>(out, out_dtype, i, x);
}

template <typename A>
__global__ void finish_kernel(int f, const A *v, const A *aux, int64_t count, double a,
                              int out_dtype, void *out)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += step) {
        finish_one<A>(f, v, aux, i, a, out_dtype, out);
    }
}

template <typename A>
static int finish_comp(int device, int f, const void *v, const void *aux, int64_t count,
                       double a, int out_dtype, void *out)
{
    if (device == PF_CUDA_HOST) {
        for (int64_t i = 0; i < count; i++) {
            finish_one<A>(f, (const A *)v, (const A *)aux, i, a, out_dtype, out);
        }
        return 0;
    }
    return pfc_on_device(device, [&] {
        finish_kernel<A><<<clamp_blocks((count + THREADS - 1) / THREADS), THREADS, 0,
                           pfc_stream()>>>(f, (const A *)v, (const A *)aux, count, a,
                                           out_dtype, out);
        return check_launch("finish_kernel", device);
    });
}

int pf_cuda_reduce_finish(int device, int f, int comp, const void *v, const void *aux,
                          int64_t count, double a, int out_dtype, void *out)
{
    char msg[200];
    if (f < PF_CUDA_RF_SCALE || f > PF_CUDA_RF_NONE || out_dtype < 0 ||
        out_dtype >= PF_CUDA_NDTYPES || count < 0 ||
        (comp != PF_CUDA_FLOAT32 && comp != PF_CUDA_FLOAT64 &&
         !(comp == PF_CUDA_INT64 && f == PF_CUDA_RF_NONE))) {
        snprintf(msg, sizeof(msg), "pf_cuda_reduce_finish: step %d on %lld values of compute "
                 "dtype %d into dtype %d is not one it has", f, (long long)count, comp,
                 out_dtype);
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, msg);
    }
    if (count == 0) {
        return 0;
    }
    switch (comp) {
    case PF_CUDA_FLOAT32: return finish_comp<float>(device, f, v, aux, count, a, out_dtype, out);
    case PF_CUDA_FLOAT64:
        return finish_comp<double>(device, f, v, aux, count, a, out_dtype, out);
    default: return finish_comp<int64_t>(device, f, v, aux, count, a, out_dtype, out);
    }
}

/* ------------------------------------------------------------ scans */

/*
 * A scan runs a thread per line (of pre * post), adding its n elements in
 * order, as the cpu loop does, so results match it exactly.  Few long lines
 * (n >= SCAN_LONG and fewer than SCAN_FEW lines; cumsum of a flat tensor)
 * would leave the GPU idle, so each line is cut into chunks of SCAN_CHUNK:
 * a thread per chunk folds its chunk (totals), a thread per line turns the
 * totals into each chunk's starting value (an exclusive scan), and a thread
 * per chunk scans its chunk again from there.  Float results then differ
 * from the cpu's by the order of additions.  The host self-test takes the
 * same two paths with the same functions, in loops.
 */
static const int64_t SCAN_CHUNK = 256;
static const int64_t SCAN_LONG = 2048;
static const int64_t SCAN_FEW = 16384;

/* element offset of position i of line `line` of a contiguous (pre, n, post) block */
HD static inline int64_t scan_at(int64_t line, int64_t i, int64_t n, int64_t post)
{
    return (line / post) * n * post + line % post + i * post;
}

/* acc folded with positions [i0, i1) of the line, the running values written to y (if any) */
template <typename A>
HD static inline A scan_range(const void *x, int x_dtype, A *y, int64_t line, int64_t i0,
                              int64_t i1, int64_t n, int64_t post, A acc, int prod)
{
    int64_t at = scan_at(line, i0, n, post);
    for (int64_t i = i0; i < i1; i++, at += post) {
        A v = load_as<A>(x, x_dtype, at);
        acc = prod ? mul(acc, v) : add(acc, v);
        if (y != nullptr) {
            y[at] = acc;
        }
    }
    return acc;
}

/* chunk task t: (line, chunk) and the chunk's positions [*i0, *i1) */
HD static inline int64_t chunk_of(int64_t t, int64_t nchunk, int64_t n, int64_t *i0,
                                  int64_t *i1)
{
    int64_t c = t % nchunk;
    *i0 = c * SCAN_CHUNK;
    *i1 = *i0 + SCAN_CHUNK < n ? *i0 + SCAN_CHUNK : n;
    return t / nchunk;
}

/* phase 0: whole lines; phase 1: chunk totals; phase 2: starting values; phase 3: chunks */
template <typename A>
HD static inline void scan_task(int phase, const void *x, int x_dtype, A *y, A *tot,
                                int64_t t, int64_t n, int64_t post, int64_t nchunk, int prod)
{
    A one = prod ? (A)1 : (A)0;
    int64_t i0, i1;
    switch (phase) {
    case 0:
        scan_range<A>(x, x_dtype, y, t, 0, n, n, post, one, prod);
        break;
    case 1: {
        int64_t line = chunk_of(t, nchunk, n, &i0, &i1);
        tot[t] = scan_range<A>(x, x_dtype, (A *)nullptr, line, i0, i1, n, post, one, prod);
        break;
    }
    case 2: {
        A acc = one;
        for (int64_t c = 0; c < nchunk; c++) {
            A v = tot[t * nchunk + c];
            tot[t * nchunk + c] = acc;
            acc = prod ? mul(acc, v) : add(acc, v);
        }
        break;
    }
    default: {
        int64_t line = chunk_of(t, nchunk, n, &i0, &i1);
        scan_range<A>(x, x_dtype, y, line, i0, i1, n, post, tot[t], prod);
        break;
    }
    }
}

template <typename A>
__global__ void scan_kernel(int phase, const void *x, int x_dtype, A *y, A *tot, int64_t tasks,
                            int64_t n, int64_t post, int64_t nchunk, int prod)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < tasks; t += step) {
        scan_task<A>(phase, x, x_dtype, y, tot, t, n, post, nchunk, prod);
    }
}

template <typename A>
static int scan_comp(int device, const void *x, int x_dtype, void *y, int64_t lines, int64_t n,
                     int64_t post, int prod)
{
    bool chunked = n >= SCAN_LONG && lines < SCAN_FEW;
    int64_t nchunk = chunked ? (n + SCAN_CHUNK - 1) / SCAN_CHUNK : 1;
    /* the phases and how many tasks each has */
    int phases[3] = {0, 0, 0}, nphase = 1;
    int64_t tasks[3] = {lines, 0, 0};
    if (chunked) {
        phases[0] = 1, phases[1] = 2, phases[2] = 3, nphase = 3;
        tasks[0] = lines * nchunk, tasks[1] = lines, tasks[2] = lines * nchunk;
    }
    if (device == PF_CUDA_HOST) {
        A *tot = nullptr;
        if (chunked && (tot = (A *)malloc(sizeof(A) * (size_t)(lines * nchunk))) == nullptr) {
            return pfc_fail_with(PF_CUDA_ERROR_OUT_OF_MEMORY,
                                 "pf_cuda_scan: the host is out of memory for the chunk totals");
        }
        for (int ph = 0; ph < nphase; ph++) {
            for (int64_t t = 0; t < tasks[ph]; t++) {
                scan_task<A>(phases[ph], x, x_dtype, (A *)y, tot, t, n, post, nchunk, prod);
            }
        }
        free(tot);
        return 0;
    }
    return pfc_on_device(device, [&] {
        A *tot = nullptr;
        if (chunked) {
            int status = pf_cuda_alloc(sizeof(A) * (size_t)(lines * nchunk), device,
                                       (void **)&tot);
            if (status != 0) {
                return status;
            }
        }
        int status = 0;
        for (int ph = 0; ph < nphase && status == 0; ph++) {
            scan_kernel<A><<<clamp_blocks((tasks[ph] + THREADS - 1) / THREADS), THREADS, 0,
                             pfc_stream()>>>(phases[ph], x, x_dtype, (A *)y, tot, tasks[ph], n,
                                             post, nchunk, prod);
            status = check_launch("scan_kernel", device);
        }
        if (tot != nullptr) {
            int freed = pf_cuda_free(tot);
            status = status != 0 ? status : freed;
        }
        return status;
    });
}

int pf_cuda_scan(int device, const void *x, int x_dtype, void *y, int comp, int64_t pre,
                 int64_t n, int64_t post, int prod)
{
    if (x_dtype < 0 || x_dtype >= PF_CUDA_NDTYPES || pre < 0 || n < 0 || post < 0 ||
        (comp != PF_CUDA_FLOAT32 && comp != PF_CUDA_FLOAT64 && comp != PF_CUDA_INT64)) {
        char msg[200];
        snprintf(msg, sizeof(msg), "pf_cuda_scan: input dtype %d, compute dtype %d, shape "
                 "(%lld, %lld, %lld) is not a scan it runs", x_dtype, comp, (long long)pre,
                 (long long)n, (long long)post);
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, msg);
    }
    int64_t lines = pre * post;
    if (lines == 0 || n == 0) {
        return 0;
    }
    switch (comp) {
    case PF_CUDA_FLOAT32: return scan_comp<float>(device, x, x_dtype, y, lines, n, post, prod);
    case PF_CUDA_FLOAT64: return scan_comp<double>(device, x, x_dtype, y, lines, n, post, prod);
    default: return scan_comp<int64_t>(device, x, x_dtype, y, lines, n, post, prod);
    }
}
