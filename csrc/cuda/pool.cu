/*
 * pool.cu -- max and average pooling on CUDA devices, forward and the
 * helpers their gradients are written with (_max_pool_backward,
 * _max_pool_select, _avg_pool_backward), for the four float dtypes.
 *
 * One thread per output element, in a grid-stride loop; the element's work
 * is a __host__ __device__ function that the host self-test (device
 * PF_CUDA_HOST) calls in a plain loop.  The backward kernels gather rather
 * than scatter: input element (h, w) visits the windows that contain it
 * (for each tap i, the output row (h + ph - i dh) / sh when that divides),
 * in row-major window order, and adds what each sends it -- no atomics, so
 * the sums come out the same on every run and in the cpu's order.
 *
 * Semantics follow csrc/kernels/pool_loops.h: a window's maximum is its
 * first in row-major tap order (strict update) and NaN beats every number
 * (the first NaN wins); taps outside the input are skipped; averages divide
 * by divisor_override, or by the window clipped to the padded input
 * (count_include_pad) or to the input.
 */
#include "nn_common.cuh"

#include <type_traits>

PF_CUDA_EXPORT pf_cuda_pool_fn pf_cuda_pool;

static pfc_register r_maxpool1d(PFC_OP_MAX_POOL1D, PFC_FLOAT_DTYPES);
static pfc_register r_maxpool2d(PFC_OP_MAX_POOL2D, PFC_FLOAT_DTYPES);
static pfc_register r_avgpool1d(PFC_OP_AVG_POOL1D, PFC_FLOAT_DTYPES);
static pfc_register r_avgpool2d(PFC_OP_AVG_POOL2D, PFC_FLOAT_DTYPES);
static pfc_register r_maxbwd(PFC_OP_MAX_POOL_BACKWARD, PFC_FLOAT_DTYPES);
static pfc_register r_maxsel(PFC_OP_MAX_POOL_SELECT, PFC_FLOAT_DTYPES);
static pfc_register r_avgbwd(PFC_OP_AVG_POOL_BACKWARD, PFC_FLOAT_DTYPES);

