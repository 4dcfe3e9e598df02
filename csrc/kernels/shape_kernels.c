/*
 * shape_kernels.c -- loops for masked_fill, per-element repeat, tril/triu
 * and one_hot.  They move elements without looking at their values, so
 * each is written once per item size (1, 2, 4, 8 bytes) rather than per
 * dtype.  Work above PF_GRAIN elements is split across pyframe's OpenMP
 * threads; smaller work stays on the calling thread.
 */
#include "shape_kernels.h"

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

/* One element repeated r times: a typed store loop beats r small memcpy calls. */
#define REPEAT_ONE(T)                                                                        \
    static void repeat_one_##T(const char *s, char *d, int64_t r)                           \
    {                                                                                        \
        T v;                                                                                 \
        memcpy(&v, s, sizeof(T));                                                            \
        T *o = (T *)d;                                                                       \
        for (int64_t i = 0; i < r; i++) {                                                    \
            o[i] = v;                                                                        \
        }                                                                                    \
    }

REPEAT_ONE(uint8_t)
REPEAT_ONE(uint16_t)
REPEAT_ONE(uint32_t)
REPEAT_ONE(uint64_t)

static void repeat_block(const char *s, char *d, int itemsize, int64_t inner, int64_t r)
{
    if (inner == 1) {
        switch (itemsize) {
        case 1: repeat_one_uint8_t(s, d, r); return;
        case 2: repeat_one_uint16_t(s, d, r); return;
        case 4: repeat_one_uint32_t(s, d, r); return;
        default: repeat_one_uint64_t(s, d, r); return;
        }
    }
    size_t block = (size_t)(inner * itemsize);
    for (int64_t i = 0; i < r; i++) {
        memcpy(d + (size_t)i * block, s, block);
    }
}

void pf_repeat_blocks(const char *src, char *dst, int itemsize, int64_t outer, int64_t n,
                      int64_t inner, int64_t total, const int64_t *reps, const int64_t *starts)
{
    int64_t block = inner * itemsize;
    int64_t work = outer * total * inner;
    /* each (o, j) pair writes its own rows of dst: no two iterations share a byte */
    #pragma omp parallel for collapse(2) schedule(static) \
        num_threads(pf_get_num_threads()) if (work > PF_GRAIN)
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t j = 0; j < n; j++) {
            repeat_block(src + (o * n + j) * block, dst + (o * total + starts[j]) * block,
                         itemsize, inner, reps[j]);
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
