/*
 * philox.h -- the generator's arithmetic, shared by the cpu (random.c,
 * nn_kernels_t.h) and the CUDA library (cuda/random.cu): the Philox
 * 4x32-10 block function, and the transforms from a block to the samples
 * of rand/uniform, randn/normal, randint and the dropout masks.
 *
 * One piece of code for both backends, so that the same seed gives the same
 * bits on either.  That takes more than sharing the source:
 *
 *   - no libm call: the cpu's log and sincos (glibc) and the device's
 *     (CUDA's libdevice) differ in the last bit, so the normal transform
 *     uses its own log and sin/cos, built from + - * / only;
 *   - no contraction: nvcc fuses a * b + c into one fma by default, which
 *     rounds once where the cpu rounds twice.  On the device every operation
 *     goes through the _rn intrinsics (never fused); on the host the files
 *     that include this one say #pragma GCC optimize("fp-contract=off")
 *     (and the CUDA library's host code is built with -ffp-contract=off),
 *     and IEEE + - * / sqrt are correctly rounded on both;
 *   - the 64x64 -> high 64 product of randint is exact on both
 *     (unsigned __int128 on the host, __umul64hi on the device).
 *
 * Everything here is a static inline function that compiles as C11 and as
 * CUDA C++ (__host__ __device__ there).  The stored dtype conversions stay
 * with each backend; the host self-test of the CUDA library checks that they
 * agree with the cpu's (tests/test_cuda_rng.py).
 *
 * Contract (docs/architecture.md, "Random numbers"): element i of a draw is
 * a function of (seed, offset + i / 2) only; block j feeds elements 2j and
 * 2j + 1.
 */
#ifndef PF_PHILOX_H
#define PF_PHILOX_H

#include <stdint.h>
#include <string.h>

#if defined(__CUDACC__)
#define PF_HD __host__ __device__
#else
#define PF_HD
#endif

#if defined(__CUDA_ARCH__)
#define PFR_ADD(a, b) __dadd_rn((a), (b))
#define PFR_SUB(a, b) __dsub_rn((a), (b))
#define PFR_MUL(a, b) __dmul_rn((a), (b))
#define PFR_DIV(a, b) __ddiv_rn((a), (b))
#define PFR_SQRT(a) __dsqrt_rn(a)
#else
#include <math.h>
#define PFR_ADD(a, b) ((a) + (b))
#define PFR_SUB(a, b) ((a) - (b))
#define PFR_MUL(a, b) ((a) * (b))
#define PFR_DIV(a, b) ((a) / (b))
#define PFR_SQRT(a) sqrt(a)
#endif

/* p z + c, rounded twice */
#define PFR_HORNER(p, z, c) PFR_ADD(PFR_MUL((p), (z)), (c))

#define PF_PHILOX_M0 0xD2511F53u
#define PF_PHILOX_M1 0xCD9E8D57u
#define PF_PHILOX_W0 0x9E3779B9u
#define PF_PHILOX_W1 0xBB67AE85u

typedef struct {
    uint32_t v[4];
} pf_philox_block;

/* Philox 4x32-10 of the counter (counter, 0) under the key `seed`. */
static inline PF_HD pf_philox_block pf_philox(uint64_t counter, uint64_t seed)
{
    uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)PF_PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PF_PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += PF_PHILOX_W0;
        k1 += PF_PHILOX_W1;
    }
    pf_philox_block b = {{c0, c1, c2, c3}};
    return b;
}

/* 53 random bits as a double in [0, 1): exact, no rounding. */
static inline PF_HD double pf_philox_u53(uint32_t hi, uint32_t lo)
{
    uint64_t x = ((uint64_t)hi << 32 | lo) >> 11;
    return (double)x * (1.0 / 9007199254740992.0);
}

/*
 * log(x) for a normal, finite x > 0 (here x = k * 2^-53, 1 <= k <= 2^53).
 * x = 2^e * m with m in [sqrt(1/2), sqrt(2)); with s = (m - 1) / (m + 1),
 * log(m) = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...), and |s| < 0.172 makes
 * the terms up to s^25 enough for double precision (the next is below
 * 2^-60 relative).  e log 2 is added in two parts (a high part with 21
 * significant bits, so e * high is exact) to keep the sum accurate.  Not
 * correctly rounded (about 1 ulp), but the same bits everywhere.
 */
