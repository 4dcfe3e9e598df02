/*
 * softmax.cu -- softmax and log_softmax along one axis on a device (the
 * CUDA path of reduce.c's softmax_entry).  Declared in pf_cuda.h
 * (PF_CUDA_NN_ENTRIES).
 *
 * The input is a contiguous (pre, n, post) block; a row is the n elements
 * (i, :, j), `post` apart.  One warp takes one row: each of its 32 lanes
 * walks the elements lane, lane + 32, ... of the row for the maximum, then
 * for the sum of exp(x - max), and the lanes combine their partial results
 * with a butterfly (lane i takes lane i ^ 16, then i ^ 8, ...), after which
 * every lane holds the same total; then each lane writes its elements.
 *
 * The per-lane work is __host__ __device__: the kernel runs it with the
 * butterfly done by warp shuffles, and pf_cuda_softmax_host runs the same
 * lanes one after another with the butterfly done over an array, in the
 * same order.  The host self-test (tests/test_cuda_softmax.py) compares that
 * with the cpu backend and NumPy; exp and log are each side's own, so the
 * device agrees with the host twin to an ulp or so, not bit for bit.
 */
#include "internal.cuh"

#include <cmath>
#include <cstdint>
#include <cstdio>

PF_CUDA_EXPORT pf_cuda_softmax_fn pf_cuda_softmax;
PF_CUDA_EXPORT pf_cuda_softmax_host_fn pf_cuda_softmax_host;

static pfc_register r_softmax(PFC_OP_SOFTMAX,
                              PFC_DTYPE_BIT(PF_CUDA_FLOAT32) | PFC_DTYPE_BIT(PF_CUDA_FLOAT64));
static pfc_register r_log_softmax(PFC_OP_LOG_SOFTMAX, PFC_DTYPE_BIT(PF_CUDA_FLOAT32) |
                                                          PFC_DTYPE_BIT(PF_CUDA_FLOAT64));

#define LANES 32

/* exp and log in the row's type (the float overloads on both sides) */
static __host__ __device__ inline float sm_exp(float v) { return expf(v); }
static __host__ __device__ inline double sm_exp(double v) { return exp(v); }
static __host__ __device__ inline float sm_log(float v) { return logf(v); }
static __host__ __device__ inline double sm_log(double v) { return log(v); }

/* the larger of a and b, NaN when either is (a row with a NaN gives NaN, as on the cpu) */
template <typename T> static __host__ __device__ inline T sm_max(T a, T b)
{
    if (a != a) {
        return a;
    }
    if (b != b) {
        return b;
    }
    return a > b ? a : b;
}

/* The row (r) starts at (r / post) * n * post + r % post; its elements are post apart. */
static __host__ __device__ inline int64_t row_base(int64_t r, int64_t n, int64_t post)
{
    return (r / post) * n * post + r % post;
}

/* lane's maximum over its elements lane, lane + LANES, ... of the row at x */
template <typename T>
static __host__ __device__ T lane_max(const T *x, int64_t n, int64_t post, int lane)
{
    T m = -INFINITY;
    for (int64_t k = lane; k < n; k += LANES) {
        m = sm_max(m, x[k * post]);
    }
    return m;
}

/* lane's sum of exp(x - m) over its elements */
template <typename T>
static __host__ __device__ T lane_sum(const T *x, int64_t n, int64_t post, int lane, T m)
{
    T s = 0;
    for (int64_t k = lane; k < n; k += LANES) {
        s += sm_exp(x[k * post] - m);
    }
    return s;
}

/* lane's outputs: exp(x - m) / s, or x - m - log(s) */
template <typename T>
static __host__ __device__ void lane_write(const T *x, T *y, int64_t n, int64_t post, int lane,
                                           T m, T s, int is_log)
{
    T ls = sm_log(s), rs = (T)1 / s;
    for (int64_t k = lane; k < n; k += LANES) {
        T d = x[k * post] - m;
        y[k * post] = is_log ? d - ls : sm_exp(d) * rs;
    }
}

