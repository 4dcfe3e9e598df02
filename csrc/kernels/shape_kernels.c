/*
 * shape_kernels.c -- loops for masked_fill, per-element repeat, tril/triu
 * and one_hot.  They move elements without looking at their values, so
 * each is written once per item size (1, 2, 4, 8 bytes) rather than per
 * dtype.  Work above PF_GRAIN elements is split across pyframe's OpenMP
 * threads; smaller work stays on the calling thread.
 */
#include "shape_kernels.h"
#include <stdlib.h>

/* ------------------------------------------------------------ masked_fill */

#define MASKED_FILL_LOOP(T)                                                                  \
    static void masked_fill_##T(char **d, const int64_t *st, int64_t n, void *ctx)          \
    {                                                                                        \
        T v;                                                                                 \
        memcpy(&v, ctx, sizeof(T));                                                          \
        if (st[0] == (int64_t)sizeof(T) && st[1] == 1 && st[2] == (int64_t)sizeof(T)) {     \
            /* the contiguous case as a select GCC can vectorise */                          \
            const T *x = (const T *)d[0];                                                    \
            const uint8_t *m = (const uint8_t *)d[1];                                        \
            T *o = (T *)d[2];                                                                \
            for (int64_t i = 0; i < n; i++) {                                                \
                o[i] = m[i] ? v : x[i];                                                      \
            }                                                                                \
            return;                                                                          \
        }                                                                                    \
        const char *x = d[0], *m = d[1];                                                     \
        char *o = d[2];                                                                      \
        for (int64_t i = 0; i < n; i++, x += st[0], m += st[1], o += st[2]) {                \
            *(T *)o = *(const uint8_t *)m ? v : *(const T *)x;                               \
        }                                                                                    \
    }

MASKED_FILL_LOOP(uint8_t)
MASKED_FILL_LOOP(uint16_t)
MASKED_FILL_LOOP(uint32_t)
MASKED_FILL_LOOP(uint64_t)

pf_loop pf_masked_fill_loop(int itemsize)
{
    switch (itemsize) {
    case 1: return masked_fill_uint8_t;
    case 2: return masked_fill_uint16_t;
    case 4: return masked_fill_uint32_t;
    default: return masked_fill_uint64_t;
    }
}

/* ----------------------------------------------------------------- repeat */

/*
 * Single elements (nothing after the repeated axis): a typed store loop per
 * element, written out per item size so the compiler sees plain stores.
 * reps == NULL means every element is repeated `uniform` times.
 */
#define REPEAT_ELEMS(T)                                                                      \
    static void repeat_elems_##T(const char *src, char *dst, int64_t outer, int64_t n,      \
                                 int64_t total, const int64_t *reps, const int64_t *starts, \
                                 int64_t uniform)                                            \
    {                                                                                        \
        const T *s = (const T *)src;                                                         \
        T *d = (T *)dst;                                                                     \
        int par = outer * total > PF_GRAIN;                                                  \
        int nth = pf_get_num_threads();                                                      \
        _Pragma("omp parallel for collapse(2) schedule(static) num_threads(nth) if (par)")   \
        for (int64_t o = 0; o < outer; o++) {                                                \
            for (int64_t j = 0; j < n; j++) {                                                \
                T v = s[o * n + j];                                                          \
                int64_t r = reps ? reps[j] : uniform;                                        \
                T *q = d + o * total + (starts ? starts[j] : j * uniform);                   \
                for (int64_t i = 0; i < r; i++) {                                            \
                    q[i] = v;                                                                \
                }                                                                            \
            }                                                                                \
        }                                                                                    \
    }

/*
 * Per-element counts over many rows: the source column of every output
 * column is computed once, then each row is a gather GCC can vectorise,
 * instead of a short loop of unknown length per element.
 */
#define REPEAT_GATHER(T)                                                                     \
    static void repeat_gather_##T(const char *src, char *dst, int64_t outer, int64_t n,     \
                                  int64_t total, const int64_t *col)                         \
    {                                                                                        \
        const T *s = (const T *)src;                                                         \
        T *d = (T *)dst;                                                                     \
        int par = outer * total > PF_GRAIN;                                                  \
        int nth = pf_get_num_threads();                                                      \
        _Pragma("omp parallel for schedule(static) num_threads(nth) if (par)")               \
        for (int64_t o = 0; o < outer; o++) {                                                \
            const T *row = s + o * n;                                                        \
            T *q = d + o * total;                                                            \
            for (int64_t t = 0; t < total; t++) {                                            \
                q[t] = row[col[t]];                                                          \
            }                                                                                \
        }                                                                                    \
    }

REPEAT_ELEMS(uint8_t)
REPEAT_ELEMS(uint16_t)
REPEAT_ELEMS(uint32_t)
REPEAT_ELEMS(uint64_t)
REPEAT_GATHER(uint8_t)
REPEAT_GATHER(uint16_t)
REPEAT_GATHER(uint32_t)
REPEAT_GATHER(uint64_t)

