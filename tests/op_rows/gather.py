"""Rows for gathering, scattering, sorting and searching ops (csrc/gather.c, csrc/sort.c)."""
import numpy as np

import pyframe as pf

T = "tests/test_gather.py::"

ROWS = {
    "take_along_axis": {
        "tests": [T + "test_take_along_axis_matches_numpy",
                  T + "test_take_along_axis_method_default_axis_and_index_dtypes"],
        "bad": [
            (lambda: pf.take_along_axis(pf.ones((3, 4)), [[7]], axis=1), IndexError,
             r"take_along_axis: index 7 is out of bounds for axis 1 with size 4"),
            (lambda: pf.take_along_axis(pf.ones((3, 4)), [0], axis=1), ValueError,
             r"take_along_axis: indices has 1 dimension\(s\) but arr has 2 \(shapes \(1,\) and "
             r"\(3, 4\)\)"),
            (lambda: pf.take_along_axis(pf.ones((3, 4)), pf.ones((3, 1)), axis=1), TypeError,
             r"take_along_axis: indices must be an integer tensor; got dtype float32"),
        ],
    },
    "gather": {
        "tests": [T + "test_gather_matches_torch", T + "test_gather_negative_indices_and_0d"],
        "bad": [
            (lambda: pf.gather(pf.ones((3, 4)), 0, [0, 1]), ValueError,
             r"gather: index has 1 dimension\(s\) but input has 2 \(shapes \(2,\) and \(3, 4\)\)"),
            (lambda: pf.gather(pf.ones((3, 4)), 1, pf.tensor([[0.0]])), TypeError,
             r"gather: index must be an integer tensor; got dtype float32"),
            (lambda: pf.gather(pf.ones((3, 4)), 1, [[4]]), IndexError,
             r"gather: index 4 is out of bounds for axis 1 with size 4"),
        ],
    },
    "put_along_axis": {
        "tests": [T + "test_put_along_axis_matches_numpy",
                  T + "test_put_along_axis_broadcast_values_flat_and_noncontiguous"],
        "bad": [
            (lambda: pf.put_along_axis(np.zeros(3), [0], 1.0, 0), TypeError,
             r"put_along_axis: arr must be a pyframe Tensor \(it is written in place\); got "
             r"numpy.ndarray"),
            (lambda: pf.put_along_axis(pf.ones((3, 4)), [[0], [1], [2]], [1.0, 2.0], 1),
             ValueError, r"put_along_axis: values of shape \(2,\) cannot be broadcast to the "
                         r"indexed shape \(3, 1\)"),
            (lambda: pf.put_along_axis(pf.ones(3), [3], 1.0, 0), IndexError,
             r"put_along_axis: index 3 is out of bounds for axis 0 with size 3"),
        ],
    },
    "scatter": {
        "tests": [T + "test_scatter_matches_torch", T + "test_scatter_value_forms_and_order"],
        "bad": [
            (lambda: pf.scatter(pf.ones((3, 4)), 0, [[0]]), TypeError,
             r"scatter: give exactly one of src \(a tensor or number\) and value"),
            (lambda: pf.scatter(pf.ones((3, 4)), 1, [[0, 1]], pf.ones((1, 1))), ValueError,
             r"scatter: index of shape \(1, 2\) is longer than src of shape \(1, 1\) at "
             r"dimension 1"),
            (lambda: pf.scatter(pf.ones(3), 0, [5], 1.0), IndexError,
             r"scatter: index 5 is out of bounds for axis 0 with size 3"),
        ],
    },
    "scatter_": {
        "tests": [T + "test_scatter_matches_torch", T + "test_scatter_value_forms_and_order"],
        "bad": [
            (lambda: pf.ones((3, 4)).scatter_(0, [[-9]], 1.0), IndexError,
             r"scatter_: index -9 is out of bounds for axis 0 with size 3"),
            (lambda: pf.scatter_(np.zeros(3), 0, [0], 1.0), TypeError,
             r"scatter_: input must be a pyframe Tensor; got numpy.ndarray"),
        ],
    },
    "scatter_add": {
        "tests": [T + "test_scatter_add_matches_torch", T + "test_scatter_value_forms_and_order"],
        "bad": [
            (lambda: pf.scatter_add(pf.ones((3, 4)), 0, [0, 1], pf.ones((3, 4))), ValueError,
             r"scatter_add: index has 1 dimension\(s\) but input has 2"),
            (lambda: pf.scatter_add(pf.ones(3), 0, pf.tensor([0.5]), pf.ones(1)), TypeError,
             r"scatter_add: index must be an integer tensor; got dtype float32"),
        ],
    },
    "scatter_add_": {
        "tests": [T + "test_scatter_add_matches_torch"],
        "bad": [
            (lambda: pf.ones(3).scatter_add_(0, [3], pf.ones(1)), IndexError,
             r"scatter_add_: index 3 is out of bounds for axis 0 with size 3"),
            (lambda: pf.ones(3).broadcast_to((2, 3)).scatter_add_(0, [[0]], pf.ones((1, 1))),
             RuntimeError, r"scatter_add_: cannot write into an expanded \(broadcast\) tensor"),
        ],
    },
    "index_select": {
        "tests": [T + "test_index_select_matches_torch",
                  T + "test_index_select_0d_index_and_input"],
        "bad": [
            (lambda: pf.index_select(pf.ones((3, 4)), 0, [[0]]), ValueError,
             r"index_select: index must be 1-D; got shape \(1, 1\)"),
            (lambda: pf.index_select(pf.ones((3, 4)), 1, [4]), IndexError,
             r"index_select: index 4 is out of bounds for axis 1 with size 4"),
            (lambda: pf.index_select(pf.ones((3, 4)), 2, [0]), IndexError,
             r"index_select: axis 2 is out of range for a tensor with 2 dimension\(s\)"),
        ],
    },
    "take": {
        "tests": [T + "test_take_matches_numpy"],
        "bad": [
            (lambda: pf.take(pf.ones((3, 4)), [12]), IndexError,
             r"take: index 12 is out of bounds for axis 0 with size 12"),
            (lambda: pf.take(pf.ones(3), [0], mode="nearest"), ValueError,
             r"take: mode must be 'raise', 'wrap' or 'clip'; got 'nearest'"),
            (lambda: pf.take(pf.ones(3), [1.0]), TypeError,
             r"take: indices must be an integer tensor; got dtype float32"),
        ],
    },
    "nonzero": {
        "tests": [T + "test_nonzero_and_argwhere_match_numpy",
                  T + "test_nonzero_large_split_across_threads_and_0d"],
        "bad": [
            (lambda: pf.nonzero(pf.tensor(1.0)), ValueError,
             r"nonzero: a 0-d tensor has no dimensions to give indices along"),
            (lambda: pf.nonzero(pf.ones(2), as_tuple="no"), TypeError,
             r"nonzero: as_tuple must be True or False; got str"),
        ],
    },
    "argwhere": {
        "tests": [T + "test_nonzero_and_argwhere_match_numpy",
                  T + "test_nonzero_large_split_across_threads_and_0d"],
        "bad": [
            (lambda: pf.argwhere("abc"), TypeError, r"argwhere: cannot make a tensor from str"),
            (lambda: pf.argwhere(pf.ones(2), 1), TypeError,
             r"argwhere: takes at most 1 positional arguments \(2 given\)"),
        ],
    },
    "sort": {
        "tests": [T + "test_sort_and_argsort_match_numpy_stable",
                  T + "test_descending_sort_matches_torch_stable",
                  T + "test_sort_nan_last_and_signed_zeros_tie",
                  T + "test_sort_every_length_path"],
        "bad": [
            (lambda: pf.sort(pf.ones((3, 4)), axis=2), IndexError,
             r"sort: axis 2 is out of range for a tensor with 2 dimension\(s\)"),
            (lambda: pf.sort(pf.ones(3), kind="bogus"), ValueError,
             r"sort: kind must be 'quicksort', 'mergesort', 'heapsort' or 'stable'"),
            (lambda: pf.sort(pf.tensor(1.0)), IndexError,
             r"sort: axis -1 is out of range for a tensor with 0 dimension\(s\)"),
        ],
    },
    "argsort": {
        "tests": [T + "test_sort_and_argsort_match_numpy_stable",
                  T + "test_descending_sort_matches_torch_stable",
                  T + "test_sort_big_rows_in_parallel_and_keywords"],
        "bad": [
            (lambda: pf.argsort(pf.ones(3), descending="yes"), TypeError,
             r"argsort: descending must be True or False; got str"),
            (lambda: pf.argsort(pf.ones(3), axis=1.5), TypeError,
             r"argsort: axis must be an integer; got float"),
        ],
    },
    "topk": {
        "tests": [T + "test_topk_matches_torch", T + "test_topk_heap_path_on_long_rows"],
        "bad": [
            (lambda: pf.topk(pf.ones((3, 4)), 5), ValueError,
             r"topk: k=5 is out of range for axis 1 of size 4 \(tensor of shape \(3, 4\)\); k "
             r"must be between 0 and 4"),
            (lambda: pf.topk(pf.ones(3), 1.5), TypeError, r"topk: k must be an integer"),
        ],
    },
    "unique": {
        "tests": [T + "test_unique_matches_numpy", T + "test_unique_torch_spellings"],
        "bad": [
            (lambda: pf.unique(pf.ones(3), return_counts="yes"), TypeError,
             r"unique: return_counts must be True or False; got str"),
            (lambda: pf.unique(pf.ones(3), axis=0), TypeError,
             r"unique: unexpected keyword argument 'axis'"),
        ],
    },
    "searchsorted": {
        "tests": [T + "test_searchsorted_matches_numpy",
                  T + "test_searchsorted_promotes_and_batches_like_torch"],
        "bad": [
            (lambda: pf.searchsorted(pf.tensor([1, 2]), 1, side="middle"), ValueError,
             r"searchsorted: side must be 'left' or 'right'; got 'middle'"),
            (lambda: pf.searchsorted(pf.tensor(1), 1), ValueError,
             r"searchsorted: a must be at least 1-D"),
            (lambda: pf.searchsorted(pf.ones((2, 3)), pf.ones((3, 1))), ValueError,
             r"searchsorted: for an N-D a, v must have the same leading dimensions; got a of "
             r"shape \(2, 3\) and v of shape \(3, 1\)"),
        ],
    },
}
