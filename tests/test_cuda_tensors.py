"""Tensors on CUDA devices: device storage, copies, the device check of dispatch, the
interfaces (csrc/transfer.c, storage.c, dispatch.c, bridge.c; docs/architecture.md, "CUDA
backend: device tensors and copies").

Three groups:

* Without a usable GPU (here and in CI): every call that would put a tensor on a device
  raises RuntimeError naming the call and pf.cuda's reason, and Module.to leaves the model
  as it was.
* On any machine without a GPU: ``_C._fake_cuda_tensor`` makes tensors that say they live on
  a CUDA device over host memory that cannot be read or written at all.  They drive every path
  that must refuse a device tensor, or only read its geometry, before touching its memory: a
  missed check is a segmentation fault here, not a silent wrong answer.  (Skipped where CUDA
  works: there such memory could reach the driver.)
* With a GPU: round trips bit for bit, device-to-device copies, the interfaces, DLPack with
  torch.cuda, Module.to, the memory counters, mixing devices.  Written in full, skipped with
  the reason where no GPU is usable.
"""
import gc
import re

import numpy as np
import pytest

import pyframe as pf
from pyframe import _C

try:
    import torch
except ImportError:
    torch = None

CUDA = pf.cuda.is_available()
REASON = pf.cuda.status()
gpu = pytest.mark.skipif(not CUDA, reason="needs a usable CUDA GPU; here: " + REASON)
no_gpu = pytest.mark.skipif(CUDA, reason="checks the behaviour without a usable GPU")
# fake device tensors must never reach a real driver
fake = pytest.mark.skipif(CUDA, reason="_fake_cuda_tensor is for machines without a GPU")

NAMES = ("bool", "uint8", "int8", "int16", "int32", "int64",
         "float16", "bfloat16", "float32", "float64")
NO_KERNEL = r"the CUDA kernel for {} is not written yet \(the tensor is on {}\); move the " \
            r"tensors to the cpu with \.cpu\(\) to run it there"


def unavailable(call):
    return "^" + re.escape(call) + r": CUDA is not available: " + re.escape(REASON)


def no_kernel(op, what=None, dev="cuda:0"):
    return "^" + re.escape(op) + ": " + NO_KERNEL.format(re.escape(what or op), dev)


# ============================================================ devices (any machine)

def test_device_objects():
    d = pf.device("cuda")
    assert d.type == "cuda" and d.index is None and str(d) == "cuda"
    assert repr(d) == "device(type='cuda')"
    d1 = pf.device("cuda:1")
    assert d1.index == 1 and str(d1) == "cuda:1" and repr(d1) == "device(type='cuda', index=1)"
    assert pf.device("cuda", 2) == "cuda:2" and pf.device(3) == "cuda:3"
    # "cuda" means whichever device is current when it is used: not the same as cuda:0
    assert pf.device("cuda") != pf.device("cuda:0") and pf.device("cuda") == "cuda"
    assert pf.device("cpu").index == 0 and pf.ones(2).device == "cpu"
    with pytest.raises(ValueError, match=r"pf\.device: unknown device 'gpu'"):
        pf.device("gpu")
    with pytest.raises(ValueError, match=r"pf\.device: device index must be from 0 to 1000; "
                                         r"got -1"):
        pf.device(-1)
    with pytest.raises(ValueError, match=r"Tensor\.to: device index must be from 0 to 1000"):
        pf.ones(2).to(2 ** 70)


def test_cpu_tensors_stay_put():
    t = pf.ones((2, 3))
    assert t.cpu() is t and t.to("cpu") is t and t.to(pf.device("cpu")) is t
    assert t.to("cpu", copy=True) is not t
    assert t.__dlpack_device__() == (1, 0)
    assert not hasattr(t, "__cuda_array_interface__")
    with pytest.raises(AttributeError, match=r"Tensor\.__cuda_array_interface__: only CUDA "
                                             r"tensors have one; this tensor is on the cpu"):
        t.__cuda_array_interface__
    with pytest.raises(ValueError, match=r"Tensor\.cuda: expected a CUDA device \('cuda', "
                                         r"'cuda:N' or an index\); got 'cpu'"):
        t.cuda("cpu")


def test_module_to_dtype_keeps_parameters_and_gradients():
    net = pf.nn.Sequential(pf.nn.Linear(3, 4), pf.nn.BatchNorm1d(4))
    params = list(net.parameters())
    ids = [id(p) for p in params]
    net(pf.randn(5, 3)).sum().backward()
    before = [p.detach().clone() for p in params]
    assert net.to(pf.float64) is net
    assert [id(p) for p in net.parameters()] == ids
    for p, b in zip(net.parameters(), before):
        assert p.dtype == pf.float64 and p.requires_grad and p.grad.dtype == pf.float64
        assert np.array_equal(np.asarray(p.detach()), np.asarray(b).astype(np.float64))
    assert net[1].running_mean.dtype == pf.float64
    assert net[1].num_batches_tracked.dtype == pf.int64      # integer buffers keep their dtype
    # an optimizer built before the conversion updates the converted parameters
    opt = pf.optim.SGD(params, lr=0.1)
    net(pf.randn(5, 3, dtype=pf.float64)).sum().backward()
    opt.step()
    assert net.to("cpu") is net and [id(p) for p in net.parameters()] == ids


