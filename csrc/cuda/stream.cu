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

/* ------------------------------------------------------------ pinned host memory */

/*
 * Page-locked host memory for asynchronous host-to-device copies, from a
 * caching allocator of its own (cudaHostAlloc is slow: it maps the pages for
 * the device).  A block read by an asynchronous copy is recorded on the
 * copy's stream, so freeing it while the copy runs only delays its reuse.
 * That allocator serves one "device" (the host); the streams it records are
 * tagged with their device in the top bits, for the event callback.
 */
PF_CUDA_EXPORT pf_cuda_host_alloc_fn pf_cuda_host_alloc;
PF_CUDA_EXPORT pf_cuda_host_free_fn pf_cuda_host_free;
PF_CUDA_EXPORT pf_cuda_memcpy_h2d_async_fn pf_cuda_memcpy_h2d_async;

static const int TAG_SHIFT = 48;

static uintptr_t stream_tag(int device, uintptr_t handle)
{
    return handle | ((uintptr_t)(device + 1) << TAG_SHIFT);
}

static int pinned_raw_alloc(void *, int, size_t size, void **ptr, char *msg, size_t msg_size)
{
    cudaError_t err = cudaHostAlloc(ptr, size, cudaHostAllocDefault);
    if (err == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError();
        return PF_CA_OOM;
    }
    if (err != cudaSuccess) {
        pfc_fail(err, "cudaHostAlloc(%zu bytes)", size);
        snprintf(msg, msg_size, "%s", pfc_last_error);
        return PF_CA_ERROR;
    }
    return PF_CA_OK;
}

static void pinned_raw_free(void *, int, void *ptr, size_t)
{
    cudaError_t err = cudaFreeHost(ptr);
    if (err != cudaSuccess) {
        pfc_fail(err, "cudaFreeHost");
    }
}

/*
 * The caching allocators' event callbacks (the device allocator's too,
 * runtime.cu): an event recorded on `handle`'s stream of `device`, polled,
 * destroyed.
 */
int pfc_event_record_for(int device, uintptr_t handle, void **event, char *msg, size_t msg_size)
{
    return pfc_on_device(device, [&] {
        cudaEvent_t e = nullptr;
        cudaError_t err = cudaEventCreateWithFlags(&e, cudaEventDisableTiming);
        if (err == cudaSuccess && (err = cudaEventRecord(e, pfc_stream_of(handle))) != cudaSuccess) {
            cudaEventDestroy(e);
        }
        if (err != cudaSuccess) {
            pfc_fail(err, "cudaEventRecord for a block still used on a stream of cuda:%d", device);
            snprintf(msg, msg_size, "%s", pfc_last_error);
            return (int)PF_CA_ERROR;
        }
        *event = (void *)e;
        return (int)PF_CA_OK;
    });
}

int pfc_event_done(void *, void *event)
{
    cudaError_t err = cudaEventQuery((cudaEvent_t)event);
    if (err == cudaSuccess) {
        return 1;
    }
    (void)cudaGetLastError();
    return err == cudaErrorNotReady ? 0 : -1;
}

void pfc_event_release(void *, void *event) { cudaEventDestroy((cudaEvent_t)event); }

/* pinned blocks: the device of the stream is in the tag's top bits */
static int pinned_event_record(void *, int, uintptr_t tag, void **event, char *msg,
                               size_t msg_size)
{
    return pfc_event_record_for((int)(tag >> TAG_SHIFT) - 1,
                                tag & (((uintptr_t)1 << TAG_SHIFT) - 1), event, msg, msg_size);
}

static const PfCaEvents pinned_events = {pinned_event_record, pfc_event_done,
                                         pfc_event_release};

static PfCachingAllocator *pinned_allocator()
{
    static PfCachingAllocator *const ca =
        pf_ca_new(1, pinned_raw_alloc, pinned_raw_free, &pinned_events, nullptr, "pinned");
    return ca;
}

static int from_pinned_status(int ca_status, const char *msg)
{
    return ca_status == PF_CA_OK        ? 0
           : ca_status == PF_CA_OOM     ? pfc_fail_with(PF_CUDA_ERROR_OUT_OF_MEMORY, msg)
           : ca_status == PF_CA_INVALID ? pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, msg)
                                        : pfc_fail_with((int)cudaErrorUnknown, msg);
}

int pf_cuda_host_alloc(size_t size, void **ptr)
{
    *ptr = nullptr;
    PfCachingAllocator *ca = pinned_allocator();
    if (ca == nullptr) {
        return pfc_fail_with(PF_CUDA_ERROR_OUT_OF_MEMORY,
                             "the host is out of memory for the pinned allocator");
    }
    char msg[768];
    return from_pinned_status(pf_ca_alloc(ca, 0, 0, size, ptr, msg, sizeof(msg)), msg);
}

int pf_cuda_host_free(void *ptr)
{
    if (ptr == nullptr) {
        return 0;
    }
    PfCachingAllocator *ca = pinned_allocator();
    if (ca == nullptr) {
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, "the pinned allocator does not exist");
    }
    char msg[256];
    return from_pinned_status(pf_ca_free(ca, ptr, msg, sizeof(msg)), msg);
}

int pf_cuda_memcpy_h2d_async(void *dst, int device, const void *src, void *src_block,
                             size_t nbytes)
{
    if (nbytes == 0) {
        return 0;
    }
    PfCachingAllocator *ca = pinned_allocator();
    if (ca == nullptr) {
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, "the pinned allocator does not exist");
    }
    return pfc_on_device(device, [&] {
        uintptr_t handle = pfc_current_stream_handle(device);
        cudaError_t err = cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice,
                                          pfc_stream_of(handle));
        if (err != cudaSuccess) {
            return pfc_fail(err, "cudaMemcpyAsync(%zu bytes, pinned host to device, cuda:%d)",
                            nbytes, device);
        }
        /* the source block stays out of reuse until the copy has read it */
        char msg[256];
        return from_pinned_status(
            pf_ca_record_stream(ca, src_block, stream_tag(device, handle), msg, sizeof(msg)),
            msg);
    });
}
