/*
 * optim_loops.h -- the optimizer loops for one dtype.  optim_kernels.c
 * includes this file twice, with T = float / S = f32 and T = double /
 * S = f64, so both dtypes share one written-out copy of each formula.
 *
 * Every loop: p (n) parameter, g (n) gradient, s[k] (n) states, all
 * contiguous of type T.  The scalars are rounded to T once, so float32
 * parameters are updated in float32 arithmetic, as torch.optim does.
 *
 * The CUDA library compiles this file too (cuda/optim.cu, with
 * PF_OPTIM_DEVICE_LOOPS defined and PF_HD = __host__ __device__): its kernel
 * calls these same loops with n = 1 at each element, so a device update is
 * the cpu's formula, written once.  That file is built with -fmad=false and
 * optim_kernels.c with fp-contract off: neither fuses a * b + c, so both
 * round alike (IEEE + - * / sqrt) and the updates agree bit for bit.
 */
#ifndef T
#error "optim_loops.h is included by optim_kernels.c with T and S defined"
#endif

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)

/*
 * The shared preamble of every loop: the decayed parameter `pv` and the
 * gradient `gv` after scaling, clipping and L2 decay (see pf_optim_coef).
 * A NaN gradient stays NaN through the clamp (both comparisons are false).
 */
#define PREAMBLE                                                              \
    const T gm = (T)c->gmul, cl = (T)c->clip, l2 = (T)c->l2, dk = (T)c->decay
#define GRAD(i)                                                               \
    T pv = p[i] * dk;                                                         \
    T gv = g[i] * gm;                                                         \
    gv = gv > cl ? cl : (gv < -cl ? -cl : gv);                                \
    gv = gv + l2 * pv

/*
 * SGD.  c[0] a, c[1] b: buf = a * buf + b * g (a = 0, b = 1 on the first
 * step: PyTorch starts the buffer at the gradient); c[2] cb, c[3] e:
 * p += cb * buf + e * g.  PyTorch: cb = -lr (plain) or -lr * momentum with
 * e = -lr (Nesterov); Keras keeps -lr inside the buffer (b = -lr, cb = 1 or
 * momentum, e = 0 or -lr).  Without momentum: p += e * g.
 */
static PF_CLONES PF_HD void CAT(sgd, S)(void *pp, const void *gp, void *const *sp, int64_t n,
                                        const pf_optim_coef *c)
{
    T *restrict p = (T *)pp;
    const T *restrict g = (const T *)gp;
    PREAMBLE;
    const T a = (T)c->c[0], b = (T)c->c[1], cb = (T)c->c[2], e = (T)c->c[3];
    if (c->variant & PF_OPTIM_V_BUF) {
        T *restrict buf = (T *)sp[0];
        for (int64_t i = 0; i < n; i++) {
            GRAD(i);
            T m = a * buf[i] + b * gv;
            buf[i] = m;
            p[i] = pv + cb * m + e * gv;
        }
    }
    else {
        for (int64_t i = 0; i < n; i++) {
            GRAD(i);
            p[i] = pv + e * gv;
        }
    }
}

/*
 * Adam / AdamW (AMSGrad optional).  c[0] 1 - beta1, c[1] beta2,
 * c[2] 1 - beta2, c[3] -step_size, c[4] 1 / d (d divides sqrt(v)), c[5] eps:
 *
 *     m += (1 - b1) (g - m);  v = b2 v + (1 - b2) g^2;  [vmax = max(vmax, v)]
 *     p += -step_size * m / (sqrt(v) / d + eps)
 *
 * PyTorch: step_size = lr / (1 - b1^t), d = sqrt(1 - b2^t).  Keras adds eps
 * to the uncorrected sqrt(v): step_size = lr sqrt(1 - b2^t) / (1 - b1^t),
 * d = 1.  s[0] exp_avg, s[1] exp_avg_sq, s[2] max_exp_avg_sq.  The loop
 * multiplies by 1 / d rather than dividing (one divide fewer per element on
 * the divider that sqrt and the last quotient also need; the denominator
 * moves by at most one rounding from PyTorch's).
 */
static PF_CLONES PF_HD void CAT(adam, S)(void *pp, const void *gp, void *const *sp, int64_t n,
                                         const pf_optim_coef *c)
{
    T *restrict p = (T *)pp;
    const T *restrict g = (const T *)gp;
    T *restrict m = (T *)sp[0];
    T *restrict v = (T *)sp[1];
    PREAMBLE;
    const T w1 = (T)c->c[0], b2 = (T)c->c[1], w2 = (T)c->c[2], nss = (T)c->c[3];
    const T rd = (T)c->c[4], eps = (T)c->c[5];
    if (c->variant & PF_OPTIM_V_AMSGRAD) {
        T *restrict vm = (T *)sp[2];
        for (int64_t i = 0; i < n; i++) {
            GRAD(i);
            T mi = m[i] + w1 * (gv - m[i]);
            T vi = b2 * v[i] + w2 * gv * gv;
            T hi = vm[i] > vi ? vm[i] : vi;
            m[i] = mi;
            v[i] = vi;
            vm[i] = hi;
            p[i] = pv + nss * (mi / (SQRT(hi) * rd + eps));
        }
    }
    else {
        for (int64_t i = 0; i < n; i++) {
            GRAD(i);
            T mi = m[i] + w1 * (gv - m[i]);
            T vi = b2 * v[i] + w2 * gv * gv;
            m[i] = mi;
            v[i] = vi;
            p[i] = pv + nss * (mi / (SQRT(vi) * rd + eps));
        }
    }
}