def test_module_to_moves_a_tied_weight_once():
    a = pf.nn.Linear(3, 3)
    b = pf.nn.Linear(3, 3)
    b.weight = a.weight
    net = pf.nn.Sequential(a, b)
    net.to(pf.float64)
    assert net[0].weight is net[1].weight and net[1].weight.dtype == pf.float64


# ============================================================ without a GPU

CREATION = [
    ("pf.zeros", lambda: pf.zeros(3, device="cuda")),
    ("pf.ones", lambda: pf.ones((2, 2), device="cuda:0")),
    ("pf.full", lambda: pf.full((2,), 7.0, device="cuda")),
    ("pf.empty", lambda: pf.empty(4, device=pf.device("cuda"))),
    ("pf.arange", lambda: pf.arange(5, device="cuda")),
    ("pf.linspace", lambda: pf.linspace(0, 1, 5, device="cuda")),
    ("pf.eye", lambda: pf.eye(3, device="cuda")),
    ("pf.rand", lambda: pf.rand(3, device="cuda")),
    ("pf.randn", lambda: pf.randn(3, device="cuda:1")),
    ("pf.randint", lambda: pf.randint(0, 5, (3,), device="cuda")),
    ("pf.tensor", lambda: pf.tensor([1.0, 2.0], device="cuda")),
    ("pf.asarray", lambda: pf.asarray(np.ones(3), device="cuda")),
    ("pf.zeros_like", lambda: pf.zeros_like(pf.ones(2), device="cuda")),
    ("pf.full_like", lambda: pf.full_like(pf.ones(2), 3, device="cuda")),
    ("Tensor.to", lambda: pf.ones(2).to("cuda")),
    ("Tensor.to", lambda: pf.ones(2).to("cuda:1")),
    ("Tensor.to", lambda: pf.ones(2).to(0)),
    ("Tensor.to", lambda: pf.ones(2).to(device="cuda", dtype=pf.float64)),
    ("Tensor.cuda", lambda: pf.ones(2).cuda()),
    ("Tensor.cuda", lambda: pf.ones(2).cuda(1)),
    ("Tensor.__dlpack__", lambda: pf.ones(2).__dlpack__(dl_device=(2, 0), copy=True)),
]


@no_gpu
@pytest.mark.parametrize("call,fn", CREATION, ids=[f"{c}-{i}" for i, (c, _) in
                                                  enumerate(CREATION)])
def test_no_gpu_placing_raises_naming_the_call(call, fn):
    gc.collect()   # storages earlier tests left in reference cycles are not this call's
    base = pf.memory_stats()["cpu"]["live_storages"]
    with pytest.raises(RuntimeError, match=unavailable(call)):
        fn()
    gc.collect()
    assert pf.memory_stats()["cpu"]["live_storages"] == base


@no_gpu
def test_no_gpu_module_to_leaves_the_model_unchanged():
    net = pf.Sequential([pf.layers.Dense(4, input_shape=(3,)), pf.layers.BatchNormalization()])
    net(pf.randn(2, 3))
    params = list(net.parameters())
    ids = [id(p) for p in params]
    values = [np.asarray(p.detach()).copy() for p in params]
    buffers = {k: np.asarray(b).copy() for k, b in net.named_buffers()}
    for args in [("cuda",), ("cuda:0", pf.float64), (0,)]:
        with pytest.raises(RuntimeError, match=r"^Sequential '.*'\.to: CUDA is not available: "
                                               + re.escape(REASON)):
            net.to(*args)
        assert [id(p) for p in net.parameters()] == ids
        for p, v in zip(net.parameters(), values):
            assert p.device == "cpu" and p.dtype == pf.float32
            assert np.array_equal(np.asarray(p.detach()), v)
        for k, b in net.named_buffers():
            assert b.device == "cpu" and np.array_equal(np.asarray(b), buffers[k])
    lin = pf.nn.Linear(2, 2)
    with pytest.raises(RuntimeError, match=r"^Linear '.*'\.cuda: CUDA is not available"):
        lin.cuda()
    with pytest.raises(RuntimeError, match=r"^Linear '.*'\.to: CUDA is not available"):
        lin.to(device="cuda")
    assert lin.cpu() is lin and lin.weight.device == "cpu"
    w = lin.weight
    assert lin.to("cpu") is lin and lin.weight is w


@no_gpu
def test_no_gpu_memory_stats_list_only_the_cpu():
    with pytest.raises(RuntimeError):
        pf.zeros(3, device="cuda")
    assert [k for k in pf.memory_stats() if not k.startswith("cuda:")] == ["cpu"]


# ============================================================ fake device tensors

def _fake(shape=(2, 3), dtype="float32", index=0):
    return _C._fake_cuda_tensor(shape, dtype, index)


def _dev(shape=(2, 3), dtype="float32", index=0):
    """A device tensor: a real one where CUDA works, else a fake one (for the checks that
    must refuse it before reading its memory, which hold for both)."""
    if not CUDA:
        return _fake(shape, dtype, index)
    if index >= pf.cuda.device_count():
        pytest.skip("needs %d CUDA devices" % (index + 1))
    return pf.ones(shape, dtype=dtype, device="cuda:%d" % index)


