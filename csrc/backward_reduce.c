/*
 * backward_reduce.c -- backward rules of the reduce family of the op table.
 */
#include "backward.h"

const pf_bw_fn pf_bw_reduce_rules[PF_OP_COUNT] = {
    [0] = NULL,
};
