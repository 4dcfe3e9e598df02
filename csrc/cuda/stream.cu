/*
 * stream.cu -- streams and events behind pf.cuda.Stream and pf.cuda.Event,
 * and the current stream per thread and device that every kernel, copy and
 * allocation of pyframe uses (internal.cuh: pfc_stream()).
 *
 * Streams pyframe creates are non-blocking (they do not wait for the legacy
 * default stream), as PyTorch's are; ordering between streams is the user's,
 * through events (Stream.wait_event / wait_stream) and Tensor.record_stream.
 */
#include "internal.cuh"

#include <cstdio>

PF_CUDA_EXPORT pf_cuda_stream_create_fn pf_cuda_stream_create;
PF_CUDA_EXPORT pf_cuda_stream_destroy_fn pf_cuda_stream_destroy;
PF_CUDA_EXPORT pf_cuda_stream_synchronize_fn pf_cuda_stream_synchronize;
PF_CUDA_EXPORT pf_cuda_stream_query_fn pf_cuda_stream_query;
PF_CUDA_EXPORT pf_cuda_stream_wait_event_fn pf_cuda_stream_wait_event;
PF_CUDA_EXPORT pf_cuda_set_stream_fn pf_cuda_set_stream;
PF_CUDA_EXPORT pf_cuda_get_stream_fn pf_cuda_get_stream;
PF_CUDA_EXPORT pf_cuda_event_create_fn pf_cuda_event_create;
PF_CUDA_EXPORT pf_cuda_event_destroy_fn pf_cuda_event_destroy;
PF_CUDA_EXPORT pf_cuda_event_record_fn pf_cuda_event_record;
PF_CUDA_EXPORT pf_cuda_event_synchronize_fn pf_cuda_event_synchronize;
PF_CUDA_EXPORT pf_cuda_event_query_fn pf_cuda_event_query;
PF_CUDA_EXPORT pf_cuda_event_elapsed_fn pf_cuda_event_elapsed;

/* the calling thread's current stream per device; 0 is the legacy default stream */
static thread_local uintptr_t current_streams[PFC_MAX_DEVICES];

uintptr_t pfc_current_stream_handle(int device)
{
    return device >= 0 && device < PFC_MAX_DEVICES ? current_streams[device] : 0;
}

static int check_index(int device)
{
    if (device < 0 || device >= PFC_MAX_DEVICES) {
        char msg[128];
        snprintf(msg, sizeof(msg), "device %d is out of range (0 to %d)", device,
                 PFC_MAX_DEVICES - 1);
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_DEVICE, msg);
    }
    return 0;
}

int pf_cuda_stream_create(int device, int priority, uintptr_t *handle)
{
    *handle = 0;
    int status = check_index(device);
    if (status != 0) {
        return status;
    }
    return pfc_on_device(device, [&] {
        int least = 0, greatest = 0;
        cudaError_t err = cudaDeviceGetStreamPriorityRange(&least, &greatest);
        if (err != cudaSuccess) {
            return pfc_fail(err, "cudaDeviceGetStreamPriorityRange(device %d)", device);
        }
        /* CUDA's priorities run from `least` (0) down to `greatest` (negative, more urgent) */
        int p = priority < greatest ? greatest : priority > least ? least : priority;
        cudaStream_t s = nullptr;
        err = cudaStreamCreateWithPriority(&s, cudaStreamNonBlocking, p);
        if (err != cudaSuccess) {
            return pfc_fail(err, "cudaStreamCreateWithPriority(device %d, priority %d)", device,
                            p);
        }
        *handle = (uintptr_t)s;
        return 0;
    });
}

int pf_cuda_stream_destroy(int device, uintptr_t handle)
{
    if (handle == 0) {
        return 0;
    }
    int status = check_index(device);
    if (status != 0) {
        return status;
    }
    if (current_streams[device] == handle) {
        current_streams[device] = 0;
    }
    return pfc_on_device(device, [&] {
        cudaError_t err = cudaStreamDestroy((cudaStream_t)handle);
        return err == cudaSuccess ? 0 : pfc_fail(err, "cudaStreamDestroy");
    });
}