@fake
def test_fake_tensor_geometry_and_views():
    x = _fake((2, 3, 4))
    assert x.device == "cuda:0" and x.device.index == 0 and str(x.device) == "cuda:0"
    assert x.shape == (2, 3, 4) and x.dtype == pf.float32 and x.strides == (48, 16, 4)
    assert x.is_contiguous() and x.numel() == 24
    # views share the device memory and never touch it
    views = [x.T, x.transpose(0, 1), x.permute(2, 0, 1), x[0], x[:, 1], x[..., ::2], x[None],
             x.reshape(6, 4), x.view(24), x.unsqueeze(0), x[0:1].squeeze(0), x.flatten(),
             x[:, :, :1].expand(2, 3, 5), x.detach(), x.data, x.mT]
    for v in views:
        assert v.device == "cuda:0"
    assert _fake(index=3).device == "cuda:3"
    with pytest.raises(ValueError, match=r"_fake_cuda_tensor: index must be 0 to 63; got 64"):
        _fake(index=64)


@fake
def test_fake_tensor_counts_on_its_device():
    base = pf.memory_stats().get("cuda:1", {}).get("foreign_bytes", 0)
    x = _fake((4, 8), index=1)
    assert pf.memory_stats()["cuda:1"]["foreign_bytes"] == base + 128
    del x
    gc.collect()
    assert pf.memory_stats()["cuda:1"]["foreign_bytes"] == base


# arguments for the shape ops with a CUDA path, whose bindings now parse them
SHAPE_CALLS = {"concatenate": lambda f, x: f([x, x]), "stack": lambda f, x: f([x, x]),
               "split": lambda f, x: f(x, 2), "chunk": lambda f, x: f(x, 2),
               "tile": lambda f, x: f(x, 2), "roll": lambda f, x: f(x, 1),
               "pad": lambda f, x: f(x, 1), "moveaxis": lambda f, x: f(x, 0, 1)}


def _devices(r):
    return {str(t.device) for t in (r if isinstance(r, (list, tuple)) else [r])}
def _idx(shape=(2, 3)):
    return _dev(shape, "int64")


# ops that run on CUDA, called with valid arguments: (x, device index tensors, a bool mask)
PORTED_CALLS = {
    "take_along_axis": lambda x: _C.take_along_axis(x, _idx(), axis=1),
    "gather": lambda x: _C.gather(x, 1, _idx()),
    "put_along_axis": lambda x: _C.put_along_axis(x, _idx(), 1.0, axis=1),
    "scatter": lambda x: _C.scatter(x, 1, _idx(), x),
    "scatter_": lambda x: _C.scatter_(x, 1, _idx(), x),
    "scatter_add": lambda x: _C.scatter_add(x, 1, _idx(), x),
    "scatter_add_": lambda x: _C.scatter_add_(x, 1, _idx(), x),
    "index_select": lambda x: _C.index_select(x, 1, _idx((2,))),
    "take": lambda x: _C.take(x, _idx()),
    "nonzero": lambda x: _C.nonzero(x),
    "argwhere": lambda x: _C.argwhere(x),
    "one_hot": lambda x: _C.one_hot(_idx(), 4),
    "masked_fill": lambda x: _C.masked_fill(x, _dev((2, 3), "bool"), 0.0),
    "masked_fill_": lambda x: _C.masked_fill_(x, _dev((2, 3), "bool"), 0.0),
    "sort": lambda x: _C.sort(x),
    "argsort": lambda x: _C.argsort(x, axis=0),
    "topk": lambda x: _C.topk(x, 2),
    "searchsorted": lambda x: _C.searchsorted(x, x),
    "unique": lambda x: _C.unique(x, return_inverse=True, return_counts=True),
}


def _op_calls():
    """Every op of the table, called with a device tensor in each tensor slot."""
    calls = []
    for row in _C._op_table():
        name, nin = row["name"], max(row["nin"], 1)
        fn = getattr(_C, name)
        if name in PORTED_CALLS:
            calls.append((name, PORTED_CALLS[name]))
        elif name == "clip":
            calls.append((name, lambda x, fn=fn: fn(x, 0, 1)))
        elif name == "layer_norm":          # a ported op: give it a valid call
            calls.append((name, lambda x, fn=fn: fn(x, (3,))))
        elif name in SHAPE_CALLS:
            calls.append((name, lambda x, fn=fn, name=name: SHAPE_CALLS[name](fn, x)))
        else:
            calls.append((name, lambda x, fn=fn, nin=nin: fn(*([x] * nin))))
    return calls


