/*
 * optim.cu -- the fused optimizer updates on a device (pyframe._C._optim_step
 * with CUDA parameters; csrc/optim.c does the checks and the per-parameter
 * constants) and the sum of squares behind clipnorm / global_clipnorm.
 * Declared in pf_cuda.h (PF_CUDA_OPTIM_ENTRIES).
 *
 * The update of one element is the cpu's loop itself: this file includes
 * csrc/kernels/optim_loops.h (for float and double) with PF_HD =
 * __host__ __device__, and the kernel calls the algorithm's loop with n = 1
 * at each element of a grid-stride loop.  The host twin,
 * pf_cuda_optim_update_host, makes the same calls over host memory: the
 * host self-test (tests/test_cuda_optim.py) checks it against the cpu's
 * vectorised loops bit for bit.  Built with -fmad=false (setup.py) so that
 * no a * b + c is fused: the device then rounds as the cpu does.
 *
 * One launch per parameter: a step is a handful of launches for a model's
 * few dozen parameters, and each launch streams its parameter once.
 */
#include "internal.cuh"

#include "../kernels/optim_kernels.h"

#include <cmath>
#include <cstdint>
#include <cstdio>

PF_CUDA_EXPORT pf_cuda_optim_update_fn pf_cuda_optim_update;
PF_CUDA_EXPORT pf_cuda_optim_update_host_fn pf_cuda_optim_update_host;
PF_CUDA_EXPORT pf_cuda_optim_sumsq_fn pf_cuda_optim_sumsq;
PF_CUDA_EXPORT pf_cuda_alloc_fn pf_cuda_alloc;      /* runtime.cu */
PF_CUDA_EXPORT pf_cuda_free_fn pf_cuda_free;

#ifndef PF_HD
#define PF_HD __host__ __device__
#endif
#define PF_CLONES
#define restrict __restrict__
#define PF_OPTIM_DEVICE_LOOPS 1

#define T float
#define S f32
#define SQRT sqrtf
#include "../kernels/optim_loops.h"
#undef T
#undef S
#undef SQRT

#define T double
#define S f64
#define SQRT sqrt
#include "../kernels/optim_loops.h"
#undef T
#undef S
#undef SQRT
#undef restrict

/* The state pointers of one parameter, passed by value to the kernel. */
struct slots {
    void *s[PF_OPTIM_MAX_SLOTS];
};

/*
 * Element i of one parameter: the algorithm's loop over the one-element
 * runs p + i, g + i, s[k] + i.  T is the dtype; an unused slot stays NULL.
 */
template <typename T>
static PF_HD void update_one(int algo, T *p, const T *g, const slots &st, int64_t i,
                             const pf_optim_coef &c)
{
    void *s[PF_OPTIM_MAX_SLOTS];
    for (int k = 0; k < PF_OPTIM_MAX_SLOTS; k++) {
        s[k] = st.s[k] != nullptr ? (void *)((T *)st.s[k] + i) : nullptr;
    }
    const bool dbl = sizeof(T) == 8;
    switch (algo) {
    case PF_OPTIM_SGD:
        dbl ? sgd_f64(p + i, g + i, s, 1, &c) : sgd_f32(p + i, g + i, s, 1, &c);
        break;
    case PF_OPTIM_ADAM:
        dbl ? adam_f64(p + i, g + i, s, 1, &c) : adam_f32(p + i, g + i, s, 1, &c);
        break;
    case PF_OPTIM_RMSPROP:
        dbl ? rmsprop_f64(p + i, g + i, s, 1, &c) : rmsprop_f32(p + i, g + i, s, 1, &c);
        break;
    case PF_OPTIM_ADAGRAD:
        dbl ? adagrad_f64(p + i, g + i, s, 1, &c) : adagrad_f32(p + i, g + i, s, 1, &c);
        break;
    case PF_OPTIM_ADAMAX:
        dbl ? adamax_f64(p + i, g + i, s, 1, &c) : adamax_f32(p + i, g + i, s, 1, &c);
        break;
    case PF_OPTIM_NADAM:
        dbl ? nadam_f64(p + i, g + i, s, 1, &c) : nadam_f32(p + i, g + i, s, 1, &c);
        break;
    default:
        dbl ? lion_f64(p + i, g + i, s, 1, &c) : lion_f32(p + i, g + i, s, 1, &c);
        break;
    }
}

/* p (n), g (n), st.s[k] (n): one parameter's update, one element per thread step */
template <typename T>
__global__ void optim_kernel(int algo, T *p, const T *g, slots st, int64_t n, pf_optim_coef c)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
        update_one<T>(algo, p, g, st, i, c);
    }
}

static const int THREADS = 256;
static const int64_t MAX_BLOCKS = 65535;

static unsigned grid_for(int64_t n)
{
    int64_t b = (n + THREADS - 1) / THREADS;
    return (unsigned)(b < MAX_BLOCKS ? b : MAX_BLOCKS);
}

