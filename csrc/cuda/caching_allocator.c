/*
 * caching_allocator.c -- size classes, free lists, counters and the
 * out-of-memory retry of the caching device allocator (see the header).
 *
 * Every block has a host-side record.  A live block's record sits in an
 * open-addressing table keyed by its pointer (device memory cannot carry a
 * header, so free() finds the size there); a cached block's record sits on
 * its (device, class) free list.  Records move between the two and are freed
 * only when their block goes back to the raw allocator.
 */
#include "caching_allocator.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Block {
    void *ptr;
    size_t size;            /* the rounded size: what the raw allocator gave */
    int device;
    int cls;
    uintptr_t stream;       /* the stream it was allocated on: it is reused there only */
    uintptr_t *uses;        /* other streams that used it (record_stream) */
    int nuses;
    void **events;          /* pending: one event per stream in uses */
    int poisoned;           /* pending for good: an event could not be recorded */
    struct Block *next;     /* free-list or pending-list link */
} Block;

struct PfCachingAllocator {
    pthread_mutex_t lock;
    int ndevices;
    pf_ca_raw_alloc_fn raw_alloc;
    pf_ca_raw_free_fn raw_free;
    PfCaEvents events;
    int has_events;
    Block *pending;         /* freed blocks waiting for other streams' events */
    void *ctx;
    char label[32];
    Block **free_lists;     /* [ndevices][PF_CA_NUM_CLASSES] */
    PfCaStats *stats;       /* [ndevices] */
    Block **table;          /* live blocks by pointer; capacity a power of two */
    size_t table_cap;
    size_t table_len;
};

/* ------------------------------------------------------------ size classes */

/*
 * Class 0 is 512 bytes.  A larger size lies in (2^b, 2^(b+1)] for one b >= 9;
 * that octave is cut into eight steps of 2^(b-3), and the size is rounded up
 * to a step.  Classes count the steps from 512 upwards.
 */
static int size_class(size_t size, size_t *rounded)
{
    if (size <= PF_CA_MIN_BLOCK) {
        *rounded = PF_CA_MIN_BLOCK;
        return 0;
    }
    int b = 63 - __builtin_clzll((unsigned long long)(size - 1));
    size_t step = (size_t)1 << (b - 3);
    size_t r = (size + step - 1) & ~(step - 1);
    *rounded = r;
    return (b - 9) * PF_CA_DIVISIONS + (int)((r - ((size_t)1 << b)) >> (b - 3));
}

static int size_fits(size_t size) { return size <= ((size_t)1 << PF_CA_MAX_SHIFT); }

size_t pf_ca_round_size(size_t size)
{
    size_t r = 0;
    if (size == 0 || !size_fits(size)) {
        return 0;
    }
    size_class(size, &r);
    return r;
}

void pf_ca_format_bytes(uint64_t bytes, char *buf, size_t buf_size)
{
    static const char *units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
    if (bytes < 1024) {
        snprintf(buf, buf_size, "%llu B", (unsigned long long)bytes);
        return;
    }
    double v = (double)bytes / 1024.0;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, buf_size, "%.2f %s", v, units[u]);
}

/* ---------------------------------------------------- table of live blocks */

static size_t slot_of(const PfCachingAllocator *ca, const void *ptr)
{
    /* blocks are at least 256-byte aligned: drop the low bits, then mix */
    uint64_t h = ((uint64_t)(uintptr_t)ptr >> 8) * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & (ca->table_cap - 1);
}

static void table_put(PfCachingAllocator *ca, Block *b)
{
    size_t i = slot_of(ca, b->ptr);
    while (ca->table[i] != NULL) {
        i = (i + 1) & (ca->table_cap - 1);
    }
    ca->table[i] = b;
    ca->table_len++;
}

