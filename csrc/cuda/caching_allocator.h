/*
 * caching_allocator.h -- the bookkeeping of the caching device allocator.
 *
 * Plain C, with no CUDA in it: the memory comes from two functions the owner
 * passes in (cudaMalloc/cudaFree in libpyframe_cuda.so, a budgeted malloc in
 * the host test harness of pyframe._C), so the policy below is tested on
 * machines without a GPU.
 *
 * Policy:
 *   - a request is rounded up to its size class: 512 bytes at least, above that
 *     the next of eight evenly spaced sizes per power of two (2^b, 2^b + 2^b/8,
 *     ..., 2^(b+1)), so a block wastes less than 1/8 of its size;
 *   - each device has one free list per class; a free puts the block on it, an
 *     allocation takes the most recently freed block of its class, and only a
 *     miss calls the raw allocator;
 *   - when the raw allocator is out of memory, every cached block of that
 *     device is released and the call is tried once more; failing again, the
 *     allocation reports out of memory with the size asked for;
 *   - counters per device: bytes handed out (allocated), bytes held from the
 *     raw allocator (reserved = allocated + cached) and their peaks.
 *
 *   - streams: a block remembers the stream it was allocated on and goes back
 *     only to allocations on that stream, whose work runs in order after the
 *     work that used it before.  A block used on other streams too
 *     (pf_ca_record_stream) is not reusable when freed: an event is recorded
 *     on each of those streams, and the block waits on a pending list until
 *     every event has completed (checked at each allocation of its device).
 *
 * Blocks are neither split nor merged.
 *
 * All functions are thread-safe (one mutex per allocator) and never abort:
 * they return a status and, on failure, write a message into msg.
 */
#ifndef PF_CACHING_ALLOCATOR_H
#define PF_CACHING_ALLOCATOR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    PF_CA_OK = 0,
    PF_CA_OOM = 1,      /* the raw allocator has no memory left, even after the retry */
    PF_CA_ERROR = 2,    /* the raw allocator failed otherwise, or host bookkeeping failed */
    PF_CA_INVALID = 3,  /* a bad argument: unknown pointer, device out of range */
};

#define PF_CA_MIN_BLOCK ((size_t)512)
#define PF_CA_DIVISIONS 8
/* Requests above 2^48 bytes (256 TiB) are refused as out of memory. */
#define PF_CA_MAX_SHIFT 48
#define PF_CA_NUM_CLASSES ((PF_CA_MAX_SHIFT - 1 - 9) * PF_CA_DIVISIONS + PF_CA_DIVISIONS + 1)

/*
 * Raw allocator: returns PF_CA_OK with *ptr set, PF_CA_OOM, or PF_CA_ERROR
 * with a message in msg.  Raw free cannot fail from the allocator's point of
 * view (the owner records its own errors).
 */
typedef int (*pf_ca_raw_alloc_fn)(void *ctx, int device, size_t size, void **ptr, char *msg,
                                  size_t msg_size);
typedef void (*pf_ca_raw_free_fn)(void *ctx, int device, void *ptr, size_t size);

/*
 * Events, for blocks used on several streams (NULL in pf_ca_new: record_stream
 * is refused).  record creates an event recorded on `stream` of `device`
 * (PF_CA_OK, or PF_CA_ERROR with a message); query returns 1 when it has
 * completed, 0 when not yet, -1 on an error (treated as not completed);
 * destroy releases it.  Streams are opaque handles; 0 is the default stream.
 */
typedef struct PfCaEvents {
    int (*record)(void *ctx, int device, uintptr_t stream, void **event, char *msg,
                  size_t msg_size);
    int (*query)(void *ctx, void *event);
    void (*destroy)(void *ctx, void *event);
} PfCaEvents;

typedef struct PfCaStats {
    uint64_t allocated_bytes;       /* in blocks handed out and not freed */
    uint64_t reserved_bytes;        /* held from the raw allocator: allocated + cached */
    uint64_t cached_bytes;          /* in free lists */
    uint64_t peak_allocated_bytes;  /* since creation or the last reset_peak */
    uint64_t peak_reserved_bytes;
    uint64_t alloc_calls;           /* successful allocations of a nonzero size */
    uint64_t free_calls;
    uint64_t cache_hits;            /* allocations served from a free list */
    uint64_t raw_alloc_calls;       /* successful raw allocations */
    uint64_t raw_free_calls;
    uint64_t oom_retries;           /* times the cache was released to retry */
    uint64_t ooms;                  /* allocations that failed for lack of memory */
    uint64_t pending_bytes;         /* freed, waiting for other streams' events */
} PfCaStats;

typedef struct PfCachingAllocator PfCachingAllocator;

/*
 * An allocator for devices 0 .. ndevices-1.  label names the devices in
 * messages ("cuda" gives "cuda:0").  NULL when the host is out of memory.
 */
PfCachingAllocator *pf_ca_new(int ndevices, pf_ca_raw_alloc_fn raw_alloc,
                              pf_ca_raw_free_fn raw_free, const PfCaEvents *events, void *ctx,
                              const char *label);
/* Returns every block, cached or live, to the raw allocator and frees the allocator. */
void pf_ca_destroy(PfCachingAllocator *ca);

/* A block for work on `stream` of `device`; a size of 0 gives *ptr = NULL and PF_CA_OK. */
int pf_ca_alloc(PfCachingAllocator *ca, int device, uintptr_t stream, size_t size, void **ptr,
                char *msg, size_t msg_size);
/*
 * The live block at ptr is also used by work on `stream` (a tensor handed to
 * another stream): its free waits for that work.  Recording the stream it
 * was allocated on is a no-op.
 */
int pf_ca_record_stream(PfCachingAllocator *ca, void *ptr, uintptr_t stream, char *msg,
                        size_t msg_size);
/* NULL is accepted; a pointer this allocator did not hand out gives PF_CA_INVALID. */
int pf_ca_free(PfCachingAllocator *ca, void *ptr, char *msg, size_t msg_size);
/*
 * Releases the cached blocks of one device (all devices when device < 0);
 * returns the bytes.  Pending blocks whose events have completed are cached
 * first; those still waiting stay.
 */
uint64_t pf_ca_empty_cache(PfCachingAllocator *ca, int device);
int pf_ca_stats(PfCachingAllocator *ca, int device, PfCaStats *out);
/* Peaks start again from the current values. */
int pf_ca_reset_peak(PfCachingAllocator *ca, int device);

/* The block size a request of size bytes gets; 0 for 0 and for sizes above 2^48. */
size_t pf_ca_round_size(size_t size);
/* "512 B", "1.50 KiB", "3.20 GiB" */
void pf_ca_format_bytes(uint64_t bytes, char *buf, size_t buf_size);

#ifdef __cplusplus
}
#endif

#endif
