"""Gradient rows of the convolution and pooling ops (rules in csrc/backward_conv.c).

Every public op and every helper its rules are written with has rows here,
so gradgradcheck reaches the helpers' own rules.  Inputs are tiny: gradcheck
perturbs every entry.  Rows marked "cl" feed a channels-last view (an NHWC
leaf permuted to NCHW), which takes the kernels' pixel-major path; the
driver's strided leaves (reversed strides) take the generic path.
"""
import numpy as np

import pyframe as pf
from grad_rows import GradRow


def _distinct(*shapes):
    """Inputs whose values differ by at least 0.05, so that no max-pool window ties
    within the finite-difference step."""
    def make(rng):
        out = []
        for s in shapes:
            n = int(np.prod(s))
            out.append(rng.permutation(n).reshape(s) * 0.05 - n * 0.025)
        return out
    return make


def _nchw(t):
    """An NHWC leaf seen as NCHW (channels-last memory)."""
    return t.permute(0, 3, 1, 2)


ROWS = [
    # conv2d: bias, stride, padding, dilation, groups, "same" with an even kernel
    GradRow("conv2d", lambda x, w, b: pf.conv2d(x, w, b), [(2, 3, 5, 5), (4, 3, 3, 3), (4,)]),
    GradRow("conv2d", lambda x, w: pf.conv2d(x, w, stride=2, padding=1, dilation=(1, 2)),
            [(1, 2, 6, 7), (3, 2, 2, 3)], note="geometry"),
    GradRow("conv2d", lambda x, w, b: pf.conv2d(x, w, b, groups=2),
            [(2, 4, 4, 4), (4, 2, 3, 2), (4,)], note="groups"),
    GradRow("conv2d", lambda x, w: pf.conv2d(x, w, padding="same"), [(1, 2, 4, 5), (2, 2, 2, 3)],
            note="same-even"),
    GradRow("conv2d", lambda x, w: pf.conv2d(_nchw(x), w, padding=1), [(2, 4, 4, 3), (2, 3, 3, 3)],
            note="cl"),
    GradRow("conv2d", lambda x, w: pf.conv2d(_nchw(x), w, groups=3), [(1, 3, 4, 3), (3, 1, 2, 2)],
            note="cl-depthwise"),
    GradRow("conv2d", lambda x, w: pf.conv2d(x, w), [(2, 3, 3, 3), (2, 3, 1, 1)], note="1x1"),
    GradRow("conv2d", lambda x, w: pf.conv2d(x, w, padding=1), [(2, 4, 3), (3, 2, 3, 3)],
            note="unbatched"),
    # conv1d
    GradRow("conv1d", lambda x, w, b: pf.conv1d(x, w, b, stride=2, padding=2, dilation=2),
            [(2, 3, 9), (4, 3, 3), (4,)]),
    GradRow("conv1d", lambda x, w: pf.conv1d(x.permute(0, 2, 1), w, groups=2),
            [(2, 6, 4), (2, 2, 3)], note="cl-groups"),
    # conv_transpose2d
    GradRow("conv_transpose2d", lambda x, w, b: pf.conv_transpose2d(x, w, b, stride=2, padding=1,
                                                                    output_padding=1),
            [(2, 3, 3, 3), (3, 2, 3, 3), (2,)]),
    GradRow("conv_transpose2d", lambda x, w: pf.conv_transpose2d(_nchw(x), w, groups=2,
                                                                 dilation=2),
            [(1, 3, 2, 4), (4, 1, 2, 2)], note="cl-groups"),
    # the helpers, called directly (1-D and 2-D)
    GradRow("_conv", lambda x, w: pf._conv(x, w, (3, 2), 2, (1, 0), 1, 1),
            [(1, 2, 5, 4), (3, 2, 2, 2)]),
    GradRow("_conv", lambda x, w: pf._conv(x, w, (4,), 1, (2,), 2, 2), [(2, 4, 5), (2, 2, 2)],
            note="1d"),
    GradRow("_conv_input_grad", lambda g, w: pf._conv_input_grad(g, w, (5, 4), 2, (1, 1), 1, 1),
            [(2, 3, 3, 2), (3, 2, 3, 2)]),
    GradRow("_conv_input_grad", lambda g, w: pf._conv_input_grad(g, w, (7,), 2, (0,), 1, 2),
            [(1, 4, 3), (4, 1, 3)], note="1d"),
    GradRow("_conv_weight_grad", lambda x, g: pf._conv_weight_grad(x, g, (2, 3), 1, (1, 0), 2, 1),
            [(2, 2, 4, 5), (2, 3, 4, 1)]),
    GradRow("_conv_weight_grad", lambda x, g: pf._conv_weight_grad(_nchw(x), g, (2, 2), 1, 0, 1,
                                                                   2),
            [(1, 3, 3, 4), (1, 2, 2, 2)], note="cl"),
    # pooling: values spaced far apart, so that max windows never tie
    GradRow("max_pool2d", lambda x: pf.max_pool2d(x, 2), [(2, 3, 4, 4)],
            make=_distinct((2, 3, 4, 4))),
    GradRow("max_pool2d", lambda x: pf.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True),
            [(1, 2, 6, 5)], make=_distinct((1, 2, 6, 5)), note="overlap"),
    GradRow("max_pool2d", lambda x: pf.max_pool2d(_nchw(x), (2, 3), stride=1, dilation=(2, 1)),
            [(2, 5, 5, 3)], make=_distinct((2, 5, 5, 3)), note="cl"),
    GradRow("max_pool1d", lambda x: pf.max_pool1d(x, 3, stride=2, padding=1), [(2, 3, 7)],
            make=_distinct((2, 3, 7))),
    GradRow("avg_pool2d", lambda x: pf.avg_pool2d(x, 3, stride=2, padding=1,
                                                  count_include_pad=False, ceil_mode=True),
            [(2, 2, 5, 6)]),
    GradRow("avg_pool2d", lambda x: pf.avg_pool2d(_nchw(x), 2, divisor_override=3),
            [(1, 4, 4, 3)], note="cl-divisor"),
    GradRow("avg_pool1d", lambda x: pf.avg_pool1d(x, 2, padding=1), [(2, 3, 5)]),
    GradRow("_max_pool_backward", lambda g, x: pf._max_pool_backward(g, x, 2, 2, 0, 1, False),
            [(1, 2, 2, 2), (1, 2, 4, 5)], make=_distinct((1, 2, 2, 2), (1, 2, 4, 5))),
    GradRow("_max_pool_select", lambda v, x: pf._max_pool_select(v, x, (3,), (2,), (1,), (1,),
                                                                 True),
            [(2, 2, 6), (2, 2, 6)], make=_distinct((2, 2, 6), (2, 2, 6))),
    GradRow("_avg_pool_backward", lambda g: pf._avg_pool_backward(g, (5, 5), 3, 2, 1, False,
                                                                  False, None),
            [(1, 2, 3, 3)]),
    GradRow("_avg_pool_backward", lambda g: pf._avg_pool_backward(g, (6,), 2, 2, 0, False, True,
                                                                  None),
            [(2, 1, 3)], note="1d"),
]
