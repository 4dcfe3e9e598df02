/*
 * random.cu -- the random draws on a device: rand/uniform, randn/normal,
 * randint and dropout masks, as the same function of (seed, block) as the
 * cpu's (csrc/random.c): both compute through csrc/kernels/philox.h, so a
 * seed gives the same bits on either.  Declared in pf_cuda.h
 * (PF_CUDA_RNG_ENTRIES).
 *
 * The work of block j (elements 2j and 2j + 1 of a contiguous output) is
 * one __host__ __device__ function per dtype: the kernel runs it for every
 * block (grid-stride loop), and the *_host entry points run it in a plain
 * loop over host memory, which is how CI checks it against the cpu backend
 * without a GPU (tests/test_cuda_rng.py).
 */
#include "internal.cuh"

#include "../kernels/philox.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>

PF_CUDA_EXPORT pf_cuda_rng_fill_fn pf_cuda_rng_fill;
PF_CUDA_EXPORT pf_cuda_rng_fill_host_fn pf_cuda_rng_fill_host;
PF_CUDA_EXPORT pf_cuda_dropout_mask_fn pf_cuda_dropout_mask;
PF_CUDA_EXPORT pf_cuda_dropout_mask_host_fn pf_cuda_dropout_mask_host;

/*
 * The ops whose device paths use these kernels: the draws are not ops of
 * the table, dropout is (its mask comes from here, the product from the
 * multiply kernel).
 */
static pfc_register r_dropout(PFC_OP_DROPOUT, PFC_FLOAT_DTYPES);

/* ------------------------------------------------------------ stored dtypes */

/*
 * How a sample is stored in each dtype, as the cpu's casts do it
 * (kernels/cast.c): floats round to nearest even, float16 and bfloat16
 * through float32; integers are stored as int64 values that fit (random.c
 * checks the range), bool as != 0.  `back` reads a float element as double.
 */
template <int DT> struct rng_store;

template <> struct rng_store<PF_CUDA_FLOAT64> {
    typedef double T;
    static PF_HD T from_double(double v) { return v; }
    static PF_HD T from_int(int64_t v) { return (double)v; }
    static PF_HD double back(T x) { return x; }
};
template <> struct rng_store<PF_CUDA_FLOAT32> {
    typedef float T;
    static PF_HD T from_double(double v) { return (float)v; }
    static PF_HD T from_int(int64_t v) { return (float)v; }
    static PF_HD double back(T x) { return (double)x; }
};
template <> struct rng_store<PF_CUDA_FLOAT16> {
    typedef __half T;
    static PF_HD T from_double(double v) { return __float2half_rn((float)v); }
    static PF_HD T from_int(int64_t v) { return __float2half_rn((float)v); }
    static PF_HD double back(T x) { return (double)__half2float(x); }
};
template <> struct rng_store<PF_CUDA_BFLOAT16> {
    typedef __nv_bfloat16 T;
    static PF_HD T from_double(double v) { return __float2bfloat16_rn((float)v); }
    static PF_HD T from_int(int64_t v) { return __float2bfloat16_rn((float)v); }
    static PF_HD double back(T x) { return (double)__bfloat162float(x); }
};
#define PFC_RNG_INT_STORE(DT, CT)                                                            \
    template <> struct rng_store<DT> {                                                       \
        typedef CT T;                                                                        \
        static PF_HD T from_int(int64_t v) { return (CT)v; }                                 \
    };
PFC_RNG_INT_STORE(PF_CUDA_UINT8, uint8_t)
PFC_RNG_INT_STORE(PF_CUDA_INT8, int8_t)
PFC_RNG_INT_STORE(PF_CUDA_INT16, int16_t)
PFC_RNG_INT_STORE(PF_CUDA_INT32, int32_t)
PFC_RNG_INT_STORE(PF_CUDA_INT64, int64_t)
#undef PFC_RNG_INT_STORE
template <> struct rng_store<PF_CUDA_BOOL> {
    typedef uint8_t T;
    static PF_HD T from_int(int64_t v) { return (uint8_t)(v != 0); }
};

