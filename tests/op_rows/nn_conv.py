"""Rows for convolution and pooling (csrc/nn_conv.c) and the helper ops their
backward rules are written with."""
import pyframe as pf

T = "tests/test_nn_conv.py::"
GRADS = "tests/test_grad_table.py::test_gradient"
TORCH = T + "test_values_and_gradients_match_torch"
PATHS = T + "test_kernel_paths_match_torch"
LAYOUT = T + "test_output_layout_follows_input"
HELPERS = T + "test_helpers_are_each_others_adjoints"
POOLS = T + "test_pools_match_numpy"
POOL_GRADS = T + "test_pool_gradients_match_torch"
BAD = T + "test_bad_inputs_raise_clear_errors"


def _x(*shape):
    return pf.ones(shape)


ROWS = {
    "conv2d": {
        "tests": [T + "test_conv2d_matches_numpy", TORCH, PATHS, LAYOUT,
                  T + "test_channels_last_input_is_read_in_place",
                  T + "test_same_results_on_one_and_two_threads",
                  T + "test_half_precision_computes_in_float32",
                  T + "test_unbatched_and_empty_inputs", BAD, GRADS],
        "bad": [
            (lambda: pf.conv2d(_x(1, 5, 6, 6), _x(4, 3, 3, 3)), ValueError,
             r"conv2d: input has 5 channels, but weight of shape \(4, 3, 3, 3\) expects "
             r"in_channels = weight.shape\[1\] \* groups = 3"),
            (lambda: pf.conv2d(_x(1, 3, 2, 2), _x(4, 3, 3, 3), padding="valid"), ValueError,
             r"conv2d: the kernel spans 3 input positions along the height"),
            (lambda: pf.conv2d(_x(1, 3, 6, 6), _x(4, 3, 3, 3), stride=2, padding="same"),
             ValueError, r"conv2d: padding='same' needs stride 1"),
            (lambda: pf.conv2d(_x(6, 6), _x(4, 3, 3, 3)), ValueError,
             r"conv2d: expected input to be 4-D \(N, C, H, W\), or 3-D without the batch "
             r"dimension; got 2-D with shape \(6, 6\)"),
        ],
    },
    "conv1d": {
        "tests": [T + "test_conv1d_matches_numpy", TORCH, T + "test_output_layout_follows_input",
                  T + "test_unbatched_and_empty_inputs", GRADS],
        "bad": [
            (lambda: pf.conv1d(_x(2, 3, 8), _x(4, 3, 3, 3)), ValueError,
             r"conv1d: weight must be 3-D \(out_channels, in_channels / groups, kL\); got 4-D"),
            (lambda: pf.conv1d(_x(2, 3, 8), _x(4, 2, 3)), ValueError,
             r"conv1d: input has 3 channels, but weight of shape \(4, 2, 3\) expects "
             r"in_channels = weight.shape\[1\] \* groups = 2"),
            (lambda: pf.conv1d(_x(2, 3, 2), _x(4, 3, 3)), ValueError,
             r"conv1d: the kernel spans 3 input positions along the length"),
        ],
    },
    "conv_transpose2d": {
        "tests": [T + "test_conv_transpose2d_matches_numpy", TORCH, LAYOUT,
                  T + "test_unbatched_and_empty_inputs", GRADS],
        "bad": [
            (lambda: pf.conv_transpose2d(_x(1, 3, 4, 4), _x(3, 2, 3, 3), stride=2,
                                         output_padding=2), ValueError,
             r"conv_transpose2d: output_padding \(2\) must be smaller than stride \(2\) or "
             r"dilation \(1\) along the height"),
            (lambda: pf.conv_transpose2d(_x(1, 3, 4, 4), _x(4, 2, 3, 3)), ValueError,
             r"conv_transpose2d: input has 3 channels, but weight of shape \(4, 2, 3, 3\) "
             r"expects weight.shape\[0\] = 4"),
            (lambda: pf.conv_transpose2d(_x(1, 3, 4, 4), _x(3, 2, 3, 3), padding="same"),
             ValueError, r"conv_transpose2d: padding must be an int or a sequence of 2 ints; "
             r"got 'same'"),
        ],
    },
    "max_pool2d": {
        "tests": [POOLS, T + "test_pool_paths_over_shapes", T + "test_max_pool_ties_and_nan",
                  POOL_GRADS, LAYOUT, GRADS],
        "bad": [
            (lambda: pf.max_pool2d(_x(1, 1, 4, 4), 2, padding=2), ValueError,
             r"max_pool2d: padding \(2\) must be at most half of the effective kernel size "
             r"\(2\) along the height"),
            (lambda: pf.max_pool2d(_x(1, 1, 2, 2), 3), ValueError,
             r"max_pool2d: the output would be empty along the height: input size 2, "
             r"kernel_size 3"),
            (lambda: pf.max_pool2d(_x(1, 1, 4, 4), 0), ValueError,
             r"max_pool2d: kernel_size must be >= 1; got 0"),
            (lambda: pf.max_pool2d(_x(4, 4), 2), ValueError,
             r"max_pool2d: expected input to be 4-D \(N, C, H, W\), or 3-D without the batch "
             r"dimension; got 2-D with shape \(4, 4\)"),
        ],
    },
    "max_pool1d": {
        "tests": [POOLS, POOL_GRADS, GRADS],
        "bad": [
            (lambda: pf.max_pool1d(_x(1, 1, 4, 4), 2), ValueError,
             r"max_pool1d: expected input to be 3-D \(N, C, L\), or 2-D without the batch "
             r"dimension; got 4-D"),
            (lambda: pf.max_pool1d(_x(1, 1, 4), 2, ceil_mode="yes"), TypeError,
             r"max_pool1d: ceil_mode must be True or False; got str"),
        ],
    },
    "avg_pool2d": {
        "tests": [POOLS, T + "test_pool_paths_over_shapes", POOL_GRADS, LAYOUT, GRADS],
        "bad": [
            (lambda: pf.avg_pool2d(_x(1, 1, 4, 4), 2, divisor_override=0), ValueError,
             r"avg_pool2d: divisor_override must be None or >= 1; got 0"),
            (lambda: pf.avg_pool2d(_x(1, 1, 4, 4), 3, padding=2), ValueError,
             r"avg_pool2d: padding \(2\) must be at most half of the kernel size \(3\)"),
            (lambda: pf.avg_pool2d(_x(1, 1, 4, 4), 2, dilation=2), TypeError,
             r"avg_pool2d: unexpected keyword argument 'dilation'"),
        ],
    },
    "avg_pool1d": {
        "tests": [POOLS, POOL_GRADS, GRADS],
        "bad": [
            (lambda: pf.avg_pool1d(_x(1, 1, 4), (2, 2)), ValueError,
             r"avg_pool1d: kernel_size must be an int or a sequence of 1 int; got a sequence "
             r"of 2"),
            (lambda: pf.avg_pool1d(_x(1, 1, 4), 2, divisor_override=2), TypeError,
             r"avg_pool1d: unexpected keyword argument 'divisor_override'"),
        ],
    },
    "_conv": {
        "tests": [HELPERS, GRADS],
        "bad": [
            (lambda: pf._conv(_x(2, 3, 4, 4, 4), _x(2, 3, 1, 1, 1), (4, 4)), ValueError,
             r"_conv: expected input to be 3-D \(N, C, L\) or 4-D \(N, C, H, W\); got 5-D"),
            (lambda: pf._conv(_x(2, 3, 4, 4), _x(2, 3, 1, 1), (0, 4)), ValueError,
             r"_conv: output_size must be >= 1; got 0"),
        ],
    },
    "_conv_input_grad": {
        "tests": [HELPERS, T + "test_helpers_match_torch_gradients", GRADS],
        "bad": [
            (lambda: pf._conv_input_grad(_x(2, 3, 4, 4), _x(4, 2, 3, 3), (6, 6)), ValueError,
             r"_conv_input_grad: grad has 3 channels, but weight of shape \(4, 2, 3, 3\) expects "
             r"weight.shape\[0\] = 4"),
        ],
    },
    "_conv_weight_grad": {
        "tests": [HELPERS, T + "test_helpers_match_torch_gradients", GRADS],
        "bad": [
            (lambda: pf._conv_weight_grad(_x(2, 3, 6, 6), _x(3, 4, 4, 4), (3, 3)), ValueError,
             r"_conv_weight_grad: grad must be 4-D with the input's batch size; got input "
             r"\(2, 3, 6, 6\) and grad \(3, 4, 4, 4\)"),
        ],
    },
    "_max_pool_backward": {
        "tests": [HELPERS, GRADS],
        "bad": [
            (lambda: pf._max_pool_backward(_x(1, 1, 3, 3), _x(1, 1, 4, 4), 2), ValueError,
             r"_max_pool_backward: grad must have shape \(1, 1, 2, 2\) \(the pooled output's\); "
             r"got \(1, 1, 3, 3\)"),
        ],
    },
    "_max_pool_select": {
        "tests": [HELPERS, GRADS],
        "bad": [
            (lambda: pf._max_pool_select(_x(1, 1, 3, 3), _x(1, 1, 4, 4), 2), ValueError,
             r"_max_pool_select: values must have shape \(1, 1, 4, 4\) \(the input's\); got "
             r"\(1, 1, 3, 3\)"),
        ],
    },
    "_avg_pool_backward": {
        "tests": [HELPERS, GRADS],
        "bad": [
            (lambda: pf._avg_pool_backward(_x(1, 1, 3, 3), (4, 4), 2), ValueError,
             r"_avg_pool_backward: grad must have shape \(1, 1, 2, 2\) \(the pooled output's\); "
             r"got \(1, 1, 3, 3\)"),
        ],
    },
}