# the nn ops with a CUDA path: called with shapes their checks accept, they reach the library
NN_CUDA_CALLS = {
    "conv1d": lambda f: _C.conv1d(f((1, 2, 7)), f((3, 2, 3))),
    "conv2d": lambda f: _C.conv2d(f((1, 2, 5, 5)), f((3, 2, 3, 3)), f((3,))),
    "conv_transpose2d": lambda f: _C.conv_transpose2d(f((1, 2, 5, 5)), f((2, 3, 3, 3))),
    "_conv": lambda f: _C._conv(f((1, 2, 5, 5)), f((3, 2, 3, 3)), (3, 3)),
    "_conv_input_grad": lambda f: _C._conv_input_grad(f((1, 3, 3, 3)), f((3, 2, 3, 3)), (5, 5)),
    "_conv_weight_grad": lambda f: _C._conv_weight_grad(f((1, 2, 5, 5)), f((1, 3, 3, 3)), 3),
    "max_pool1d": lambda f: _C.max_pool1d(f((1, 2, 6)), 2),
    "max_pool2d": lambda f: _C.max_pool2d(f((1, 2, 6, 6)), 2),
    "avg_pool1d": lambda f: _C.avg_pool1d(f((1, 2, 6)), 2),
    "avg_pool2d": lambda f: _C.avg_pool2d(f((1, 2, 6, 6)), 2),
    "_max_pool_backward": lambda f: _C._max_pool_backward(f((1, 2, 3, 3)), f((1, 2, 6, 6)), 2),
    "_max_pool_select": lambda f: _C._max_pool_select(f((1, 2, 6, 6)), f((1, 2, 6, 6)), 2),
    "_avg_pool_backward": lambda f: _C._avg_pool_backward(f((1, 2, 3, 3)), (6, 6), 2),
    "batch_norm": lambda f: _C.batch_norm(f((4, 3)), f((3,)), f((3,)), training=True),
    "group_norm": lambda f: _C.group_norm(f((2, 4, 3)), 2, f((4,)), f((4,))),
    "rms_norm": lambda f: _C.rms_norm(f((2, 4)), (4,), f((4,))),
}
OP_CALLS = [c for c in _op_calls() if c[0] not in NN_CUDA_CALLS]


@fake
@pytest.mark.parametrize("name", sorted(NN_CUDA_CALLS))
def test_nn_ops_with_a_cuda_path_reach_the_library(name):
    """Their checks pass without reading the (unreadable) memory; CUDA itself is missing."""
    with pytest.raises(RuntimeError, match=unavailable(name)):
        NN_CUDA_CALLS[name](_fake)
# rows with a CUDA path (G): on a GPU they run; given a fake tensor they ask for CUDA first
CUDA_ROWS = {r["name"] for r in _C._op_table() if r["cuda"] == "kernel"}
KINDS = {r["name"]: r["kind"] for r in _C._op_table()}


@pytest.mark.parametrize("name,call", OP_CALLS, ids=[n for n, _ in OP_CALLS])
def test_every_op_raises_for_a_device_tensor(name, call):
    bitwise = KINDS[name] in ("bitwise", "ubitwise")    # float32 is refused there first
    x = _dev((2, 3), "int32" if bitwise else "float32")
    if name in CUDA_ROWS:
        try:
            r = call(x)
        except (ValueError, TypeError):
            return      # its own checks come first (a product of two (2, 3) operands)
        except RuntimeError as e:
            # without a GPU, a ported op stops where it first needs CUDA, naming itself
            assert not CUDA and re.match(unavailable(name), str(e)), str(e)
            return
        # on a GPU every result; without one the views (flip, split, chunk, moveaxis),
        # made without touching the memory
        assert _devices(r) == {"cuda:0"}
    else:
        with pytest.raises(NotImplementedError, match=no_kernel(name)):
            call(x)


@pytest.mark.parametrize("name", [r["name"] for r in _C._op_table() if r["nin"] >= 2])
def test_every_binary_op_names_both_devices(name):
    x, c = _dev((2, 3)), pf.ones((2, 3))
    nin = {r["name"]: r["nin"] for r in _C._op_table()}[name]
    fn = getattr(_C, name)
    with pytest.raises(RuntimeError, match="^" + re.escape(name) + r": tensors on cpu and "
                                           r"cuda:0; move them to one device with \.to\(\.\.\.\)"):
        fn(*([c] + [x] * (nin - 1)))


def test_operators_methods_and_mixing():
    x, c = _dev((2, 3)), pf.ones((2, 3))
    # elementwise ops and dtype conversions run on a GPU; without one they ask for CUDA
    ported = [("add", lambda: x + 1), ("multiply", lambda: 2 * x), ("negative", lambda: -x),
              ("greater", lambda: x > 0), ("exp", lambda: x.exp()), ("add", lambda: x.add_(1)),
              ("relu", lambda: pf.nn.functional.relu(x)), ("stack", lambda: pf.stack([x, x])),
              ("Tensor.astype", lambda: x.astype(pf.float16)),
              ("Tensor.to", lambda: x.to(pf.float64))]
    for call, fn in ported:
        if CUDA:
            assert fn().device == "cuda:0"
        else:
            with pytest.raises(RuntimeError, match=unavailable(call)):
                fn()
    cases = [
        (lambda: pf.add(c, c, out=x), RuntimeError,
         r"^add: tensors on cpu and cuda:0; move them to one device with \.to\(\.\.\.\)"),
        (lambda: x + c, RuntimeError, r"^add: tensors on cuda:0 and cpu; move them"),
        (lambda: c - x, RuntimeError, r"^subtract: tensors on cpu and cuda:0"),
        (lambda: pf.concatenate([c, x]), RuntimeError, r"^concatenate: tensors on cpu and cuda:0"),
        (lambda: pf.where(c > 0, x, c), RuntimeError, r"^where: tensors on cpu and cuda:0"),
        (lambda: pf.nn.functional.cross_entropy(x, pf.zeros(2, dtype=pf.int64)), RuntimeError,
         r"^cross_entropy: tensors on cuda:0 and cpu"),
        (lambda: c[_dev((1,), pf.int64)], RuntimeError,
         r"^Tensor\.__getitem__: the tensor is on cpu and an index tensor on cuda:0; move the "
         r"index to the cpu with \.cpu\(\)"),
    ]
    if not CUDA:
        # these run on CUDA: a fake device tensor reaches the library, which has no device
        cases.append((lambda: x.sum(axis=0), RuntimeError, r"^sum: CUDA is not available"))
        cases.append((lambda: x @ x.T, RuntimeError, r"^matmul: CUDA is not available"))
        cases.append((lambda: x[[0, 1]], RuntimeError, unavailable("Tensor.__getitem__")))
        cases.append((lambda: x[x > 0], RuntimeError, unavailable("greater")))
    for fn, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            fn()
    if not CUDA:    # dropout has a CUDA path (tests/test_cuda_rng.py runs it on a GPU)
        with pytest.raises(RuntimeError, match=unavailable("dropout")):
            pf.nn.functional.dropout(x, 0.5, training=True)