/* the bits of a 16-bit float and back (through the _raw structs: no memcpy of a class) */
static PF_HD uint16_t bits16(__half x) { return __half_raw(x).x; }
static PF_HD uint16_t bits16(__nv_bfloat16 x) { return __nv_bfloat16_raw(x).x; }
template <typename T> static PF_HD T from_bits16(uint16_t h);
template <> PF_HD __half from_bits16<__half>(uint16_t h)
{
    __half_raw r;
    r.x = h;
    return __half(r);
}
template <> PF_HD __nv_bfloat16 from_bits16<__nv_bfloat16>(uint16_t h)
{
    __nv_bfloat16_raw r;
    r.x = h;
    return __nv_bfloat16(r);
}

/*
 * nextafter(x, -inf) for a finite x, on the bits (the libm function is not
 * callable from both sides): one step toward -inf, from +-0 to the smallest
 * negative number.
 */
template <typename F, typename U> static PF_HD F step_down(F x)
{
    U u;
    memcpy(&u, &x, sizeof(u));
    const U sign = (U)1 << (8 * sizeof(U) - 1);
    u = (u & ~sign) == 0 ? (U)(sign | 1) : (u & sign) ? (U)(u + 1) : (U)(u - 1);
    memcpy(&x, &u, sizeof(u));
    return x;
}

/*
 * A uniform sample stored below `high`: rounding to a narrow dtype can
 * carry a value just below high up to high itself, and then the largest
 * value of the dtype below high is stored instead (random.c's store_below).
 */
template <int DT> static PF_HD typename rng_store<DT>::T store_below(double v, double high)
{
    typedef rng_store<DT> S;
    typename S::T x = S::from_double(v);
    double back = S::back(x);
    if (back < high) {
        return x;
    }
    if constexpr (DT == PF_CUDA_FLOAT64) {
        return step_down<double, uint64_t>(high);
    }
    else if constexpr (DT == PF_CUDA_FLOAT32) {
        float f = (float)high;
        while ((double)f >= high) {
            f = step_down<float, uint32_t>(f);
        }
        return f;
    }
    else {
        uint16_t h = bits16(x);
        for (int guard = 0; guard < 4 && back >= high; guard++) {
            h = pf_rng_step_down16(h);
            x = from_bits16<typename S::T>(h);
            back = S::back(x);
        }
        return x;
    }
}

/* ------------------------------------------------------------ per block */

/* Elements 2j and 2j + 1 (those below n) of a float draw: uniform or normal. */
template <int DT>
static PF_HD void float_block(typename rng_store<DT>::T *out, int64_t n, const pf_rng_dist &d,
                              int64_t j)
{
    double fv[2] = {0, 0};
    int64_t iv[2] = {0, 0};
    pf_rng_sample_pair(&d, (uint64_t)j, fv, iv);
    int below = d.kind == PF_RNG_UNIFORM && d.b > d.a;
    for (int k = 0; k < 2 && 2 * j + k < n; k++) {
        out[2 * j + k] = below ? store_below<DT>(fv[k], d.b) : rng_store<DT>::from_double(fv[k]);
    }
}

/* Elements 2j and 2j + 1 of randint. */
template <int DT>
static PF_HD void int_block(typename rng_store<DT>::T *out, int64_t n, const pf_rng_dist &d,
                            int64_t j)
{
    double fv[2] = {0, 0};
    int64_t iv[2] = {0, 0};
    pf_rng_sample_pair(&d, (uint64_t)j, fv, iv);
    for (int k = 0; k < 2 && 2 * j + k < n; k++) {
        out[2 * j + k] = rng_store<DT>::from_int(iv[k]);
    }
}

/*
 * Elements 2j and 2j + 1 of a dropout mask: 1 / (1 - p) where the uniform
 * of rand is >= p, else 0, in the mask's dtype (float16 and bfloat16
 * through float32, as the cpu computes the mask in float32 and casts it).
 */
template <int DT>
static PF_HD void mask_block(typename rng_store<DT>::T *out, int64_t n, double p, uint64_t seed,
                             uint64_t offset, int64_t j)
{
    typedef rng_store<DT> S;
    double u[2];
    pf_rng_uniform_pair(seed, offset + (uint64_t)j, u);
    typename S::T keep = S::from_double(pf_rng_dropout_scale(p)), zero = S::from_double(0.0);
    for (int k = 0; k < 2 && 2 * j + k < n; k++) {
        out[2 * j + k] = u[k] >= p ? keep : zero;
    }
}

