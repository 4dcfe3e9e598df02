/*
 * cast.c -- conversion loops between every pair of dtypes (the copy kernel
 * of contiguous(), astype(), copy_() and assignment).
 *
 * Conversion rules (docs/dtypes.md repeats them for users):
 *   - to bool: nonzero (and NaN) is True;
 *   - float to integer: truncation toward zero; NaN gives 0; values beyond
 *     the target's range saturate to its minimum or maximum (C leaves this
 *     undefined, NumPy and PyTorch give platform-dependent garbage);
 *   - integer to narrower integer: wraps modulo 2^bits, as NumPy does;
 *   - to float16 / bfloat16: through float32, rounding to nearest even.
 */
#include "kernels.h"
#include "half.h"
#include <math.h>

/* load an element of each dtype into a C value */
#define LD_bool(p) (*(const uint8_t *)(p) != 0)
#define LD_uint8(p) (*(const uint8_t *)(p))
#define LD_int8(p) (*(const int8_t *)(p))
#define LD_int16(p) (*(const int16_t *)(p))
#define LD_int32(p) (*(const int32_t *)(p))
#define LD_int64(p) (*(const int64_t *)(p))
#define LD_float16(p) pf_half_to_f32(*(const pf_half *)(p))
#define LD_bfloat16(p) pf_bf16_to_f32(*(const pf_bf16 *)(p))
#define LD_float32(p) (*(const float *)(p))
#define LD_float64(p) (*(const double *)(p))

/* integers from floats saturate; NaN becomes 0 */
#define SAT(T, LO, HI, v) \
    (isnan((double)(v)) ? (T)0 : (double)(v) <= (double)(LO) ? (T)(LO) \
     : (double)(v) >= (double)(HI) ? (T)(HI) : (T)(v))
#define ST_INT(T, LO, HI, p, v, K) (*(T *)(p) = (K) ? SAT(T, LO, HI, v) : (T)(v))

/* store a C value as each dtype; K is 1 when the source is a float */
#define ST_bool(p, v, K) (*(uint8_t *)(p) = (uint8_t)((v) != 0))
#define ST_uint8(p, v, K) ST_INT(uint8_t, 0, UINT8_MAX, p, v, K)
#define ST_int8(p, v, K) ST_INT(int8_t, INT8_MIN, INT8_MAX, p, v, K)
#define ST_int16(p, v, K) ST_INT(int16_t, INT16_MIN, INT16_MAX, p, v, K)
#define ST_int32(p, v, K) ST_INT(int32_t, INT32_MIN, INT32_MAX, p, v, K)
#define ST_int64(p, v, K) ST_INT(int64_t, INT64_MIN, INT64_MAX, p, v, K)
#define ST_float16(p, v, K) (*(pf_half *)(p) = pf_f32_to_half((float)(v)))
#define ST_bfloat16(p, v, K) (*(pf_bf16 *)(p) = pf_f32_to_bf16((float)(v)))
#define ST_float32(p, v, K) (*(float *)(p) = (float)(v))
#define ST_float64(p, v, K) (*(double *)(p) = (double)(v))

/* args[0] is the source, args[1] the destination */
#define CAST_LOOP(S, SK, D)                                                          \
    static void cast_##S##_##D(char **args, const int64_t *st, int64_t n,           \
                               void *ctx)                                            \
    {                                                                                \
        (void)ctx;                                                                   \
        const char *src = args[0];                                                   \
        char *dst = args[1];                                                         \
        for (int64_t i = 0; i < n; i++, src += st[0], dst += st[1]) {                \
            ST_##D(dst, LD_##S(src), SK);                                            \
        }                                                                            \
    }

#define CAST_ROW(S, SK)                                                               \
    CAST_LOOP(S, SK, bool) CAST_LOOP(S, SK, uint8) CAST_LOOP(S, SK, int8)            \
    CAST_LOOP(S, SK, int16) CAST_LOOP(S, SK, int32) CAST_LOOP(S, SK, int64)          \
    CAST_LOOP(S, SK, float16) CAST_LOOP(S, SK, bfloat16) CAST_LOOP(S, SK, float32)   \
    CAST_LOOP(S, SK, float64)

