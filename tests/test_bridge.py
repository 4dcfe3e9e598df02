"""The NumPy / buffer / DLPack / pandas bridge: zero-copy both ways, lifetimes,
refusals with a reason, and NumPy 2's __array__(dtype, copy) contract.

Sharing is checked with np.shares_memory and, more strictly, by writing on
one side and reading on the other.  Lifetimes are checked by deleting the
producer, collecting, then churning allocations of the same size (so a
freed block would be reused and overwritten) before reading the consumer.
"""
import gc

import numpy as np
import pytest

import pyframe as pf
from helpers_views import NATIVE_DTYPES, NATIVE_IDS, assert_same, pair, sample_values, shares


def _churn(nbytes, value=0x5A):
    """Allocate and fill blocks of this size in both allocators, then drop them."""
    keep = []
    for _ in range(64):
        keep.append(pf.full((max(nbytes, 1),), value, dtype=pf.uint8))
        keep.append(np.full(max(nbytes, 1), value, dtype=np.uint8))
    del keep
    gc.collect()


def _other_value(npdtype):
    return True if npdtype == np.bool_ else 77


# ------------------------------------------------------- np.asarray / from_numpy

@pytest.mark.parametrize("pfdtype,npdtype", NATIVE_DTYPES, ids=NATIVE_IDS)
def test_asarray_shares_memory(pfdtype, npdtype):
    t, a = pair((3, 4), pfdtype, seed=2)
    n = np.asarray(t)
    assert n.dtype == npdtype and n.shape == (3, 4) and n.strides == t.strides
    np.testing.assert_array_equal(n, a)
    assert np.shares_memory(n, np.asarray(t))
    assert n.__array_interface__["data"][0] == t.__array_interface__["data"][0]
    n[1, 2] = _other_value(npdtype)             # NumPy -> tensor
    a[1, 2] = _other_value(npdtype)
    assert_same(t, a)
    t[0, 0] = 0                                 # tensor -> NumPy
    assert n[0, 0] == 0
    assert np.asarray(t).flags.writeable


@pytest.mark.parametrize("pfdtype,npdtype", NATIVE_DTYPES, ids=NATIVE_IDS)
def test_from_numpy_shares_memory(pfdtype, npdtype):
    a = sample_values((4, 3), npdtype, seed=1)
    t = pf.from_numpy(a)
    assert t.dtype == pfdtype and t.shape == a.shape and t.strides == a.strides
    assert_same(t, a)
    assert np.shares_memory(np.asarray(t), a)
    t[2, 1] = _other_value(npdtype)
    assert a[2, 1] == _other_value(npdtype)
    a[0, 0] = 0
    assert t[0, 0].item() == 0
    # pf.asarray shares too; pf.tensor copies
    assert shares(pf.asarray(a), a)
    c = pf.tensor(a)
    assert_same(c, a)
    assert not np.shares_memory(np.asarray(c), a)


def test_asarray_keeps_tensor_memory_alive():
    t, a = pair((64,), pf.float64, seed=3)
    n = np.asarray(t)
    del t
    gc.collect()
    _churn(64 * 8)
    np.testing.assert_array_equal(n, a)
    n[:] = 1.0                                  # still writable, still ours
    np.testing.assert_array_equal(n, np.ones(64))


def test_from_numpy_keeps_array_alive():
    a = sample_values((64,), np.dtype(np.int64), seed=4)
    expected = a.copy()
    t = pf.from_numpy(a)
    del a
    gc.collect()
    _churn(64 * 8)
    assert_same(t, expected)
    v = t[::2]                                  # a view keeps it alive too
    del t
    gc.collect()
    _churn(64 * 8)
    assert_same(v, expected[::2])


@pytest.mark.parametrize("make", [
    lambda a: a[::-1, ::-2],
    lambda a: a.T,
    lambda a: a[1:, 2::3],
    lambda a: a[::-1].T[::-1],
], ids=["negative", "transposed", "strided", "mixed"])
def test_from_numpy_non_contiguous_zero_copy(make):
    base = sample_values((5, 7), np.dtype(np.float32), seed=5)
    a = make(base)
    t = pf.from_numpy(a)
    assert t.shape == a.shape and t.strides == a.strides    # negative strides kept
    assert_same(t, a)
    assert np.shares_memory(np.asarray(t), base)
    t.fill_(-3.0)
    assert (a == -3.0).all()
    n = np.asarray(t)
    assert n.strides == a.strides
    assert n.__array_interface__["data"][0] == a.__array_interface__["data"][0]