/* Keeps the load at most 1/2; -1 when the host is out of memory. */
static int table_reserve(PfCachingAllocator *ca)
{
    if (2 * (ca->table_len + 1) <= ca->table_cap) {
        return 0;
    }
    size_t old_cap = ca->table_cap;
    Block **old = ca->table;
    Block **fresh = (Block **)calloc(old_cap * 2, sizeof(Block *));
    if (fresh == NULL) {
        return -1;
    }
    ca->table = fresh;
    ca->table_cap = old_cap * 2;
    ca->table_len = 0;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i] != NULL) {
            table_put(ca, old[i]);
        }
    }
    free(old);
    return 0;
}

/* The live block at ptr, or NULL. */
static Block *table_find(PfCachingAllocator *ca, const void *ptr)
{
    size_t i = slot_of(ca, ptr);
    while (ca->table[i] != NULL && ca->table[i]->ptr != ptr) {
        i = (i + 1) & (ca->table_cap - 1);
    }
    return ca->table[i];
}

/* Removes and returns the live block at ptr, or NULL. */
static Block *table_take(PfCachingAllocator *ca, const void *ptr)
{
    size_t mask = ca->table_cap - 1;
    size_t i = slot_of(ca, ptr);
    while (ca->table[i] != NULL && ca->table[i]->ptr != ptr) {
        i = (i + 1) & mask;
    }
    Block *found = ca->table[i];
    if (found == NULL) {
        return NULL;
    }
    /*
     * Backward-shift deletion: move later entries of the probe run into the
     * hole when their home slot does not lie cyclically in (hole, j].
     */
    size_t hole = i;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (ca->table[j] == NULL) {
            break;
        }
        size_t home = slot_of(ca, ca->table[j]->ptr);
        int home_in_range = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (!home_in_range) {
            ca->table[hole] = ca->table[j];
            hole = j;
        }
    }
    ca->table[hole] = NULL;
    ca->table_len--;
    return found;
}

/* -------------------------------------------------------------- allocator */

PfCachingAllocator *pf_ca_new(int ndevices, pf_ca_raw_alloc_fn raw_alloc,
                              pf_ca_raw_free_fn raw_free, const PfCaEvents *events, void *ctx,
                              const char *label)
{
    if (ndevices < 1 || raw_alloc == NULL || raw_free == NULL) {
        return NULL;
    }
    PfCachingAllocator *ca = (PfCachingAllocator *)calloc(1, sizeof(*ca));
    if (ca == NULL) {
        return NULL;
    }
    ca->ndevices = ndevices;
    ca->raw_alloc = raw_alloc;
    ca->raw_free = raw_free;
    if (events != NULL) {
        ca->events = *events;
        ca->has_events = 1;
    }
    ca->ctx = ctx;
    snprintf(ca->label, sizeof(ca->label), "%s", label != NULL ? label : "device");
    ca->free_lists = (Block **)calloc((size_t)ndevices * PF_CA_NUM_CLASSES, sizeof(Block *));
    ca->stats = (PfCaStats *)calloc((size_t)ndevices, sizeof(PfCaStats));
    ca->table_cap = 64;
    ca->table = (Block **)calloc(ca->table_cap, sizeof(Block *));
    if (ca->free_lists == NULL || ca->stats == NULL || ca->table == NULL ||
        pthread_mutex_init(&ca->lock, NULL) != 0) {
        free(ca->free_lists);
        free(ca->stats);
        free(ca->table);
        free(ca);
        return NULL;
    }
    return ca;
}

/* A block's stream bookkeeping is dropped (its events destroyed); the lock is held. */
static void clear_uses(PfCachingAllocator *ca, Block *b)
{
    if (b->events != NULL) {
        for (int i = 0; i < b->nuses; i++) {
            if (b->events[i] != NULL) {
                ca->events.destroy(ca->ctx, b->events[i]);
            }
        }
    }
    free(b->events);
    free(b->uses);
    b->events = NULL;
    b->uses = NULL;
    b->nuses = 0;
}