/*
 * RMSprop.  c[0] alpha, c[1] 1 - alpha, c[2] eps inside the sqrt, c[3] eps
 * outside, c[4] momentum, c[5] k, c[6] j, c[7] -lr:
 *
 *     sq = alpha sq + (1 - alpha) g^2;  [ga += (1 - alpha) (g - ga)]
 *     den = sqrt(sq [- ga^2] + eps_in) + eps_out
 *     momentum: buf = momentum buf + k g / den;  p += j buf
 *     else:     p += -lr g / den
 *
 * PyTorch: eps outside, k = 1, j = -lr; Keras: eps inside, k = lr, j = -1.
 * s[0] square_avg, s[1] momentum_buffer, s[2] grad_avg.
 */
#define RMS_LOOP(CENTERED, BUF)                                               \
    for (int64_t i = 0; i < n; i++) {                                         \
        GRAD(i);                                                              \
        T q = al * sq[i] + w * gv * gv;                                       \
        sq[i] = q;                                                            \
        if (CENTERED) {                                                       \
            T a = ga[i] + w * (gv - ga[i]);                                   \
            ga[i] = a;                                                        \
            q = q - a * a;                                                    \
        }                                                                     \
        T den = SQRT(q + ein) + eout;                                         \
        if (BUF) {                                                            \
            T b = mom * buf[i] + k * (gv / den);                              \
            buf[i] = b;                                                       \
            p[i] = pv + j * b;                                                \
        }                                                                     \
        else {                                                                \
            p[i] = pv + nlr * (gv / den);                                     \
        }                                                                     \
    }

static PF_CLONES PF_HD void CAT(rmsprop, S)(void *pp, const void *gp, void *const *sp, int64_t n,
                                            const pf_optim_coef *c)
{
    T *restrict p = (T *)pp;
    const T *restrict g = (const T *)gp;
    T *restrict sq = (T *)sp[0];
    T *restrict buf = (T *)sp[1];
    T *restrict ga = (T *)sp[2];
    PREAMBLE;
    const T al = (T)c->c[0], w = (T)c->c[1], ein = (T)c->c[2], eout = (T)c->c[3];
    const T mom = (T)c->c[4], k = (T)c->c[5], j = (T)c->c[6], nlr = (T)c->c[7];
    switch (c->variant & (PF_OPTIM_V_BUF | PF_OPTIM_V_CENTERED)) {
    case 0:
        RMS_LOOP(0, 0)
        break;
    case PF_OPTIM_V_BUF:
        RMS_LOOP(0, 1)
        break;
    case PF_OPTIM_V_CENTERED:
        RMS_LOOP(1, 0)
        break;
    default:
        RMS_LOOP(1, 1)
        break;
    }
}
#undef RMS_LOOP

/*
 * Adagrad.  c[0] -clr (PyTorch: lr / (1 + (t - 1) lr_decay)), c[1] eps
 * inside the sqrt (Keras), c[2] eps outside (PyTorch):
 *
 *     sum += g^2;  p += -clr g / (sqrt(sum + eps_in) + eps_out)
 *
 * s[0] sum.
 */
static PF_CLONES PF_HD void CAT(adagrad, S)(void *pp, const void *gp, void *const *sp, int64_t n,
                                            const pf_optim_coef *c)
{
    T *restrict p = (T *)pp;
    const T *restrict g = (const T *)gp;
    T *restrict acc = (T *)sp[0];
    PREAMBLE;
    const T nclr = (T)c->c[0], ein = (T)c->c[1], eout = (T)c->c[2];
    for (int64_t i = 0; i < n; i++) {
        GRAD(i);
        T a = acc[i] + gv * gv;
        acc[i] = a;
        p[i] = pv + nclr * (gv / (SQRT(a + ein) + eout));
    }
}

/*
 * Adamax.  c[0] 1 - beta1, c[1] beta2, c[2] eps inside the max (PyTorch),
 * c[3] eps added to the norm (Keras), c[4] -lr / (1 - beta1^t):
 *
 *     m += (1 - b1) (g - m);  u = max(b2 u, |g| + eps_in)
 *     p += -clr m / (u + eps_out)
 *
 * s[0] exp_avg, s[1] exp_inf.  A NaN gradient makes u NaN (the max keeps
 * its second operand when the comparison fails), as torch.maximum does.
 */
