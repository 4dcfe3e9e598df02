/*
 * ew_ops.cuh -- what one element of each elementwise op computes, as
 * __host__ __device__ code: the CUDA kernels (elementwise.cu) call it per
 * thread, and the host self-test runs the very same functions in a loop
 * over host buffers, so the CI machine (no GPU) checks the math, the dtype
 * handling and the index arithmetic against the cpu backend.
 *
 * The semantics are the cpu backend's (csrc/kernels/elementwise.c,
 * csrc/kernels/cast.c), restated here for the device:
 *   - float16 and bfloat16 are stored as such and computed in float32;
 *   - integer arithmetic wraps (two's complement, through the unsigned
 *     type) and never traps: x // 0 and x % 0 are 0, INT_MIN // -1 wraps,
 *     floor division and remainder take the divisor's sign (Python's);
 *   - integer power by squaring; a negative exponent gives the truncated
 *     value (0 unless |base| is 1);
 *   - maximum / minimum propagate NaN from either side; comparisons with
 *     NaN are false (!= true); clip is minimum(maximum(v, lo), hi);
 *   - bool arithmetic is logic (add is or, multiply is and).
 */
#ifndef PF_CUDA_EW_OPS_CUH
#define PF_CUDA_EW_OPS_CUH

#include "internal.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#define PFC_HD __host__ __device__ __forceinline__

/* ------------------------------------------------------------ dtypes */

/* S: how a dtype is stored; C: the type it computes in */
template <int D> struct pfc_dt;
template <> struct pfc_dt<PF_CUDA_BOOL> { using S = uint8_t; using C = uint8_t; };
template <> struct pfc_dt<PF_CUDA_UINT8> { using S = uint8_t; using C = uint8_t; };
template <> struct pfc_dt<PF_CUDA_INT8> { using S = int8_t; using C = int8_t; };
template <> struct pfc_dt<PF_CUDA_INT16> { using S = int16_t; using C = int16_t; };
template <> struct pfc_dt<PF_CUDA_INT32> { using S = int32_t; using C = int32_t; };
template <> struct pfc_dt<PF_CUDA_INT64> { using S = int64_t; using C = int64_t; };
template <> struct pfc_dt<PF_CUDA_FLOAT16> { using S = __half; using C = float; };
template <> struct pfc_dt<PF_CUDA_BFLOAT16> { using S = __nv_bfloat16; using C = float; };
template <> struct pfc_dt<PF_CUDA_FLOAT32> { using S = float; using C = float; };
template <> struct pfc_dt<PF_CUDA_FLOAT64> { using S = double; using C = double; };

template <int D> constexpr bool pfc_is_float =
    D == PF_CUDA_FLOAT16 || D == PF_CUDA_BFLOAT16 || D == PF_CUDA_FLOAT32 ||
    D == PF_CUDA_FLOAT64;
template <int D> constexpr bool pfc_is_int = !pfc_is_float<D> && D != PF_CUDA_BOOL;

template <typename T> constexpr bool pfc_signed = std::is_signed<T>::value;

/* each integer type's range (std::numeric_limits is host-only) */
template <typename T> struct pfc_lim;
template <> struct pfc_lim<uint8_t> { static constexpr uint8_t lo = 0, hi = UINT8_MAX; };
template <> struct pfc_lim<int8_t> { static constexpr int8_t lo = INT8_MIN, hi = INT8_MAX; };
template <> struct pfc_lim<int16_t> { static constexpr int16_t lo = INT16_MIN, hi = INT16_MAX; };
template <> struct pfc_lim<int32_t> { static constexpr int32_t lo = INT32_MIN, hi = INT32_MAX; };
template <> struct pfc_lim<int64_t> { static constexpr int64_t lo = INT64_MIN, hi = INT64_MAX; };

/* v < 0, without a comparison the compiler calls pointless for unsigned types */
template <typename T> PFC_HD bool pfc_neg(T v)
{
    if constexpr (pfc_signed<T>) {
        return v < 0;
    }
    else {
        (void)v;
        return false;
    }
}

template <int D> PFC_HD typename pfc_dt<D>::C pfc_load(typename pfc_dt<D>::S s)
{
    if constexpr (D == PF_CUDA_FLOAT16) {
        return __half2float(s);
    }
    else if constexpr (D == PF_CUDA_BFLOAT16) {
        return __bfloat162float(s);
    }
    else {
        return s;
    }
}

