/*
 * elementwise.c -- the elementwise kernels of the op table, one 1-D strided
 * loop per (op, compute dtype).
 *
 * Each loop has a contiguous fast path compiled for AVX-512, AVX2 and a
 * portable baseline (target_clones: the CPU picks at load time), and a
 * strided path.  Binary loops also have fast paths for a broadcast scalar
 * on either side (`x * 2.0`).  float16 and bfloat16 never reach these
 * loops: dispatch converts them to float32 in chunks.
 *
 * Integer arithmetic wraps (two's complement) and never traps: division
 * and remainder by zero give 0, as NumPy does, and INT_MIN / -1 wraps.
 */
#include "kernels.h"
#include "../ops.h"
#include "vmath.h"
#include <math.h>

/*
 * One macro body serves signed and unsigned types; for uint8 its `x < 0`
 * tests are constant false, which is intended, not a bug to warn about.
 */
#pragma GCC diagnostic ignored "-Wtype-limits"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(PYFRAME_SANITIZE)
#define PF_CLONES __attribute__((target_clones("default", "avx2", "avx512f")))
#else
#define PF_CLONES
#endif

/* --------------------------------------------------------- loop shapes */

/* unary: data[0] in (TI), data[1] out (TO); v is the element, p the params */
#define UNARY(NAME, TI, TO, EXPR)                                                       \
    static PF_CLONES void NAME##_c(const TI *x, TO *y, int64_t n, const pf_params *p)  \
    {                                                                                   \
        (void)p;                                                                        \
        for (int64_t i = 0; i < n; i++) {                                               \
            TI v = x[i];                                                                \
            y[i] = (TO)(EXPR);                                                          \
        }                                                                               \
    }                                                                                   \
    static void NAME(char **d, const int64_t *s, int64_t n, void *ctx)                 \
    {                                                                                   \
        const pf_params *p = ctx;                                                       \
        if (s[0] == (int64_t)sizeof(TI) && s[1] == (int64_t)sizeof(TO)) {               \
            NAME##_c((const TI *)d[0], (TO *)d[1], n, p);                               \
            return;                                                                     \
        }                                                                               \
        (void)p;                                                                        \
        const char *xp = d[0];                                                          \
        char *yp = d[1];                                                                \
        for (int64_t i = 0; i < n; i++, xp += s[0], yp += s[1]) {                       \
            TI v = *(const TI *)xp;                                                     \
            *(TO *)yp = (TO)(EXPR);                                                     \
        }                                                                               \
    }

/* binary: data[0] a, data[1] b (TI), data[2] out (TO) */
#define BINARY(NAME, TI, TO, EXPR)                                                      \
    static PF_CLONES void NAME##_cc(const TI *x, const TI *z, TO *y, int64_t n)         \
    {                                                                                   \
        for (int64_t i = 0; i < n; i++) {                                               \
            TI a = x[i], b = z[i];                                                      \
            y[i] = (TO)(EXPR);                                                          \
        }                                                                               \
    }                                                                                   \
    static PF_CLONES void NAME##_cs(const TI *x, TI b, TO *y, int64_t n)                \
    {                                                                                   \
        for (int64_t i = 0; i < n; i++) {                                               \
            TI a = x[i];                                                                \
            y[i] = (TO)(EXPR);                                                          \
        }                                                                               \
    }                                                                                   \
    static PF_CLONES void NAME##_sc(TI a, const TI *z, TO *y, int64_t n)                \
    {                                                                                   \
        for (int64_t i = 0; i < n; i++) {                                               \
            TI b = z[i];                                                                \
            y[i] = (TO)(EXPR);                                                          \
        }                                                                               \
    }                                                                                   \
    static void NAME(char **d, const int64_t *s, int64_t n, void *ctx)                 \
    {                                                                                   \
        (void)ctx;                                                                      \
        const int64_t si = (int64_t)sizeof(TI), so = (int64_t)sizeof(TO);              \
        if (s[2] == so) {                                                               \
            if (s[0] == si && s[1] == si) {                                             \
                NAME##_cc((const TI *)d[0], (const TI *)d[1], (TO *)d[2], n);           \
                return;                                                                 \
            }                                                                           \
            if (s[0] == si && s[1] == 0) {                                              \
                NAME##_cs((const TI *)d[0], *(const TI *)d[1], (TO *)d[2], n);          \
                return;                                                                 \
            }                                                                           \
            if (s[0] == 0 && s[1] == si) {                                              \
                NAME##_sc(*(const TI *)d[0], (const TI *)d[1], (TO *)d[2], n);          \
                return;                                                                 \
            }                                                                           \
        }                                                                               \
        const char *ap = d[0], *bp = d[1];                                              \
        char *yp = d[2];                                                                \
        for (int64_t i = 0; i < n; i++, ap += s[0], bp += s[1], yp += s[2]) {           \
            TI a = *(const TI *)ap, b = *(const TI *)bp;                                \
            *(TO *)yp = (TO)(EXPR);                                                     \
        }                                                                               \
    }

