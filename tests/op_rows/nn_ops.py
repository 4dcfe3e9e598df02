"""Rows for normalisation, dropout, losses and attention (csrc/nn_ops.c)."""
import pyframe as pf

T = "tests/test_nn_ops.py::"
GRADS = [T + "test_gradients_match_torch_autograd", T + "test_fused_and_composite_backward_agree"]
BAD = T + "test_bad_inputs_name_the_op_and_the_values"

_x = lambda: pf.ones((2, 3))  # noqa: E731
_q = lambda: pf.ones((2, 4))  # noqa: E731
_k = lambda: pf.ones((3, 4))  # noqa: E731
_v = lambda: pf.ones((3, 2))  # noqa: E731


def _attention_bad(fn):
    return [
        (lambda: fn(_q(), pf.ones((3, 5)), _v()), ValueError,
         r"scaled_dot_product_attention: query and key must have the same last dimension \(E\); "
         r"got shapes \(2, 4\) and \(3, 5\)"),
        (lambda: fn(_q(), _k(), _v(), pf.ones((3, 3))), ValueError,
         r"attn_mask of shape \(3, 3\) does not broadcast to the attention shape \(2, 3\)"),
        (lambda: fn(_q(), _k(), _v(), pf.ones((2, 3), dtype=pf.int64)), TypeError,
         r"attn_mask must be bool \(True = attend\) or floating point .* got dtype int64"),
        (lambda: fn(pf.ones(4), _k(), _v()), ValueError,
         r"query, key and value need at least 2 dimensions .* got shapes \(4,\), \(3, 4\) and "
         r"\(3, 2\)"),
        (lambda: fn(pf.ones((2, 2, 4)), pf.ones((3, 3, 4)), pf.ones((3, 3, 2))), ValueError,
         r"the batch dimensions .* of query \(2, 2, 4\), key \(3, 3, 4\) and value \(3, 3, 2\) "
         r"do not broadcast together"),
    ]


