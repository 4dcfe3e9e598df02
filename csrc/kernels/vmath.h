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
 *     gelu       4        1   (also near its zero)
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

#include "half.h"

/* bit casts shared with half.h */
#define pf_asf pf_bits_f32
#define pf_asu pf_f32_bits

/*
 * c ? a : b as a bit blend.  Under GCC's default -ftrapping-math a ternary
 * between float expressions stays a branch (the arithmetic of either side
 * may not be executed speculatively), and a branch stops the vectoriser
 * on targets without masked arithmetic (AVX2, SSE2); AVX-512 masks hide
 * it.  The blend computes both sides and selects, which every target
 * vectorises.
 */
static inline float pf_select(int c, float a, float b)
{
    uint32_t m = 0u - (uint32_t)(c != 0);
    return pf_asf((pf_asu(a) & m) | (pf_asu(b) & ~m));
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
    x = pf_select(x > hi, hi, x);
    x = pf_select(x < lo, lo, x);    /* NaN passes both */
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
    float xs = pf_select(sub, x * 8388608.0f, x);
    uint32_t u = pf_asu(xs);
    int32_t e = (int32_t)(u >> 23) - 127 - (sub ? 23 : 0);
    float m = pf_asf((u & 0x007fffffu) | 0x3f800000u);
    int big = m > 1.41421356f;
    m = pf_select(big, m * 0.5f, m);
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
    r = pf_select(x == 0.0f, -INFINITY, r);
    r = pf_select(x < 0.0f, NAN, r);
    r = pf_select(x == INFINITY, INFINITY, r);
    r = pf_select(x != x, x, r);
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
    return pf_select(a < 0.55f, small, large);
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
    return pf_select(x >= 0.0f, 1.0f, e) / (1.0f + e);
}

/* ------------------------------------------------------------- gelu */

static inline double pf_asd(uint64_t u)
{
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static inline uint64_t pf_asu64(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

static inline double pf_select_d(int c, double a, double b)
{
    uint64_t m = (uint64_t)0 - (uint64_t)(c != 0);
    return pf_asd((pf_asu64(a) & m) | (pf_asu64(b) & ~m));
}

/*
 * exp(y) in double for y in [-708, 0], to ~1e-13 relative: Cody-Waite
 * reduction as pf_expf, Taylor to degree 11 on |r| <= ln2 / 2.  Only
 * gelu's erfc uses it; its results stay in the normal range.
 */
static inline double pf_exp_neg_d(double y)
{
    y = pf_select_d(y < -708.0, -708.0, y);
    double t = y * 1.4426950408889634074 + 6755399441055744.0;
    double n = t - 6755399441055744.0;
    double r = y - n * 0.693147180369123816490;     /* ln 2 high part: n * hi is exact */
    r = r - n * 1.90821492927058770002e-10;
    double p = 1.0 / 39916800;
    p = p * r + 1.0 / 3628800;
    p = p * r + 1.0 / 362880;
    p = p * r + 1.0 / 40320;
    p = p * r + 1.0 / 5040;
    p = p * r + 1.0 / 720;
    p = p * r + 1.0 / 120;
    p = p * r + 1.0 / 24;
    p = p * r + 1.0 / 6;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    int64_t ni = (int64_t)(pf_asu64(t) - pf_asu64(6755399441055744.0));
    return p * pf_asd((uint64_t)(ni + 1023) << 52);
}

/*
 * gelu(x) = 0.5 x erfc(-x / sqrt 2), computed in double without libm so
 * that the loop vectorises.  With z = |x| / sqrt 2 and t = 1 / (1 + z / 2),
 * erfc(z) = t exp(-z^2 + g(t)); g is a degree-12 polynomial fitted to
 * 2e-10 (dev/fit_gelu_erfc.py), so erfc keeps its relative accuracy deep
 * into the tail.  x < 0: 0.5 x erfc(z), no cancellation; x >= 0:
 * x - 0.5 x erfc(z), as 1 + erf(z) = 2 - erfc(z).  gelu(-inf) is its
 * limit -0 and gelu(inf) = inf, rather than inf * 0 = NaN.
 */
static inline float pf_geluf(float x)
{
    double v = (double)x;
    double z = fabs(v) * 0.70710678118654752440;
    double t = 1.0 / (1.0 + 0.5 * z);
    double g = 0.18581162497147452;
    g = g * t - 1.3723493313776787;
    g = g * t + 4.3911758677421409;
    g = g * t - 7.8663470436974512;
    g = g * t + 8.5172350014114357;
    g = g * t - 5.7326615744982501;
    g = g * t + 2.6492574177936694;
    g = g * t - 1.0656824867626169;
    g = g * t + 0.1330217056279058;
    g = g * t + 0.047425367082725704;
    g = g * t + 0.3788636307555539;
    g = g * t + 0.99975502150198614;
    g = g * t - 1.2655052003785434;
    double h = 0.5 * v * (t * pf_exp_neg_d(g - z * z));
    /* by the sign bit, so that -0 keeps its sign (-0 - h would be +0) */
    float r = (float)pf_select_d((pf_asu(x) >> 31) != 0, h, v - h);
    r = pf_select(x == -INFINITY, -0.0f, r);
    return pf_select(x == INFINITY, x, r);
}

#endif /* PF_VMATH_H */