static void push_free(PfCachingAllocator *ca, Block *b)
{
    Block **list = &ca->free_lists[(size_t)b->device * PF_CA_NUM_CLASSES + (size_t)b->cls];
    b->next = *list;
    *list = b;
    ca->stats[b->device].cached_bytes += b->size;
}

/*
 * Pending blocks of `device` (every device when < 0) whose events have all
 * completed go to their free lists; the lock is held.
 */
static void process_pending(PfCachingAllocator *ca, int device)
{
    Block **link = &ca->pending;
    while (*link != NULL) {
        Block *b = *link;
        int done = !b->poisoned && (device < 0 || b->device == device);
        for (int i = 0; done && i < b->nuses; i++) {
            done = ca->events.query(ca->ctx, b->events[i]) == 1;
        }
        if (!done) {
            link = &b->next;
            continue;
        }
        *link = b->next;
        ca->stats[b->device].pending_bytes -= b->size;
        clear_uses(ca, b);
        push_free(ca, b);
    }
}

/* Returns the cached blocks of one device to the raw allocator; the lock is held. */
static uint64_t release_cached(PfCachingAllocator *ca, int device)
{
    uint64_t released = 0;
    PfCaStats *st = &ca->stats[device];
    Block **lists = ca->free_lists + (size_t)device * PF_CA_NUM_CLASSES;
    for (int c = 0; c < PF_CA_NUM_CLASSES; c++) {
        while (lists[c] != NULL) {
            Block *b = lists[c];
            lists[c] = b->next;
            ca->raw_free(ca->ctx, device, b->ptr, b->size);
            released += b->size;
            st->raw_free_calls++;
            free(b);
        }
    }
    st->reserved_bytes -= released;
    st->cached_bytes -= released;
    return released;
}

void pf_ca_destroy(PfCachingAllocator *ca)
{
    if (ca == NULL) {
        return;
    }
    for (int d = 0; d < ca->ndevices; d++) {
        release_cached(ca, d);
    }
    /* at the end of the process: what is still live or pending goes back too */
    while (ca->pending != NULL) {
        Block *b = ca->pending;
        ca->pending = b->next;
        clear_uses(ca, b);
        ca->raw_free(ca->ctx, b->device, b->ptr, b->size);
        free(b);
    }
    for (size_t i = 0; i < ca->table_cap; i++) {
        Block *b = ca->table[i];
        if (b != NULL) {
            clear_uses(ca, b);
            ca->raw_free(ca->ctx, b->device, b->ptr, b->size);
            free(b);
        }
    }
    pthread_mutex_destroy(&ca->lock);
    free(ca->free_lists);
    free(ca->stats);
    free(ca->table);
    free(ca);
}

static int bad_device(const PfCachingAllocator *ca, int device, char *msg, size_t msg_size)
{
    snprintf(msg, msg_size, "device %d does not exist: the allocator serves %s:0 to %s:%d",
             device, ca->label, ca->label, ca->ndevices - 1);
    return PF_CA_INVALID;
}

static int out_of_memory(PfCachingAllocator *ca, int device, size_t size, size_t rounded,
                         uint64_t released, char *msg, size_t msg_size)
{
    PfCaStats *st = &ca->stats[device];
    char asked[32], block[32], freed[32], allocated[32], reserved[32];
    pf_ca_format_bytes(size, asked, sizeof(asked));
    pf_ca_format_bytes(rounded, block, sizeof(block));
    pf_ca_format_bytes(released, freed, sizeof(freed));
    pf_ca_format_bytes(st->allocated_bytes, allocated, sizeof(allocated));
    pf_ca_format_bytes(st->reserved_bytes, reserved, sizeof(reserved));
    st->ooms++;
    if (rounded == 0) {
        snprintf(msg, msg_size,
                 "out of memory on %s:%d: %llu bytes (%s) were asked for, more than any device "
                 "holds", ca->label, device, (unsigned long long)size, asked);
        return PF_CA_OOM;
    }
    snprintf(msg, msg_size,
             "out of memory on %s:%d: could not allocate %llu bytes (%s, a block of %s)%s%s%s; "
             "tensors hold %s on this device and the allocator reserves %s. Free tensors you no "
             "longer need, or use a smaller batch size",
             ca->label, device, (unsigned long long)size, asked, block,
             released > 0 ? " even after releasing " : "", released > 0 ? freed : "",
             released > 0 ? " of cached blocks" : "", allocated, reserved);
    return PF_CA_OOM;
}