/* ------------------------------------------------------------ kernels */

/* out (n) contiguous; blocks = ceil(n / 2) */
template <int DT>
__global__ void rng_float_kernel(typename rng_store<DT>::T *out, int64_t n, pf_rng_dist d,
                                 int64_t blocks)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; j < blocks; j += step) {
        float_block<DT>(out, n, d, j);
    }
}

template <int DT>
__global__ void rng_int_kernel(typename rng_store<DT>::T *out, int64_t n, pf_rng_dist d,
                               int64_t blocks)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; j < blocks; j += step) {
        int_block<DT>(out, n, d, j);
    }
}

template <int DT>
__global__ void mask_kernel(typename rng_store<DT>::T *out, int64_t n, double p, uint64_t seed,
                            uint64_t offset, int64_t blocks)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; j < blocks; j += step) {
        mask_block<DT>(out, n, p, seed, offset, j);
    }
}

/* ------------------------------------------------------------ entry points */

static const int THREADS = 256;
static const int64_t MAX_BLOCKS = 65535;

static unsigned grid_for(int64_t work)
{
    int64_t b = (work + THREADS - 1) / THREADS;
    return (unsigned)(b < MAX_BLOCKS ? b : MAX_BLOCKS);
}

/*
 * Runs the work of every block: body(j) for each block on the calling
 * thread over host memory when device is PF_CUDA_HOST, else the kernel
 * launched on `device`.
 */
template <typename Body, typename Kernel>
static int run_blocks(int device, const char *what, int64_t n, Body body, Kernel kernel)
{
    int64_t blocks = (n + 1) / 2;
    if (device == PF_CUDA_HOST) {
        for (int64_t j = 0; j < blocks; j++) {
            body(j);
        }
        return 0;
    }
    return pfc_on_device(device, [&] {
        kernel(grid_for(blocks), THREADS, pfc_stream(), blocks);
        cudaError_t err = cudaGetLastError();
        if (err != cudaSuccess) {
            return pfc_fail(err, "%s kernel launch (%lld elements, cuda:%d)", what,
                            (long long)n, device);
        }
        return 0;
    });
}

static int bad_dtype(const char *what, int dtype)
{
    char msg[160];
    snprintf(msg, sizeof(msg), "%s: no kernel for dtype number %d", what, dtype);
    return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, msg);
}

template <int DT> static int fill_float(int device, void *out, int64_t n, const pf_rng_dist &d)
{
    typedef typename rng_store<DT>::T T;
    T *o = (T *)out;
    return run_blocks(
        device, "random draw", n, [&](int64_t j) { float_block<DT>(o, n, d, j); },
        [&](unsigned grid, int threads, cudaStream_t stream, int64_t blocks) {
            rng_float_kernel<DT><<<grid, threads, 0, stream>>>(o, n, d, blocks);
        });
}

template <int DT> static int fill_int(int device, void *out, int64_t n, const pf_rng_dist &d)
{
    typedef typename rng_store<DT>::T T;
    T *o = (T *)out;
    return run_blocks(
        device, "randint", n, [&](int64_t j) { int_block<DT>(o, n, d, j); },
        [&](unsigned grid, int threads, cudaStream_t stream, int64_t blocks) {
            rng_int_kernel<DT><<<grid, threads, 0, stream>>>(o, n, d, blocks);
        });
}