int pf_cuda_stream_synchronize(int device, uintptr_t handle)
{
    return pfc_on_device(device, [&] {
        cudaError_t err = cudaStreamSynchronize(pfc_stream_of(handle));
        return err == cudaSuccess ? 0 : pfc_fail(err, "cudaStreamSynchronize");
    });
}

int pf_cuda_stream_query(int device, uintptr_t handle, int *done)
{
    *done = 0;
    return pfc_on_device(device, [&] {
        cudaError_t err = cudaStreamQuery(pfc_stream_of(handle));
        if (err == cudaErrorNotReady) {
            (void)cudaGetLastError();
            return 0;
        }
        *done = err == cudaSuccess;
        return err == cudaSuccess ? 0 : pfc_fail(err, "cudaStreamQuery");
    });
}

int pf_cuda_stream_wait_event(int device, uintptr_t stream, uintptr_t event)
{
    return pfc_on_device(device, [&] {
        cudaError_t err = cudaStreamWaitEvent(pfc_stream_of(stream), (cudaEvent_t)event, 0);
        return err == cudaSuccess ? 0 : pfc_fail(err, "cudaStreamWaitEvent");
    });
}

int pf_cuda_set_stream(int device, uintptr_t handle)
{
    int status = check_index(device);
    if (status == 0) {
        current_streams[device] = handle;
    }
    return status;
}

int pf_cuda_get_stream(int device, uintptr_t *handle)
{
    *handle = 0;
    int status = check_index(device);
    if (status == 0) {
        *handle = current_streams[device];
    }
    return status;
}

int pf_cuda_event_create(int device, int timing, uintptr_t *handle)
{
    *handle = 0;
    return pfc_on_device(device, [&] {
        cudaEvent_t e = nullptr;
        cudaError_t err = cudaEventCreateWithFlags(&e, timing ? cudaEventDefault
                                                              : cudaEventDisableTiming);
        if (err != cudaSuccess) {
            return pfc_fail(err, "cudaEventCreateWithFlags(device %d)", device);
        }
        *handle = (uintptr_t)e;
        return 0;
    });
}

int pf_cuda_event_destroy(int device, uintptr_t handle)
{
    if (handle == 0) {
        return 0;
    }
    return pfc_on_device(device, [&] {
        cudaError_t err = cudaEventDestroy((cudaEvent_t)handle);
        return err == cudaSuccess ? 0 : pfc_fail(err, "cudaEventDestroy");
    });
}

int pf_cuda_event_record(int device, uintptr_t event, uintptr_t stream)
{
    return pfc_on_device(device, [&] {
        cudaError_t err = cudaEventRecord((cudaEvent_t)event, pfc_stream_of(stream));
        return err == cudaSuccess ? 0 : pfc_fail(err, "cudaEventRecord");
    });
}

int pf_cuda_event_synchronize(uintptr_t event)
{
    cudaError_t err = cudaEventSynchronize((cudaEvent_t)event);
    return err == cudaSuccess ? 0 : pfc_fail(err, "cudaEventSynchronize");
}

int pf_cuda_event_query(uintptr_t event, int *done)
{
    cudaError_t err = cudaEventQuery((cudaEvent_t)event);
    *done = err == cudaSuccess;
    if (err == cudaErrorNotReady) {
        (void)cudaGetLastError();
        return 0;
    }
    return err == cudaSuccess ? 0 : pfc_fail(err, "cudaEventQuery");
}

int pf_cuda_event_elapsed(uintptr_t start, uintptr_t end, float *ms)
{
    *ms = 0.0f;
    cudaError_t err = cudaEventElapsedTime(ms, (cudaEvent_t)start, (cudaEvent_t)end);
    return err == cudaSuccess ? 0 : pfc_fail(err, "cudaEventElapsedTime");
}