def test_two_cuda_devices_in_one_op():
    x, y = _dev((2, 3), index=0), _dev((2, 3), index=1)
    with pytest.raises(RuntimeError, match=r"^multiply: tensors on cuda:0 and cuda:1; move "
                                           r"them to one device"):
        x * y


def test_host_memory_exports_refuse_with_type_error():
    x = _dev((2, 3))
    msg = r"this tensor is on cuda:0; NumPy and the buffer protocol read host memory only, " \
          r"so copy it to the cpu with \.cpu\(\) first \(np\.asarray\(t\.cpu\(\)\)\)"
    for fn in [lambda: np.asarray(x), lambda: np.array(x), lambda: np.asarray(x.T),
               lambda: x.numpy(), lambda: x.__array__(), lambda: x.__array_interface__,
               lambda: memoryview(x), lambda: bytes(x)]:
        with pytest.raises(TypeError, match=msg):
            fn()


@fake
def test_fake_cuda_array_interface():
    x = _fake((2, 3), index=2)
    cai = x.__cuda_array_interface__
    ptr = cai["data"][0]
    assert cai == {"shape": (2, 3), "typestr": "<f4", "data": (ptr, False), "strides": None,
                   "version": 3, "stream": 1}
    assert ptr != 0
    t = x.T.__cuda_array_interface__
    assert t["shape"] == (3, 2) and t["strides"] == (4, 12) and t["data"][0] == ptr
    assert x[1].__cuda_array_interface__["data"][0] == ptr + 12
    assert x[1:1].__cuda_array_interface__["data"][0] == 0       # empty: null pointer
    assert _fake((2,), "int64").__cuda_array_interface__["typestr"] == "<i8"
    assert _fake((2,), "bool").__cuda_array_interface__["typestr"] == "|b1"
    with pytest.raises(TypeError, match=r"__cuda_array_interface__: bfloat16 has no typestr"):
        _fake((2,), "bfloat16").__cuda_array_interface__


@fake
def test_fake_dlpack_export_and_refused_import():
    x = _fake((2, 3), index=1)
    assert x.__dlpack_device__() == (2, 1)
    base = pf.memory_stats()["cuda:1"]["foreign_storages"]
    cap = x.__dlpack__()        # describes the memory, reads none of it
    cap2 = x.__dlpack__(stream=1)
    cap3 = x.__dlpack__(stream=-1, max_version=(1, 0))
    # importing a CUDA capsule needs CUDA; the capsule is left unconsumed for its producer
    with pytest.raises(RuntimeError, match=unavailable("pf.from_dlpack")):
        pf.from_dlpack(cap)
    with pytest.raises(RuntimeError, match=unavailable("pf.from_dlpack")):
        pf.from_dlpack(cap3)
    with pytest.raises(ValueError, match=r"Tensor\.__dlpack__: stream 0 is ambiguous for CUDA"):
        x.__dlpack__(stream=0)
    # any other stream waits for the device
    with pytest.raises(RuntimeError, match=unavailable("Tensor.__dlpack__")):
        x.__dlpack__(stream=7)
    with pytest.raises(BufferError, match=r"Tensor\.__dlpack__: the tensor is on cuda:1 and "
                                          r"the consumer asked for cpu; pass copy=True"):
        x.__dlpack__(dl_device=(1, 0))
    with pytest.raises(RuntimeError, match=unavailable("Tensor.__dlpack__")):
        x.__dlpack__(dl_device=(1, 0), copy=True)
    assert pf.from_dlpack(x) is x
    # the capsules hold the tensor; dropping them releases it
    del x, cap, cap2, cap3
    gc.collect()
    assert pf.memory_stats()["cuda:1"]["foreign_storages"] == base - 1


