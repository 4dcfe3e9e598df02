/*
 * backward_gather.c -- backward rules of the gather family of the op table.
 */
#include "backward.h"

const pf_bw_fn pf_bw_gather_rules[PF_OP_COUNT] = {
    [0] = NULL,
};
