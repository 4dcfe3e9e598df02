/*
 * copy.cu -- moving bytes: copies between the host and devices, and the two
 * data-movement kernels a device tensor needs before any arithmetic does:
 * a strided copy (making a view contiguous, writing into a view) and a
 * strided fill (zeros, ones, full, fill_).  Declared in pf_cuda.h.
 *
 * The kernels copy bits, so one instantiation per item size (1, 2, 4, 8
 * bytes) serves every dtype.  Each thread takes elements i, i + stride, ...
 * of the flat index range and turns i into an offset on each side by
 * peeling coordinates off the shape, innermost first.
 */
#include "internal.cuh"

#include <cstdint>
#include <cstdio>
#include <cstring>

PF_CUDA_EXPORT pf_cuda_memcpy_fn pf_cuda_memcpy;
PF_CUDA_EXPORT pf_cuda_copy_strided_fn pf_cuda_copy_strided;
PF_CUDA_EXPORT pf_cuda_fill_strided_fn pf_cuda_fill_strided;

static const char *memcpy_kind_name(cudaMemcpyKind kind)
{
    return kind == cudaMemcpyHostToDevice   ? "host to device"
           : kind == cudaMemcpyDeviceToHost ? "device to host"
                                            : "device to device";
}

int pf_cuda_memcpy(void *dst, int dst_device, const void *src, int src_device, size_t nbytes)
{
    if (nbytes == 0) {
        return 0;
    }
    if (dst_device == PF_CUDA_HOST && src_device == PF_CUDA_HOST) {
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE,
                             "pf_cuda_memcpy: both sides are host memory; use memcpy");
    }
    if (dst_device != PF_CUDA_HOST && src_device != PF_CUDA_HOST && dst_device != src_device) {
        cudaError_t err = cudaMemcpyPeer(dst, dst_device, src, src_device, nbytes);
        if (err != cudaSuccess) {
            return pfc_fail(err, "cudaMemcpyPeer(%zu bytes from cuda:%d to cuda:%d)", nbytes,
                            src_device, dst_device);
        }
        return 0;
    }
    cudaMemcpyKind kind = src_device == PF_CUDA_HOST   ? cudaMemcpyHostToDevice
                          : dst_device == PF_CUDA_HOST ? cudaMemcpyDeviceToHost
                                                       : cudaMemcpyDeviceToDevice;
    int device = dst_device != PF_CUDA_HOST ? dst_device : src_device;
    return pfc_on_device(device, [&] {
        cudaError_t err = cudaMemcpyAsync(dst, src, nbytes, kind, pfc_stream());
        if (err != cudaSuccess) {
            return pfc_fail(err, "cudaMemcpyAsync(%zu bytes, %s, cuda:%d)", nbytes,
                            memcpy_kind_name(kind), device);
        }
        /* the host side is pageable memory the caller may free or read right away */
        if (kind != cudaMemcpyDeviceToDevice &&
            (err = cudaStreamSynchronize(pfc_stream())) != cudaSuccess) {
            return pfc_fail(err, "cudaStreamSynchronize after a %s copy of %zu bytes on cuda:%d",
                            memcpy_kind_name(kind), nbytes, device);
        }
        return 0;
    });
}

/* ------------------------------------------------------------- kernels */

/* The element offsets of flat index i on both sides of g. */
__device__ static inline void strided_offsets(const PfCudaStrided &g, int64_t i,
                                              int64_t *dst_off, int64_t *src_off)
{
    int64_t d = 0, s = 0;
    for (int k = g.ndim - 1; k >= 0; k--) {
        int64_t size = g.shape[k];
        int64_t c = i % size;
        i /= size;
        d += c * g.dst_strides[k];
        s += c * g.src_strides[k];
    }
    *dst_off = d;
    *src_off = s;
}

/* dst (g.shape, g.dst_strides) = src (g.shape, g.src_strides); n = prod(g.shape) */
template <typename T>
__global__ void copy_strided_kernel(T *dst, const T *src, PfCudaStrided g, int64_t n)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
        int64_t d, s;
        strided_offsets(g, i, &d, &s);
        dst[d] = src[s];
    }
}

/* dst (g.shape, g.dst_strides) = value; n = prod(g.shape) */
template <typename T>
__global__ void fill_strided_kernel(T *dst, T value, PfCudaStrided g, int64_t n)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
        int64_t d, s;
        strided_offsets(g, i, &d, &s);
        dst[d] = value;
    }
}

static const int THREADS = 256;
/* enough blocks to fill any current GPU several times over; the loop covers the rest */
static const int64_t MAX_BLOCKS = 65535;

static unsigned blocks_for(int64_t n)
{
    int64_t b = (n + THREADS - 1) / THREADS;
    return (unsigned)(b < MAX_BLOCKS ? b : MAX_BLOCKS);
}