def test_asarray_of_negative_stride_view_keeps_strides():
    t, a = pair((4, 6), pf.int16)
    v = t[::-1, ::-3]
    n = np.asarray(v)
    assert n.strides == a[::-1, ::-3].strides and n.strides[0] < 0
    np.testing.assert_array_equal(n, a[::-1, ::-3])
    assert np.shares_memory(n, np.asarray(t))


def test_read_only_array_gives_read_only_tensor():
    a = sample_values((3, 4), np.dtype(np.float32))
    a.flags.writeable = False
    t = pf.from_numpy(a)
    assert t.readonly
    assert np.shares_memory(np.asarray(t), a)
    assert not np.asarray(t).flags.writeable
    assert memoryview(t).readonly
    msg = r"tensor is read-only \(it shares memory with a read-only NumPy array"
    with pytest.raises(ValueError, match=r"Tensor\.__setitem__: " + msg):
        t[0, 0] = 1.0
    with pytest.raises(ValueError, match=r"Tensor\.fill_: " + msg):
        t.fill_(1.0)
    with pytest.raises(ValueError, match=r"Tensor\.copy_: " + msg):
        t[1].copy_(np.zeros(4))
    with pytest.raises(ValueError, match=r"Tensor\.zero_: " + msg):
        t.T[::2].zero_()
    c = t.clone()
    assert not c.readonly
    c[0, 0] = 5.0
    assert a[0, 0] != 5.0
    assert not pf.tensor(a).readonly


def test_byte_swapped_refused_by_from_numpy_copied_by_tensor():
    a = (np.arange(6) * 1.5).astype(">f4").reshape(2, 3)
    assert not a.dtype.isnative
    with pytest.raises(TypeError, match=r"pf\.from_numpy: the NumPy array \(dtype >f4\) is "
                                        r"byte-swapped .* Use pf\.tensor\(a\), which copies"):
        pf.from_numpy(a)
    for fn in (pf.tensor, pf.asarray):
        t = fn(a)
        assert t.dtype == pf.float32
        assert_same(t, a)
        assert not np.shares_memory(np.asarray(t), a)


def test_misaligned_refused_by_from_numpy_copied_by_tensor():
    buf = bytearray(4 * 10 + 1)
    a = np.frombuffer(buf, dtype=np.float32, offset=1, count=10)
    assert not a.flags.aligned            # the case under test
    np.frombuffer(buf, dtype=np.uint8)[1:] = np.arange(40, dtype=np.uint8)
    expected = np.frombuffer(bytes(buf[1:]), dtype=np.float32)
    with pytest.raises(TypeError, match=r"pf\.from_numpy: the NumPy array \(dtype float32\) is "
                                        r"misaligned"):
        pf.from_numpy(a)
    for fn in (pf.tensor, pf.asarray):
        t = fn(a)
        assert t.dtype == pf.float32
        np.testing.assert_array_equal(np.asarray(t), expected)
    # a read-only view into an immutable bytes object, offset by 1
    raw = b"\x00" + np.arange(5, dtype=np.float64).tobytes()
    b = np.frombuffer(raw, dtype=np.float64, offset=1)
    assert not b.flags.aligned and not b.flags.writeable
    with pytest.raises(TypeError, match=r"pf\.from_numpy: the NumPy array \(dtype float64\) is "
                                        r"misaligned"):
        pf.from_numpy(b)
    c = pf.tensor(b)
    assert c.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0] and not c.readonly
    # misaligned by its strides: a packed record field
    rec = np.zeros(4, dtype=np.dtype([("a", "i1"), ("b", "<f4")], align=False))
    rec["b"] = [1.5, 2.5, 3.5, 4.5]
    assert not rec["b"].flags.aligned
    with pytest.raises(TypeError, match=r"misaligned"):
        pf.from_numpy(rec["b"])
    assert_same(pf.tensor(rec["b"]), np.array([1.5, 2.5, 3.5, 4.5]))


