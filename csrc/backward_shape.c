/*
 * backward_shape.c -- backward rules of the shape family of the op table.
 */
#include "backward.h"

const pf_bw_fn pf_bw_shape_rules[PF_OP_COUNT] = {
    [0] = NULL,
};