/*
 * Checks what the kernels rely on: 0 < ndim <= PF_CUDA_MAX_DIMS (0-d is one
 * element), sizes >= 0, an item size of 1, 2, 4 or 8, aligned pointers.
 * Sets *n to the element count.
 */
static int check_geometry(const char *what, const void *dst, const void *src, int itemsize,
                          const PfCudaStrided *g, int64_t *n)
{
    char msg[200];
    if (g->ndim < 0 || g->ndim > PF_CUDA_MAX_DIMS) {
        snprintf(msg, sizeof(msg), "%s: %d dimensions; at most %d", what, g->ndim,
                 PF_CUDA_MAX_DIMS);
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, msg);
    }
    if (itemsize != 1 && itemsize != 2 && itemsize != 4 && itemsize != 8) {
        snprintf(msg, sizeof(msg), "%s: item size %d; expected 1, 2, 4 or 8 bytes", what,
                 itemsize);
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, msg);
    }
    if ((uintptr_t)dst % (uintptr_t)itemsize != 0 ||
        (src != nullptr && (uintptr_t)src % (uintptr_t)itemsize != 0)) {
        snprintf(msg, sizeof(msg), "%s: a pointer is not aligned to the item size (%d bytes)",
                 what, itemsize);
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, msg);
    }
    int64_t count = 1;
    for (int k = 0; k < g->ndim; k++) {
        if (g->shape[k] < 0) {
            snprintf(msg, sizeof(msg), "%s: negative size %lld in dimension %d", what,
                     (long long)g->shape[k], k);
            return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, msg);
        }
        count *= g->shape[k];
    }
    *n = count;
    return 0;
}

/* Launches kernel<<<blocks, THREADS>>> on device and checks the launch. */
template <typename Launch>
static int launch_on(int device, const char *what, int64_t n, Launch launch)
{
    return pfc_on_device(device, [&] {
        launch(blocks_for(n), THREADS, pfc_stream());
        cudaError_t err = cudaGetLastError();
        if (err != cudaSuccess) {
            return pfc_fail(err, "%s kernel launch (%lld elements, cuda:%d)", what,
                            (long long)n, device);
        }
        return 0;
    });
}

int pf_cuda_copy_strided(int device, void *dst, const void *src, int itemsize,
                         const PfCudaStrided *g)
{
    int64_t n = 0;
    int status = check_geometry("pf_cuda_copy_strided", dst, src, itemsize, g, &n);
    if (status != 0 || n == 0) {
        return status;
    }
    PfCudaStrided geom = *g;
    return launch_on(device, "strided copy", n, [&](unsigned blocks, int threads,
                                                     cudaStream_t stream) {
        switch (itemsize) {
        case 1:
            copy_strided_kernel<<<blocks, threads, 0, stream>>>(
                (uint8_t *)dst, (const uint8_t *)src, geom, n);
            break;
        case 2:
            copy_strided_kernel<<<blocks, threads, 0, stream>>>(
                (uint16_t *)dst, (const uint16_t *)src, geom, n);
            break;
        case 4:
            copy_strided_kernel<<<blocks, threads, 0, stream>>>(
                (uint32_t *)dst, (const uint32_t *)src, geom, n);
            break;
        default:
            copy_strided_kernel<<<blocks, threads, 0, stream>>>(
                (uint64_t *)dst, (const uint64_t *)src, geom, n);
            break;
        }
    });
}

int pf_cuda_fill_strided(int device, void *dst, const void *value, int itemsize,
                         const PfCudaStrided *g)
{
    int64_t n = 0;
    int status = check_geometry("pf_cuda_fill_strided", dst, nullptr, itemsize, g, &n);
    if (status != 0 || n == 0) {
        return status;
    }
    PfCudaStrided geom = *g;
    /* the value's bits, read on the host and passed by value to the kernel */
    uint8_t v1 = 0;
    uint16_t v2 = 0;
    uint32_t v4 = 0;
    uint64_t v8 = 0;
    switch (itemsize) {
    case 1: memcpy(&v1, value, 1); break;
    case 2: memcpy(&v2, value, 2); break;
    case 4: memcpy(&v4, value, 4); break;
    default: memcpy(&v8, value, 8); break;
    }
    return launch_on(device, "strided fill", n, [&](unsigned blocks, int threads,
                                                     cudaStream_t stream) {
        switch (itemsize) {
        case 1:
            fill_strided_kernel<<<blocks, threads, 0, stream>>>((uint8_t *)dst, v1, geom, n);
            break;
        case 2:
            fill_strided_kernel<<<blocks, threads, 0, stream>>>((uint16_t *)dst, v2, geom, n);
            break;
        case 4:
            fill_strided_kernel<<<blocks, threads, 0, stream>>>((uint32_t *)dst, v4, geom, n);
            break;
        default:
            fill_strided_kernel<<<blocks, threads, 0, stream>>>((uint64_t *)dst, v8, geom, n);
            break;
        }
    });
}