int pf_ca_alloc(PfCachingAllocator *ca, int device, uintptr_t stream, size_t size, void **ptr,
                char *msg, size_t msg_size)
{
    *ptr = NULL;
    if (device < 0 || device >= ca->ndevices) {
        return bad_device(ca, device, msg, msg_size);
    }
    if (size == 0) {
        return PF_CA_OK;
    }
    pthread_mutex_lock(&ca->lock);
    PfCaStats *st = &ca->stats[device];
    int status = PF_CA_OK;
    if (!size_fits(size)) {
        status = out_of_memory(ca, device, size, 0, 0, msg, msg_size);
        goto done;
    }
    size_t rounded;
    int cls = size_class(size, &rounded);
    if (table_reserve(ca) < 0) {
        snprintf(msg, msg_size, "the host is out of memory for the allocator's bookkeeping");
        status = PF_CA_ERROR;
        goto done;
    }
    if (ca->pending != NULL) {
        process_pending(ca, device);
    }
    /* the most recently freed block of the class that belongs to this stream */
    Block **link = &ca->free_lists[(size_t)device * PF_CA_NUM_CLASSES + (size_t)cls];
    while (*link != NULL && (*link)->stream != stream) {
        link = &(*link)->next;
    }
    Block *b = *link;
    if (b != NULL) {
        *link = b->next;
        st->cache_hits++;
        st->cached_bytes -= b->size;
    }
    else {
        b = (Block *)calloc(1, sizeof(Block));
        if (b == NULL) {
            snprintf(msg, msg_size, "the host is out of memory for the allocator's bookkeeping");
            status = PF_CA_ERROR;
            goto done;
        }
        void *p = NULL;
        status = ca->raw_alloc(ca->ctx, device, rounded, &p, msg, msg_size);
        if (status == PF_CA_OOM) {
            uint64_t released = release_cached(ca, device);
            if (released > 0) {
                st->oom_retries++;
                status = ca->raw_alloc(ca->ctx, device, rounded, &p, msg, msg_size);
            }
            if (status == PF_CA_OOM) {
                status = out_of_memory(ca, device, size, rounded, released, msg, msg_size);
            }
        }
        if (status != PF_CA_OK) {
            free(b);
            goto done;
        }
        b->ptr = p;
        b->size = rounded;
        b->device = device;
        b->cls = cls;
        b->stream = stream;
        st->raw_alloc_calls++;
        st->reserved_bytes += rounded;
        if (st->reserved_bytes > st->peak_reserved_bytes) {
            st->peak_reserved_bytes = st->reserved_bytes;
        }
    }
    b->next = NULL;
    table_put(ca, b);
    st->alloc_calls++;
    st->allocated_bytes += b->size;
    if (st->allocated_bytes > st->peak_allocated_bytes) {
        st->peak_allocated_bytes = st->allocated_bytes;
    }
    *ptr = b->ptr;
done:
    pthread_mutex_unlock(&ca->lock);
    return status;
}