@fake
def test_paths_that_need_the_library_raise_naming_the_call():
    """Every copy, fill or read of device memory goes through libpyframe_cuda.so (never the
    host): without CUDA each raises naming the call, and the fake memory is never touched."""
    x = _fake((2, 3))
    one = _fake((1,))
    c = pf.ones((2, 3))
    cases = [
        ("Tensor.cpu", lambda: x.cpu()),
        ("Tensor.to", lambda: x.to("cpu")),
        ("Tensor.to", lambda: x.to("cpu", pf.float64)),
        ("Tensor.to", lambda: x.to("cuda:1")),
        ("Tensor.to", lambda: x.to(copy=True)),
        ("Tensor.cuda", lambda: x.cuda()),
        ("Tensor.clone", lambda: x.clone()),
        ("Tensor.contiguous", lambda: x.T.contiguous()),
        ("Tensor.astype", lambda: x.astype(pf.float32)),
        ("Tensor.reshape", lambda: x.T.reshape(6)),
        ("Tensor.tolist", lambda: x.tolist()),
        ("Tensor.item", lambda: one.item()),
        ("float(Tensor)", lambda: float(one)),
        ("int(Tensor)", lambda: int(one)),
        ("bool(Tensor)", lambda: bool(one)),
        ("repr", lambda: repr(x)),
        ("Tensor.copy_", lambda: x.copy_(c)),
        ("Tensor.copy_", lambda: c.copy_(x)),
        ("Tensor.fill_", lambda: x.fill_(2.0)),
        ("Tensor.zero_", lambda: x.zero_()),
        ("Tensor.__setitem__", lambda: x.__setitem__(0, 1.0)),
        ("Tensor.__setitem__", lambda: x.__setitem__((slice(None), 1), c[:, 0])),
        ("Tensor.__setitem__", lambda: c.__setitem__(0, x[0])),
        ("pf.tensor", lambda: pf.tensor(x)),
        ("pf.tensor", lambda: pf.tensor([x[0], x[1]])),
        ("pf.zeros_like", lambda: pf.zeros_like(x)),
        ("pf.ones_like", lambda: pf.ones_like(x)),
        ("pf.empty_like", lambda: pf.empty_like(x)),
        ("pf.full", lambda: pf.full((2,), one)),
        ("Tensor.fill_", lambda: c.fill_(one)),
    ]
    for call, fn in cases:
        with pytest.raises(RuntimeError, match=unavailable(call)):
            fn()
    assert x.device == "cuda:0"


@fake
def test_fake_autograd_and_optimizer_refuse():
    x = _fake((3,))
    x.requires_grad_()
    # sum runs on CUDA: the fake tensor reaches the library, which has no device here
    with pytest.raises(RuntimeError, match=unavailable("sum")):
        x.sum()
    p = pf.nn.Parameter(_fake((3,)))
    p.grad = _fake((3,))
    # the update has a CUDA path (tests/test_cuda_optim.py), which needs the library
    with pytest.raises(RuntimeError, match=unavailable("SGD")):
        pf.optim.SGD([p], lr=0.1).step()
    # Adam's state is made on the parameter's device first: that needs CUDA here
    with pytest.raises(RuntimeError, match=unavailable("pf.zeros_like")):
        pf.optim.Adam([p]).step()
    q = pf.nn.Parameter(pf.ones(3))
    q.grad = _fake((3,))
    with pytest.raises(RuntimeError, match=r"^SGD: tensors on cpu and cuda:0; move them to one "
                                           r"device with \.to\(\.\.\.\)"):
        pf.optim.SGD([q], lr=0.1).step()


# ============================================================ with a GPU

def _bits(a):
    return np.ascontiguousarray(a).view(np.uint8)


def _host_array(name, shape, rng):
    if name == "bool":
        return rng.random(shape) > 0.5
    if name in ("float16", "float32", "float64"):
        a = rng.standard_normal(shape).astype(name)
        a.flat[0] = np.nan if a.size else 0     # NaN payloads must survive too
        return a
    if name == "bfloat16":
        return rng.standard_normal(shape).astype(np.float32)
    info = np.iinfo(name)
    return rng.integers(info.min, info.max, size=shape, dtype=name, endpoint=True)


@gpu
@pytest.mark.parametrize("name", NAMES)
def test_round_trip_bit_for_bit(name):
    rng = np.random.default_rng(0)
    a = _host_array(name, (5, 7), rng)
    t = pf.tensor(a) if name != "bfloat16" else pf.tensor(a).astype(pf.bfloat16)
    views = {"whole": lambda u: u, "T": lambda u: u.T, "step": lambda u: u[::2, 1::3],
             "row": lambda u: u[3], "empty": lambda u: u[:0]}
    for vname, view in views.items():
        src = view(t)
        d = src.to("cuda")
        assert d.device == "cuda:0" and d.shape == src.shape and d.dtype == src.dtype
        assert d.is_contiguous()
        back = d.cpu()
        assert back.device == "cpu"
        host = lambda u: np.asarray(u.astype(pf.float32)) if name == "bfloat16" else \
            np.asarray(u)
        assert np.array_equal(_bits(host(back)), _bits(host(src))), (name, vname)
        # and a non-contiguous view of the device tensor back to the host (strided kernel)
        dv = view(t.cuda())
        assert np.array_equal(_bits(host(dv.cpu())), _bits(host(src))), (name, vname)


@gpu
def test_negative_strides_and_broadcast_views_cross():
    a = np.arange(24, dtype=np.float32).reshape(4, 6)[::-1, ::-2]
    t = pf.from_numpy(a)
    assert np.array_equal(np.asarray(t.cuda().cpu()), a)
    e = pf.arange(3.0).reshape(3, 1).expand(3, 4)
    assert np.array_equal(np.asarray(e.cuda().cpu()), np.asarray(e))
    assert np.array_equal(np.asarray(e.cuda().expand(2, 3, 4).cpu()),
                          np.broadcast_to(np.asarray(e), (2, 3, 4)))