template <int D> PFC_HD typename pfc_dt<D>::S pfc_store(typename pfc_dt<D>::C c)
{
    if constexpr (D == PF_CUDA_FLOAT16) {
        return __float2half_rn(c);
    }
    else if constexpr (D == PF_CUDA_BFLOAT16) {
        return __float2bfloat16_rn(c);
    }
    else {
        return c;
    }
}

/*
 * Conversion between any two dtypes, as cast.c: to bool nonzero (NaN
 * included); float to integer truncates, saturates at the target's range
 * and maps NaN to 0; integer to integer wraps; everything reaches float16 /
 * bfloat16 through float32.
 */
template <int SD, int DD> PFC_HD typename pfc_dt<DD>::S pfc_convert(typename pfc_dt<SD>::S s)
{
    using T = typename pfc_dt<DD>::S;
    auto v = pfc_load<SD>(s);
    if constexpr (DD == PF_CUDA_BOOL) {
        return (uint8_t)(v != 0);
    }
    else if constexpr (SD == PF_CUDA_BOOL) {
        return pfc_store<DD>((typename pfc_dt<DD>::C)(v != 0));
    }
    else if constexpr (pfc_is_int<DD> && pfc_is_float<SD>) {
        double d = (double)v;
        return d != d ? (T)0 : d <= (double)pfc_lim<T>::lo ? pfc_lim<T>::lo
                           : d >= (double)pfc_lim<T>::hi   ? pfc_lim<T>::hi
                                                           : (T)v;
    }
    else if constexpr (pfc_is_int<DD>) {
        /* integer to integer: modulo 2^bits, through the unsigned type */
        using U = std::make_unsigned_t<T>;
        return (T)(U)(uint64_t)(int64_t)v;
    }
    else if constexpr (DD == PF_CUDA_FLOAT16 || DD == PF_CUDA_BFLOAT16) {
        return pfc_store<DD>((float)v);
    }
    else {
        return (T)v;
    }
}

/* ------------------------------------------------------------ libm by type */

#define PFC_MATH1(NAME, F32, F64)                                                         \
    PFC_HD float pfc_##NAME(float x) { return F32(x); }                                  \
    PFC_HD double pfc_##NAME(double x) { return F64(x); }
#define PFC_MATH2(NAME, F32, F64)                                                         \
    PFC_HD float pfc_##NAME(float x, float y) { return F32(x, y); }                      \
    PFC_HD double pfc_##NAME(double x, double y) { return F64(x, y); }

PFC_MATH1(exp, expf, exp)
PFC_MATH1(exp2, exp2f, exp2)
PFC_MATH1(log, logf, log)
PFC_MATH1(log2, log2f, log2)
PFC_MATH1(log10, log10f, log10)
PFC_MATH1(log1p, log1pf, log1p)
PFC_MATH1(expm1, expm1f, expm1)
PFC_MATH1(sqrt, sqrtf, sqrt)
PFC_MATH1(sin, sinf, sin)
PFC_MATH1(cos, cosf, cos)
PFC_MATH1(tan, tanf, tan)
PFC_MATH1(asin, asinf, asin)
PFC_MATH1(acos, acosf, acos)
PFC_MATH1(atan, atanf, atan)
PFC_MATH1(sinh, sinhf, sinh)
PFC_MATH1(cosh, coshf, cosh)
PFC_MATH1(tanh, tanhf, tanh)
PFC_MATH1(erf, erff, erf)
PFC_MATH1(erfc, erfcf, erfc)
PFC_MATH1(fabs, fabsf, fabs)
PFC_MATH1(floor, floorf, floor)
PFC_MATH1(ceil, ceilf, ceil)
PFC_MATH1(trunc, truncf, trunc)
PFC_MATH1(rint, rintf, rint)
PFC_MATH2(fmod, fmodf, fmod)
PFC_MATH2(copysign, copysignf, copysign)
PFC_MATH2(pow, powf, pow)
PFC_MATH2(atan2, atan2f, atan2)

/* ------------------------------------------------------------ float helpers */

template <typename T> PFC_HD bool pfc_isnan(T v) { return v != v; }

