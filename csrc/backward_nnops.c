/*
 * backward_nnops.c -- backward rules of the normalisation, dropout, losses and attention (nn_ops.c).
 */
#include "backward.h"

const pf_bw_fn pf_bw_nnops_rules[PF_OP_COUNT] = {
    [0] = NULL,
};
