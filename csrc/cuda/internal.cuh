/*
 * internal.cuh -- what the library's .cu files share and export to nobody:
 * the per-thread error message, the helpers that record a failure, running
 * a body with a device made current, and the stream pyframe's work goes to.
 * (The library is linked with hidden visibility: only the pf_cuda_* entry
 * points declared PF_CUDA_EXPORT leave it.)
 */
#ifndef PF_CUDA_INTERNAL_CUH
#define PF_CUDA_INTERNAL_CUH

#include "pf_cuda.h"

#include <cuda_runtime.h>

#define PF_CUDA_EXPORT extern "C" __attribute__((visibility("default")))
#define PFC_ERROR_SIZE 1024

/* The calling thread's last failure, returned by pf_cuda_last_error(). */
extern thread_local char pfc_last_error[PFC_ERROR_SIZE];

/*
 * Records the failure of a CUDA call (its description formatted like
 * printf: "cudaMemcpyAsync(%zu bytes)") as "<call> failed: <cudaErrorName>:
 * <description>", resets the runtime's last error, and returns err.
 */
__attribute__((format(printf, 2, 3))) int pfc_fail(cudaError_t err, const char *call, ...);
/* Records msg as the failure and returns status. */
int pfc_fail_with(int status, const char *msg);

/*
 * The streams pyframe queues work on: per thread and device, the stream
 * pf.cuda.stream(...) made current (pf_cuda_set_stream), else the legacy
 * default stream.  Handles are the cudaStream_t as an integer; 0 is the
 * legacy default stream.  The caching allocator tags each block with the
 * stream current at its allocation and reuses it on that stream only, so a
 * block handed out again is written only after the work that used it.
 */
#define PFC_MAX_DEVICES 64
uintptr_t pfc_current_stream_handle(int device);
static inline cudaStream_t pfc_stream_of(uintptr_t handle)
{
    return handle != 0 ? (cudaStream_t)handle : cudaStreamLegacy;
}
/* The caching allocators' event callbacks (PfCaEvents), in stream.cu. */
int pfc_event_record_for(int device, uintptr_t handle, void **event, char *msg,
                         size_t msg_size);
int pfc_event_done(void *ctx, void *event);
void pfc_event_release(void *ctx, void *event);

/* The current stream of the calling thread's current device. */
static inline cudaStream_t pfc_stream()
{
    int device = 0;
    if (cudaGetDevice(&device) != cudaSuccess) {
        (void)cudaGetLastError();
        return cudaStreamLegacy;
    }
    return pfc_stream_of(pfc_current_stream_handle(device));
}

/*
 * Runs body with device current, then makes the caller's device current
 * again, so that entry points taking a device never change the thread's
 * current device behind the caller's back.
 */
template <typename Body> static int pfc_on_device(int device, Body body)
{
    int previous = 0;
    cudaError_t err = cudaGetDevice(&previous);
    if (err != cudaSuccess) {
        return pfc_fail(err, "cudaGetDevice");
    }
    if (previous != device && (err = cudaSetDevice(device)) != cudaSuccess) {
        return pfc_fail(err, "cudaSetDevice(%d)", device);
    }
    int status = body();
    if (previous != device && (err = cudaSetDevice(previous)) != cudaSuccess && status == 0) {
        status = pfc_fail(err, "cudaSetDevice(%d)", previous);
    }
    return status;
}

/* pyframe._C's op enum, from the same table (csrc/ops.def). */
enum pfc_op {
#define PF_OP(E, py, K, N, F) PFC_OP_##E,
#include "../ops.def"
#undef PF_OP
    PFC_OP_COUNT
};

#define PFC_DTYPE_BIT(d) (1u << (d))
#define PFC_FLOAT_DTYPES                                                                     \
    (PFC_DTYPE_BIT(PF_CUDA_FLOAT16) | PFC_DTYPE_BIT(PF_CUDA_BFLOAT16) |                      \
     PFC_DTYPE_BIT(PF_CUDA_FLOAT32) | PFC_DTYPE_BIT(PF_CUDA_FLOAT64))

/*
 * The kernel table behind pf_cuda_kernel_dtypes: the dtypes each op has a
 * kernel for.  A .cu file registers its kernels where it defines them, with
 * a static  pfc_register r(PFC_OP_EXP, dtypes);  (the table is zero before
 * any constructor runs, so the order of the files does not matter).
 */
extern uint32_t pfc_kernel_table[PFC_OP_COUNT];
struct pfc_register {
    pfc_register(int op, uint32_t dtypes) { pfc_kernel_table[op] |= dtypes; }
};

#endif