template <typename T> PFC_HD T pfc_sigmoid(T v)
{
    /* exp(-|v|) cannot overflow: 1 / (1 + e) for v >= 0, e / (1 + e) below */
    T e = pfc_exp(-pfc_fabs(v));
    return v >= 0 ? (T)1 / ((T)1 + e) : e / ((T)1 + e);
}

/* silu and gelu tend to -0 as v -> -inf, where the formulas give -inf * 0 */
template <typename T> PFC_HD T pfc_silu(T v)
{
    return v == -(T)INFINITY ? -(T)0 : v * pfc_sigmoid(v);
}

template <typename T> PFC_HD T pfc_gelu(T v, double approximate)
{
    T g;
    if (approximate != 0) {
        g = (T)0.5 * v *
            ((T)1 + pfc_tanh((T)0.7978845608028654 * (v + (T)0.044715 * v * v * v)));
    }
    else {
        /* erfc keeps its relative accuracy where 1 + erf(x) would cancel (x << 0) */
        g = (T)0.5 * v * pfc_erfc(-v / (T)1.41421356237309504880);
    }
    return v == -(T)INFINITY ? -(T)0 : g;
}

/* round to `dec` decimals, half to even, by scaling (see round_dec in elementwise.c) */
PFC_HD double pfc_round_dec(double v, double dec)
{
    if (dec == 0) {
        return rint(v);
    }
    if (dec > 0) {
        double f = pow(10.0, dec);
        double y = v * f;
        return fabs(y) < 4503599627370496.0 ? rint(y) / f : v;
    }
    double f = pow(10.0, -dec);
    if (f == (double)INFINITY) {
        return v - v == 0 ? copysign(0.0, v) : v;     /* finite v: a signed zero */
    }
    return rint(v / f) * f;
}

template <typename T> PFC_HD T pfc_round(T v, double dec)
{
    return dec == 0 ? pfc_rint(v) : (T)pfc_round_dec((double)v, dec);
}

template <typename T> PFC_HD T pfc_clip(T v, double lo_, double hi_)
{
    T lo = (T)lo_, hi = (T)hi_;
    T t = (v < lo || lo != lo) ? lo : v;
    return (t > hi || hi != hi) ? hi : t;
}

/* floor division and Python's remainder for floats, from one fmod */
template <typename T> PFC_HD T pfc_floordiv_f(T a, T b)
{
    if (b == 0) {
        return a / b;
    }
    T mod = pfc_fmod(a, b);
    T div = (a - mod) / b;
    if (mod != 0 && ((b < 0) != (mod < 0))) {
        div -= 1;
    }
    if (div == 0) {
        return pfc_copysign((T)0, a / b);
    }
    T fl = pfc_floor(div);
    return (div - fl > (T)0.5) ? fl + 1 : fl;
}

template <typename T> PFC_HD T pfc_remainder_f(T a, T b)
{
    if (b == 0) {
        return pfc_fmod(a, b);
    }
    T mod = pfc_fmod(a, b);
    if (mod != 0) {
        if ((b < 0) != (mod < 0)) {
            mod += b;
        }
    }
    else {
        mod = pfc_copysign((T)0, b);
    }
    return mod;
}

template <typename T> PFC_HD T pfc_fmax(T a, T b) { return pfc_isnan(a) ? a : (a >= b ? a : b); }
template <typename T> PFC_HD T pfc_fmin(T a, T b) { return pfc_isnan(a) ? a : (a <= b ? a : b); }

/* ------------------------------------------------------------ integer helpers */


/* clip's bounds arrive as integral doubles or +-inf: saturate into T, compare in T */
template <typename T> PFC_HD T pfc_isat(double d)
{
    constexpr T lo = pfc_lim<T>::lo, hi = pfc_lim<T>::hi;
    return d <= (double)lo ? lo : d >= (double)hi ? hi : (T)d;
}

template <typename T> PFC_HD T pfc_iclip(T v, double lo_, double hi_)
{
    T lo = pfc_isat<T>(lo_), hi = pfc_isat<T>(hi_);
    T t = v < lo ? lo : v;
    return t > hi ? hi : t;
}

