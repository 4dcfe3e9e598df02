/*
 * runtime.cu -- libpyframe_cuda.so's entry points: devices, synchronisation
 * and the caching allocator over cudaMalloc/cudaFree (declared in pf_cuda.h).
 *
 * Every entry point turns a CUDA failure into a status and a message in a
 * per-thread buffer ("cudaSetDevice(3) failed: cudaErrorInvalidDevice:
 * invalid device ordinal"); pyframe._C raises from them.  Only the entry
 * points are exported: the build hides everything else, including the
 * statically linked CUDA runtime, so another copy of libcudart in the
 * process (PyTorch's, say) never binds to ours or ours to it.
 */
#include "internal.cuh"

#include <cstdarg>
#include <cstdio>
#include <cstring>

static_assert(PF_CUDA_SUCCESS == cudaSuccess, "status codes are cudaError_t values");
static_assert(PF_CUDA_ERROR_INVALID_VALUE == cudaErrorInvalidValue, "cudaErrorInvalidValue");
static_assert(PF_CUDA_ERROR_OUT_OF_MEMORY == cudaErrorMemoryAllocation,
              "cudaErrorMemoryAllocation");
static_assert(PF_CUDA_ERROR_INSUFFICIENT_DRIVER == cudaErrorInsufficientDriver,
              "cudaErrorInsufficientDriver");
static_assert(PF_CUDA_ERROR_NO_DEVICE == cudaErrorNoDevice, "cudaErrorNoDevice");
static_assert(PF_CUDA_ERROR_INVALID_DEVICE == cudaErrorInvalidDevice, "cudaErrorInvalidDevice");

/* Declared in internal.cuh: the calling thread's last failure. */
thread_local char pfc_last_error[PFC_ERROR_SIZE];

int pfc_fail(cudaError_t err, const char *call, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, call);
    vsnprintf(what, sizeof(what), call, ap);
    va_end(ap);
    snprintf(pfc_last_error, sizeof(pfc_last_error), "%s failed: %s: %s", what,
             cudaGetErrorName(err), cudaGetErrorString(err));
    /* reset the runtime's last error, so that the next call does not report this one */
    (void)cudaGetLastError();
    return (int)err;
}

int pfc_fail_with(int status, const char *msg)
{
    snprintf(pfc_last_error, sizeof(pfc_last_error), "%s", msg);
    return status;
}

PF_CUDA_EXPORT pf_cuda_abi_version_fn pf_cuda_abi_version;
PF_CUDA_EXPORT pf_cuda_last_error_fn pf_cuda_last_error;
PF_CUDA_EXPORT pf_cuda_versions_fn pf_cuda_versions;
PF_CUDA_EXPORT pf_cuda_device_count_fn pf_cuda_device_count;
PF_CUDA_EXPORT pf_cuda_get_device_fn pf_cuda_get_device;
PF_CUDA_EXPORT pf_cuda_set_device_fn pf_cuda_set_device;
PF_CUDA_EXPORT pf_cuda_device_properties_fn pf_cuda_device_properties;
PF_CUDA_EXPORT pf_cuda_synchronize_fn pf_cuda_synchronize;
PF_CUDA_EXPORT pf_cuda_mem_get_info_fn pf_cuda_mem_get_info;
PF_CUDA_EXPORT pf_cuda_alloc_fn pf_cuda_alloc;
PF_CUDA_EXPORT pf_cuda_free_fn pf_cuda_free;
PF_CUDA_EXPORT pf_cuda_record_stream_fn pf_cuda_record_stream;
PF_CUDA_EXPORT pf_cuda_memory_stats_fn pf_cuda_memory_stats;
PF_CUDA_EXPORT pf_cuda_reset_peak_memory_stats_fn pf_cuda_reset_peak_memory_stats;
PF_CUDA_EXPORT pf_cuda_empty_cache_fn pf_cuda_empty_cache;
PF_CUDA_EXPORT pf_cuda_op_count_fn pf_cuda_op_count;
PF_CUDA_EXPORT pf_cuda_kernel_dtypes_fn pf_cuda_kernel_dtypes;

int pf_cuda_abi_version(void) { return PF_CUDA_ABI_VERSION; }

uint32_t pfc_kernel_table[PFC_OP_COUNT];

int pf_cuda_op_count(void) { return PFC_OP_COUNT; }

uint32_t pf_cuda_kernel_dtypes(int op)
{
    return op >= 0 && op < PFC_OP_COUNT ? pfc_kernel_table[op] : 0;
}

const char *pf_cuda_last_error(void) { return pfc_last_error; }

