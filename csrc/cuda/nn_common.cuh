/*
 * nn_common.cuh -- what the nn kernels (conv.cu, pool.cu, norm.cu) share:
 * the element types and their conversions, written __host__ __device__ so
 * that the host self-tests run the very functions the kernels run; vectors
 * of any float dtype; running a launch or its host twin; scratch memory.
 *
 * Every kernel of the family is written the same way: the work of one unit
 * (an output element, a tile phase, a row) is a __host__ __device__
 * function, the __global__ kernel calls it per index, and with device
 * PF_CUDA_HOST the entry point calls it in a plain loop over host memory.
 */
#ifndef PF_CUDA_NN_COMMON_CUH
#define PF_CUDA_NN_COMMON_CUH

#include "internal.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

/* the caching allocator's entry points (runtime.cu), for scratch memory */
PF_CUDA_EXPORT pf_cuda_alloc_fn pf_cuda_alloc;
PF_CUDA_EXPORT pf_cuda_free_fn pf_cuda_free;

/* The accumulator of an element type: float, or double for double. */
template <typename T> struct pfc_acc {
    typedef float type;
};
template <> struct pfc_acc<double> {
    typedef double type;
};

/* T -> its accumulator, and back (round to nearest even, as the cpu's casts). */
__host__ __device__ static inline float pfc_in(float v) { return v; }
__host__ __device__ static inline double pfc_in(double v) { return v; }
__host__ __device__ static inline float pfc_in(__half v) { return __half2float(v); }
__host__ __device__ static inline float pfc_in(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __host__ __device__ static inline T pfc_out(double v);
template <> __host__ __device__ inline float pfc_out<float>(double v) { return (float)v; }
template <> __host__ __device__ inline double pfc_out<double>(double v) { return v; }
template <> __host__ __device__ inline __half pfc_out<__half>(double v)
{
    return __float2half_rn((float)v);
}
template <> __host__ __device__ inline __nv_bfloat16 pfc_out<__nv_bfloat16>(double v)
{
    return __float2bfloat16_rn((float)v);
}
/* float -> T without the trip through double (float and the half types) */
template <typename T> __host__ __device__ static inline T pfc_outf(float v)
{
    return pfc_out<T>((double)v);
}
template <> __host__ __device__ inline __half pfc_outf<__half>(float v)
{
    return __float2half_rn(v);
}
template <> __host__ __device__ inline __nv_bfloat16 pfc_outf<__nv_bfloat16>(float v)
{
    return __float2bfloat16_rn(v);
}
template <typename T, typename A> __host__ __device__ static inline T pfc_store(A v)
{
    return pfc_out<T>((double)v);
}
template <> __host__ __device__ inline float pfc_store<float, float>(float v) { return v; }
template <> __host__ __device__ inline __half pfc_store<__half, float>(float v)
{
    return pfc_outf<__half>(v);
}
template <> __host__ __device__ inline __nv_bfloat16 pfc_store<__nv_bfloat16, float>(float v)
{
    return pfc_outf<__nv_bfloat16>(v);
}

/*
 * a / b and a % b for a >= 0, b > 0, in 32 bits when both fit: a 64-bit
 * division is a long software routine on the GPU, and these run per element.
 */
__host__ __device__ static inline int64_t pfc_div(int64_t a, int64_t b)
{
    return (uint64_t)(a | b) <= UINT32_MAX ? (int64_t)((uint32_t)a / (uint32_t)b) : a / b;
}
__host__ __device__ static inline int64_t pfc_mod(int64_t a, int64_t b)
{
    return (uint64_t)(a | b) <= UINT32_MAX ? (int64_t)((uint32_t)a % (uint32_t)b) : a % b;
}

/* Element i of a vector of any float dtype, as double; absent (data NULL): dflt. */
__host__ __device__ static inline double pfc_vec_get(const PfCudaVec &v, int64_t i, double dflt)
{
    if (v.data == nullptr) {
        return dflt;
    }
    const char *p = (const char *)v.data;
    int64_t k = i * v.stride;
    switch (v.dtype) {
    case PF_CUDA_FLOAT16: return (double)__half2float(((const __half *)p)[k]);
    case PF_CUDA_BFLOAT16: return (double)__bfloat162float(((const __nv_bfloat16 *)p)[k]);
    case PF_CUDA_FLOAT32: return (double)((const float *)p)[k];
    default: return ((const double *)p)[k];
    }
}

/* Writes v into element i of a vector (nothing when absent), rounding once. */
__host__ __device__ static inline void pfc_vec_set(const PfCudaVec &v, int64_t i, double x)
{
    if (v.data == nullptr) {
        return;
    }
    char *p = (char *)v.data;
    int64_t k = i * v.stride;
    switch (v.dtype) {
    case PF_CUDA_FLOAT16: ((__half *)p)[k] = pfc_out<__half>(x); break;
    case PF_CUDA_BFLOAT16: ((__nv_bfloat16 *)p)[k] = pfc_out<__nv_bfloat16>(x); break;
    case PF_CUDA_FLOAT32: ((float *)p)[k] = (float)x; break;
    default: ((double *)p)[k] = x; break;
    }
}

static inline PfCudaVec pfc_no_vec()
{
    PfCudaVec v = {nullptr, PF_CUDA_FLOAT32, 0};
    return v;
}

/* Calls body with a null pointer of the element type of dtype: body((T *)0). */
template <typename Body> static int pfc_by_dtype(int dtype, const char *what, Body body)
{
    switch (dtype) {
    case PF_CUDA_FLOAT16: return body((__half *)nullptr);
    case PF_CUDA_BFLOAT16: return body((__nv_bfloat16 *)nullptr);
    case PF_CUDA_FLOAT32: return body((float *)nullptr);
    case PF_CUDA_FLOAT64: return body((double *)nullptr);
    default: {
        char msg[160];
        snprintf(msg, sizeof(msg), "%s: dtype %d has no kernel; expected float16, bfloat16, "
                 "float32 or float64", what, dtype);
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, msg);
    }
    }
}