@gpu
def test_dtype_conversions_run_on_the_host_side():
    t = pf.arange(6.0).reshape(2, 3)
    d = t.to("cuda", pf.float16)
    assert d.device == "cuda:0" and d.dtype == pf.float16
    assert d.to("cpu", pf.float64).tolist() == t.astype(pf.float64).tolist()
    # between device tensors: the cast kernel (tests/test_cuda_elementwise.py has the rest)
    assert d.astype(pf.float32).cpu().tolist() == t.tolist()


@gpu
def test_device_to_device_copies():
    t = pf.randn(4, 5)
    d = t.cuda()
    for c in [d.clone(), d.to("cuda", copy=True), d.T.contiguous().T, pf.tensor(d),
              d.to(pf.device("cuda:0"), copy=True)]:
        assert c.device == "cuda:0"
        assert np.array_equal(np.asarray(c.cpu()), np.asarray(t))
    assert d.to("cuda") is d and d.cuda() is d and d.cuda(0) is d
    assert d.T.contiguous().is_contiguous()
    if pf.cuda.device_count() > 1:
        e = d.to("cuda:1")
        assert e.device == "cuda:1" and np.array_equal(np.asarray(e.cpu()), np.asarray(t))
        f = e.T.to("cuda:0")
        assert np.array_equal(np.asarray(f.cpu()), np.asarray(t).T)


@gpu
def test_creation_on_the_device_matches_the_cpu():
    pf.manual_seed(7)
    r_cpu = pf.randn(100)
    pf.manual_seed(7)
    r_gpu = pf.randn(100, device="cuda")
    assert r_gpu.device == "cuda:0"
    assert np.array_equal(np.asarray(r_gpu.cpu()), np.asarray(r_cpu))
    pairs = [
        (pf.zeros((3, 4), device="cuda"), np.zeros((3, 4), np.float32)),
        (pf.ones(5, dtype=pf.int8, device="cuda"), np.ones(5, np.int8)),
        (pf.full((2, 2), 7.5, device="cuda"), np.full((2, 2), 7.5, np.float32)),
        (pf.full((3,), True, device="cuda"), np.ones(3, bool)),
        (pf.arange(10, device="cuda"), np.arange(10)),
        (pf.linspace(0, 1, 5, device="cuda"), np.linspace(0, 1, 5, dtype=np.float32)),
        (pf.eye(3, 4, k=1, device="cuda"), np.eye(3, 4, k=1, dtype=np.float32)),
        (pf.tensor([[1, 2], [3, 4]], device="cuda"), np.array([[1, 2], [3, 4]])),
        (pf.zeros_like(pf.ones(3, device="cuda")), np.zeros(3, np.float32)),
        (pf.full_like(pf.ones(3, device="cuda"), 2), np.full(3, 2, np.float32)),
        (pf.ones(0, device="cuda"), np.ones(0, np.float32)),
    ]
    for t, a in pairs:
        assert t.device == "cuda:0", t
        assert t.dtype == pf.dtype(a.dtype) and np.array_equal(np.asarray(t.cpu()), a)
    assert pf.empty((2, 3), device="cuda").shape == (2, 3)


@gpu
def test_writes_into_device_tensors():
    d = pf.zeros((3, 4), device="cuda")
    d[0] = 5.0
    d[:, 1] = pf.tensor([1.0, 2.0, 3.0])          # a cpu source, copied over
    d[2, 2:] = pf.tensor([8.0, 9.0], device="cuda")
    d.T[3] = 4.0
    expect = np.zeros((3, 4), np.float32)
    expect[0] = 5
    expect[:, 1] = [1, 2, 3]
    expect[2, 2:] = [8, 9]
    expect[:, 3] = 4
    assert np.array_equal(np.asarray(d.cpu()), expect)
    d.fill_(2)
    assert d.cpu().tolist() == [[2.0] * 4] * 3
    d.zero_()
    d.copy_(pf.arange(4.0))                        # broadcast from the cpu
    assert d.tolist() == [[0.0, 1.0, 2.0, 3.0]] * 3
    h = pf.zeros((3, 4))
    h.copy_(d.T.T)
    assert h.tolist() == d.tolist()
    d[1:] = d[:-1].clone()                         # a copy on the device, then a strided one
    assert d.tolist() == [[0.0, 1.0, 2.0, 3.0]] * 3
    one = pf.tensor([3.5], device="cuda")
    assert one.item() == 3.5 and float(one) == 3.5 and int(one) == 3 and bool(one)
    assert "device='cuda:0'" in repr(one)
    x = pf.ones(3, device="cuda")
    x.resize_(10)
    assert x.shape == (10,) and x[:3].tolist() == [1.0, 1.0, 1.0]


@gpu
def test_numpy_refuses_and_cuda_array_interface():
    d = pf.arange(6, dtype=pf.float32).reshape(2, 3).cuda()
    with pytest.raises(TypeError, match=r"this tensor is on cuda:0; NumPy and the buffer "
                                        r"protocol read host memory only"):
        np.asarray(d)
    with pytest.raises(TypeError, match=r"\.cpu\(\) first"):
        memoryview(d)
    cai = d.__cuda_array_interface__
    assert cai["shape"] == (2, 3) and cai["typestr"] == "<f4" and cai["version"] == 3
    assert cai["strides"] is None and cai["stream"] == 1 and cai["data"][1] is False
    assert d.T.__cuda_array_interface__["strides"] == (4, 12)
    assert d[1].__cuda_array_interface__["data"][0] == cai["data"][0] + 12
    if torch is not None and torch.cuda.is_available():
        tt = torch.as_tensor(d.T, device="cuda")       # reads the interface, no copy
        assert tt.data_ptr() == cai["data"][0]
        assert tt.cpu().tolist() == np.arange(6).reshape(2, 3).T.tolist()