/* Rows at least this many before the gather's column table pays for itself. */
#define GATHER_MIN_ROWS 4

static int repeat_by_gather(const char *src, char *dst, int itemsize, int64_t outer, int64_t n,
                            int64_t total, const int64_t *reps)
{
    int64_t *col = malloc(sizeof(int64_t) * (size_t)(total > 0 ? total : 1));
    if (col == NULL) {
        return -1;      /* the caller falls back to the loop that needs no table */
    }
    for (int64_t j = 0, t = 0; j < n; j++) {
        for (int64_t i = 0; i < reps[j]; i++) {
            col[t++] = j;
        }
    }
    switch (itemsize) {
    case 1: repeat_gather_uint8_t(src, dst, outer, n, total, col); break;
    case 2: repeat_gather_uint16_t(src, dst, outer, n, total, col); break;
    case 4: repeat_gather_uint32_t(src, dst, outer, n, total, col); break;
    default: repeat_gather_uint64_t(src, dst, outer, n, total, col); break;
    }
    free(col);
    return 0;
}

void pf_repeat_blocks(const char *src, char *dst, int itemsize, int64_t outer, int64_t n,
                      int64_t inner, int64_t total, const int64_t *reps, const int64_t *starts,
                      int64_t uniform)
{
    if (inner == 1 && reps != NULL && outer >= GATHER_MIN_ROWS &&
        repeat_by_gather(src, dst, itemsize, outer, n, total, reps) == 0) {
        return;
    }
    if (inner == 1) {
        switch (itemsize) {
        case 1: repeat_elems_uint8_t(src, dst, outer, n, total, reps, starts, uniform); return;
        case 2: repeat_elems_uint16_t(src, dst, outer, n, total, reps, starts, uniform); return;
        case 4: repeat_elems_uint32_t(src, dst, outer, n, total, reps, starts, uniform); return;
        default: repeat_elems_uint64_t(src, dst, outer, n, total, reps, starts, uniform); return;
        }
    }
    size_t block = (size_t)(inner * itemsize);
    int par = outer * total * inner > PF_GRAIN;
    /* each (o, j) pair writes its own rows of dst: no two iterations share a byte */
    #pragma omp parallel for collapse(2) schedule(static) num_threads(pf_get_num_threads()) \
        if (par)
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t j = 0; j < n; j++) {
            const char *sp = src + (size_t)(o * n + j) * block;
            int64_t r = reps ? reps[j] : uniform;
            char *dp = dst + (size_t)(o * total + (starts ? starts[j] : j * uniform)) * block;
            for (int64_t i = 0; i < r; i++) {
                memcpy(dp + (size_t)i * block, sp, block);
            }
        }
    }
}

/* -------------------------------------------------------------- tril/triu */

void pf_tri_rows(const char *src, char *dst, int itemsize, int64_t batch, int64_t m, int64_t n,
                 const int64_t *batch_off, int64_t rs, int64_t cs, int64_t k, int upper)
{
    pf_loop copy = pf_copy_loop(itemsize);
    int64_t rows = batch * m;
    #pragma omp parallel for schedule(static) \
        num_threads(pf_get_num_threads()) if (rows * n > PF_GRAIN)
    for (int64_t r = 0; r < rows; r++) {
        int64_t b = r / m, i = r % m;
        /* tril keeps columns j <= i + k, triu keeps j >= i + k: [lo, hi), lo <= hi */
        int64_t lo = 0, hi = n;
        if (upper) {
            lo = i + k < 0 ? 0 : i + k > n ? n : i + k;
        }
        else {
            hi = i + k + 1 < 0 ? 0 : i + k + 1 > n ? n : i + k + 1;
        }
        char *d = dst + r * n * itemsize;
        memset(d, 0, (size_t)(lo * itemsize));
        if (hi > lo) {
            char *args[2] = {(char *)src + (batch_off[b] + i * rs + lo * cs) * itemsize,
                             d + lo * itemsize};
            int64_t st[2] = {cs * itemsize, itemsize};
            copy(args, st, hi - lo, NULL);
        }
        memset(d + hi * itemsize, 0, (size_t)((n - hi) * itemsize));
    }
}

/* ---------------------------------------------------------------- one_hot */

void pf_one_hot(const int64_t *idx, char *dst, int itemsize, const void *one, int64_t outer,
                int64_t classes, int64_t inner)
{
    size_t slab = (size_t)(classes * inner * itemsize);
    #pragma omp parallel for schedule(static) \
        num_threads(pf_get_num_threads()) if (outer * classes * inner > PF_GRAIN)
    for (int64_t o = 0; o < outer; o++) {
        char *d = dst + (size_t)o * slab;
        memset(d, 0, slab);
        const int64_t *ix = idx + o * inner;
        for (int64_t q = 0; q < inner; q++) {
            memcpy(d + (ix[q] * inner + q) * itemsize, one, (size_t)itemsize);
        }
    }
}