static inline PF_HD double pf_philox_log(double x)
{
    uint64_t bits;
    memcpy(&bits, &x, sizeof(bits));
    int e = (int)(bits >> 52) - 1023;
    bits = (bits & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull;     /* m in [1, 2) */
    double m;
    memcpy(&m, &bits, sizeof(m));
    if (m > 1.4142135623730951) {
        m = PFR_MUL(m, 0.5);                                           /* exact */
        e += 1;
    }
    double f = PFR_SUB(m, 1.0);                                        /* exact (Sterbenz) */
    double s = PFR_DIV(f, PFR_ADD(2.0, f));
    double z = PFR_MUL(s, s);
    /* 2 / (2k + 1) for k = 12 down to 1, in Horner form */
    double p = 2.0 / 25;
    p = PFR_HORNER(p, z, 2.0 / 23);
    p = PFR_HORNER(p, z, 2.0 / 21);
    p = PFR_HORNER(p, z, 2.0 / 19);
    p = PFR_HORNER(p, z, 2.0 / 17);
    p = PFR_HORNER(p, z, 2.0 / 15);
    p = PFR_HORNER(p, z, 2.0 / 13);
    p = PFR_HORNER(p, z, 2.0 / 11);
    p = PFR_HORNER(p, z, 2.0 / 9);
    p = PFR_HORNER(p, z, 2.0 / 7);
    p = PFR_HORNER(p, z, 2.0 / 5);
    p = PFR_HORNER(p, z, 2.0 / 3);
    double logm = PFR_ADD(PFR_MUL(s, 2.0), PFR_MUL(PFR_MUL(s, z), p));
    double de = (double)e;
    return PFR_ADD(PFR_MUL(de, 0.693146705627441406250),
                   PFR_ADD(PFR_MUL(de, 4.7493250390316726e-07), logm));
}

/*
 * sin and cos of 2 pi u for u in [0, 1).  4u = q + t with q the nearest
 * integer and |t| <= 1/2 (both exact), so the angle is q quarter turns
 * plus th = t pi / 2 with |th| <= pi / 4; the Taylor series of sin and cos
 * up to th^19 and th^18 are then within 2^-60 of the truth.
 */
static inline PF_HD void pf_philox_sincos_turn(double u, double *s_out, double *c_out)
{
    double u4 = PFR_MUL(u, 4.0);                                       /* exact */
    double qf = (double)(int64_t)PFR_ADD(u4, 0.5);                     /* u4 >= 0: rounds */
    double t = PFR_SUB(u4, qf);                                        /* exact */
    int q = (int)qf & 3;
    double th = PFR_MUL(t, 1.5707963267948966);
    double z = PFR_MUL(th, th);
    /*
     * sin th = th + th z ps, ps = -1/3! + z/5! - ... - z^8/19!;
     * cos th = 1 - z pc,     pc = 1/2! - z/4! + ... + z^8/18!
     * (the coefficients are 1/n! rounded to double)
     */
    double ps = -8.22063524662433e-18, pc = 1.5619206968586225e-16;
    ps = PFR_HORNER(ps, z, 2.8114572543455206e-15);
    pc = PFR_HORNER(pc, z, -4.779477332387385e-14);
    ps = PFR_HORNER(ps, z, -7.647163731819816e-13);
    pc = PFR_HORNER(pc, z, 1.1470745597729725e-11);
    ps = PFR_HORNER(ps, z, 1.6059043836821613e-10);
    pc = PFR_HORNER(pc, z, -2.08767569878681e-09);
    ps = PFR_HORNER(ps, z, -2.505210838544172e-08);
    pc = PFR_HORNER(pc, z, 2.755731922398589e-07);
    ps = PFR_HORNER(ps, z, 2.7557319223985893e-06);
    pc = PFR_HORNER(pc, z, -2.48015873015873e-05);
    ps = PFR_HORNER(ps, z, -0.0001984126984126984);
    pc = PFR_HORNER(pc, z, 0.001388888888888889);
    ps = PFR_HORNER(ps, z, 0.008333333333333333);
    pc = PFR_HORNER(pc, z, -0.041666666666666664);
    ps = PFR_HORNER(ps, z, -0.16666666666666666);
    pc = PFR_HORNER(pc, z, 0.5);
    double sn = PFR_ADD(th, PFR_MUL(PFR_MUL(th, z), ps));
    double cs = PFR_SUB(1.0, PFR_MUL(z, pc));
    switch (q) {
    case 0: *s_out = sn; *c_out = cs; break;
    case 1: *s_out = cs; *c_out = -sn; break;
    case 2: *s_out = -sn; *c_out = -cs; break;
    default: *s_out = -cs; *c_out = sn; break;
    }
}

/* The kinds of draw: rand/uniform, randn/normal, randint. */
enum { PF_RNG_UNIFORM = 0, PF_RNG_NORMAL = 1, PF_RNG_INT = 2 };

/*
 * One draw: its distribution and the generator state it starts from.
 * Also the argument of the CUDA library's rng entry points (pf_cuda.h).
 */
typedef struct pf_rng_dist {
    int kind;               /* PF_RNG_UNIFORM, PF_RNG_NORMAL, PF_RNG_INT */
    double a, b;            /* uniform: low, high; normal: mean, std */
    int64_t low;            /* int: low + [0, range) */
    uint64_t range;
    uint64_t seed, offset;  /* element i comes from block offset + i / 2 */
} pf_rng_dist;

/*
 * The two samples of block j (elements 2j and 2j + 1), in double, or in
 * int64 for PF_RNG_INT.  One Philox call serves both; for normals one log
 * and one sin/cos pair (Box-Muller: the even element takes the cosine, the
 * odd one the sine).
 */
static inline PF_HD void pf_rng_sample_pair(const pf_rng_dist *d, uint64_t j, double fv[2],
                                            int64_t iv[2])
{
    pf_philox_block b = pf_philox(d->offset + j, d->seed);
    if (d->kind == PF_RNG_UNIFORM) {
        double w = PFR_SUB(d->b, d->a);
        for (int k = 0; k < 2; k++) {
            fv[k] = PFR_ADD(d->a, PFR_MUL(w, pf_philox_u53(b.v[2 * k], b.v[2 * k + 1])));
        }
    }
    else if (d->kind == PF_RNG_NORMAL) {
        double u1 = PFR_SUB(1.0, pf_philox_u53(b.v[0], b.v[1]));    /* (0, 1]: log is finite */
        double u2 = pf_philox_u53(b.v[2], b.v[3]);
        double r = PFR_SQRT(PFR_MUL(-2.0, pf_philox_log(u1))), s, c;
        pf_philox_sincos_turn(u2, &s, &c);
        double br = PFR_MUL(d->b, r);
        fv[0] = PFR_ADD(d->a, PFR_MUL(br, c));
        fv[1] = PFR_ADD(d->a, PFR_MUL(br, s));
    }
    else {
        /* multiply-shift maps 64 random bits onto [0, range) */
        for (int k = 0; k < 2; k++) {
            uint64_t x = (uint64_t)b.v[2 * k] << 32 | b.v[2 * k + 1];
#if defined(__CUDA_ARCH__)
            uint64_t hi = __umul64hi(x, d->range);
#else
            uint64_t hi = (uint64_t)(((unsigned __int128)x * d->range) >> 64);
#endif
            iv[k] = (int64_t)((uint64_t)d->low + hi);
        }
    }
}

/* The uniforms of rand for block `block`, for draws made elsewhere (dropout masks). */
static inline PF_HD void pf_rng_uniform_pair(uint64_t seed, uint64_t block, double out[2])
{
    pf_philox_block b = pf_philox(block, seed);
    out[0] = pf_philox_u53(b.v[0], b.v[1]);
    out[1] = pf_philox_u53(b.v[2], b.v[3]);
}

/* The value dropout keeps an element with: 1 / (1 - p), rounded the same everywhere. */
static inline PF_HD double pf_rng_dropout_scale(double p)
{
    return PFR_DIV(1.0, PFR_SUB(1.0, p));
}

/*
 * A 16-bit float pattern (float16 or bfloat16: sign in bit 15) one step
 * toward -inf, for keeping uniform samples below `high` after rounding.
 */
static inline PF_HD uint16_t pf_rng_step_down16(uint16_t h)
{
    if ((h & 0x7fff) == 0) {
        return 0x8001;              /* below +-0: the smallest negative */
    }
    return (h & 0x8000) ? (uint16_t)(h + 1) : (uint16_t)(h - 1);
}

#endif
