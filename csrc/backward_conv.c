/*
 * backward_conv.c -- backward rules of the convolution and pooling (nn_conv.c).
 */
#include "backward.h"

const pf_bw_fn pf_bw_conv_rules[PF_OP_COUNT] = {
    [0] = NULL,
};