/* x, y (pre, n, post) contiguous; rows = pre * post, one warp per row */
template <typename T>
__global__ void softmax_kernel(const T *x, T *y, int64_t rows, int64_t n, int64_t post,
                               int is_log)
{
    int lane = (int)(threadIdx.x % LANES);
    int64_t warps = (int64_t)gridDim.x * (blockDim.x / LANES);
    for (int64_t r = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / LANES; r < rows;
         r += warps) {
        int64_t b = row_base(r, n, post);
        T m = lane_max(x + b, n, post, lane);
        for (int off = LANES / 2; off >= 1; off /= 2) {
            m = sm_max(m, __shfl_xor_sync(0xffffffffu, m, off));
        }
        T s = lane_sum(x + b, n, post, lane, m);
        for (int off = LANES / 2; off >= 1; off /= 2) {
            s += __shfl_xor_sync(0xffffffffu, s, off);
        }
        lane_write(x + b, y + b, n, post, lane, m, s, is_log);
    }
}

/* The same rows on the host: the lanes in turn, the butterfly over an array. */
template <typename T>
static void softmax_rows_host(const T *x, T *y, int64_t rows, int64_t n, int64_t post,
                              int is_log)
{
    for (int64_t r = 0; r < rows; r++) {
        int64_t b = row_base(r, n, post);
        T v[LANES], w[LANES];
        for (int lane = 0; lane < LANES; lane++) {
            v[lane] = lane_max(x + b, n, post, lane);
        }
        for (int off = LANES / 2; off >= 1; off /= 2) {
            for (int lane = 0; lane < LANES; lane++) {
                w[lane] = sm_max(v[lane], v[lane ^ off]);
            }
            for (int lane = 0; lane < LANES; lane++) {
                v[lane] = w[lane];
            }
        }
        T m = v[0];
        for (int lane = 0; lane < LANES; lane++) {
            v[lane] = lane_sum(x + b, n, post, lane, m);
        }
        for (int off = LANES / 2; off >= 1; off /= 2) {
            for (int lane = 0; lane < LANES; lane++) {
                w[lane] = v[lane] + v[lane ^ off];
            }
            for (int lane = 0; lane < LANES; lane++) {
                v[lane] = w[lane];
            }
        }
        for (int lane = 0; lane < LANES; lane++) {
            lane_write(x + b, y + b, n, post, lane, m, v[lane], is_log);
        }
    }
}

static const int THREADS = 256;
static const int64_t MAX_BLOCKS = 65535;

static int check_args(const char *what, const void *x, const void *y, int64_t pre, int64_t n,
                      int64_t post)
{
    if (pre < 0 || n < 0 || post < 0 || x == nullptr || y == nullptr) {
        char msg[160];
        snprintf(msg, sizeof(msg), "%s: bad arguments", what);
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, msg);
    }
    return 0;
}

int pf_cuda_softmax(int device, const void *x, void *y, int64_t pre, int64_t n, int64_t post,
                    int is_double, int is_log)
{
    int status = check_args("pf_cuda_softmax", x, y, pre, n, post);
    if (status != 0 || pre == 0 || n == 0 || post == 0) {
        return status;
    }
    int64_t rows = pre * post;
    int64_t want = (rows * LANES + THREADS - 1) / THREADS;
    unsigned blocks = (unsigned)(want < MAX_BLOCKS ? want : MAX_BLOCKS);
    return pfc_on_device(device, [&] {
        if (is_double) {
            softmax_kernel<double><<<blocks, THREADS, 0, pfc_stream()>>>(
                (const double *)x, (double *)y, rows, n, post, is_log);
        }
        else {
            softmax_kernel<float><<<blocks, THREADS, 0, pfc_stream()>>>(
                (const float *)x, (float *)y, rows, n, post, is_log);
        }
        cudaError_t err = cudaGetLastError();
        if (err != cudaSuccess) {
            return pfc_fail(err, "%s kernel launch (%lld rows of %lld, cuda:%d)",
                            is_log ? "log_softmax" : "softmax", (long long)rows, (long long)n,
                            device);
        }
        return 0;
    });
}

int pf_cuda_softmax_host(int device, const void *x, void *y, int64_t pre, int64_t n,
                         int64_t post, int is_double, int is_log)
{
    (void)device;
    int status = check_args("pf_cuda_softmax_host", x, y, pre, n, post);
    if (status != 0 || pre == 0 || n == 0 || post == 0) {
        return status;
    }
    if (is_double) {
        softmax_rows_host((const double *)x, (double *)y, pre * post, n, post, is_log);
    }
    else {
        softmax_rows_host((const float *)x, (float *)y, pre * post, n, post, is_log);
    }
    return 0;
}