/* round to a multiple of 10^-dec (dec < 0), half to even, in uint64 arithmetic */
template <typename T> PFC_HD T pfc_iround(T v, double dec)
{
    if (dec >= 0) {
        return v;
    }
    if (dec < -19) {
        return 0;
    }
    uint64_t f = 1;
    for (int i = 0; i < (int)-dec; i++) {
        f *= 10;
    }
    bool neg = pfc_neg(v);
    uint64_t mag = neg ? 0 - (uint64_t)(int64_t)v : (uint64_t)v;
    uint64_t q = mag / f, r = mag % f;
    if (r > f - r || (r == f - r && (q & 1))) {
        q++;
    }
    uint64_t out = q * f;
    return (T)(neg ? 0 - out : out);
}

template <typename T> PFC_HD T pfc_ifloordiv(T a, T b)
{
    if (b == 0) {
        return 0;
    }
    if constexpr (pfc_signed<T>) {
        if (a == pfc_lim<T>::lo && b == (T)-1) {
            return a;
        }
    }
    T q = (T)(a / b);
    if constexpr (pfc_signed<T>) {
        if ((T)(a % b) != 0 && ((a < 0) != (b < 0))) {
            q--;
        }
    }
    return q;
}

template <typename T> PFC_HD T pfc_iremainder(T a, T b)
{
    if (b == 0) {
        return 0;
    }
    if constexpr (pfc_signed<T>) {
        if (b == (T)-1) {
            return 0;
        }
    }
    T r = (T)(a % b);
    if constexpr (pfc_signed<T>) {
        if (r != 0 && ((r < 0) != (b < 0))) {
            r = (T)(r + b);
        }
    }
    return r;
}

template <typename T> PFC_HD T pfc_ipow(T a, T b)
{
    using U = std::make_unsigned_t<T>;
    if constexpr (pfc_signed<T>) {
        if (b < 0) {
            /* the truncated value of a^b: 0 unless |a| == 1 */
            return a == 1 ? 1 : a == (T)-1 ? ((b & 1) ? a : (T)1) : (T)0;
        }
    }
    U r = 1, base = (U)a, e = (U)b;
    while (e) {
        if (e & 1) {
            r = (U)((uint64_t)r * base);
        }
        base = (U)((uint64_t)base * base);
        e >>= 1;
    }
    return (T)r;
}

/* wrapping arithmetic through the unsigned type (int8 * int8 promotes to int: no UB) */
template <typename T> PFC_HD T pfc_wrap_add(T a, T b)
{
    using U = std::make_unsigned_t<T>;
    return (T)(U)((U)a + (U)b);
}
template <typename T> PFC_HD T pfc_wrap_sub(T a, T b)
{
    using U = std::make_unsigned_t<T>;
    return (T)(U)((U)a - (U)b);
}
template <typename T> PFC_HD T pfc_wrap_mul(T a, T b)
{
    using U = std::make_unsigned_t<T>;
    /* uint16 * uint16 would promote to (signed) int and could overflow: go through uint64 */
    return (T)(U)((uint64_t)(U)a * (uint64_t)(U)b);
}

/* ------------------------------------------------------------ the ops */

#define SELU_ALPHA 1.6732632423543772848170429916717
#define SELU_SCALE 1.0507009873554804934193349852946

/*
 * One element of a one-input op: v in the compute type of dtype D, p the
 * params.  Returns the compute type, or bool for the predicates.
 */