@pytest.mark.parametrize("arr,target", [
    (np.array([0, 7, 2**32 - 1], dtype=np.uint32), pf.int64),
    (np.array([0, 7, 65535], dtype=np.uint16), pf.int32),
], ids=["uint32", "uint16"])
def test_unsupported_unsigned_refused_by_from_numpy_widened_by_tensor(arr, target):
    with pytest.raises(TypeError, match=rf"pf\.from_numpy: the NumPy array \(dtype {arr.dtype}\) "
                                        r"has a dtype pyframe does not support"):
        pf.from_numpy(arr)
    for fn in (pf.tensor, pf.asarray):
        t = fn(arr)
        assert t.dtype == target
        assert t.tolist() == arr.tolist()


@pytest.mark.parametrize("arr", [
    np.array([1 + 2j, 3j], dtype=np.complex64),
    np.array([1, 2], dtype=np.uint64),
    np.array([1, "a"], dtype=object),
    np.array(["ab", "c"]),
], ids=["complex64", "uint64", "object", "str"])
def test_unconvertible_dtypes_refused(arr):
    pattern = rf"\(dtype {arr.dtype}\) has a dtype pyframe does not support.*Convert it first"
    with pytest.raises(TypeError, match=r"pf\.from_numpy: the NumPy array " + pattern):
        pf.from_numpy(arr)
    with pytest.raises(TypeError, match=r"pf\.tensor: the NumPy array " + pattern):
        pf.tensor(arr)
    with pytest.raises(TypeError, match=r"pf\.asarray: the NumPy array " + pattern):
        pf.asarray(arr)


def test_from_numpy_needs_an_ndarray():
    with pytest.raises(TypeError, match=r"pf\.from_numpy: expected a numpy\.ndarray; got list"):
        pf.from_numpy([1, 2])


def test_foreign_memory_cannot_grow():
    t = pf.from_numpy(np.zeros(4))
    with pytest.raises(RuntimeError, match=r"Tensor\.resize_: cannot resize memory borrowed from "
                                           r"another library"):
        t.resize_(10)


# ----------------------------------------------------------------- bfloat16

def test_bfloat16_to_numpy_gives_ml_dtypes_array():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    t = pf.tensor([[1.5, -2.0, 3.25], [0.0, 256.0, -0.5]], dtype=pf.bfloat16)
    n = np.asarray(t)
    assert n.dtype == np.dtype(ml_dtypes.bfloat16) and n.shape == (2, 3)
    np.testing.assert_array_equal(n.astype(np.float64),
                                  [[1.5, -2.0, 3.25], [0.0, 256.0, -0.5]])
    m = np.asarray(t.T[::-1])
    np.testing.assert_array_equal(m.astype(np.float64),
                                  np.array([[1.5, -2.0, 3.25], [0.0, 256.0, -0.5]]).T[::-1])


def test_bfloat16_from_numpy():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    a = np.array([1.5, -2.0, 3.25, 0.0078125], dtype=ml_dtypes.bfloat16)
    t = pf.from_numpy(a)
    assert t.dtype == pf.bfloat16
    assert t.tolist() == [1.5, -2.0, 3.25, 0.0078125]
    assert np.shares_memory(np.asarray(t), a)
    c = pf.tensor(a)
    assert c.dtype == pf.bfloat16 and c.tolist() == [1.5, -2.0, 3.25, 0.0078125]
    assert pf.asarray(a).tolist() == [1.5, -2.0, 3.25, 0.0078125]


def test_bfloat16_has_no_buffer_format():
    t = pf.zeros(3, dtype=pf.bfloat16)
    with pytest.raises(BufferError, match=r"bfloat16 tensors have no buffer-protocol format"):
        memoryview(t)


# ------------------------------------------------------------- buffer protocol