static int rng_fill(int device, void *out, int dtype, int64_t n, const pf_rng_dist *dp)
{
    const char *what = "pf_cuda_rng_fill";
    if (n < 0 || dp == nullptr || (n > 0 && out == nullptr)) {
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, "pf_cuda_rng_fill: bad arguments");
    }
    if (n == 0) {
        return 0;
    }
    pf_rng_dist d = *dp;
    if (d.kind == PF_RNG_INT) {
        switch (dtype) {
        case PF_CUDA_BOOL: return fill_int<PF_CUDA_BOOL>(device, out, n, d);
        case PF_CUDA_UINT8: return fill_int<PF_CUDA_UINT8>(device, out, n, d);
        case PF_CUDA_INT8: return fill_int<PF_CUDA_INT8>(device, out, n, d);
        case PF_CUDA_INT16: return fill_int<PF_CUDA_INT16>(device, out, n, d);
        case PF_CUDA_INT32: return fill_int<PF_CUDA_INT32>(device, out, n, d);
        case PF_CUDA_INT64: return fill_int<PF_CUDA_INT64>(device, out, n, d);
        case PF_CUDA_FLOAT16: return fill_int<PF_CUDA_FLOAT16>(device, out, n, d);
        case PF_CUDA_BFLOAT16: return fill_int<PF_CUDA_BFLOAT16>(device, out, n, d);
        case PF_CUDA_FLOAT32: return fill_int<PF_CUDA_FLOAT32>(device, out, n, d);
        case PF_CUDA_FLOAT64: return fill_int<PF_CUDA_FLOAT64>(device, out, n, d);
        default: return bad_dtype(what, dtype);
        }
    }
    if (d.kind != PF_RNG_UNIFORM && d.kind != PF_RNG_NORMAL) {
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, "pf_cuda_rng_fill: unknown kind");
    }
    switch (dtype) {
    case PF_CUDA_FLOAT16: return fill_float<PF_CUDA_FLOAT16>(device, out, n, d);
    case PF_CUDA_BFLOAT16: return fill_float<PF_CUDA_BFLOAT16>(device, out, n, d);
    case PF_CUDA_FLOAT32: return fill_float<PF_CUDA_FLOAT32>(device, out, n, d);
    case PF_CUDA_FLOAT64: return fill_float<PF_CUDA_FLOAT64>(device, out, n, d);
    default: return bad_dtype(what, dtype);
    }
}

template <int DT>
static int mask(int device, void *out, int64_t n, double p, uint64_t seed, uint64_t offset)
{
    typedef typename rng_store<DT>::T T;
    T *o = (T *)out;
    return run_blocks(
        device, "dropout mask", n, [&](int64_t j) { mask_block<DT>(o, n, p, seed, offset, j); },
        [&](unsigned grid, int threads, cudaStream_t stream, int64_t blocks) {
            mask_kernel<DT><<<grid, threads, 0, stream>>>(o, n, p, seed, offset, blocks);
        });
}

static int dropout_mask(int device, void *out, int dtype, int64_t n, double p, uint64_t seed,
                        uint64_t offset)
{
    if (n < 0 || (n > 0 && out == nullptr) || !(p >= 0.0 && p < 1.0)) {
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE,
                             "pf_cuda_dropout_mask: bad arguments (p must be in [0, 1))");
    }
    if (n == 0) {
        return 0;
    }
    switch (dtype) {
    case PF_CUDA_FLOAT16: return mask<PF_CUDA_FLOAT16>(device, out, n, p, seed, offset);
    case PF_CUDA_BFLOAT16: return mask<PF_CUDA_BFLOAT16>(device, out, n, p, seed, offset);
    case PF_CUDA_FLOAT32: return mask<PF_CUDA_FLOAT32>(device, out, n, p, seed, offset);
    case PF_CUDA_FLOAT64: return mask<PF_CUDA_FLOAT64>(device, out, n, p, seed, offset);
    default: return bad_dtype("pf_cuda_dropout_mask", dtype);
    }
}

int pf_cuda_rng_fill(int device, void *out, int dtype, int64_t n, const pf_rng_dist *d)
{
    if (device < 0) {
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, "pf_cuda_rng_fill: bad device");
    }
    return rng_fill(device, out, dtype, n, d);
}

int pf_cuda_rng_fill_host(int device, void *out, int dtype, int64_t n, const pf_rng_dist *d)
{
    (void)device;
    return rng_fill(PF_CUDA_HOST, out, dtype, n, d);
}

int pf_cuda_dropout_mask(int device, void *out, int dtype, int64_t n, double p, uint64_t seed,
                         uint64_t offset)
{
    if (device < 0) {
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, "pf_cuda_dropout_mask: bad device");
    }
    return dropout_mask(device, out, dtype, n, p, seed, offset);
}

int pf_cuda_dropout_mask_host(int device, void *out, int dtype, int64_t n, double p,
                              uint64_t seed, uint64_t offset)
{
    (void)device;
    return dropout_mask(PF_CUDA_HOST, out, dtype, n, p, seed, offset);
}