int pf_cuda_versions(int *runtime, int *driver)
{
    *runtime = 0;
    *driver = 0;
    cudaError_t err = cudaRuntimeGetVersion(runtime);
    if (err != cudaSuccess) {
        return pfc_fail(err, "cudaRuntimeGetVersion");
    }
    /* succeeds with 0 when no driver is installed */
    err = cudaDriverGetVersion(driver);
    if (err != cudaSuccess) {
        return pfc_fail(err, "cudaDriverGetVersion");
    }
    return 0;
}

int pf_cuda_device_count(int *count)
{
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        *count = 0;
        return pfc_fail(err, "cudaGetDeviceCount");
    }
    *count = n;
    return 0;
}

int pf_cuda_get_device(int *device)
{
    cudaError_t err = cudaGetDevice(device);
    return err == cudaSuccess ? 0 : pfc_fail(err, "cudaGetDevice");
}

int pf_cuda_set_device(int device)
{
    cudaError_t err = cudaSetDevice(device);
    return err == cudaSuccess ? 0 : pfc_fail(err, "cudaSetDevice(%d)", device);
}

int pf_cuda_device_properties(int device, PfCudaDeviceProps *props)
{
    cudaDeviceProp p;
    cudaError_t err = cudaGetDeviceProperties(&p, device);
    if (err != cudaSuccess) {
        return pfc_fail(err, "cudaGetDeviceProperties(device %d)", device);
    }
    snprintf(props->name, sizeof(props->name), "%s", p.name);
    props->total_memory = (uint64_t)p.totalGlobalMem;
    props->major = p.major;
    props->minor = p.minor;
    props->multi_processor_count = p.multiProcessorCount;
    return 0;
}

int pf_cuda_synchronize(int device)
{
    return pfc_on_device(device, [] {
        cudaError_t err = cudaDeviceSynchronize();
        return err == cudaSuccess ? 0 : pfc_fail(err, "cudaDeviceSynchronize");
    });
}

int pf_cuda_mem_get_info(int device, uint64_t *free_bytes, uint64_t *total_bytes)
{
    return pfc_on_device(device, [&] {
        size_t f = 0, t = 0;
        cudaError_t err = cudaMemGetInfo(&f, &t);
        *free_bytes = f;
        *total_bytes = t;
        return err == cudaSuccess ? 0 : pfc_fail(err, "cudaMemGetInfo");
    });
}

/* ------------------------------------------------------ caching allocator */

/*
 * The raw functions the bookkeeping calls on a miss and when it releases
 * blocks.  cudaMalloc's out-of-memory also sets the runtime's last error;
 * it is cleared, since the allocator retries or reports it itself.
 */
static int raw_alloc(void *, int device, size_t size, void **ptr, char *msg, size_t msg_size)
{
    cudaError_t err = cudaSuccess;
    int status = pfc_on_device(device, [&] {
        err = cudaMalloc(ptr, size);
        return 0;
    });
    if (status != 0) {
        snprintf(msg, msg_size, "%s", pfc_last_error);
        return PF_CA_ERROR;
    }
    if (err == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError();
        return PF_CA_OOM;
    }
    if (err != cudaSuccess) {
        pfc_fail(err, "cudaMalloc(%zu bytes) on device %d", size, device);
        snprintf(msg, msg_size, "%s", pfc_last_error);
        return PF_CA_ERROR;
    }
    return PF_CA_OK;
}

/* A failing cudaFree (a device lost to an earlier error) leaves its message behind. */
static void raw_free(void *, int device, void *ptr, size_t)
{
    pfc_on_device(device, [&] {
        cudaError_t err = cudaFree(ptr);
        return err == cudaSuccess ? 0 : pfc_fail(err, "cudaFree on device %d", device);
    });
}

/*
 * The allocator's events, for blocks used on several streams: recorded on the
 * other stream when the block is freed, polled before it is reused.
 */
static int event_record(void *, int device, uintptr_t stream, void **event, char *msg,
                        size_t msg_size)
{
    return pfc_event_record_for(device, stream, event, msg, msg_size);
}

static const PfCaEvents allocator_events = {event_record, pfc_event_done, pfc_event_release};

static PfCachingAllocator *allocator;
static int allocator_devices;
static int allocator_status;
static char allocator_error[PFC_ERROR_SIZE];

/*
 * The allocator serves every device cudaGetDeviceCount reports; made on first
 * use.  A failure is kept, with its message, for every later caller.
 */