static PF_CLONES PF_HD void CAT(adamax, S)(void *pp, const void *gp, void *const *sp, int64_t n,
                                           const pf_optim_coef *c)
{
    T *restrict p = (T *)pp;
    const T *restrict g = (const T *)gp;
    T *restrict m = (T *)sp[0];
    T *restrict u = (T *)sp[1];
    PREAMBLE;
    const T w1 = (T)c->c[0], b2 = (T)c->c[1], ein = (T)c->c[2], eout = (T)c->c[3];
    const T nclr = (T)c->c[4];
    for (int64_t i = 0; i < n; i++) {
        GRAD(i);
        T mi = m[i] + w1 * (gv - m[i]);
        T a = (gv < 0 ? -gv : gv) + ein;
        T b = b2 * u[i];
        T ui = b > a ? b : a;
        m[i] = mi;
        u[i] = ui;
        p[i] = pv + nclr * (mi / (ui + eout));
    }
}

/*
 * NAdam.  c[0] 1 - beta1, c[1] beta2, c[2] 1 - beta2, c[3] 1 / (1 - beta2^t),
 * c[4] eps, c[5] cg = -lr (1 - mu_t) / (1 - prod mu), c[6] cm = -lr
 * mu_{t+1} / (1 - prod mu * mu_{t+1}):
 *
 *     m += (1 - b1) (g - m);  v = b2 v + (1 - b2) g^2;
 *     den = sqrt(v / (1 - b2^t)) + eps;  p += cg g / den;  p += cm m / den
 *
 * (PyTorch's two addcdiv in its order; Keras computes the same quantity.)
 * s[0] exp_avg, s[1] exp_avg_sq.
 */
static PF_CLONES PF_HD void CAT(nadam, S)(void *pp, const void *gp, void *const *sp, int64_t n,
                                          const pf_optim_coef *c)
{
    T *restrict p = (T *)pp;
    const T *restrict g = (const T *)gp;
    T *restrict m = (T *)sp[0];
    T *restrict v = (T *)sp[1];
    PREAMBLE;
    const T w1 = (T)c->c[0], b2 = (T)c->c[1], w2 = (T)c->c[2], rbc2 = (T)c->c[3];
    const T eps = (T)c->c[4], cg = (T)c->c[5], cm = (T)c->c[6];
    for (int64_t i = 0; i < n; i++) {
        GRAD(i);
        T mi = m[i] + w1 * (gv - m[i]);
        T vi = b2 * v[i] + w2 * gv * gv;
        T den = SQRT(vi * rbc2) + eps;
        m[i] = mi;
        v[i] = vi;
        T q = pv + cg * (gv / den);
        p[i] = q + cm * (mi / den);
    }
}

/*
 * Lion.  c[0] beta1, c[1] 1 - beta1, c[2] beta2, c[3] 1 - beta2, c[4] -lr:
 *
 *     p += -lr sign(b1 m + (1 - b1) g);  m = b2 m + (1 - b2) g
 *
 * sign(0) = 0 and sign(NaN) = NaN (the interpolation itself is returned in
 * both cases).  Weight decay is decoupled (c->decay).  s[0] exp_avg.
 */
static PF_CLONES PF_HD void CAT(lion, S)(void *pp, const void *gp, void *const *sp, int64_t n,
                                         const pf_optim_coef *c)
{
    T *restrict p = (T *)pp;
    const T *restrict g = (const T *)gp;
    T *restrict m = (T *)sp[0];
    PREAMBLE;
    const T b1 = (T)c->c[0], w1 = (T)c->c[1], b2 = (T)c->c[2], w2 = (T)c->c[3];
    const T nlr = (T)c->c[4];
    for (int64_t i = 0; i < n; i++) {
        GRAD(i);
        T u = b1 * m[i] + w1 * gv;
        T sg = u > 0 ? (T)1 : (u < 0 ? (T)-1 : u);
        p[i] = pv + nlr * sg;
        m[i] = b2 * m[i] + w2 * gv;
    }
}

#ifndef PF_OPTIM_DEVICE_LOOPS
/*
 * Sum of squares in double: 16 independent partial sums (so the loop
 * vectorises without reassociating a single sum), folded pairwise.
 * x (n).
 */
static PF_CLONES double CAT(sumsq, S)(const T *restrict x, int64_t n)
{
    double acc[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        for (int j = 0; j < 16; j++) {
            double v = (double)x[i + j];
            acc[j] += v * v;
        }
    }
    for (int j = 0; i < n; i++, j++) {
        double v = (double)x[i];
        acc[j] += v * v;
    }
    for (int w = 8; w >= 1; w /= 2) {
        for (int j = 0; j < w; j++) {
            acc[j] += acc[j + w];
        }
    }
    return acc[0];
}
#endif

#undef PREAMBLE
#undef GRAD
#undef CAT
#undef CAT_