/* A grid-stride launch size: enough blocks to fill any current GPU; the loop does the rest. */
static const int PFC_NN_THREADS = 256;
static inline unsigned pfc_nn_blocks(int64_t n)
{
    int64_t b = (n + PFC_NN_THREADS - 1) / PFC_NN_THREADS;
    return (unsigned)(b < 65535 ? (b > 0 ? b : 1) : 65535);
}

/* After a launch: the launch error, recorded naming the kernel. */
static inline int pfc_check_launch(const char *kernel, int device)
{
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) {
        return pfc_fail(err, "%s kernel launch (cuda:%d)", kernel, device);
    }
    return 0;
}

/*
 * Scratch memory of nbytes: from the caching allocator on a device (freed
 * after the queued work that uses it, which is ordered on pyframe's one
 * stream before any later user of the block), malloc'd for the host test.
 */
struct pfc_scratch {
    int device;
    void *ptr;
    pfc_scratch(int d) : device(d), ptr(nullptr) {}
    int get(size_t nbytes, const char *what)
    {
        if (nbytes == 0) {
            nbytes = 1;
        }
        if (device == PF_CUDA_HOST) {
            ptr = malloc(nbytes);
            if (ptr == nullptr) {
                char msg[160];
                snprintf(msg, sizeof(msg), "%s: out of host memory for %zu bytes of scratch",
                         what, nbytes);
                return pfc_fail_with(PF_CUDA_ERROR_OUT_OF_MEMORY, msg);
            }
            return 0;
        }
        return pf_cuda_alloc(nbytes, device, &ptr);
    }
    ~pfc_scratch()
    {
        if (ptr == nullptr) {
            return;
        }
        if (device == PF_CUDA_HOST) {
            free(ptr);
        }
        else {
            pf_cuda_free(ptr);
        }
    }
};

/* Runs body on device (made current), or directly for the host test. */
template <typename Body> static int pfc_nn_run(int device, Body body)
{
    if (device == PF_CUDA_HOST) {
        return body();
    }
    return pfc_on_device(device, body);
}

#endif