@pytest.mark.parametrize("pfdtype,npdtype", NATIVE_DTYPES, ids=NATIVE_IDS)
@pytest.mark.parametrize("geom", ["contiguous", "transposed", "reversed"])
def test_memoryview_format_shape_strides(pfdtype, npdtype, geom):
    t, a = pair((3, 4), pfdtype)
    if geom == "transposed":
        t, a = t.T, a.T
    elif geom == "reversed":
        t, a = t[::-1, ::2], a[::-1, ::2]
    mv = memoryview(t)
    assert np.dtype(mv.format) == npdtype
    assert mv.itemsize == npdtype.itemsize
    assert mv.ndim == 2 and mv.shape == a.shape and mv.strides == a.strides
    assert mv.nbytes == a.nbytes and not mv.readonly
    assert mv.c_contiguous == a.flags.c_contiguous
    n = np.asarray(mv)
    np.testing.assert_array_equal(n, a)
    assert np.shares_memory(n, np.asarray(t))
    mv.release()


def test_memoryview_of_0d_and_empty():
    mv = memoryview(pf.tensor(2.5, dtype=pf.float64))
    assert mv.shape == () and mv.ndim == 0 and mv.format == "d" and mv.nbytes == 8
    assert struct_unpack(mv) == 2.5
    mv = memoryview(pf.zeros((0, 3)))
    assert mv.shape == (0, 3) and mv.nbytes == 0


def struct_unpack(mv):
    import struct
    return struct.unpack(mv.format, mv.tobytes())[0]


def test_resize_blocked_while_memoryview_alive():
    t, a = pair((6,), pf.int64)
    mv = memoryview(t)
    with pytest.raises(BufferError, match=r"Tensor\.resize_: cannot resize: 1 buffer export\(s\) "
                                          r"of this tensor's memory are alive"):
        t.resize_(100)
    assert t.shape == (6,)
    mv.release()
    t.resize_(100)
    assert t.shape == (100,) and t.strides == (8,)
    assert t[:6].tolist() == a.tolist()          # the old elements survive


def test_resize_blocked_while_numpy_array_alive():
    t, a = pair((2, 3), pf.float32)
    n = np.asarray(t)
    v = np.asarray(t[1])        # an export of a view counts too
    with pytest.raises(BufferError, match=r"Tensor\.resize_: cannot resize: \d buffer "
                                          r"export\(s\)"):
        t.resize_(50)
    del n
    gc.collect()
    with pytest.raises(BufferError, match=r"cannot resize"):
        t.resize_(50)
    del v
    gc.collect()
    t.resize_(5, 10)
    assert t.shape == (5, 10)
    assert t.reshape(-1)[:6].tolist() == a.reshape(-1).tolist()


def test_resize_blocked_while_dlpack_consumer_alive():
    t, _ = pair((4,))
    n = np.from_dlpack(t)
    with pytest.raises(BufferError, match=r"cannot resize"):
        t.resize_(40)
    del n
    gc.collect()
    t.resize_(40)
    assert t.shape == (40,)


# -------------------------------------------------------- __array_interface__

@pytest.mark.parametrize("pfdtype,npdtype", NATIVE_DTYPES, ids=NATIVE_IDS)
def test_array_interface_contents(pfdtype, npdtype):
    t, a = pair((3, 4), pfdtype)
    ai = t.__array_interface__
    assert ai["version"] == 3
    assert ai["shape"] == (3, 4)
    assert np.dtype(ai["typestr"]) == npdtype and ai["typestr"] == npdtype.str
    assert ai["strides"] is None                    # C-contiguous
    assert ai["data"][1] is False
    assert ai["data"][0] == np.asarray(t).ctypes.data
    v = t[::-1, 1::2]
    vi = v.__array_interface__
    assert vi["shape"] == (3, 2) and vi["strides"] == a[::-1, 1::2].strides
    assert vi["data"][0] == np.asarray(v).ctypes.data

    class Holder:   # a consumer that only knows __array_interface__
        def __init__(self, d):
            self.__array_interface__ = d
    n = np.asarray(Holder(vi))
    np.testing.assert_array_equal(n, a[::-1, 1::2])
    assert np.shares_memory(n, np.asarray(t))


def test_array_interface_read_only_flag():
    a = np.arange(3.0)
    a.flags.writeable = False
    assert pf.from_numpy(a).__array_interface__["data"][1] is True


