"""Rows for joining, splitting and reordering ops (csrc/shape_ops.c)."""
import pyframe as pf

T = "tests/test_shape_ops.py::"


def _x():
    return pf.zeros(2, 3)


ROWS = {
    "concatenate": {
        "tests": [T + "test_concatenate_matches_numpy", T + "test_concatenate_flat_matches_numpy",
                  T + "test_large_inputs_match_numpy", T + "test_aliases_and_methods"],
        "bad": [
            (lambda: pf.concatenate([_x(), pf.zeros(2, 4)]), ValueError,
             r"concatenate: input 1 has shape \(2, 4\) but input 0 has shape \(2, 3\); every "
             r"dimension except the concatenation axis 0 must match"),
            (lambda: pf.concatenate([_x(), _x(), pf.zeros(2, 3, 1)], axis=1), ValueError,
             r"concatenate: input 2 has 3 dimension\(s\) \(shape \(2, 3, 1\)\) but input 0 has "
             r"2 \(shape \(2, 3\)\)"),
            (lambda: pf.concatenate([_x(), _x()], axis=2), IndexError,
             r"concatenate: axis 2 is out of range for a tensor with 2 dimension\(s\)"),
            (lambda: pf.concatenate([]), ValueError,
             r"concatenate: need at least one tensor; got an empty sequence"),
            (lambda: pf.concatenate(3), TypeError,
             r"concatenate: expected a sequence \(list or tuple\) of tensors; got int"),
            (lambda: pf.concatenate([pf.tensor(1.0), pf.tensor(2.0)]), ValueError,
             r"concatenate: input 0 is 0-d \(a scalar\)"),
        ],
    },
    "stack": {
        "tests": [T + "test_stack_matches_numpy"],
        "bad": [
            (lambda: pf.stack([_x(), _x(), pf.zeros(3, 2)]), ValueError,
             r"stack: input 2 has shape \(3, 2\) but input 0 has shape \(2, 3\); all inputs "
             r"must have the same shape"),
            (lambda: pf.stack([_x(), _x()], axis=3), IndexError,
             r"stack: axis 3 is out of range for a tensor with 3 dimension\(s\)"),
            (lambda: pf.stack([pf.zeros(*[1] * 8)]), ValueError,
             r"stack: inputs of shape \(1, 1, 1, 1, 1, 1, 1, 1\) would give a result with 9 "
             r"dimensions"),
        ],
    },
    "split": {
        "tests": [T + "test_split_matches_numpy"],
        "bad": [
            (lambda: pf.split(pf.zeros(7), 3), ValueError,
             r"split: axis 0 of size 7 cannot be split into 3 equal sections"),
            (lambda: pf.split(pf.zeros(6), 0), ValueError,
             r"split: the number of sections must be > 0; got 0"),
            (lambda: pf.split(_x(), 2, axis=-3), IndexError,
             r"split: axis -3 is out of range for a tensor with 2 dimension\(s\)"),
            (lambda: pf.split(_x(), [1.5]), TypeError,
             r"split: split point must be an integer; got float"),
        ],
    },
    "chunk": {
        "tests": [T + "test_chunk_matches_torch"],
        "bad": [
            (lambda: _x().chunk(0), ValueError, r"chunk: chunks must be > 0; got 0"),
            (lambda: _x().chunk(2, axis=2), IndexError,
             r"chunk: axis 2 is out of range for a tensor with 2 dimension\(s\)"),
        ],
    },
    "tile": {
        "tests": [T + "test_tile_matches_numpy", T + "test_large_inputs_match_numpy"],
        "bad": [
            (lambda: _x().tile((2, -1)), ValueError,
             r"tile: reps must be >= 0; got -1 at position 1"),
            (lambda: _x().tile(1.5), TypeError, r"tile: reps must be an integer; got float"),
            (lambda: _x().tile((1,) * 9), ValueError,
             r"tile: reps has 9 entries; at most 8 are allowed"),
        ],
    },
    "repeat": {
        "tests": [T + "test_repeat_matches_numpy", T + "test_large_inputs_match_numpy",
                  T + "test_aliases_and_methods"],
        "bad": [
            (lambda: _x().repeat([1, 2], axis=1), ValueError,
             r"repeat: repeats has 2 entries but axis 1 has size 3"),
            (lambda: _x().repeat(-2), ValueError, r"repeat: repeats must be >= 0; got -2"),
            (lambda: _x().repeat([1, -1, 0], axis=1), ValueError,
             r"repeat: repeats must be >= 0; got -1 at position 1"),
            (lambda: _x().repeat([1.0, 2.0], axis=0), TypeError,
             r"repeat: repeats must be integers; got dtype float32"),
            (lambda: _x().repeat([[1, 2]], axis=0), ValueError,
             r"repeat: repeats must be an int or a 1-D sequence of ints; got shape \(1, 2\)"),
            (lambda: _x().repeat(2, axis=2), IndexError,
             r"repeat: axis 2 is out of range"),
        ],
    },
    "flip": {
        "tests": [T + "test_flip_matches_numpy_and_is_a_view"],
        "bad": [
            (lambda: _x().flip(2), IndexError,
             r"flip: axis 2 is out of range for a tensor with 2 dimension\(s\)"),
            (lambda: _x().flip((0, -2)), ValueError, r"flip: axis 0 is given more than once"),
            (lambda: _x().flip(axis=0, dims=0), TypeError, r"flip: give axis or dims, not both"),
        ],
    },
    "roll": {
        "tests": [T + "test_roll_matches_numpy"],
        "bad": [
            (lambda: _x().roll((1, 2, 3), (0, 1)), ValueError,
             r"roll: shift has 3 entries but axis has 2"),
            (lambda: _x().roll(1, 2), IndexError,
             r"roll: axis 2 is out of range for a tensor with 2 dimension\(s\)"),
            (lambda: _x().roll(0.5), TypeError, r"roll: shift must be an integer; got float"),
            (lambda: pf.roll(_x()), TypeError, r"roll: missing required argument 'shift'"),
        ],
    },
    "pad": {
        "tests": [T + "test_pad_matches_numpy"],
        "bad": [
            (lambda: pf.pad(_x(), 2, mode="reflect"), ValueError,
             r"pad: mode 'reflect' needs each pad smaller than the axis it pads; axis 0 has "
             r"size 2 but its pad_width is \(2, 2\)"),
            (lambda: pf.pad(_x(), ((1, 2), (1, 2), (1, 2))), ValueError,
             r"pad: pad_width of shape \(3, 2\) does not fit a tensor with 2 dimension\(s\)"),
            (lambda: pf.pad(_x(), (1, 2, 3)), ValueError,
             r"pad: pad_width of shape \(3,\) does not fit a tensor with 2 dimension\(s\)"),
            (lambda: pf.pad(_x(), ((1, 2), (1,))), ValueError,
             r"pad: the rows of pad_width have different lengths \(2 and 1\)"),
            (lambda: pf.pad(_x(), -1), ValueError,
             r"pad: pad_width must be >= 0; got -1 before axis 0"),
            (lambda: pf.pad(_x(), 1, mode="wrap"), ValueError,
             r"pad: unknown mode 'wrap'; expected 'constant', 'reflect' or 'edge'"),
            (lambda: pf.pad(pf.zeros(0, 3), 1, mode="edge"), ValueError,
             r"pad: cannot pad the empty axis 0 with mode 'edge'"),
            (lambda: pf.pad(_x(), 1, mode="edge", constant_values=1), ValueError,
             r"pad: constant_values only applies to mode='constant'"),
        ],
    },
    "tril": {
        "tests": [T + "test_tril_triu_match_numpy", T + "test_large_inputs_match_numpy"],
        "bad": [
            (lambda: pf.tril(pf.zeros(3)), ValueError,
             r"tril: needs a tensor with at least 2 dimensions .*; got shape \(3,\)"),
            (lambda: _x().tril(0.5), TypeError, r"tril: k must be an integer; got float"),
        ],
    },
    "triu": {
        "tests": [T + "test_tril_triu_match_numpy"],
        "bad": [
            (lambda: pf.triu(pf.tensor(1.0)), ValueError,
             r"triu: needs a tensor with at least 2 dimensions .*; got shape \(\)"),
            (lambda: _x().triu(k=1, diagonal=1), TypeError,
             r"triu: give k or diagonal, not both"),
        ],
    },
    "one_hot": {
        "tests": [T + "test_one_hot_matches_eye", T + "test_large_inputs_match_numpy"],
        "bad": [
            (lambda: pf.one_hot([[0, 1], [4, 1]], 4), IndexError,
             r"one_hot: index 4 at position \(1, 0\) is out of range for num_classes=4; every "
             r"index must be in \[0, 4\)"),
            (lambda: pf.one_hot([0, -1], 3), IndexError,
             r"one_hot: index -1 at position \(1,\) is out of range for num_classes=3"),
            (lambda: pf.one_hot([0, 1], -2), ValueError,
             r"one_hot: num_classes must be >= 0; got -2"),
            (lambda: pf.one_hot(pf.tensor([0.0, 1.0]), 2), TypeError,
             r"one_hot: x must hold integer class indices; got dtype float32"),
            (lambda: pf.one_hot([0, 1], 2, axis=2), IndexError,
             r"one_hot: axis 2 is out of range for a tensor with 2 dimension\(s\)"),
        ],
    },
    "masked_fill": {
        "tests": [T + "test_masked_fill_matches_where", T + "test_large_inputs_match_numpy"],
        "bad": [
            (lambda: _x().masked_fill(pf.ones(2, dtype=pf.bool), 1.0), ValueError,
             r"masked_fill: mask of shape \(2,\) cannot be broadcast to the input's shape "
             r"\(2, 3\)"),
            (lambda: _x().masked_fill(pf.ones(1, 2, 3, dtype=pf.bool), 1.0), ValueError,
             r"masked_fill: mask of shape \(1, 2, 3\) cannot be broadcast to the input's shape "
             r"\(2, 3\)"),
            (lambda: _x().masked_fill(pf.ones(3), 1.0), TypeError,
             r"masked_fill: mask must have dtype bool; got float32"),
            (lambda: _x().masked_fill(pf.ones(3, dtype=pf.bool), pf.ones(2)), ValueError,
             r"masked_fill: value must be a scalar or a one-element tensor; got a tensor of "
             r"shape \(2,\)"),
            (lambda: pf.zeros(3, dtype=pf.uint8).masked_fill(pf.ones(3, dtype=pf.bool), 300),
             ValueError, r"masked_fill: Python integer 300 is out of range for dtype uint8"),
        ],
    },
    "masked_fill_": {
        "tests": [T + "test_masked_fill_matches_where"],
        "bad": [
            (lambda: pf.zeros(3).expand(2, 3).masked_fill_(pf.ones(3, dtype=pf.bool), 1.0),
             RuntimeError, r"masked_fill_: cannot write into an expanded \(broadcast\) tensor"),
            (lambda: pf.masked_fill_([1.0, 2.0], [True, False], 0.0), TypeError,
             r"masked_fill_: input must be a pyframe Tensor to be filled in place; got list"),
            (lambda: _x().masked_fill_(pf.ones(4, dtype=pf.bool), 1.0), ValueError,
             r"masked_fill_: mask of shape \(4,\) cannot be broadcast"),
        ],
    },
    "moveaxis": {
        "tests": [T + "test_moveaxis_matches_numpy", T + "test_aliases_and_methods"],
        "bad": [
            (lambda: _x().moveaxis((0, 1), 0), ValueError,
             r"moveaxis: source has 2 axes but destination has 1"),
            (lambda: _x().moveaxis((0, -2), (0, 1)), ValueError,
             r"moveaxis: axis 0 appears more than once in source"),
            (lambda: _x().moveaxis(0, 2), IndexError,
             r"moveaxis: axis 2 is out of range for a tensor with 2 dimension\(s\)"),
        ],
    },
}
