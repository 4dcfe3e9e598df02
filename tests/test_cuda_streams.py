"""Streams, events and the stream-aware caching allocator.

The allocator's stream policy is plain C over two callbacks, tested here on
any machine through ``_C._HostCachingAllocator`` (fake events that complete
when the test says so): a block is reused only on the stream it was
allocated on, and a block recorded on other streams waits, once freed, until
their events complete.  The CUDA side (pf.cuda.Stream / Event) runs where a
GPU is; without one its entry points must raise naming themselves.
"""
import numpy as np
import pytest

import pyframe as pf
from pyframe import _C

CUDA = pf.cuda.is_available()
REASON = pf.cuda.status()
gpu = pytest.mark.skipif(not CUDA, reason="needs a usable CUDA GPU; here: " + REASON)
no_gpu = pytest.mark.skipif(CUDA, reason="checks the behaviour without a usable GPU")

H = _C._HostCachingAllocator
S1, S2 = 0x1000, 0x2000         # stream handles, opaque to the allocator


# ------------------------------------------------------------------ allocator policy

def test_blocks_are_reused_on_their_own_stream_only():
    h = H()
    a = h.alloc(1000, 0, S1)
    h.free(a)
    b = h.alloc(1000, 0, S2)            # another stream: a new block
    assert b != a and h.stats()["cache_hits"] == 0
    assert h.alloc(1000, 0, S1) == a    # its own stream: the cached one
    h.free(b)
    assert h.alloc(1000) != b           # the default stream (0) is a stream too
    assert h.alloc(1000, 0, S2) == b
    assert h.stats()["cache_hits"] == 2


def test_record_stream_delays_reuse_until_the_event_completes():
    h = H()
    a = h.alloc(4096, 0, S1)
    h.record_stream(a, S2)
    h.record_stream(a, S2)              # twice: one use
    h.record_stream(a, S1)              # its own stream: nothing to wait for
    h.free(a)
    st = h.stats()
    assert st["pending_bytes"] == 4096 and st["cached_bytes"] == 0
    assert h.events_made == 1
    b = h.alloc(4096, 0, S1)            # S2's work may still read a: not reused
    assert b != a
    h.free(b)
    h.complete_events()
    assert h.alloc(4096, 0, S1) in (a, b)
    st = h.stats()
    assert st["pending_bytes"] == 0 and h.events_destroyed == 1
    # both blocks are back in the cache or out: nothing is lost
    assert st["allocated_bytes"] + st["cached_bytes"] == st["reserved_bytes"]


def test_empty_cache_keeps_pending_blocks():
    h = H()
    a = h.alloc(2048, 0, S1)
    h.record_stream(a, S2)
    h.free(a)
    assert h.empty_cache() == 0         # still in use on S2
    assert h.stats()["pending_bytes"] == 2048
    h.complete_events()
    assert h.empty_cache() == 2048
    st = h.stats()
    assert st["reserved_bytes"] == 0 and st["pending_bytes"] == 0 and h.raw_bytes == 0


def test_failed_event_keeps_the_block_out_of_reuse():
    h = H()
    a = h.alloc(1024, 0, S1)
    h.record_stream(a, S2)
    h.fail_events = True
    with pytest.raises(RuntimeError, match=r"_HostCachingAllocator.free: simulated failure to "
                                           r"record an event on stream 8192"):
        h.free(a)
    h.fail_events = False
    h.complete_events()
    for _ in range(3):
        b = h.alloc(1024, 0, S1)
        assert b != a                   # never handed out again: no race is possible
        h.free(b)
    assert h.stats()["pending_bytes"] == 1024


def test_record_stream_errors():
    h = H()
    with pytest.raises(ValueError, match=r"record_stream: pointer .* was not handed out"):
        h.record_stream(4096, S1)
    a = h.alloc(100)
    h.free(a)
    with pytest.raises(ValueError, match="was not handed out by the host allocator, or was "
                                         "already freed"):
        h.record_stream(a, S2)


def test_many_streams_and_devices_balance():
    h = H(devices=2)
    rng = np.random.default_rng(0)
    live = []
    for i in range(300):
        if live and rng.random() < 0.45:
            h.free(live.pop(int(rng.integers(len(live)))))
        else:
            p = h.alloc(int(rng.integers(1, 5000)), int(rng.integers(2)),
                        int(rng.choice([0, S1, S2])))
            if rng.random() < 0.3:
                h.record_stream(p, int(rng.choice([S1, S2])))
            live.append(p)
        if i % 50 == 0:
            h.complete_events()
    for p in live:
        h.free(p)
    h.complete_events()
    h.empty_cache()
    for d in (0, 1):
        st = h.stats(d)
        assert st["allocated_bytes"] == st["reserved_bytes"] == st["pending_bytes"] == 0
    assert h.raw_bytes == 0 and h.events_made == h.events_destroyed


# ------------------------------------------------------------------ without a GPU

@no_gpu
def test_streams_need_cuda():
    with pytest.raises(RuntimeError, match="^pf.cuda.Stream: CUDA is not available"):
        pf.cuda.Stream()
    with pytest.raises(RuntimeError, match="^pf.cuda.current_stream: CUDA is not available"):
        pf.cuda.current_stream()