# ----------------------------------------------------------------- __array__

@pytest.mark.skipif(int(np.__version__.split(".")[0]) < 2, reason="NumPy 2 semantics (copy=, DLPack 1.0, matrix_transpose, unique, ml_dtypes promotion) are the oracle")
def test_array_protocol_copy_semantics():
    t, a = pair((3, 4), pf.float32)
    base = np.asarray(t)
    shared = np.array(t, copy=False)
    assert np.shares_memory(shared, base)
    copied = np.array(t, copy=True)
    assert not np.shares_memory(copied, base)
    np.testing.assert_array_equal(copied, a)
    with pytest.raises(ValueError):
        np.array(t, dtype=np.float64, copy=False)
    d = np.array(t, dtype=np.float64)
    assert d.dtype == np.float64 and not np.shares_memory(d, base)
    np.testing.assert_array_equal(d, a)


def test_dunder_array_called_directly():
    t, a = pair((2, 3), pf.int32)
    base = np.asarray(t)
    assert np.shares_memory(t.__array__(), base)
    assert np.shares_memory(t.__array__(copy=None), base)
    assert np.shares_memory(t.__array__(copy=False), base)
    assert np.shares_memory(t.__array__(np.int32, copy=False), base)
    c = t.__array__(copy=True)
    assert not np.shares_memory(c, base)
    np.testing.assert_array_equal(c, a)
    f = t.__array__(np.float64)
    assert f.dtype == np.float64 and not np.shares_memory(f, base)
    np.testing.assert_array_equal(f, a)
    with pytest.raises(ValueError, match=r"Tensor\.__array__: converting int32 to the requested "
                                         r"dtype needs a copy, but copy=False was given"):
        t.__array__(np.float64, copy=False)


def test_array_protocol_bfloat16_goes_through_dunder_array():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    t = pf.tensor([1.0, 2.5, -4.0], dtype=pf.bfloat16)
    n = np.array(t, copy=False)
    assert n.dtype == np.dtype(ml_dtypes.bfloat16)
    assert n.tolist() == [1.0, 2.5, -4.0]
    t[0] = 8.0
    assert float(n[0]) == 8.0                     # shares the tensor's memory
    f = np.array(t, dtype=np.float32)
    np.testing.assert_array_equal(f, [8.0, 2.5, -4.0])


# ------------------------------------------------------------------- DLPack

@pytest.mark.parametrize("pfdtype,npdtype", NATIVE_DTYPES, ids=NATIVE_IDS)
def test_numpy_from_dlpack_shares(pfdtype, npdtype):
    t, a = pair((3, 4), pfdtype)
    assert t.__dlpack_device__() == (1, 0)
    n = np.from_dlpack(t)
    assert n.dtype == npdtype
    np.testing.assert_array_equal(n, a)
    assert np.shares_memory(n, np.asarray(t))
    t[2, 3] = _other_value(npdtype)
    assert n[2, 3] == _other_value(npdtype)
    v = np.from_dlpack(t[::-1, ::2])                # strided and negative
    np.testing.assert_array_equal(v, np.asarray(t)[::-1, ::2])
    assert np.shares_memory(v, np.asarray(t))


@pytest.mark.parametrize("pfdtype,npdtype", NATIVE_DTYPES, ids=NATIVE_IDS)
def test_pf_from_dlpack_numpy_shares(pfdtype, npdtype):
    a = sample_values((4, 5), npdtype, seed=8)
    t = pf.from_dlpack(a)
    assert t.dtype == pfdtype
    assert_same(t, a)
    assert np.shares_memory(np.asarray(t), a)
    a[1, 1] = _other_value(npdtype)
    assert t[1, 1].item() == a[1, 1]
    v = pf.from_dlpack(a[::-1, 1::2])
    assert v.strides == a[::-1, 1::2].strides
    assert_same(v, a[::-1, 1::2])


@pytest.mark.skipif(int(np.__version__.split(".")[0]) < 2, reason="NumPy 2 semantics (copy=, DLPack 1.0, matrix_transpose, unique, ml_dtypes promotion) are the oracle")
def test_pf_from_dlpack_of_read_only_array_is_read_only():
    a = np.arange(4.0)
    a.flags.writeable = False
    t = pf.from_dlpack(a)
    assert t.readonly
    with pytest.raises(ValueError, match=r"read-only"):
        t[0] = 1.0