namespace {

struct pool_args {
    PfCudaPoolGeom g;
    int kind;
    PfCudaNd4 a, b, out;
};

template <typename T>
__host__ __device__ inline T &el(const PfCudaNd4 &t, int64_t n, int64_t c, int64_t h, int64_t w)
{
    return ((T *)t.data)[n * t.s[0] + c * t.s[1] + h * t.s[2] + w * t.s[3]];
}

/* Does v replace the running maximum m (none seen yet: seen false)? */
template <typename A> __host__ __device__ inline bool beats(A v, A m, bool seen)
{
    return !seen || v > m || (v != v && m == m);
}

/*
 * The first maximum of window (oh, ow) of plane (n, c) of x: its row and
 * column (false when every tap lies outside the input) and its value.
 */
template <typename T>
__host__ __device__ bool window_max(const PfCudaPoolGeom &g, const PfCudaNd4 &x, int64_t n,
                                    int64_t c, int64_t oh, int64_t ow, int64_t *ah, int64_t *aw,
                                    typename pfc_acc<T>::type *value)
{
    typedef typename pfc_acc<T>::type A;
    bool seen = false;
    A m = A(0);
    for (int64_t i = 0; i < g.kh; i++) {
        int64_t ih = oh * g.sh - g.ph + i * g.dh;
        if (ih < 0 || ih >= g.h) {
            continue;
        }
        for (int64_t j = 0; j < g.kw; j++) {
            int64_t iw = ow * g.sw - g.pw + j * g.dw;
            if (iw < 0 || iw >= g.w) {
                continue;
            }
            A v = pfc_in(el<T>(x, n, c, ih, iw));
            if (beats(v, m, seen)) {
                m = v;
                *ah = ih;
                *aw = iw;
                seen = true;
            }
        }
    }
    *value = m;
    return seen;
}

/* As pool.c's pool_divisor. */
__host__ __device__ inline int64_t divisor(const PfCudaPoolGeom &g, int64_t oh, int64_t ow)
{
    if (g.divisor > 0) {
        return g.divisor;
    }
    int64_t h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
    int64_t h1 = h0 + g.kh < g.h + g.ph ? h0 + g.kh : g.h + g.ph;
    int64_t w1 = w0 + g.kw < g.w + g.pw ? w0 + g.kw : g.w + g.pw;
    if (g.count_include_pad) {
        return (h1 - h0) * (w1 - w0);
    }
    h0 = h0 > 0 ? h0 : 0;
    w0 = w0 > 0 ? w0 : 0;
    h1 = h1 < g.h ? h1 : g.h;
    w1 = w1 < g.w ? w1 : g.w;
    return (h1 - h0) * (w1 - w0);
}

/* The output rows (or columns) whose window tap reads input row h: lo..hi by step, via i. */
__host__ __device__ inline bool tap_row(int64_t h, int64_t i, int64_t s, int64_t p, int64_t d,
                                        int64_t out, int64_t *o)
{
    int64_t t = h + p - i * d;
    if (t < 0 || pfc_mod(t, s) != 0 || pfc_div(t, s) >= out) {
        return false;
    }
    *o = pfc_div(t, s);
    return true;
}

/* Element e (flat over the output's (N, C, rows, cols)) of the kind's result. */
template <typename T> __host__ __device__ void pool_one(const pool_args &P, int64_t e)
{
    typedef typename pfc_acc<T>::type A;
    const PfCudaPoolGeom &g = P.g;
    bool full = P.kind == PF_CUDA_MAX_POOL_BACKWARD || P.kind == PF_CUDA_AVG_POOL_BACKWARD;
    int64_t rows = full ? g.h : g.oh, cols = full ? g.w : g.ow;
    int64_t x1 = pfc_mod(e, cols), rest = pfc_div(e, cols);
    int64_t x0 = pfc_mod(rest, rows);
    rest = pfc_div(rest, rows);
    int64_t c = pfc_mod(rest, g.c), n = pfc_div(rest, g.c);
    A r = A(0);
    switch (P.kind) {
    case PF_CUDA_MAX_POOL: {
        int64_t ah = 0, aw = 0;
        A v;
        r = window_max<T>(g, P.a, n, c, x0, x1, &ah, &aw, &v) ? v : A(-INFINITY);
        break;
    }
    case PF_CUDA_MAX_POOL_SELECT: {
        int64_t ah = 0, aw = 0;
        A v;
        if (window_max<T>(g, P.b, n, c, x0, x1, &ah, &aw, &v)) {
            r = pfc_in(el<T>(P.a, n, c, ah, aw));
        }
        break;
    }
    case PF_CUDA_AVG_POOL: {
        for (int64_t i = 0; i < g.kh; i++) {
            int64_t ih = x0 * g.sh - g.ph + i;
            for (int64_t j = 0; ih >= 0 && ih < g.h && j < g.kw; j++) {
                int64_t iw = x1 * g.sw - g.pw + j;
                if (iw >= 0 && iw < g.w) {
                    r += pfc_in(el<T>(P.a, n, c, ih, iw));
                }
            }
        }
        r = r / (A)divisor(g, x0, x1);
        break;
    }
    case PF_CUDA_MAX_POOL_BACKWARD: {
        /* windows in row-major order: output rows ascend as the tap index descends */
        for (int64_t i = g.kh - 1; i >= 0; i--) {
            int64_t oh;
            if (!tap_row(x0, i, g.sh, g.ph, g.dh, g.oh, &oh)) {
                continue;
            }
            for (int64_t j = g.kw - 1; j >= 0; j--) {
                int64_t ow, ah = -1, aw = -1;
                A v;
                if (tap_row(x1, j, g.sw, g.pw, g.dw, g.ow, &ow) &&
                    window_max<T>(g, P.b, n, c, oh, ow, &ah, &aw, &v) && ah == x0 && aw == x1) {
                    r += pfc_in(el<T>(P.a, n, c, oh, ow));
                }
            }
        }
        break;
    }
    default: { /* PF_CUDA_AVG_POOL_BACKWARD */
        for (int64_t i = g.kh - 1; i >= 0; i--) {
            int64_t oh;
            if (!tap_row(x0, i, g.sh, g.ph, 1, g.oh, &oh)) {
                continue;
            }
            for (int64_t j = g.kw - 1; j >= 0; j--) {
                int64_t ow;
                if (tap_row(x1, j, g.sw, g.pw, 1, g.ow, &ow)) {
                    r += pfc_in(el<T>(P.a, n, c, oh, ow)) / (A)divisor(g, oh, ow);
                }
            }
        }
        break;
    }
    }
    el<T>(P.out, n, c, x0, x1) = pfc_store<T, A>(r);
}

template <typename T> __global__ void pool_kernel(pool_args P, int64_t total)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {
        pool_one<T>(P, e);
    }
}

const char *kind_name(int kind)
{
    switch (kind) {
    case PF_CUDA_MAX_POOL: return "max pooling";
    case PF_CUDA_AVG_POOL: return "average pooling";
    case PF_CUDA_MAX_POOL_BACKWARD: return "max pooling backward";
    case PF_CUDA_MAX_POOL_SELECT: return "max pooling select";
    default: return "average pooling backward";
    }
}

} // namespace

int pf_cuda_pool(int device, int kind, int dtype, const PfCudaPoolGeom *g, const PfCudaNd4 *a,
                 const PfCudaNd4 *b, const PfCudaNd4 *out)
{
    if (kind < PF_CUDA_MAX_POOL || kind > PF_CUDA_AVG_POOL_BACKWARD) {
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, "pf_cuda_pool: unknown kind");
    }
    pool_args P;
    P.g = *g;
    P.kind = kind;
    P.a = *a;
    P.b = b != nullptr ? *b : *a;
    P.out = *out;
    bool full = kind == PF_CUDA_MAX_POOL_BACKWARD || kind == PF_CUDA_AVG_POOL_BACKWARD;
    int64_t total = g->n * g->c * (full ? g->h * g->w : g->oh * g->ow);
    if (total == 0) {
        return 0;
    }
    return pfc_by_dtype(dtype, "pf_cuda_pool", [&](auto *tag) {
        typedef typename std::remove_pointer<decltype(tag)>::type T;
        if (device == PF_CUDA_HOST) {
            for (int64_t e = 0; e < total; e++) {
                pool_one<T>(P, e);
            }
            return 0;
        }
        return pfc_on_device(device, [&] {
            pool_kernel<T><<<pfc_nn_blocks(total), PFC_NN_THREADS, 0, pfc_stream()>>>(P, total);
            return pfc_check_launch(kind_name(kind), device);
        });
    });
}