template <int OP, int D> PFC_HD auto pfc_unary(typename pfc_dt<D>::C v, const double *p)
{
    using C = typename pfc_dt<D>::C;
    if constexpr (pfc_is_float<D>) {
        if constexpr (OP == PFC_OP_EXP) return pfc_exp(v);
        else if constexpr (OP == PFC_OP_EXP2) return pfc_exp2(v);
        else if constexpr (OP == PFC_OP_LOG) return pfc_log(v);
        else if constexpr (OP == PFC_OP_LOG2) return pfc_log2(v);
        else if constexpr (OP == PFC_OP_LOG10) return pfc_log10(v);
        else if constexpr (OP == PFC_OP_LOG1P) return pfc_log1p(v);
        else if constexpr (OP == PFC_OP_EXPM1) return pfc_expm1(v);
        else if constexpr (OP == PFC_OP_SQRT) return pfc_sqrt(v);
        else if constexpr (OP == PFC_OP_RSQRT) return (C)1 / pfc_sqrt(v);
        else if constexpr (OP == PFC_OP_RECIPROCAL) return (C)1 / v;
        else if constexpr (OP == PFC_OP_SIN) return pfc_sin(v);
        else if constexpr (OP == PFC_OP_COS) return pfc_cos(v);
        else if constexpr (OP == PFC_OP_TAN) return pfc_tan(v);
        else if constexpr (OP == PFC_OP_ASIN) return pfc_asin(v);
        else if constexpr (OP == PFC_OP_ACOS) return pfc_acos(v);
        else if constexpr (OP == PFC_OP_ATAN) return pfc_atan(v);
        else if constexpr (OP == PFC_OP_SINH) return pfc_sinh(v);
        else if constexpr (OP == PFC_OP_COSH) return pfc_cosh(v);
        else if constexpr (OP == PFC_OP_TANH) return pfc_tanh(v);
        else if constexpr (OP == PFC_OP_SIGMOID) return pfc_sigmoid(v);
        else if constexpr (OP == PFC_OP_SILU) return pfc_silu(v);
        /*
         * exact gelu in float64 whatever the dtype, as the cpu: far into the
         * negative tail the result's relative condition is ~x^2, so -v / sqrt 2
         * rounded to float32 would cost ~x^2 ulps
         */
        else if constexpr (OP == PFC_OP_GELU)
            return p[0] != 0 ? pfc_gelu(v, p[0]) : (C)pfc_gelu((double)v, 0.0);
        else if constexpr (OP == PFC_OP_ELU) return v > 0 ? v : (C)p[0] * pfc_expm1(v);
        else if constexpr (OP == PFC_OP_SELU)
            return (C)SELU_SCALE * (v > 0 ? v : (C)SELU_ALPHA * pfc_expm1(v));
        else if constexpr (OP == PFC_OP_SOFTPLUS)
            return (C)p[0] * v > (C)p[1] ? v : pfc_log1p(pfc_exp((C)p[0] * v)) / (C)p[0];
        else if constexpr (OP == PFC_OP_LEAKY_RELU) return v > 0 ? v : (C)p[0] * v;
        else if constexpr (OP == PFC_OP_ERF) return pfc_erf(v);
        else if constexpr (OP == PFC_OP_NEG) return -v;
        else if constexpr (OP == PFC_OP_ABS) return pfc_fabs(v);
        else if constexpr (OP == PFC_OP_SIGN)
            return pfc_isnan(v) ? v : (C)((v > 0) - (v < 0));
        else if constexpr (OP == PFC_OP_SQUARE) return v * v;
        else if constexpr (OP == PFC_OP_FLOOR) return pfc_floor(v);
        else if constexpr (OP == PFC_OP_CEIL) return pfc_ceil(v);
        else if constexpr (OP == PFC_OP_ROUND) return pfc_round(v, p[0]);
        else if constexpr (OP == PFC_OP_TRUNC) return pfc_trunc(v);
        else if constexpr (OP == PFC_OP_RELU) return v < 0 ? (C)0 : v;
        else if constexpr (OP == PFC_OP_RELU6) return v < 0 ? (C)0 : (v > 6 ? (C)6 : v);
        else if constexpr (OP == PFC_OP_CLIP) return pfc_clip(v, p[0], p[1]);
        else if constexpr (OP == PFC_OP_ISNAN) return pfc_isnan(v);
        else if constexpr (OP == PFC_OP_ISINF) return pfc_fabs(v) == (C)INFINITY;
        else if constexpr (OP == PFC_OP_ISFINITE) return !pfc_isnan(v) && pfc_fabs(v) != (C)INFINITY;
        else static_assert(OP < 0, "no float kernel for this op");
    }
    else if constexpr (D == PF_CUDA_BOOL) {
        if constexpr (OP == PFC_OP_LOGICAL_NOT || OP == PFC_OP_BITWISE_NOT) return (C)!v;
        else static_assert(OP < 0, "no bool kernel for this op");
    }
    else {
        using U = std::make_unsigned_t<C>;
        if constexpr (OP == PFC_OP_NEG) return (C)(U)(0 - (U)v);
        else if constexpr (OP == PFC_OP_ABS) return pfc_neg(v) ? (C)(U)(0 - (U)v) : v;
        else if constexpr (OP == PFC_OP_SIGN) return (C)((v > 0) - pfc_neg(v));
        else if constexpr (OP == PFC_OP_SQUARE) return pfc_wrap_mul(v, v);
        else if constexpr (OP == PFC_OP_FLOOR || OP == PFC_OP_CEIL || OP == PFC_OP_TRUNC)
            return v;
        else if constexpr (OP == PFC_OP_ROUND) return pfc_iround(v, p[0]);
        else if constexpr (OP == PFC_OP_RELU) return pfc_neg(v) ? (C)0 : v;
        else if constexpr (OP == PFC_OP_RELU6) return pfc_neg(v) ? (C)0 : (v > 6 ? (C)6 : v);
        else if constexpr (OP == PFC_OP_CLIP) return pfc_iclip(v, p[0], p[1]);
        else if constexpr (OP == PFC_OP_BITWISE_NOT) return (C)~v;
        else static_assert(OP < 0, "no integer kernel for this op");
    }
}