/* ------------------------------------------------------ scalar helpers */

#define SELU_ALPHA 1.6732632423543772848170429916717
#define SELU_SCALE 1.0507009873554804934193349852946

static inline float sigmoid_f(float v) { return pf_sigmoidf(v); }
static inline double sigmoid_d(double v)
{
    double e = exp(-fabs(v));
    return v >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}

/*
 * silu(x) = x sigmoid(x) and gelu(x) tend to -0 as x -> -inf; the formulas
 * give -inf * 0 = NaN there, so -inf is answered by its limit.
 */
static inline float silu_f(float v)
{
    return pf_select(v == -INFINITY, -0.0f, v * sigmoid_f(v));
}

static inline double silu_d(double v)
{
    return v == -INFINITY ? -0.0 : v * sigmoid_d(v);
}

static inline float gelu_tanh_f(float v)
{
    float g = 0.5f * v * (1.0f + pf_tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    return pf_select(v == -INFINITY, -0.0f, g);
}

static inline double gelu_d(double v, double approx)
{
    double g;
    if (approx != 0) {
        g = 0.5 * v * (1.0 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
    }
    else {
        /*
         * erfc keeps full relative accuracy where 1 + erf(x) would cancel
         * (x << 0).  Far out the result is sensitive to the last bit of the
         * argument (relative condition ~ x^2), so it is formed as -v / sqrt(2),
         * the correctly rounded quotient, rather than a product with a rounded
         * 1/sqrt(2).
         */
        g = 0.5 * v * erfc(-v / 1.41421356237309504880);
    }
    return v == -INFINITY ? -0.0 : g;
}

/*
 * round to `dec` decimals, half to even, by scaling as NumPy does.  Where
 * the scaled value is already an integer (|v * 10^dec| >= 2^52, the scale
 * overflowing included) v has no digits that far right and is returned
 * as is, instead of NumPy's NaN from inf / inf; a scale of 10^-dec beyond
 * float64 rounds every finite value to zero.
 */
static inline double round_dec(double v, double dec)
{
    if (dec == 0) {
        return nearbyint(v);
    }
    if (dec > 0) {
        double f = pow(10.0, dec);
        double y = v * f;
        return fabs(y) < 4503599627370496.0 ? nearbyint(y) / f : v;
    }
    double f = pow(10.0, -dec);
    if (isinf(f)) {
        return isfinite(v) ? copysign(0.0, v) : v;
    }
    return nearbyint(v / f) * f;
}

static inline float round_decf(float v, double dec)
{
    return dec == 0 ? nearbyintf(v) : (float)round_dec((double)v, dec);
}

/*
 * clip(v, lo, hi) = minimum(maximum(v, lo), hi), as NumPy and PyTorch:
 * lo > hi gives hi everywhere, and a NaN value or a NaN bound gives NaN.
 */
static inline float clip_f(float v, double lo, double hi)
{
    float l = (float)lo, h = (float)hi;
    float t = (v < l || l != l) ? l : v;
    return (t > h || h != h) ? h : t;
}

static inline double clip_d(double v, double lo, double hi)
{
    double t = (v < lo || lo != lo) ? lo : v;
    return (t > hi || hi != hi) ? hi : t;
}

/* floor division and Python-style remainder for floats, sharing one divmod */
#define FDIVMOD(T, SUF)                                                                 \
    static inline T pf_floordiv_##SUF(T a, T b)                                         \
    {                                                                                   \
        if (b == 0) {                                                                   \
            return a / b;                                                               \
        }                                                                               \
        T mod = fmod##SUF(a, b);                                                        \
        T div = (a - mod) / b;                                                          \
        if (mod != 0 && ((b < 0) != (mod < 0))) {                                       \
            div -= 1;                                                                   \
        }                                                                               \
        if (div == 0) {                                                                 \
            return copysign##SUF(0, a / b);                                             \
        }                                                                               \
        T fl = floor##SUF(div);                                                         \
        return (div - fl > (T)0.5) ? fl + 1 : fl;                                       \
    }                                                                                   \
    static inline T pf_remainder_##SUF(T a, T b)                                        \
    {                                                                                   \
        if (b == 0) {                                                                   \
            return fmod##SUF(a, b);                                                     \
        }                                                                               \
        T mod = fmod##SUF(a, b);                                                        \
        if (mod != 0) {                                                                 \
            if ((b < 0) != (mod < 0)) {                                                 \
                mod += b;                                                               \
            }                                                                           \
        }                                                                               \
        else {                                                                          \
            mod = copysign##SUF(0, b);                                                  \
        }                                                                               \
        return mod;                                                                     \
    }

FDIVMOD(float, f)
FDIVMOD(double, )

#define FMAX(a, b) (isnan(a) ? (a) : ((a) >= (b) ? (a) : (b)))
#define FMIN(a, b) (isnan(a) ? (a) : ((a) <= (b) ? (a) : (b)))

/*
 * integer helpers: wrap through unsigned, never trap.
 *
 * clip's bounds arrive as integral doubles (or +-inf when absent); dispatch
 * has refused bounds that would force a value outside T, so saturating them
 * into T's range and comparing in T is exact for every T, int64 included
 * (comparing in double would round int64 values above 2^53).
 *
 * round with decimals < 0 rounds to a multiple of 10^-decimals, half to
 * even, in unsigned 64-bit arithmetic: exact, and a result outside T wraps
 * like the rest of integer arithmetic instead of going through a float
 * conversion that C leaves undefined.
 */
#define INT_HELPERS(T, UT, TMIN, TMAX, SUF)                                             \
    static inline T pf_isat_##SUF(double d)                                             \
    {                                                                                   \
        return d <= (double)(TMIN) ? (T)(TMIN) : d >= (double)(TMAX) ? (T)(TMAX) : (T)d; \
    }                                                                                   \
    static inline T pf_iclip_##SUF(T v, const pf_params *p)                             \
    {                                                                                   \
        T lo = pf_isat_##SUF(p->p[0]), hi = pf_isat_##SUF(p->p[1]);                     \
        T t = v < lo ? lo : v;                                                          \
        return t > hi ? hi : t;                                                         \
    }                                                                                   \
    static inline T pf_iround_##SUF(T v, double dec)                                    \
    {                                                                                   \
        if (dec >= 0) {                                                                 \
            return v;                                                                   \
        }                                                                               \
        if (dec < -19) {                                                                \
            return 0;   /* 10^20 exceeds every |v| twice over */                        \
        }                                                                               \
        uint64_t f = 1;                                                                 \
        for (int i = 0; i < (int)-dec; i++) {                                           \
            f *= 10;                                                                    \
        }                                                                               \
        int neg = v < 0;                                                                \
        uint64_t mag = neg ? 0 - (uint64_t)(int64_t)v : (uint64_t)v;                    \
        uint64_t q = mag / f, r = mag % f;                                              \
        if (r > f - r || (r == f - r && (q & 1))) {                                     \
            q++;                                                                        \
        }                                                                               \
        uint64_t out = q * f;                                                           \
        return (T)(neg ? 0 - out : out);                                                \
    }                                                                                   \
    static inline T pf_ifloordiv_##SUF(T a, T b)                                        \
    {                                                                                   \
        if (b == 0) {                                                                   \
            return 0;                                                                   \
        }                                                                               \
        if ((T)-1 < 0 && a == TMIN && b == (T)-1) {                                     \
            return a;                                                                   \
        }                                                                               \
        T q = (T)(a / b);                                                               \
        if ((T)(a % b) != 0 && ((a < 0) != (b < 0))) {                                  \
            q--;                                                                        \
        }                                                                               \
        return q;                                                                       \
    }                                                                                   \
    static inline T pf_iremainder_##SUF(T a, T b)                                       \
    {                                                                                   \
        if (b == 0 || ((T)-1 < 0 && b == (T)-1)) {                                      \
            return 0;                                                                   \
        }                                                                               \
        T r = (T)(a % b);                                                               \
        if (r != 0 && ((r < 0) != (b < 0))) {                                           \
            r = (T)(r + b);                                                             \
        }                                                                               \
        return r;                                                                       \
    }                                                                                   \
    static inline T pf_ipow_##SUF(T a, T b)                                             \
    {                                                                                   \
        if (b < 0) {                                                                    \
            /* the truncated value of a^b: 0 unless |a| == 1 */                         \
            return a == 1 ? 1 : ((T)-1 < 0 && a == (T)-1) ? ((b & 1) ? a : 1) : 0;     \
        }                                                                               \
        UT r = 1, base = (UT)a;                                                         \
        UT e = (UT)b;                                                                   \
        while (e) {                                                                     \
            if (e & 1) {                                                                \
                r = (UT)(r * base);                                                     \
            }                                                                           \
            base = (UT)(base * base);                                                   \
            e >>= 1;                                                                    \
        }                                                                               \
        return (T)r;                                                                    \
    }

INT_HELPERS(uint8_t, uint8_t, 0, UINT8_MAX, u8)
INT_HELPERS(int8_t, uint8_t, INT8_MIN, INT8_MAX, i8)
INT_HELPERS(int16_t, uint16_t, INT16_MIN, INT16_MAX, i16)
INT_HELPERS(int32_t, uint32_t, INT32_MIN, INT32_MAX, i32)
INT_HELPERS(int64_t, uint64_t, INT64_MIN, INT64_MAX, i64)

/* ------------------------------------------------------ float kernels */

/*
 * FLOAT_OPS(T, SUF, X): X(op, expr) for each float op, where `v` (unary) or
 * `a`, `b` (binary) are of type T, and p->p[0], p->p[1] are the params.
 * float32 uses pyframe's vectorisable exp/log/tanh (vmath.h); float64 libm.
 */
#define F32_UNARY(X)                                                                    \
    X(EXP, pf_expf(v)) X(EXP2, exp2f(v)) X(LOG, pf_logf(v)) X(LOG2, log2f(v))           \
    X(LOG10, log10f(v)) X(LOG1P, log1pf(v)) X(EXPM1, expm1f(v)) X(SQRT, sqrtf(v))       \
    X(RSQRT, 1.0f / sqrtf(v)) X(RECIPROCAL, 1.0f / v) X(SIN, sinf(v)) X(COS, cosf(v))   \
    X(TAN, tanf(v)) X(ASIN, asinf(v)) X(ACOS, acosf(v)) X(ATAN, atanf(v))               \
    X(SINH, sinhf(v)) X(COSH, coshf(v)) X(TANH, pf_tanhf(v)) X(SIGMOID, sigmoid_f(v))   \
    X(SILU, silu_f(v))                                                                  \
    X(ELU, v > 0 ? v : (float)p->p[0] * expm1f(v))                                      \
    X(SELU, (float)SELU_SCALE * (v > 0 ? v : (float)SELU_ALPHA * expm1f(v)))            \
    X(SOFTPLUS, (float)p->p[0] * v > (float)p->p[1]                                     \
                    ? v : log1pf(pf_expf((float)p->p[0] * v)) / (float)p->p[0])         \
    X(LEAKY_RELU, pf_select(v > 0, v, (float)p->p[0] * v)) X(ERF, erff(v))              \
    X(NEG, -v) X(ABS, fabsf(v)) X(SIGN, pf_select(v != v, v, (float)((v > 0) - (v < 0)))) \
    X(SQUARE, v * v) X(FLOOR, floorf(v)) X(CEIL, ceilf(v))                               \
    X(TRUNC, truncf(v)) X(RELU, v < 0 ? 0.0f : v) X(RELU6, v < 0 ? 0.0f : (v > 6 ? 6.0f : v)) \
    X(CLIP, clip_f(v, p->p[0], p->p[1]))

#define F64_UNARY(X)                                                                    \
    X(EXP, exp(v)) X(EXP2, exp2(v)) X(LOG, log(v)) X(LOG2, log2(v))                     \
    X(LOG10, log10(v)) X(LOG1P, log1p(v)) X(EXPM1, expm1(v)) X(SQRT, sqrt(v))           \
    X(RSQRT, 1.0 / sqrt(v)) X(RECIPROCAL, 1.0 / v) X(SIN, sin(v)) X(COS, cos(v))        \
    X(TAN, tan(v)) X(ASIN, asin(v)) X(ACOS, acos(v)) X(ATAN, atan(v))                   \
    X(SINH, sinh(v)) X(COSH, cosh(v)) X(TANH, tanh(v)) X(SIGMOID, sigmoid_d(v))         \
    X(SILU, silu_d(v)) X(GELU, gelu_d(v, p->p[0]))                                      \
    X(ELU, v > 0 ? v : p->p[0] * expm1(v))                                              \
    X(SELU, SELU_SCALE * (v > 0 ? v : SELU_ALPHA * expm1(v)))                           \
    X(SOFTPLUS, p->p[0] * v > p->p[1] ? v : log1p(exp(p->p[0] * v)) / p->p[0])          \
    X(LEAKY_RELU, pf_select_d(v > 0, v, p->p[0] * v)) X(ERF, erf(v))                    \
    X(NEG, -v) X(ABS, fabs(v))                                                          \
    X(SIGN, pf_select_d(v != v, v, (double)((v > 0) - (v < 0))))                        \
    X(SQUARE, v * v) X(FLOOR, floor(v)) X(CEIL, ceil(v))                                 \
    X(TRUNC, trunc(v)) X(RELU, v < 0 ? 0.0 : v) X(RELU6, v < 0 ? 0.0 : (v > 6 ? 6.0 : v)) \
    X(CLIP, clip_d(v, p->p[0], p->p[1]))

/* fabs(v) == inf rather than isinf(v): GCC vectorises only the former */
#define F_PRED(X) X(ISNAN, isnan(v)) X(ISINF, fabs(v) == INFINITY) X(ISFINITE, isfinite(v))

#define F32_BINARY(X)                                                                   \
    X(ADD, a + b) X(SUB, a - b) X(MUL, a * b) X(DIV, a / b)                             \
    X(FLOOR_DIVIDE, pf_floordiv_f(a, b)) X(REMAINDER, pf_remainder_f(a, b))             \
    X(POW, powf(a, b)) X(MAXIMUM, FMAX(a, b)) X(MINIMUM, FMIN(a, b))                    \
    X(ATAN2, atan2f(a, b))

#define F64_BINARY(X)                                                                   \
    X(ADD, a + b) X(SUB, a - b) X(MUL, a * b) X(DIV, a / b)                             \
    X(FLOOR_DIVIDE, pf_floordiv_(a, b)) X(REMAINDER, pf_remainder_(a, b))               \
    X(POW, pow(a, b)) X(MAXIMUM, FMAX(a, b)) X(MINIMUM, FMIN(a, b))                     \
    X(ATAN2, atan2(a, b))

#define CMP_BINARY(X)                                                                   \
    X(EQ, a == b) X(NE, a != b) X(LT, a < b) X(LE, a <= b) X(GT, a > b) X(GE, a >= b)

#define U_F32(OP, EXPR) UNARY(k_##OP##_f32, float, float, EXPR)
#define U_F64(OP, EXPR) UNARY(k_##OP##_f64, double, double, EXPR)
#define P_F32(OP, EXPR) UNARY(k_##OP##_f32, float, uint8_t, EXPR)
#define P_F64(OP, EXPR) UNARY(k_##OP##_f64, double, uint8_t, EXPR)
#define B_F32(OP, EXPR) BINARY(k_##OP##_f32, float, float, EXPR)
#define B_F64(OP, EXPR) BINARY(k_##OP##_f64, double, double, EXPR)
#define C_F32(OP, EXPR) BINARY(k_##OP##_f32, float, uint8_t, EXPR)
#define C_F64(OP, EXPR) BINARY(k_##OP##_f64, double, uint8_t, EXPR)

F32_UNARY(U_F32)

/*
 * float32 gelu picks its formula once per call: a per-element test of the
 * `approximate` parameter would keep the loop from vectorising.
 */
#define F32_GELU(X) X(GELU_EXACT, pf_geluf(v)) X(GELU_TANH, gelu_tanh_f(v))
F32_GELU(U_F32)

/* round likewise: decimals = 0 (the common case) is a plain vectorised rint */
UNARY(k_RINT_f32, float, float, nearbyintf(v))
UNARY(k_ROUND_DEC_f32, float, float, round_decf(v, p->p[0]))
UNARY(k_RINT_f64, double, double, nearbyint(v))
UNARY(k_ROUND_DEC_f64, double, double, round_dec(v, p->p[0]))

static void k_ROUND_f32(char **d, const int64_t *s, int64_t n, void *ctx)
{
    const pf_params *p = ctx;
    (p->p[0] == 0 ? k_RINT_f32 : k_ROUND_DEC_f32)(d, s, n, ctx);
}

static void k_ROUND_f64(char **d, const int64_t *s, int64_t n, void *ctx)
{
    const pf_params *p = ctx;
    (p->p[0] == 0 ? k_RINT_f64 : k_ROUND_DEC_f64)(d, s, n, ctx);
}

static void k_GELU_f32(char **d, const int64_t *s, int64_t n, void *ctx)
{
    const pf_params *p = ctx;
    if (p->p[0] != 0) {
        k_GELU_TANH_f32(d, s, n, ctx);
    }
    else {
        k_GELU_EXACT_f32(d, s, n, ctx);
    }
}
F64_UNARY(U_F64)
F_PRED(P_F32)
F_PRED(P_F64)
F32_BINARY(B_F32)
F64_BINARY(B_F64)
CMP_BINARY(C_F32)
CMP_BINARY(C_F64)

/* ---------------------------------------------------- integer kernels */

#define I_UNARY(T, UT, SUF, X)                                                          \
    X(NEG, (T)(0 - (UT)v)) X(ABS, v < 0 ? (T)(0 - (UT)v) : v)                           \
    X(SIGN, (T)((v > 0) - (v < 0))) X(SQUARE, (T)((UT)v * (UT)v)) X(FLOOR, v)           \
    X(CEIL, v) X(ROUND, pf_iround_##SUF(v, p->p[0]))                                    \
    X(TRUNC, v) X(RELU, v < 0 ? 0 : v) X(RELU6, v < 0 ? 0 : (v > 6 ? 6 : v))            \
    X(CLIP, pf_iclip_##SUF(v, p))                                                       \
    X(BITWISE_NOT, (T)~v)

#define I_BINARY(T, UT, SUF, X)                                                         \
    X(ADD, (T)((UT)a + (UT)b)) X(SUB, (T)((UT)a - (UT)b)) X(MUL, (T)((UT)a * (UT)b))    \
    X(FLOOR_DIVIDE, pf_ifloordiv_##SUF(a, b)) X(REMAINDER, pf_iremainder_##SUF(a, b))   \
    X(POW, pf_ipow_##SUF(a, b)) X(MAXIMUM, a >= b ? a : b) X(MINIMUM, a <= b ? a : b)   \
    X(BITWISE_AND, a & b) X(BITWISE_OR, a | b) X(BITWISE_XOR, a ^ b)

#define INT_KERNELS(T, UT, SUF)                                                         \
    I_UNARY(T, UT, SUF, U_##SUF) I_BINARY(T, UT, SUF, B_##SUF) CMP_BINARY(C_##SUF)

#define U_u8(OP, EXPR) UNARY(k_##OP##_u8, uint8_t, uint8_t, EXPR)
#define U_i8(OP, EXPR) UNARY(k_##OP##_i8, int8_t, int8_t, EXPR)
#define U_i16(OP, EXPR) UNARY(k_##OP##_i16, int16_t, int16_t, EXPR)
#define U_i32(OP, EXPR) UNARY(k_##OP##_i32, int32_t, int32_t, EXPR)
#define U_i64(OP, EXPR) UNARY(k_##OP##_i64, int64_t, int64_t, EXPR)
#define B_u8(OP, EXPR) BINARY(k_##OP##_u8, uint8_t, uint8_t, EXPR)
#define B_i8(OP, EXPR) BINARY(k_##OP##_i8, int8_t, int8_t, EXPR)
#define B_i16(OP, EXPR) BINARY(k_##OP##_i16, int16_t, int16_t, EXPR)
#define B_i32(OP, EXPR) BINARY(k_##OP##_i32, int32_t, int32_t, EXPR)
#define B_i64(OP, EXPR) BINARY(k_##OP##_i64, int64_t, int64_t, EXPR)
#define C_u8(OP, EXPR) BINARY(k_##OP##_u8, uint8_t, uint8_t, EXPR)
#define C_i8(OP, EXPR) BINARY(k_##OP##_i8, int8_t, uint8_t, EXPR)
#define C_i16(OP, EXPR) BINARY(k_##OP##_i16, int16_t, uint8_t, EXPR)
#define C_i32(OP, EXPR) BINARY(k_##OP##_i32, int32_t, uint8_t, EXPR)
#define C_i64(OP, EXPR) BINARY(k_##OP##_i64, int64_t, uint8_t, EXPR)

/* uint8 comparisons write bytes of 0/1 (the bool layout): the same loops serve bool */
INT_KERNELS(uint8_t, uint8_t, u8)
INT_KERNELS(int8_t, uint8_t, i8)
INT_KERNELS(int16_t, uint16_t, i16)
INT_KERNELS(int32_t, uint32_t, i32)
INT_KERNELS(int64_t, uint64_t, i64)

/* ------------------------------------------------------- bool kernels */

/* bool is one byte holding 0 or 1; arithmetic on it is logic */
UNARY(k_LOGICAL_NOT_b, uint8_t, uint8_t, !v)
UNARY(k_BITWISE_NOT_b, uint8_t, uint8_t, !v)
BINARY(k_ADD_b, uint8_t, uint8_t, a | b)
BINARY(k_MUL_b, uint8_t, uint8_t, a & b)
BINARY(k_MAXIMUM_b, uint8_t, uint8_t, a | b)
BINARY(k_MINIMUM_b, uint8_t, uint8_t, a & b)
BINARY(k_LOGICAL_AND_b, uint8_t, uint8_t, a & b)
BINARY(k_LOGICAL_OR_b, uint8_t, uint8_t, a | b)
BINARY(k_LOGICAL_XOR_b, uint8_t, uint8_t, a ^ b)
BINARY(k_BITWISE_AND_b, uint8_t, uint8_t, a & b)
BINARY(k_BITWISE_OR_b, uint8_t, uint8_t, a | b)
BINARY(k_BITWISE_XOR_b, uint8_t, uint8_t, a ^ b)

/* ---------------------------------------------------------- where */

/* data[0] cond (bool), data[1] x, data[2] y, data[3] out; by item size */
#define WHERE_LOOP(T)                                                                   \
    static void k_WHERE_##T(char **d, const int64_t *s, int64_t n, void *ctx)          \
    {                                                                                   \
        (void)ctx;                                                                      \
        const char *c = d[0], *x = d[1], *y = d[2];                                     \
        char *o = d[3];                                                                 \
        for (int64_t i = 0; i < n; i++, c += s[0], x += s[1], y += s[2], o += s[3]) {   \
            *(T *)o = *(const uint8_t *)c ? *(const T *)x : *(const T *)y;              \
        }                                                                               \
    }

WHERE_LOOP(uint8_t)
WHERE_LOOP(uint16_t)
WHERE_LOOP(uint32_t)
WHERE_LOOP(uint64_t)

/* --------------------------------------------------------- the table */

pf_loop pf_ew_kernels[PF_OP_COUNT][PF_NDTYPES];

#define REG_F32(OP, EXPR) pf_ew_kernels[PF_OP_##OP][PF_FLOAT32] = k_##OP##_f32;
#define REG_F64(OP, EXPR) pf_ew_kernels[PF_OP_##OP][PF_FLOAT64] = k_##OP##_f64;
#define REG_INT(OP, EXPR)                                                               \
    pf_ew_kernels[PF_OP_##OP][PF_UINT8] = k_##OP##_u8;                                  \
    pf_ew_kernels[PF_OP_##OP][PF_INT8] = k_##OP##_i8;                                   \
    pf_ew_kernels[PF_OP_##OP][PF_INT16] = k_##OP##_i16;                                 \
    pf_ew_kernels[PF_OP_##OP][PF_INT32] = k_##OP##_i32;                                 \
    pf_ew_kernels[PF_OP_##OP][PF_INT64] = k_##OP##_i64;
#define REG_CMP_INT(OP, EXPR)                                                           \
    pf_ew_kernels[PF_OP_##OP][PF_UINT8] = k_##OP##_u8;                                  \
    pf_ew_kernels[PF_OP_##OP][PF_INT8] = k_##OP##_i8;                                   \
    pf_ew_kernels[PF_OP_##OP][PF_INT16] = k_##OP##_i16;                                 \
    pf_ew_kernels[PF_OP_##OP][PF_INT32] = k_##OP##_i32;                                 \
    pf_ew_kernels[PF_OP_##OP][PF_INT64] = k_##OP##_i64;                                 \
    pf_ew_kernels[PF_OP_##OP][PF_BOOL] = k_##OP##_u8;
#define REG_B(OP) pf_ew_kernels[PF_OP_##OP][PF_BOOL] = k_##OP##_b;

void pf_ew_kernels_init(void)
{
    F32_UNARY(REG_F32)
    pf_ew_kernels[PF_OP_GELU][PF_FLOAT32] = k_GELU_f32;
    pf_ew_kernels[PF_OP_ROUND][PF_FLOAT32] = k_ROUND_f32;
    pf_ew_kernels[PF_OP_ROUND][PF_FLOAT64] = k_ROUND_f64;
    F64_UNARY(REG_F64)
    F_PRED(REG_F32)
    F_PRED(REG_F64)
    F32_BINARY(REG_F32)
    F64_BINARY(REG_F64)
    CMP_BINARY(REG_F32)
    CMP_BINARY(REG_F64)
    I_UNARY(int, unsigned, x, REG_INT)
    I_BINARY(int, unsigned, x, REG_INT)
    CMP_BINARY(REG_CMP_INT)
    REG_B(LOGICAL_NOT) REG_B(BITWISE_NOT) REG_B(ADD) REG_B(MUL) REG_B(MAXIMUM)
    REG_B(MINIMUM) REG_B(LOGICAL_AND) REG_B(LOGICAL_OR) REG_B(LOGICAL_XOR)
    REG_B(BITWISE_AND) REG_B(BITWISE_OR) REG_B(BITWISE_XOR)
    /* where is indexed by item size through the 1-byte .. 8-byte dtypes */
    pf_ew_kernels[PF_OP_WHERE][PF_UINT8] = k_WHERE_uint8_t;
    pf_ew_kernels[PF_OP_WHERE][PF_INT16] = k_WHERE_uint16_t;
    pf_ew_kernels[PF_OP_WHERE][PF_INT32] = k_WHERE_uint32_t;
    pf_ew_kernels[PF_OP_WHERE][PF_INT64] = k_WHERE_uint64_t;
}