ROWS = {
    "layer_norm": {
        "tests": [T + "test_layer_norm_matches_numpy", T + "test_norms_match_torch",
                  T + "test_batch_and_layer_norm_are_stable_for_a_large_mean",
                  T + "test_half_precision_inputs_compute_in_float32",
                  T + "test_norm_results_do_not_depend_on_the_thread_count", BAD] + GRADS,
        "bad": [
            (lambda: pf.layer_norm(_x(), (4,)), ValueError,
             r"layer_norm: normalized_shape \(4,\) must equal the last 1 dimension\(s\) of the "
             r"input; got input shape \(2, 3\) \(expected \(\*, 4\)\)"),
            (lambda: pf.layer_norm(_x(), ()), ValueError, r"layer_norm: normalized_shape is empty"),
            (lambda: pf.layer_norm(_x(), 3, pf.ones((1, 3))), ValueError,
             r"layer_norm: weight must have the normalized shape \(3,\); got shape \(1, 3\)"),
            (lambda: pf.layer_norm(pf.ones(3, dtype=pf.int64), 3), TypeError,
             r"layer_norm: input must be a floating-point tensor; got dtype int64"),
        ],
    },
    "rms_norm": {
        "tests": [T + "test_rms_norm_and_group_norm_match_numpy", T + "test_norms_match_torch",
                  T + "test_half_precision_inputs_compute_in_float32"] + GRADS,
        "bad": [
            (lambda: pf.rms_norm(_x(), (2, 2)), ValueError,
             r"rms_norm: normalized_shape \(2, 2\) must equal the last 2 dimension\(s\) of the "
             r"input; got input shape \(2, 3\) \(expected \(\*, 2, 2\)\)"),
            (lambda: pf.rms_norm(_x(), 3, eps="small"), TypeError,
             r"rms_norm: eps must be a real number; got str"),
        ],
    },
    "group_norm": {
        "tests": [T + "test_rms_norm_and_group_norm_match_numpy", T + "test_norms_match_torch",
                  T + "test_batch_and_layer_norm_are_stable_for_a_large_mean",
                  T + "test_norm_results_do_not_depend_on_the_thread_count", BAD] + GRADS,
        "bad": [
            (lambda: pf.group_norm(pf.ones((2, 6, 3)), 4), ValueError,
             r"group_norm: the 6 channels of input shape \(2, 6, 3\) do not divide into "
             r"num_groups=4 groups; pick a num_groups that divides 6"),
            (lambda: pf.group_norm(pf.ones(6), 2), ValueError,
             r"group_norm: input must have at least 2 dimensions \(N, C, \*\); got shape \(6,\)"),
            (lambda: pf.group_norm(_x(), 0), ValueError,
             r"group_norm: num_groups must be a positive integer; got 0"),
            (lambda: pf.group_norm(_x(), 3, pf.ones(2)), ValueError,
             r"group_norm: weight must have shape \(3,\) \(one value per channel\); got shape "
             r"\(2,\)"),
        ],
    },
    "batch_norm": {
        "tests": [T + "test_batch_norm_training_updates_running_statistics",
                  T + "test_norms_match_torch",
                  T + "test_batch_and_layer_norm_are_stable_for_a_large_mean",
                  T + "test_running_buffers_stay_out_of_autograd",
                  T + "test_empty_inputs_and_zero_channels",
                  T + "test_no_tensor_outlives_a_training_step",
                  T + "test_norm_results_do_not_depend_on_the_thread_count", BAD] + GRADS,
        "bad": [
            (lambda: pf.batch_norm(_x(), None, None), ValueError,
             r"batch_norm: running_mean and running_var are needed in eval mode"),
            (lambda: pf.batch_norm(pf.ones((1, 3)), None, None, training=True), ValueError,
             r"batch_norm: expected more than 1 value per channel when training; got input "
             r"shape \(1, 3\) \(axis 1\)"),
            (lambda: pf.batch_norm(_x(), pf.zeros(2), pf.ones(3)), ValueError,
             r"batch_norm: running_mean must have shape \(3,\) \(one value per channel\); got "
             r"shape \(2,\)"),
            (lambda: pf.batch_norm(_x(), pf.zeros(3), None), ValueError,
             r"batch_norm: pass both running_mean and running_var, or neither"),
            (lambda: pf.batch_norm(_x(), None, None, training=True, axis=2), IndexError,
             r"batch_norm: axis 2 is out of range for a tensor with 2 dimension\(s\)"),
            (lambda: pf.batch_norm(_x(), pf.zeros(3), pf.ones(3).broadcast_to((3,)),
                                   training=True, momentum="fast"), TypeError,
             r"batch_norm: momentum must be a real number; got str"),
        ],
    },
    "dropout": {
        "tests": [T + "test_dropout_mask_is_the_generators_draw",
                  T + "test_dropout_same_mask_on_one_and_two_threads",
                  T + "test_dropout_gradient_is_the_mask", BAD],
        "bad": [
            (lambda: pf.dropout(_x(), 1.5), ValueError,
             r"dropout: p must be a probability in \[0, 1\]; got 1.5"),
            (lambda: pf.dropout(_x(), -0.1), ValueError,
             r"dropout: p must be a probability in \[0, 1\]; got -0.1"),
            (lambda: pf.dropout(pf.ones(3, dtype=pf.int32)), TypeError,
             r"dropout: input must be a floating-point tensor; got dtype int32"),
            (lambda: pf.dropout(_x(), inplace=True), ValueError,
             r"dropout: inplace=True is not supported"),
        ],
    },
    "cross_entropy": {
        "tests": [T + "test_cross_entropy_matches_numpy",
                  T + "test_cross_entropy_is_stable_for_large_logits",
                  T + "test_class_losses_match_torch", BAD] + GRADS,
        "bad": [
            (lambda: pf.cross_entropy(_x(), pf.tensor([0, 3])), IndexError,
             r"cross_entropy: target 3 is out of range for 3 classes; class indices must be in "
             r"\[0, 3\) or equal ignore_index \(-100\)"),
            (lambda: pf.cross_entropy(_x(), pf.tensor([[0, 1]])), ValueError,
             r"cross_entropy: target shape \(1, 2\) does not match input shape \(2, 3\)"),
            (lambda: pf.cross_entropy(_x(), pf.tensor([True, False])), TypeError,
             r"cross_entropy: target must hold integer class indices \(or class probabilities "
             r"of the input's shape\); got dtype bool"),
            (lambda: pf.cross_entropy(pf.ones(()), pf.tensor(0)), ValueError,
             r"cross_entropy: input must have a class dimension"),
            (lambda: pf.cross_entropy(_x(), pf.tensor([0, 1]), pf.ones(2)), ValueError,
             r"cross_entropy: weight must have shape \(3,\) \(one value per class\); got shape "
             r"\(2,\)"),
            (lambda: pf.cross_entropy(_x(), pf.tensor([0, 1]), reduction="avg"), ValueError,
             r"cross_entropy: reduction must be 'none', 'mean' or 'sum'; got 'avg'"),
        ],
    },
    "nll_loss": {
        "tests": [T + "test_nll_loss_matches_numpy", T + "test_class_losses_match_torch", BAD],
        "bad": [
            (lambda: pf.nll_loss(_x(), pf.tensor([0.0, 1.0])), TypeError,
             r"nll_loss: target must hold integer class indices; got dtype float32"),
            (lambda: pf.nll_loss(_x(), pf.tensor([0, 7])), IndexError,
             r"nll_loss: target 7 is out of range for 3 classes"),
            (lambda: pf.nll_loss(_x(), pf.tensor([0, 1]), ignore_index=1.5), TypeError,
             r"nll_loss: ignore_index must be an integer; got float"),
        ],
    },
    "binary_cross_entropy": {
        "tests": [T + "test_binary_cross_entropies_match_torch",
                  T + "test_binary_cross_entropies_extremes", BAD],
        "bad": [
            (lambda: pf.binary_cross_entropy(_x() * 1.5, _x()), ValueError,
             r"binary_cross_entropy: input values must be probabilities in \[0, 1\]; got 1.5"),
            (lambda: pf.binary_cross_entropy(_x(), pf.ones(3)), ValueError,
             r"binary_cross_entropy: target shape \(3,\) differs from input shape \(2, 3\)"),
            (lambda: pf.binary_cross_entropy(_x(), _x(), pf.ones(4)), ValueError,
             r"binary_cross_entropy: weight of shape \(4,\) does not broadcast to the input "
             r"shape \(2, 3\)"),
        ],
    },
    "binary_cross_entropy_with_logits": {
        "tests": [T + "test_binary_cross_entropies_match_torch",
                  T + "test_binary_cross_entropies_extremes", BAD] + GRADS,
        "bad": [
            (lambda: pf.binary_cross_entropy_with_logits(_x(), pf.ones(3)), ValueError,
             r"binary_cross_entropy_with_logits: target shape \(3,\) differs from input shape "
             r"\(2, 3\)"),
            (lambda: pf.binary_cross_entropy_with_logits(_x(), _x(), pos_weight=pf.ones(2)),
             ValueError, r"binary_cross_entropy_with_logits: pos_weight of shape \(2,\) does "
                         r"not broadcast to the input shape \(2, 3\)"),
        ],
    },
    "mse_loss": {
        "tests": [T + "test_pointwise_losses_match_numpy"],
        "bad": [
            (lambda: pf.mse_loss(_x(), pf.ones(4)), ValueError,
             r"mse_loss: shapes \(2, 3\) and \(4,\) cannot be broadcast together"),
            (lambda: pf.mse_loss(pf.ones(2, dtype=pf.int64), pf.ones(2, dtype=pf.int32)),
             TypeError, r"mse_loss: input and target must be floating point .* got dtypes int64 "
                        r"and int32"),
        ],
    },
    "l1_loss": {
        "tests": [T + "test_pointwise_losses_match_numpy"],
        "bad": [(lambda: pf.l1_loss(_x(), _x(), reduction=None), ValueError,
                 r"l1_loss: reduction must be 'none', 'mean' or 'sum'; got None")],
    },
    "huber_loss": {
        "tests": [T + "test_pointwise_losses_match_numpy", BAD],
        "bad": [(lambda: pf.huber_loss(_x(), _x(), delta=0.0), ValueError,
                 r"huber_loss: delta must be positive; got 0")],
    },
    "smooth_l1_loss": {
        "tests": [T + "test_pointwise_losses_match_numpy", BAD],
        "bad": [(lambda: pf.smooth_l1_loss(_x(), _x(), beta=-1.0), ValueError,
                 r"smooth_l1_loss: beta must be >= 0; got -1")],
    },
    "scaled_dot_product_attention": {
        "tests": [T + "test_attention_matches_numpy", T + "test_attention_matches_torch",
                  T + "test_attention_in_several_chunks", T + "test_empty_inputs_and_zero_channels",
                  T + "test_attention_dropout_uses_the_generators_draw", BAD] + GRADS,
        "bad": _attention_bad(pf.scaled_dot_product_attention) + [
            (lambda: pf.scaled_dot_product_attention(_q(), _k(), _v(), pf.ones((2, 3)) > 0,
                                                     is_causal=True), ValueError,
             r"scaled_dot_product_attention: pass either attn_mask or is_causal=True, not both"),
        ],
    },
    "_attention": {
        "tests": [T + "test_attention_matches_numpy",
                  T + "test_attention_dropout_uses_the_generators_draw"] + GRADS,
        "bad": _attention_bad(pf._attention) + [
            (lambda: pf._attention(_q(), _k(), _v(), seed=1.5), TypeError,
             r"scaled_dot_product_attention: seed must be an int; got float"),
        ],
    },
}