def test_stream_argument_errors():
    with pytest.raises(TypeError, match="pf.cuda.stream: expected a pf.cuda.Stream or None"):
        pf.cuda.stream("s")
    with pytest.raises(TypeError, match="pf.cuda.set_stream: expected a pf.cuda.Stream"):
        pf.cuda.set_stream(3)
    with pytest.raises(ValueError, match="interprocess events are not supported"):
        pf.cuda.Event(interprocess=True)
    with pytest.raises(RuntimeError, match="the event was never recorded"):
        pf.cuda.Event().synchronize()
    assert pf.cuda.Event().query()
    with pytest.raises(ValueError, match="both events need enable_timing=True"):
        pf.cuda.Event().elapsed_time(pf.cuda.Event())
    with pf.cuda.stream(None) as s:
        assert s is None
    with pytest.raises(ValueError, match=r"Tensor.record_stream: the tensor is on cpu; "
                                         r"record_stream is for tensors on a CUDA device"):
        pf.ones(3).record_stream(7)
    with pytest.raises(TypeError, match="Tensor.record_stream: expected a pf.cuda.Stream; "
                                        "got str"):
        pf.ones(3).record_stream("s")


# ------------------------------------------------------------------ on a GPU

@gpu
def test_work_on_a_side_stream():
    s = pf.cuda.Stream()
    assert pf.cuda.current_stream() == pf.cuda.default_stream()
    a = pf.tensor(np.arange(1 << 20, dtype=np.float32), device="cuda")
    done = pf.cuda.current_stream().record_event()
    s.wait_event(done)
    with pf.cuda.stream(s):
        assert pf.cuda.current_stream() == s
        b = a * 2.0
        b.record_stream(s)
    assert pf.cuda.current_stream() == pf.cuda.default_stream()
    pf.cuda.current_stream().wait_stream(s)
    np.testing.assert_array_equal(b.cpu().numpy(), np.arange(1 << 20, dtype=np.float32) * 2)
    s.synchronize()
    assert s.query()


@gpu
def test_event_timing():
    start, end = pf.cuda.Event(enable_timing=True), pf.cuda.Event(enable_timing=True)
    x = pf.ones((2048, 2048), device="cuda")
    start.record()
    for _ in range(5):
        x = x * 1.0001
    end.record()
    end.synchronize()
    assert end.query()
    assert start.elapsed_time(end) > 0.0


@gpu
def test_allocation_follows_the_current_stream():
    s = pf.cuda.Stream()
    pf.cuda.empty_cache()
    with pf.cuda.stream(s):
        t = pf.empty((1 << 18,), device="cuda")
    del t
    hits = pf.cuda.memory_stats()["cache_hits"]
    u = pf.empty((1 << 18,), device="cuda")     # the default stream: not s's block
    assert pf.cuda.memory_stats()["cache_hits"] == hits
    del u
    s.synchronize()


# ------------------------------------------------------------------ pinned memory

def test_pinning_needs_cuda_or_a_cpu_tensor():
    t = pf.arange(6).reshape(2, 3)
    assert not t.is_pinned()
    if not CUDA:
        with pytest.raises(RuntimeError, match="^Tensor.pin_memory: CUDA is not available"):
            t.pin_memory()
        # non_blocking from ordinary memory is an ordinary (refused here) copy
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            t.to("cuda", non_blocking=True)
    fake = _C._fake_cuda_tensor((2,), "float32", 0) if not CUDA else pf.ones(2, device="cuda")
    with pytest.raises(ValueError, match=r"^Tensor.pin_memory: only tensors on the cpu can be "
                                         r"pinned; this one is on cuda:0"):
        fake.pin_memory()


@no_gpu
def test_dataloader_pin_memory_without_cuda_warns_and_goes_on():
    ds = pf.data.TensorDataset(pf.arange(10, dtype=pf.float32), pf.arange(10))
    with pytest.warns(UserWarning, match="DataLoader: pin_memory=True, but CUDA is not "
                                         "available"):
        dl = pf.data.DataLoader(ds, batch_size=4, pin_memory=True)
    batches = list(dl)
    assert len(batches) == 3 and not batches[0][0].is_pinned()
    np.testing.assert_array_equal(np.asarray(batches[2][1]), [8, 9])


@gpu
def test_pinned_round_trip_and_async_copy():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((256, 257)).astype(np.float32)
    t = pf.tensor(a)
    p = t.pin_memory()
    assert p.is_pinned() and p.pin_memory() is p and not t.is_pinned()
    np.testing.assert_array_equal(np.asarray(p), a)
    outs = []
    for k in range(20):
        src = pf.tensor(a + k).pin_memory()
        outs.append(src.to("cuda", non_blocking=True))
        del src                         # freed while the copy may still run: reuse waits
    for k, o in enumerate(outs):
        np.testing.assert_array_equal(o.cpu().numpy(), a + k)
    # a non-contiguous or converted pinned source takes the ordinary path
    np.testing.assert_array_equal(p.T.to("cuda", non_blocking=True).cpu().numpy(), a.T)


@gpu
def test_dataloader_pins_batches():
    ds = pf.data.TensorDataset(pf.arange(64, dtype=pf.float32).reshape(32, 2), pf.arange(32))
    for workers in (0, 2):
        dl = pf.data.DataLoader(ds, batch_size=8, pin_memory=True, num_workers=workers)
        for x, y in dl:
            assert x.is_pinned() and y.is_pinned()
