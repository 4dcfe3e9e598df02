/*
 * vmath.h -- float32 exp, log, tanh, sigmoid and gelu written so that GCC
 * vectorises the loops that call them (straight-line arithmetic, selects
 * instead of branches, no libm calls on the hot path).
 *
 * Accuracy, in float32 ULPs from the float64 result rounded to float32:
 *
 *              bound   measured max
 *     exp        2        1
 *     log        2        1
 *     tanh       3        2
 *     sigmoid    3        2
 *     gelu       4        1   (through erfc in double; also near its zero)
 *
 * "measured" is over every float32, with the code compiled as the
 * baseline and the AVX-512 clones use it (every third float32 for the
 * AVX2+FMA build); tests/test_vmath.py holds the bounds on a dense grid,
 * around each regime change and overflow / underflow threshold, and at 0,
 * -0, +-inf and NaN.
 */
#ifndef PF_VMATH_H
#define PF_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float pf_asf(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint32_t pf_asu(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/*
 * exp(x) = 2^n * e^r with n = round(x / ln 2), r = x - n ln 2 (Cody-Waite,
 * ln 2 split in two so that n * ln2_hi is exact), |r| <= ln2 / 2.  e^r by
 * its Taylor polynomial to degree 7 (truncation error < 6e-9).  2^n is
 * applied in two halves so that results in the subnormal range and the
 * overflow to infinity come out right.
 */
static inline float pf_expf(float x)
{
    const float hi = 88.8f, lo = -104.0f;
    x = x > hi ? hi : x;
    x = x < lo ? lo : x;    /* NaN passes both */
    /*
     * round to nearest by the 1.5 * 2^23 trick (vectorises without SSE4.1);
     * n's integer value sits in t's low mantissa bits, so it is read from
     * there rather than by converting a float to int, which C leaves
     * undefined for NaN
     */
    float t = x * 1.44269504088896341f + 12582912.0f;
    float n = t - 12582912.0f;
    float r = x - n * 0.693145751953125f;
    r = r - n * 1.428606765330187045e-06f;
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t ni = (int32_t)(pf_asu(t) - 0x4b400000u);
    int32_t n1 = ni >> 1, n2 = ni - n1;
    float s1 = pf_asf((uint32_t)(n1 + 127) << 23);
    float s2 = pf_asf((uint32_t)(n2 + 127) << 23);
    return p * s1 * s2;
}

/*
 * log(x) = e ln 2 + log(m) with x = 2^e m, m in [sqrt(1/2), sqrt(2)).
 * log(m) = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.172, by its odd
 * series to s^11.  Subnormals are scaled into the normal range first.
 */
static inline float pf_logf(float x)
{
    int sub = x < 1.17549435e-38f;
    float xs = sub ? x * 8388608.0f : x;
    uint32_t u = pf_asu(xs);
    int32_t e = (int32_t)(u >> 23) - 127 - (sub ? 23 : 0);
    float m = pf_asf((u & 0x007fffffu) | 0x3f800000u);
    int big = m > 1.41421356f;
    m = big ? m * 0.5f : m;
    e += big;
    float f = m - 1.0f;
    float s = f / (2.0f + f);
    float z = s * s;
    float q = 1.0f / 11;
    q = q * z + 1.0f / 9;
    q = q * z + 1.0f / 7;
    q = q * z + 1.0f / 5;
    q = q * z + 1.0f / 3;
    float logm = f - s * (f - 2.0f * z * q);    /* = 2s(1 + z q'), rearranged to keep f exact */
    float ef = (float)e;
    float r = ef * 0.693145751953125f + (logm + ef * 1.428606765330187045e-06f);
    /* x <= 0, inf and NaN */
    r = x == 0.0f ? -INFINITY : r;
    r = x < 0.0f ? NAN : r;
    r = x == INFINITY ? INFINITY : r;
    r = x != x ? x : r;
    return r;
}

/*
 * tanh: an odd Taylor polynomial to x^17 below |x| = 0.55, where
 * 1 - 2 / (e^{2|x|} + 1) would lose bits to cancellation; that formula above.
 */
static inline float pf_tanhf(float x)
{
    float a = fabsf(x);
    float z = x * x;
    float q = 0.000590027440945586f;
    q = q * z - 0.00145583438705131827f;
    q = q * z + 0.00359212803657248102f;
    q = q * z - 0.00886323552990219656f;
    q = q * z + 0.0218694885361552028f;
    q = q * z - 0.0539682539682539683f;
    q = q * z + 0.133333333333333333f;
    q = q * z - 0.333333333333333333f;
    /* copysign: x + x z q is +0 for x = -0 */
    float small = copysignf(x + x * z * q, x);
    float e = pf_expf(2.0f * a);
    float large = copysignf(1.0f - 2.0f / (e + 1.0f), x);
    return a < 0.55f ? small : large;
}

/*
 * sigmoid from e = exp(-|x|), which cannot overflow: 1 / (1 + e) for x >= 0,
 * e / (1 + e) for x < 0 (one division either way).  The textbook
 * 1 / (1 + exp(-x)) returns 0 for x < -88.7, where exp(-x) overflows,
 * instead of the subnormal results down to x = -103.9.
 */
static inline float pf_sigmoidf(float x)
{
    float e = pf_expf(-fabsf(x));
    return (x >= 0.0f ? 1.0f : e) / (1.0f + e);
}

/*
 * exact gelu through erfc in double: keeps relative accuracy for x << 0.
 * gelu(-inf) is its limit, -0, rather than -inf * 0 = NaN.
 */
static inline float pf_geluf(float x)
{
    double v = (double)x;
    double g = 0.5 * v * erfc(-v * 0.70710678118654752440);
    return x == -INFINITY ? -0.0f : (float)g;
}

#endif /* PF_VMATH_H */