static int check_update(int algo, int64_t n, const void *p, const void *g)
{
    if (algo < 0 || algo >= PF_OPTIM_NALGOS || n < 0 || (n > 0 && (p == nullptr || g == nullptr))) {
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, "pf_cuda_optim_update: bad arguments");
    }
    return 0;
}

int pf_cuda_optim_update(int device, int algo, int is_double, void *p, const void *g,
                         void *const *s, int64_t n, const pf_optim_coef *c)
{
    int status = check_update(algo, n, p, g);
    if (status != 0 || n == 0) {
        return status;
    }
    slots st;
    for (int k = 0; k < PF_OPTIM_MAX_SLOTS; k++) {
        st.s[k] = s[k];
    }
    pf_optim_coef coef = *c;
    return pfc_on_device(device, [&] {
        if (is_double) {
            optim_kernel<double><<<grid_for(n), THREADS, 0, pfc_stream()>>>(
                algo, (double *)p, (const double *)g, st, n, coef);
        }
        else {
            optim_kernel<float><<<grid_for(n), THREADS, 0, pfc_stream()>>>(
                algo, (float *)p, (const float *)g, st, n, coef);
        }
        cudaError_t err = cudaGetLastError();
        if (err != cudaSuccess) {
            return pfc_fail(err, "optimizer update kernel launch (%lld elements, cuda:%d)",
                            (long long)n, device);
        }
        return 0;
    });
}

int pf_cuda_optim_update_host(int device, int algo, int is_double, void *p, const void *g,
                              void *const *s, int64_t n, const pf_optim_coef *c)
{
    (void)device;
    int status = check_update(algo, n, p, g);
    if (status != 0) {
        return status;
    }
    slots st;
    for (int k = 0; k < PF_OPTIM_MAX_SLOTS; k++) {
        st.s[k] = s[k];
    }
    for (int64_t i = 0; i < n; i++) {
        if (is_double) {
            update_one<double>(algo, (double *)p, (const double *)g, st, i, *c);
        }
        else {
            update_one<float>(algo, (float *)p, (const float *)g, st, i, *c);
        }
    }
    return 0;
}

/* ------------------------------------------------------------ sum of squares */

/*
 * x (n) -> partial[blockIdx.x]: each block sums the squares of its
 * grid-stride share in double, then folds its threads' sums pairwise in
 * shared memory.  The order is fixed by the launch, so the result is
 * reproducible (but not the cpu's order: see pf_cuda_optim_sumsq).
 */
template <typename T>
__global__ void sumsq_kernel(const T *x, int64_t n, double *partial)
{
    __shared__ double acc[THREADS];
    double a = 0.0;
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
        double v = (double)x[i];
        a += v * v;
    }
    acc[threadIdx.x] = a;
    __syncthreads();
    for (int w = THREADS / 2; w >= 1; w /= 2) {
        if ((int)threadIdx.x < w) {
            acc[threadIdx.x] += acc[threadIdx.x + w];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        partial[blockIdx.x] = acc[0];
    }
}

/* at most this many partial sums: the host adds them in order */
static const int SUMSQ_BLOCKS = 1024;

int pf_cuda_optim_sumsq(int device, const void *x, int64_t n, int is_double, double *out)
{
    *out = 0.0;
    if (n < 0 || (n > 0 && x == nullptr)) {
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, "pf_cuda_optim_sumsq: bad arguments");
    }
    if (n == 0) {
        return 0;
    }
    int64_t want = (n + THREADS - 1) / THREADS;
    int blocks = (int)(want < SUMSQ_BLOCKS ? want : SUMSQ_BLOCKS);
    return pfc_on_device(device, [&] {
        double *partial = nullptr;
        double host[SUMSQ_BLOCKS];
        /* from the caching allocator, so the memory counters see it */
        int st = pf_cuda_alloc(sizeof(double) * (size_t)blocks, device, (void **)&partial);
        if (st != 0) {
            return st;
        }
        cudaError_t err;
        if (is_double) {
            sumsq_kernel<double><<<blocks, THREADS, 0, pfc_stream()>>>((const double *)x, n,
                                                                      partial);
        }
        else {
            sumsq_kernel<float><<<blocks, THREADS, 0, pfc_stream()>>>((const float *)x, n,
                                                                     partial);
        }
        int status = 0;
        if ((err = cudaGetLastError()) != cudaSuccess) {
            status = pfc_fail(err, "sum of squares kernel launch (%lld elements, cuda:%d)",
                              (long long)n, device);
        }
        else if ((err = cudaMemcpyAsync(host, partial, sizeof(double) * (size_t)blocks,
                                        cudaMemcpyDeviceToHost, pfc_stream())) != cudaSuccess ||
                 (err = cudaStreamSynchronize(pfc_stream())) != cudaSuccess) {
            status = pfc_fail(err, "reading the sum of squares back from cuda:%d", device);
        }
        int fst = pf_cuda_free(partial);
        if (status == 0) {
            status = fst;
        }
        if (status == 0) {
            double sum = 0.0;
            for (int b = 0; b < blocks; b++) {
                sum += host[b];
            }
            *out = sum;
        }
        return status;
    });
}

/* The library's optimizer updates are not ops of the table: nothing to register. */