int pf_ca_free(PfCachingAllocator *ca, void *ptr, char *msg, size_t msg_size)
{
    if (ptr == NULL) {
        return PF_CA_OK;
    }
    pthread_mutex_lock(&ca->lock);
    Block *b = table_take(ca, ptr);
    if (b == NULL) {
        pthread_mutex_unlock(&ca->lock);
        snprintf(msg, msg_size,
                 "pointer %p was not handed out by the %s allocator, or was already freed", ptr,
                 ca->label);
        return PF_CA_INVALID;
    }
    PfCaStats *st = &ca->stats[b->device];
    st->free_calls++;
    st->allocated_bytes -= b->size;
    int status = PF_CA_OK;
    if (b->nuses == 0) {
        push_free(ca, b);
    }
    else {
        /* used on other streams: reusable once their work so far has finished */
        b->events = (void **)calloc((size_t)b->nuses, sizeof(void *));
        if (b->events == NULL) {
            b->poisoned = 1;
            snprintf(msg, msg_size, "the host is out of memory for the allocator's bookkeeping");
            status = PF_CA_ERROR;
        }
        for (int i = 0; b->events != NULL && i < b->nuses && !b->poisoned; i++) {
            if (ca->events.record(ca->ctx, b->device, b->uses[i], &b->events[i], msg,
                                  msg_size) != PF_CA_OK) {
                /* never reused, so never raced: it goes back at the end of the process */
                b->poisoned = 1;
                status = PF_CA_ERROR;
            }
        }
        b->next = ca->pending;
        ca->pending = b;
        st->pending_bytes += b->size;
    }
    pthread_mutex_unlock(&ca->lock);
    return status;
}

int pf_ca_record_stream(PfCachingAllocator *ca, void *ptr, uintptr_t stream, char *msg,
                        size_t msg_size)
{
    if (!ca->has_events) {
        snprintf(msg, msg_size, "the %s allocator was made without events", ca->label);
        return PF_CA_INVALID;
    }
    pthread_mutex_lock(&ca->lock);
    int status = PF_CA_OK;
    Block *b = table_find(ca, ptr);
    if (b == NULL) {
        snprintf(msg, msg_size,
                 "pointer %p was not handed out by the %s allocator, or was already freed", ptr,
                 ca->label);
        status = PF_CA_INVALID;
        goto done;
    }
    if (stream == b->stream) {
        goto done;
    }
    for (int i = 0; i < b->nuses; i++) {
        if (b->uses[i] == stream) {
            goto done;
        }
    }
    uintptr_t *uses = (uintptr_t *)realloc(b->uses, sizeof(uintptr_t) * (size_t)(b->nuses + 1));
    if (uses == NULL) {
        snprintf(msg, msg_size, "the host is out of memory for the allocator's bookkeeping");
        status = PF_CA_ERROR;
        goto done;
    }
    uses[b->nuses++] = stream;
    b->uses = uses;
done:
    pthread_mutex_unlock(&ca->lock);
    return status;
}

uint64_t pf_ca_empty_cache(PfCachingAllocator *ca, int device)
{
    uint64_t released = 0;
    pthread_mutex_lock(&ca->lock);
    process_pending(ca, device);
    for (int d = 0; d < ca->ndevices; d++) {
        if (device < 0 || d == device) {
            released += release_cached(ca, d);
        }
    }
    pthread_mutex_unlock(&ca->lock);
    return released;
}

int pf_ca_stats(PfCachingAllocator *ca, int device, PfCaStats *out)
{
    if (device < 0 || device >= ca->ndevices) {
        return PF_CA_INVALID;
    }
    pthread_mutex_lock(&ca->lock);
    *out = ca->stats[device];
    pthread_mutex_unlock(&ca->lock);
    return PF_CA_OK;
}

int pf_ca_reset_peak(PfCachingAllocator *ca, int device)
{
    if (device < 0 || device >= ca->ndevices) {
        return PF_CA_INVALID;
    }
    pthread_mutex_lock(&ca->lock);
    PfCaStats *st = &ca->stats[device];
    st->peak_allocated_bytes = st->allocated_bytes;
    st->peak_reserved_bytes = st->reserved_bytes;
    pthread_mutex_unlock(&ca->lock);
    return PF_CA_OK;
}