@gpu
def test_dlpack_round_trips():
    d = pf.arange(12, dtype=pf.float32).reshape(3, 4).cuda()
    assert d.__dlpack_device__() == (2, 0)
    same = pf.from_dlpack(d.__dlpack__())
    assert same.device == "cuda:0"
    assert same.__cuda_array_interface__["data"][0] == d.__cuda_array_interface__["data"][0]
    h = d.__dlpack__(dl_device=(1, 0), copy=True)
    assert pf.from_dlpack(h).tolist() == d.tolist()
    if torch is None or not torch.cuda.is_available():
        pytest.skip("torch with CUDA is not installed: the torch half of the round trip")
    y = torch.from_dlpack(d)                       # pf -> torch, zero copy
    assert y.device.type == "cuda" and y.data_ptr() == d.__cuda_array_interface__["data"][0]
    y[0, 0] = 100.0
    assert d[0, 0].item() == 100.0
    del d
    gc.collect()
    assert y[0, 0].item() == 100.0                 # the capsule kept pf's memory alive
    x = torch.arange(6, dtype=torch.float64, device="cuda").reshape(2, 3)
    t = pf.from_dlpack(x)                          # torch -> pf, zero copy
    assert t.device == "cuda:0" and t.dtype == pf.float64
    assert t.__cuda_array_interface__["data"][0] == x.data_ptr()
    x[1, 2] = -1.0
    assert t.cpu().tolist() == x.cpu().tolist()
    del x
    gc.collect()
    assert t[1, 2].item() == -1.0                  # the deleter keeps torch's tensor alive
    xt = torch.arange(6, dtype=torch.float32, device="cuda").reshape(2, 3).t()
    assert pf.from_dlpack(xt).cpu().tolist() == xt.cpu().tolist()


@gpu
def test_module_to_cuda_keeps_parameters():
    net = pf.Sequential([pf.layers.Dense(4, input_shape=(3,)), pf.layers.BatchNormalization()])
    params = list(net.parameters())
    ids = [id(p) for p in params]
    values = [np.asarray(p.detach()).copy() for p in params]
    assert net.to("cuda") is net
    assert [id(p) for p in net.parameters()] == ids
    for p in net.parameters():
        assert p.device == "cuda:0" and p.requires_grad
    for _, b in net.named_buffers():
        assert b.device == "cuda:0"
    assert net.cpu() is net
    for p, v in zip(net.parameters(), values):
        assert p.device == "cpu" and np.array_equal(np.asarray(p.detach()), v)
    lazy = pf.Sequential([pf.layers.Dense(2)]).to("cuda")
    with pytest.raises(NotImplementedError, match=r"the CUDA kernel for .* is not written yet"):
        lazy(pf.ones((1, 3), device="cuda"))       # built on the device, then no kernel
    assert all(p.device == "cuda:0" for p in lazy.parameters())


@gpu
def test_memory_allocated_rises_and_falls():
    gc.collect()
    base = pf.cuda.memory_allocated()
    live = pf.memory_stats().get("cuda:0", {}).get("live_bytes", 0)
    d = pf.empty(1 << 20, device="cuda")
    assert pf.cuda.memory_allocated() >= base + 4 * (1 << 20)
    assert pf.memory_stats()["cuda:0"]["live_bytes"] == live + 4 * (1 << 20)
    v = d[::2]                                     # a view holds the storage
    del d
    assert pf.memory_stats()["cuda:0"]["live_bytes"] == live + 4 * (1 << 20)
    del v
    gc.collect()
    assert pf.cuda.memory_allocated() == base
    assert pf.memory_stats()["cuda:0"]["live_bytes"] == live
    assert pf.memory_stats()["cuda:0"]["free_failures"] == 0


@gpu
def test_ops_on_device_tensors_raise():
    d, c = pf.ones((2, 3), device="cuda"), pf.ones((2, 3))
    assert (d + d).cpu().tolist() == [[2.0] * 3] * 2
    with pytest.raises(RuntimeError, match=r"^add: tensors on cuda:0 and cpu; move them to one "
                                           r"device with \.to\(\.\.\.\)"):
        d + c
    with pytest.raises(RuntimeError, match=r"^matmul: tensors on cpu and cuda:0"):
        c @ d.T
    with pytest.raises(NotImplementedError, match=no_kernel("exp")):
        d.exp()


@gpu
def test_autograd_follows_copies_across_devices():
    x = pf.randn(3, requires_grad=True)
    y = x.to("cuda").cpu()
    (y * 2.0).sum().backward()
    assert x.grad.device == "cpu" and x.grad.tolist() == [2.0, 2.0, 2.0]
    w = pf.ones(3, device="cuda", requires_grad=True)
    w.cpu().sum().backward()
    assert w.grad.device == "cuda:0" and w.grad.cpu().tolist() == [1.0, 1.0, 1.0]
