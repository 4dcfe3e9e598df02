/*
 * backward_linalg.c -- backward rules of the linalg family of the op table.
 */
#include "backward.h"

const pf_bw_fn pf_bw_linalg_rules[PF_OP_COUNT] = {
    [0] = NULL,
};
