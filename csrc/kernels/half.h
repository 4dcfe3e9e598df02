/*
 * half.h -- float16 and bfloat16 as 16-bit patterns, converted through
 * float32 with round-to-nearest-even.  Both are computed in float32 inside
 * every kernel; these are the only two conversions.
 */
#ifndef PF_HALF_H
#define PF_HALF_H

#include <stdint.h>
#include <string.h>

typedef uint16_t pf_half;
typedef uint16_t pf_bf16;

static inline uint32_t pf_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float pf_bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline float pf_bf16_to_f32(pf_bf16 h) { return pf_bits_f32((uint32_t)h << 16); }

static inline pf_bf16 pf_f32_to_bf16(float f)
{
    uint32_t u = pf_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        return (pf_bf16)((u >> 16) | 0x0040u);    /* keep NaN a (quiet) NaN */
    }
    u += 0x7fffu + ((u >> 16) & 1u);            /* round to nearest, ties to even */
    return (pf_bf16)(u >> 16);
}

static inline float pf_half_to_f32(pf_half h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1fu) {
        return pf_bits_f32(sign | 0x7f800000u | (man << 13));    /* inf, NaN */
    }
    if (exp == 0) {
        if (man == 0) {
            return pf_bits_f32(sign);
        }
        /* subnormal: value is man * 2^-24, exact in float32 */
        float v = (float)man * 5.9604644775390625e-08f;
        return sign ? -v : v;
    }
    return pf_bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

static inline pf_half pf_f32_to_half(float f)
{
    uint32_t u = pf_f32_bits(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) {
        return (pf_half)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));   /* NaN */
    }
    if (a >= 0x477ff000u) {
        return (pf_half)(sign | 0x7c00u);       /* overflows to inf after rounding */
    }
    if (a < 0x38800000u) {
        /*
         * Result is subnormal (or zero): scale so that the half's subnormal
         * unit 2^-24 becomes 1.0, and let the float32 adder round to even.
         */
        float v = pf_bits_f32(a) * 16777216.0f;
        /* v < 1024; adding 2^23 rounds v to an integer, ties to even */
        float r = (v + 8388608.0f) - 8388608.0f;
        return (pf_half)(sign | (uint32_t)r);
    }
    /* normal: rebias the exponent and round the 13 dropped bits to even */
    uint32_t m = a + 0xfffu + ((a >> 13) & 1u);
    return (pf_half)(sign | ((m - 0x38000000u) >> 13));
}

#endif /* PF_HALF_H */