/* One element of a two-input op; comparisons and logical ops return bool. */
template <int OP, int D> PFC_HD auto pfc_binary(typename pfc_dt<D>::C a, typename pfc_dt<D>::C b)
{
    using C = typename pfc_dt<D>::C;
    if constexpr (OP == PFC_OP_EQ) return a == b;
    else if constexpr (OP == PFC_OP_NE) return a != b;
    else if constexpr (OP == PFC_OP_LT) return a < b;
    else if constexpr (OP == PFC_OP_LE) return a <= b;
    else if constexpr (OP == PFC_OP_GT) return a > b;
    else if constexpr (OP == PFC_OP_GE) return a >= b;
    else if constexpr (pfc_is_float<D>) {
        if constexpr (OP == PFC_OP_ADD) return a + b;
        else if constexpr (OP == PFC_OP_SUB) return a - b;
        else if constexpr (OP == PFC_OP_MUL) return a * b;
        else if constexpr (OP == PFC_OP_DIV) return a / b;
        else if constexpr (OP == PFC_OP_FLOOR_DIVIDE) return pfc_floordiv_f(a, b);
        else if constexpr (OP == PFC_OP_REMAINDER) return pfc_remainder_f(a, b);
        else if constexpr (OP == PFC_OP_POW) return pfc_pow(a, b);
        else if constexpr (OP == PFC_OP_MAXIMUM) return pfc_fmax(a, b);
        else if constexpr (OP == PFC_OP_MINIMUM) return pfc_fmin(a, b);
        else if constexpr (OP == PFC_OP_ATAN2) return pfc_atan2(a, b);
        else static_assert(OP < 0, "no float kernel for this op");
    }
    else if constexpr (D == PF_CUDA_BOOL) {
        /* bool is one byte holding 0 or 1; arithmetic on it is logic */
        if constexpr (OP == PFC_OP_ADD || OP == PFC_OP_MAXIMUM || OP == PFC_OP_LOGICAL_OR ||
                      OP == PFC_OP_BITWISE_OR)
            return (C)(a | b);
        else if constexpr (OP == PFC_OP_MUL || OP == PFC_OP_MINIMUM || OP == PFC_OP_LOGICAL_AND ||
                           OP == PFC_OP_BITWISE_AND)
            return (C)(a & b);
        else if constexpr (OP == PFC_OP_LOGICAL_XOR || OP == PFC_OP_BITWISE_XOR)
            return (C)(a ^ b);
        else static_assert(OP < 0, "no bool kernel for this op");
    }
    else {
        if constexpr (OP == PFC_OP_ADD) return pfc_wrap_add(a, b);
        else if constexpr (OP == PFC_OP_SUB) return pfc_wrap_sub(a, b);
        else if constexpr (OP == PFC_OP_MUL) return pfc_wrap_mul(a, b);
        else if constexpr (OP == PFC_OP_FLOOR_DIVIDE) return pfc_ifloordiv(a, b);
        else if constexpr (OP == PFC_OP_REMAINDER) return pfc_iremainder(a, b);
        else if constexpr (OP == PFC_OP_POW) return pfc_ipow(a, b);
        else if constexpr (OP == PFC_OP_MAXIMUM) return a >= b ? a : b;
        else if constexpr (OP == PFC_OP_MINIMUM) return a <= b ? a : b;
        else if constexpr (OP == PFC_OP_BITWISE_AND) return (C)(a & b);
        else if constexpr (OP == PFC_OP_BITWISE_OR) return (C)(a | b);
        else if constexpr (OP == PFC_OP_BITWISE_XOR) return (C)(a ^ b);
        else static_assert(OP < 0, "no integer kernel for this op");
    }
}

#endif