@pytest.mark.skipif(int(np.__version__.split(".")[0]) < 2, reason="NumPy 2 semantics (copy=, DLPack 1.0, matrix_transpose, unique, ml_dtypes promotion) are the oracle")
def test_dlpack_export_of_read_only_tensor():
    a = np.arange(4.0)
    a.flags.writeable = False
    t = pf.from_numpy(a)
    n = np.from_dlpack(t)
    assert not n.flags.writeable
    np.testing.assert_array_equal(n, a)
    with pytest.raises(BufferError, match=r"Tensor\.__dlpack__: this tensor is read-only"):
        t.__dlpack__()              # the old capsule cannot mark memory read-only


def test_dlpack_capsule_lifetime():
    t, a = pair((32,), pf.float64, seed=6)
    cap = t.__dlpack__()
    del t
    gc.collect()
    _churn(32 * 8)
    u = pf.from_dlpack(cap)         # the capsule alone kept the memory alive
    assert_same(u, a)
    with pytest.raises(ValueError, match=r"pf\.from_dlpack: expected an unconsumed DLPack "
                                         r"capsule"):
        pf.from_dlpack(cap)
    # np.from_dlpack consumer outlives the producer
    t, a = pair((32,), pf.int32, seed=7)
    n = np.from_dlpack(t)
    del t
    gc.collect()
    _churn(32 * 4)
    np.testing.assert_array_equal(n, a)
    # and the other way: a pf tensor outlives the NumPy producer
    src = sample_values((32,), np.dtype(np.int64), seed=9)
    expected = src.copy()
    u = pf.from_dlpack(src)
    del src
    gc.collect()
    _churn(32 * 8)
    assert_same(u, expected)


def test_dlpack_versioned_capsule():
    t, a = pair((2, 2), pf.float32)
    cap = t.__dlpack__(max_version=(1, 0))
    u = pf.from_dlpack(cap)
    assert_same(u, a)
    assert np.shares_memory(np.asarray(u), np.asarray(t))
    c = t.__dlpack__(max_version=(1, 0), copy=True)
    w = pf.from_dlpack(c)
    assert_same(w, a)
    assert not np.shares_memory(np.asarray(w), np.asarray(t))


def test_from_dlpack_errors():
    t, _ = pair((2,))
    assert pf.from_dlpack(t) is t
    with pytest.raises(TypeError, match=r"pf\.from_dlpack: list does not support DLPack"):
        pf.from_dlpack([1, 2])
    with pytest.raises(BufferError, match=r"Tensor\.__dlpack__: the tensor is on cpu and the "
                                          r"consumer asked for cuda:0; pass copy=True, or move "
                                          r"it first with \.to\('cuda:0'\)"):
        t.__dlpack__(dl_device=(2, 0))
    with pytest.raises(BufferError, match=r"Tensor\.__dlpack__: cannot export to DLPack device "
                                          r"\(7, 0\)"):
        t.__dlpack__(dl_device=(7, 0))


def test_torch_dlpack_both_ways():
    torch = pytest.importorskip("torch")
    # torch -> pf
    x = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    t = pf.from_dlpack(x)
    assert t.dtype == pf.float32 and t.shape == (3, 4)
    assert np.shares_memory(np.asarray(t), x.numpy())
    x[1, 2] = -1.0
    assert t[1, 2].item() == -1.0
    xt = x.t()
    tt = pf.from_dlpack(xt)
    assert tt.strides == (4, 16)
    assert tt.tolist() == xt.tolist()
    # pf -> torch
    p, a = pair((3, 4), pf.int64)
    y = torch.from_dlpack(p)
    assert y.dtype == torch.int64 and y.tolist() == a.tolist()
    assert np.shares_memory(y.numpy(), np.asarray(p))
    y[0, 0] = 1234
    assert p[0, 0].item() == 1234
    yv = torch.from_dlpack(p[::2, 1::2])
    assert yv.stride() == (8, 2) and yv.tolist() == a[::2, 1::2].tolist()
    # lifetime: consumers outlive producers
    del p
    gc.collect()
    _churn(12 * 8)
    a[0, 0] = 1234
    assert y.tolist() == a.tolist()
    del x, xt
    gc.collect()
    assert t[1, 2].item() == -1.0 and tt.shape == (4, 3)