CAST_ROW(bool, 0)
CAST_ROW(uint8, 0)
CAST_ROW(int8, 0)
CAST_ROW(int16, 0)
CAST_ROW(int32, 0)
CAST_ROW(int64, 0)
CAST_ROW(float16, 1)
CAST_ROW(bfloat16, 1)
CAST_ROW(float32, 1)
CAST_ROW(float64, 1)

#define TABLE_ROW(S)                                                                   \
    {cast_##S##_bool, cast_##S##_uint8, cast_##S##_int8, cast_##S##_int16,            \
     cast_##S##_int32, cast_##S##_int64, cast_##S##_float16, cast_##S##_bfloat16,     \
     cast_##S##_float32, cast_##S##_float64}

/* Indexed [source][destination] in pf_dtype order. */
const pf_loop pf_cast_loops[PF_NDTYPES][PF_NDTYPES] = {
    TABLE_ROW(bool), TABLE_ROW(uint8), TABLE_ROW(int8), TABLE_ROW(int16),
    TABLE_ROW(int32), TABLE_ROW(int64), TABLE_ROW(float16), TABLE_ROW(bfloat16),
    TABLE_ROW(float32), TABLE_ROW(float64),
};

/*
 * A plain copy of equal dtypes: memcpy when both sides are contiguous,
 * else an element loop by item size.
 */
#define COPY_LOOP(T)                                                                   \
    static void copy_##T(char **args, const int64_t *st, int64_t n, void *ctx)        \
    {                                                                                  \
        (void)ctx;                                                                     \
        if (st[0] == (int64_t)sizeof(T) && st[1] == (int64_t)sizeof(T)) {              \
            memcpy(args[1], args[0], (size_t)n * sizeof(T));                           \
            return;                                                                    \
        }                                                                              \
        const char *src = args[0];                                                     \
        char *dst = args[1];                                                           \
        for (int64_t i = 0; i < n; i++, src += st[0], dst += st[1]) {                  \
            *(T *)dst = *(const T *)src;                                               \
        }                                                                              \
    }

COPY_LOOP(uint8_t)
COPY_LOOP(uint16_t)
COPY_LOOP(uint32_t)
COPY_LOOP(uint64_t)

pf_loop pf_copy_loop(int itemsize)
{
    switch (itemsize) {
    case 1: return copy_uint8_t;
    case 2: return copy_uint16_t;
    case 4: return copy_uint32_t;
    default: return copy_uint64_t;
    }
}

/* args[0] is the destination; ctx points at one element already in its dtype. */
#define FILL_LOOP(T)                                                                   \
    static void fill_##T(char **args, const int64_t *st, int64_t n, void *ctx)        \
    {                                                                                  \
        T v;                                                                           \
        memcpy(&v, ctx, sizeof(T));                                                    \
        char *dst = args[0];                                                           \
        if (st[0] == (int64_t)sizeof(T)) {                                             \
            T *d = (T *)dst;                                                           \
            for (int64_t i = 0; i < n; i++) {                                          \
                d[i] = v;                                                              \
            }                                                                          \
            return;                                                                    \
        }                                                                              \
        for (int64_t i = 0; i < n; i++, dst += st[0]) {                                \
            *(T *)dst = v;                                                             \
        }                                                                              \
    }

FILL_LOOP(uint8_t)
FILL_LOOP(uint16_t)
FILL_LOOP(uint32_t)
FILL_LOOP(uint64_t)

pf_loop pf_fill_loop(int itemsize)
{
    switch (itemsize) {
    case 1: return fill_uint8_t;
    case 2: return fill_uint16_t;
    case 4: return fill_uint32_t;
    default: return fill_uint64_t;
    }
}

/* Convert one element; used for scalars and item(). */
void pf_cast_one(const void *src, pf_dtype sd, void *dst, pf_dtype dd)
{
    char *args[2] = {(char *)src, (char *)dst};
    int64_t st[2] = {0, 0};
    pf_cast_loops[sd][dd](args, st, 1, NULL);
}