static void make_allocator()
{
    int n = 0;
    allocator_status = pf_cuda_device_count(&n);
    if (allocator_status == 0 && n < 1) {
        allocator_status = pfc_fail_with(PF_CUDA_ERROR_NO_DEVICE, "no CUDA device is visible");
    }
    if (allocator_status == 0) {
        allocator = pf_ca_new(n, raw_alloc, raw_free, &allocator_events, nullptr, "cuda");
        allocator_devices = n;
        if (allocator == nullptr) {
            allocator_status = pfc_fail_with(PF_CUDA_ERROR_OUT_OF_MEMORY,
                                         "the host is out of memory for the allocator");
        }
    }
    if (allocator_status != 0) {
        allocator_devices = 0;
        snprintf(allocator_error, sizeof(allocator_error), "%s", pfc_last_error);
    }
}

static int get_allocator(PfCachingAllocator **out)
{
    static const bool made = (make_allocator(), true);  /* once, thread-safe (C++11) */
    (void)made;
    *out = allocator;
    return allocator_status == 0 ? 0 : pfc_fail_with(allocator_status, allocator_error);
}

static int check_device(int device)
{
    if (device < 0 || device >= allocator_devices) {
        char msg[160];
        snprintf(msg, sizeof(msg), "device %d does not exist: %d CUDA device%s visible", device,
                 allocator_devices, allocator_devices == 1 ? " is" : "s are");
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_DEVICE, msg);
    }
    return 0;
}

static int from_ca_status(int ca_status, const char *msg, int error_status)
{
    switch (ca_status) {
    case PF_CA_OK:
        return 0;
    case PF_CA_OOM:
        return pfc_fail_with(PF_CUDA_ERROR_OUT_OF_MEMORY, msg);
    case PF_CA_INVALID:
        return pfc_fail_with(PF_CUDA_ERROR_INVALID_VALUE, msg);
    default:
        return pfc_fail_with(error_status, msg);
    }
}

int pf_cuda_alloc(size_t size, int device, void **ptr)
{
    *ptr = nullptr;
    PfCachingAllocator *ca;
    int status = get_allocator(&ca);
    if (status != 0 || (status = check_device(device)) != 0) {
        return status;
    }
    char msg[768];
    /* tagged with the thread's current stream on that device: reused there only */
    int ca_status = pf_ca_alloc(ca, device, pfc_current_stream_handle(device), size, ptr, msg,
                                sizeof(msg));
    if (ca_status == PF_CA_OOM) {
        /* say how much the device itself has left: other processes may hold the rest */
        uint64_t f = 0, t = 0;
        if (pf_cuda_mem_get_info(device, &f, &t) == 0) {
            char free_s[32], total_s[32];
            pf_ca_format_bytes(f, free_s, sizeof(free_s));
            pf_ca_format_bytes(t, total_s, sizeof(total_s));
            size_t len = strlen(msg);
            snprintf(msg + len, sizeof(msg) - len, " (the device has %s free of %s)", free_s,
                     total_s);
        }
    }
    /* a raw failure other than out-of-memory is a CUDA error whose name is in msg */
    return from_ca_status(ca_status, msg, cudaErrorUnknown);
}

int pf_cuda_free(void *ptr)
{
    if (ptr == nullptr) {
        return 0;
    }
    PfCachingAllocator *ca;
    int status = get_allocator(&ca);
    if (status != 0) {
        return status;
    }
    char msg[256];
    return from_ca_status(pf_ca_free(ca, ptr, msg, sizeof(msg)), msg, cudaErrorUnknown);
}

int pf_cuda_record_stream(void *ptr, uintptr_t stream)
{
    PfCachingAllocator *ca;
    int status = get_allocator(&ca);
    if (status != 0) {
        return status;
    }
    char msg[256];
    return from_ca_status(pf_ca_record_stream(ca, ptr, stream, msg, sizeof(msg)), msg,
                          cudaErrorUnknown);
}

/* Asking for statistics creates no CUDA context: the counters live on the host. */
int pf_cuda_memory_stats(int device, PfCudaMemStats *stats)
{
    memset(stats, 0, sizeof(*stats));
    PfCachingAllocator *ca;
    int status = get_allocator(&ca);
    if (status != 0 || (status = check_device(device)) != 0) {
        return status;
    }
    pf_ca_stats(ca, device, stats);
    return 0;
}

int pf_cuda_reset_peak_memory_stats(int device)
{
    PfCachingAllocator *ca;
    int status = get_allocator(&ca);
    if (status != 0 || (status = check_device(device)) != 0) {
        return status;
    }
    pf_ca_reset_peak(ca, device);
    return 0;
}

int pf_cuda_empty_cache(uint64_t *released_bytes)
{
    *released_bytes = 0;
    PfCachingAllocator *ca;
    int status = get_allocator(&ca);
    if (status != 0) {
        return status;
    }
    *released_bytes = pf_ca_empty_cache(ca, -1);
    return 0;
}