@pytest.mark.parametrize("dt", ["bfloat16", "float16", "bool", "int8", "uint8", "int16"])
def test_torch_dlpack_dtypes(dt):
    torch = pytest.importorskip("torch")
    vals = [1.5, -2.0, 0.0, 3.25] if dt in ("bfloat16", "float16") else [1, 0, 1, 1]
    if dt == "int8" or dt == "int16":
        vals = [1, -2, 0, 100]
    x = torch.tensor(vals, dtype=getattr(torch, dt))
    t = pf.from_dlpack(x)
    assert t.dtype == getattr(pf, dt)
    assert t.tolist() == x.tolist()
    y = torch.from_dlpack(t)
    assert y.dtype == x.dtype and y.tolist() == x.tolist()
    assert y.data_ptr() == x.data_ptr()


# ------------------------------------------------------------------- pandas

def test_pandas_single_block_frame_shares_and_is_read_only():
    pd = pytest.importorskip("pandas")
    arr = sample_values((5, 3), np.dtype(np.float64), seed=2)
    df = pd.DataFrame(arr, columns=["a", "b", "c"], copy=False)
    t = pf.tensor(df)
    assert t.dtype == pf.float64 and t.shape == (5, 3)
    assert_same(t, arr)
    assert np.shares_memory(np.asarray(t), arr)
    assert t.readonly
    with pytest.raises(ValueError, match=r"Tensor\.__setitem__: tensor is read-only"):
        t[0, 0] = 1.0
    assert not t.clone().readonly
    u = pf.asarray(df)
    assert u.readonly and np.shares_memory(np.asarray(u), arr)


def test_pandas_series_and_mixed_frame():
    pd = pytest.importorskip("pandas")
    s = pd.Series(np.array([1.5, 2.5, -3.0], dtype=np.float32), name="x")
    t = pf.tensor(s)
    assert t.dtype == pf.float32 and t.tolist() == [1.5, 2.5, -3.0]
    assert np.shares_memory(np.asarray(t), s.to_numpy())
    df = pd.DataFrame({"i": np.array([1, 2], np.int32), "f": [0.5, 1.5]})
    m = pf.tensor(df)
    assert m.dtype == pf.float64
    assert m.tolist() == [[1.0, 0.5], [2.0, 1.5]]


def test_pandas_categorical_becomes_codes():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"c": pd.Categorical(["b", "a", "b", None]), "x": [1, 2, 3, 4]})
    t = pf.tensor(df)
    expected = np.stack([df["c"].cat.codes.to_numpy().astype(np.int64), df["x"].to_numpy()],
                        axis=1)
    assert_same(t, expected)
    s = pf.tensor(pd.Series(pd.Categorical(["z", "y", "z"])))
    assert s.tolist() == [1, 0, 1]


def test_pandas_nullable_with_na_raises_naming_column():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"ok": [1.0, 2.0, 3.0],
                       "n": pd.array([1, None, 3], dtype="Int64")})
    with pytest.raises(ValueError, match=r"pf\.tensor: column 'n' \(dtype Int64\) has 1 missing "
                                         r"value"):
        pf.tensor(df)
    full = pd.DataFrame({"n": pd.array([1, 2, 3], dtype="Int64")})
    assert pf.tensor(full).tolist() == [[1], [2], [3]]


@pytest.mark.parametrize("col", ["object", "string"])
def test_pandas_non_numeric_raises_type_error_naming_column(col):
    pd = pytest.importorskip("pandas")
    values = np.array(["a", "b"], dtype=object) if col == "object" else \
        pd.array(["a", "b"], dtype="string")
    df = pd.DataFrame({"x": [1, 2], "name": values})
    with pytest.raises(TypeError, match=r"pf\.tensor: column 'name' has dtype \w+, which is not "
                                        r"numeric"):
        pf.tensor(df)
