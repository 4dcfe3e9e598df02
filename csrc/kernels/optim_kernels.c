/*
 * optim_kernels.c -- the element loops of the fused optimizer updates, for
 * float32 and float64 (see optim_kernels.h for the contract and
 * optim_loops.h for the formulas).
 *
 * The loops are compiled for AVX-512, AVX2 and a portable baseline
 * (target_clones; the CPU picks at load time).  -fno-math-errno (setup.py)
 * lets sqrt vectorise; nothing here relies on -ffast-math, so NaN and inf
 * propagate as in the reference implementations.
 */
/*
 * No a * b + c fused into one fma, in any clone (AVX-512 has FMA): the CUDA
 * library runs these same loops (cuda/optim.cu, built with -fmad=false), and
 * both must round alike for a device step to equal the cpu's.  The loops
 * stream five arrays, so the fma would not make them faster anyway.
 */
#pragma GCC optimize("fp-contract=off")
#include "optim_kernels.h"
#include <math.h>
#include <stddef.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(PYFRAME_SANITIZE)
#define PF_CLONES __attribute__((target_clones("default", "avx2", "avx512f")))
#else
#define PF_CLONES
#endif

/* the loops are host-only here; cuda/optim.cu compiles them for both sides */
#define PF_HD

#define T float
#define S f32
#define SQRT sqrtf
#include "optim_loops.h"
#undef T
#undef S
#undef SQRT

#define T double
#define S f64
#define SQRT sqrt
#include "optim_loops.h"
#undef T
#undef S
#undef SQRT

static const pf_optim_loop loops[PF_OPTIM_NALGOS][2] = {
    [PF_OPTIM_SGD] = {sgd_f32, sgd_f64},
    [PF_OPTIM_ADAM] = {adam_f32, adam_f64},
    [PF_OPTIM_RMSPROP] = {rmsprop_f32, rmsprop_f64},
    [PF_OPTIM_ADAGRAD] = {adagrad_f32, adagrad_f64},
    [PF_OPTIM_ADAMAX] = {adamax_f32, adamax_f64},
    [PF_OPTIM_NADAM] = {nadam_f32, nadam_f64},
    [PF_OPTIM_LION] = {lion_f32, lion_f64},
};

pf_optim_loop pf_optim_get_loop(pf_optim_algo algo, int is_double)
{
    if ((int)algo < 0 || algo >= PF_OPTIM_NALGOS) {
        return NULL;
    }
    return loops[algo][is_double ? 1 : 0];
}

double pf_optim_sumsq(const void *x, int64_t n, int is_double)
{
    return is_double ? sumsq_f64(x, n) : sumsq_f32(x, n);
}
