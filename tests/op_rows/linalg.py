"""Rows for the linear-algebra ops (csrc/linalg.c)."""
import pyframe as pf

T = "tests/test_linalg.py::"

ROWS = {
    "matmul": {
        "tests": [T + "test_matmul_matches_numpy", T + "test_matmul_bigger_shapes_every_path",
                  T + "test_matmul_transposed_operands_are_not_copied",
                  T + "test_matmul_k_zero_gives_zeros", T + "test_matmul_integers_wrap_like_numpy",
                  T + "test_matmul_bool_is_or_of_and", T + "test_matmul_out",
                  T + "test_matmul_out_aliasing_an_input",
                  T + "test_matmul_out_full_of_nan_is_overwritten", T + "test_imatmul",
                  T + "test_matmul_bad_input"],
        "bad": [
            (lambda: pf.matmul(pf.ones((2, 3)), pf.ones((4, 5))), ValueError,
             r"matmul: shapes \(2, 3\) and \(4, 5\) are not aligned: dimension 1 of a \(3\) != "
             r"dimension 0 of b \(4\)"),
            (lambda: pf.matmul(pf.ones((2, 2, 3)), pf.ones((3, 3, 5))), ValueError,
             r"matmul: the batch dimensions of shapes \(2, 2, 3\) and \(3, 3, 5\) cannot be "
             r"broadcast"),
            (lambda: pf.matmul(pf.ones(3), 2.0), ValueError, r"matmul: operand b is 0-d"),
            (lambda: pf.matmul(pf.ones((2, 3)), pf.ones((3, 3)), out=pf.ones((2, 2))), ValueError,
             r"matmul: the output has shape \(2, 2\) but the result has shape \(2, 3\)"),
            (lambda: pf.matmul(pf.ones((2, 3)), pf.ones((3, 3)),
                               out=pf.ones((2, 3), dtype=pf.int64)), TypeError,
             r"matmul: the result has dtype float32, which cannot be stored in the int64 output"),
        ],
    },
    "mm": {
        "tests": [T + "test_mm_and_bmm"],
        "bad": [
            (lambda: pf.mm(pf.ones(3), pf.ones((3, 4))), ValueError,
             r"mm: expected two 2-D tensors; got shapes \(3,\) and \(3, 4\)"),
            (lambda: pf.mm(pf.ones((3, 4)), pf.ones((3, 4))), ValueError,
             r"mm: shapes \(3, 4\) and \(3, 4\) are not aligned"),
        ],
    },
    "bmm": {
        "tests": [T + "test_mm_and_bmm"],
        "bad": [
            (lambda: pf.bmm(pf.ones((2, 3, 4)), pf.ones((1, 4, 2))), ValueError,
             r"bmm: the batch sizes differ: shapes \(2, 3, 4\) and \(1, 4, 2\)"),
            (lambda: pf.bmm(pf.ones((3, 4)), pf.ones((4, 2))), ValueError,
             r"bmm: expected two 3-D tensors; got shapes \(3, 4\) and \(4, 2\)"),
        ],
    },
    "dot": {
        "tests": [T + "test_dot_matches_numpy", T + "test_dot_bad_input"],
        "bad": [
            (lambda: pf.dot(pf.ones((2, 3)), pf.ones((4, 5))), ValueError,
             r"dot: shapes \(2, 3\) and \(4, 5\) are not aligned: dimension 1 of a \(3\) != "
             r"dimension 0 of b \(4\)"),
            (lambda: pf.dot(pf.ones((2, 3)), pf.ones((2, 4, 5))), ValueError,
             r"dot: shapes \(2, 3\) and \(2, 4, 5\) are not aligned"),
        ],
    },
    "outer": {
        "tests": [T + "test_outer_matches_numpy"],
        "bad": [
            (lambda: pf.outer(pf.ones(3)), TypeError, r"outer: missing required argument 'b'"),
            (lambda: pf.outer("ab", pf.ones(3)), TypeError, r"outer: cannot make a tensor from str"),
        ],
    },
    "tensordot": {
        "tests": [T + "test_tensordot_matches_numpy", T + "test_tensordot_bad_input"],
        "bad": [
            (lambda: pf.tensordot(pf.ones((2, 3)), pf.ones((4, 5)), 1), ValueError,
             r"tensordot: shapes \(2, 3\) and \(4, 5\) are not aligned: dimension 1 of a \(3\) "
             r"!= dimension 0 of b \(4\)"),
            (lambda: pf.tensordot(pf.ones((2, 3)), pf.ones((3,)), 3), ValueError,
             r"tensordot: axes=3 but a has 2 and b 1 dimensions"),
            (lambda: pf.tensordot(pf.ones((2, 3)), pf.ones((3, 2)), ([5], [0])), IndexError,
             r"tensordot: axis 5 is out of range"),
        ],
    },
    "einsum": {
        "tests": [T + "test_einsum_matches_numpy", T + "test_einsum_dtypes_and_layouts",
                  T + "test_matmul_transposed_operands_are_not_copied",
                  T + "test_einsum_mixed_dtypes_promote",
                  T + "test_einsum_transpose_and_diagonal_are_views",
                  T + "test_einsum_integer_wraps_like_numpy", T + "test_einsum_bad_input"],
        "bad": [
            (lambda: pf.einsum("ij,jk->ik", pf.ones((2, 3))), ValueError,
             r"einsum: subscripts 'ij,jk->ik' name 2 operand\(s\) but 1 were given"),
            (lambda: pf.einsum("i1", pf.ones((2, 3))), ValueError,
             r"einsum: invalid character '1' in subscripts 'i1'"),
            (lambda: pf.einsum("i->k", pf.ones(3)), ValueError,
             r"einsum: output subscript 'k' of 'i->k' appears in no input"),
            (lambda: pf.einsum("i,i", pf.ones(3), pf.ones(4)), ValueError,
             r"einsum: subscript 'i' has size 3 in operand 0 but 4 in operand 1"),
            (lambda: pf.einsum("ijk", pf.ones((2, 3))), ValueError,
             r"einsum: operand 0 has shape \(2, 3\) \(2 dimensions\) but its subscripts name 3"),
        ],
    },
}
