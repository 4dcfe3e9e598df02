"""Memory accounting: pf.memory_stats() counts live tensors and bytes, and a
long loop of creating, viewing, exchanging and dropping tensors returns
every counter to its baseline (no leaked tensor, storage or foreign
reference)."""
import gc

import numpy as np
import pytest

import pyframe as pf

KEYS = ("live_tensors", "live_bytes", "foreign_storages")


def _stats():
    gc.collect()
    return pf.memory_stats()["cpu"]


def _figures():
    s = _stats()
    return {k: s[k] for k in KEYS}


def test_memory_stats_shape():
    stats = pf.memory_stats()
    assert "cpu" in stats
    cpu = stats["cpu"]
    for k in ("live_tensors", "live_bytes", "foreign_storages"):
        assert isinstance(cpu[k], int) and cpu[k] >= 0


def test_counters_follow_one_tensor():
    before = _stats()
    t = pf.zeros((10, 25), dtype=pf.float64)
    s = _stats()
    assert s["live_tensors"] == before["live_tensors"] + 1
    assert s["live_bytes"] == before["live_bytes"] + 10 * 25 * 8
    v = t[1:, ::2].T                             # views: tensors, but no new bytes
    s = _stats()
    assert s["live_tensors"] == before["live_tensors"] + 2
    assert s["live_bytes"] == before["live_bytes"] + 2000
    del t
    s = _stats()
    assert s["live_tensors"] == before["live_tensors"] + 1
    assert s["live_bytes"] == before["live_bytes"] + 2000   # the view keeps the storage
    del v
    assert _figures() == {k: before[k] for k in KEYS}


def test_foreign_storage_counted_and_released():
    before = _figures()
    a = np.arange(100.0)
    t = pf.from_numpy(a)
    s = _figures()
    assert s["foreign_storages"] == before["foreign_storages"] + 1
    assert s["live_bytes"] == before["live_bytes"]           # NumPy's bytes, not ours
    assert s["live_tensors"] == before["live_tensors"] + 1
    del t
    assert _figures() == before
    u = pf.from_dlpack(a)
    assert _figures()["foreign_storages"] == before["foreign_storages"] + 1
    del u
    assert _figures() == before


def test_resize_accounting():
    before = _figures()
    t = pf.zeros(10, dtype=pf.int64)
    t.resize_(1000)
    assert _figures()["live_bytes"] == before["live_bytes"] + 8000
    del t
    assert _figures() == before


def _one_round(i, base_np):
    torch_ok = _torch is not None
    t = pf.arange(48, dtype=pf.float32).reshape(4, 12)
    v = t[1:, ::3].T                                   # indexing, views
    r = v.reshape(-1)                                  # copy (not viewable)
    w = t.view(2, 24).unsqueeze(0).expand(3, 2, 24)    # views, stride 0
    c = w.clone()
    c[0, 1, 2:5] = t[0, :3]                            # assignment with a view
    s = c.astype(pf.float64).squeeze().contiguous()
    n = np.asarray(t)                                  # NumPy round trips
    back = pf.from_numpy(n[::-1])
    x = pf.from_numpy(base_np)
    y = np.asarray(x[i % 7])
    d = np.from_dlpack(v)                              # DLPack round trips
    e = pf.from_dlpack(base_np)
    cap = t.__dlpack__()                               # a capsule never consumed
    f = pf.from_dlpack(t.__dlpack__(max_version=(1, 0)))
    mv = memoryview(s)
    rows = [row for row in t]
    if torch_ok:
        tt = _torch.from_dlpack(t)
        pt = pf.from_dlpack(tt)
        del tt, pt
    del v, r, w, c, s, n, back, x, y, d, e, cap, f, mv, rows, t


try:
    import torch as _torch
except ImportError:     # the loop still covers NumPy and DLPack without torch
    _torch = None


def test_long_loop_returns_to_baseline():
    base_np = np.arange(70.0).reshape(7, 10)
    for i in range(200):                 # warm-up: lazy imports, caches, free lists
        _one_round(i, base_np)
    baseline = _figures()
    for i in range(100_000):
        _one_round(i, base_np)
    after = _figures()
    assert after == baseline, f"baseline {baseline}, after 10^5 rounds {after}"


def _failing_round(ro, wide):
    t = pf.zeros((2, 3))
    with pytest.raises(RuntimeError):
        t.T.view(-1)
    with pytest.raises(ValueError):
        t[0] = np.ones(4)
    with pytest.raises(ValueError):
        pf.from_numpy(ro)[0] = 1.0
    with pytest.raises(IndexError):
        t[5]
    with pytest.raises(TypeError):
        pf.from_numpy(wide)
    mv = memoryview(t)
    with pytest.raises(BufferError):
        t.resize_(100)
    mv.release()


def test_loop_with_errors_returns_to_baseline():
    """Failing calls must not leak what they allocated before failing."""
    ro = np.arange(6.0)
    ro.flags.writeable = False
    wide = np.arange(6, dtype=np.uint32)
    for _ in range(100):
        _failing_round(ro, wide)
    baseline = _figures()
    for _ in range(20_000):
        _failing_round(ro, wide)
    assert _figures() == baseline
