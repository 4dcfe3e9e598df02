"""The CUDA backend's build and loading, pf.cuda, and the caching device allocator.

Three groups:
- without a usable GPU (CI, laptops): pf.cuda answers False / 0 / the reason, every other
  call raises naming itself and that reason, `import pyframe` loads no CUDA code, and each
  way of failing to load the library is reported as such;
- the allocator's bookkeeping, over host memory (pyframe._C._HostCachingAllocator), on any
  machine;
- with a GPU: devices, properties, and the allocator over cudaMalloc (skipped elsewhere).
"""
import ctypes
import os
import random
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

import pyframe as pf
from pyframe import _C

PKG = os.path.dirname(pf.__file__)
LIB = os.path.join(PKG, "libpyframe_cuda.so")


def _find_nvcc():
    # the lookup setup.py makes
    found = shutil.which("nvcc")
    if found:
        return found
    for root in (os.environ.get("CUDA_HOME"), "/usr/local/cuda"):
        if root and os.access(os.path.join(root, "bin", "nvcc"), os.X_OK):
            return os.path.join(root, "bin", "nvcc")
    return None


def _driver_loads():
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


NVCC = _find_nvcc()
STATUS = _C._cuda_status()
GPU = STATUS["available"]
needs_gpu = pytest.mark.skipif(not GPU, reason="needs a usable CUDA GPU; here: " + STATUS["reason"])
without_gpu = pytest.mark.skipif(GPU, reason="checks pf.cuda on a machine without a usable GPU")


def _run(code, cwd=None, env=None):
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, cwd=cwd, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


# ------------------------------------------------------------------ build and loading

@pytest.mark.skipif(NVCC is None, reason="nvcc not found: the CUDA backend is not built here")
@pytest.mark.skipif(os.environ.get("PYFRAME_CUDA") == "0", reason="PYFRAME_CUDA=0 skips it")
def test_build_made_the_cuda_library():
    assert os.path.isfile(LIB), "nvcc is at %s but %s was not built" % (NVCC, LIB)
    # only the pf_cuda_* entry points are exported: the static CUDA runtime stays hidden,
    # so it never binds to another libcudart in the process (or that one to ours)
    out = _run(f"""
        import ctypes
        lib = ctypes.CDLL({LIB!r})
        print(lib.pf_cuda_abi_version(), hasattr(lib, "cudaMalloc"),
              hasattr(lib, "pf_ca_alloc"), hasattr(lib, "pf_cuda_alloc"))
    """)
    abi = re.search(r"#define PF_CUDA_ABI_VERSION (\d+)",
                    open(os.path.join(os.path.dirname(PKG), "csrc", "cuda", "pf_cuda.h")).read()).group(1)
    assert out.split() == [abi, "False", "False", "True"]


def test_import_pyframe_loads_no_cuda_code():
    out = _run("""
        import os

        def mapped():
            with open("/proc/self/maps") as f:
                maps = f.read()
            return ("libpyframe_cuda" in maps, "libcudart" in maps, "libcuda.so" in maps)

        import pyframe as pf
        print(*mapped())
        import pyframe.cuda
        print(*mapped())
        pf.cuda.device_count()            # first use: loads the library if it was built
        print(*mapped())
    """)
    lines = [line.split() for line in out.splitlines()]
    assert lines[0] == ["False", "False", "False"]
    assert lines[1] == ["False", "False", "False"]
    # the library is loaded only now, and carries its CUDA runtime inside (no libcudart.so)
    assert lines[2][:2] == [str(os.path.isfile(LIB)), "False"]


def test_pyframe_C_does_not_link_cuda():
    with open(_C.__file__, "rb") as f:
        data = f.read()
    assert b"libcudart" not in data and b"libcuda.so" not in data


@without_gpu
def test_unavailable_with_the_reason():
    assert pf.cuda.is_available() is False
    assert pf.cuda.device_count() == 0
    reason = pf.cuda.status()
    assert reason == STATUS["reason"] and reason
    if not os.path.isfile(LIB):
        assert STATUS["kind"] == "not built"
        assert reason.startswith("not built: ") and LIB in reason and "nvcc" in reason
    elif not _driver_loads():
        assert STATUS["kind"] == "no driver"
        assert reason.startswith("no usable NVIDIA driver (cudaGetDeviceCount failed: "
                                 "cudaErrorInsufficientDriver")
        assert "needs a driver for CUDA %d.%d or newer" % (
            STATUS["runtime_version"] // 1000, STATUS["runtime_version"] % 1000 // 10) in reason
    else:
        assert STATUS["kind"] in ("no device", "error")
        assert "cudaErrorNoDevice" in reason or "0 CUDA devices" in reason or "failed" in reason


UNAVAILABLE_CALLS = [
    ("current_device", ()), ("set_device", (0,)), ("get_device_name", (0,)),
    ("get_device_properties", ()), ("get_device_capability", ("cuda:0",)),
    ("synchronize", ()), ("mem_get_info", ()), ("memory_allocated", ()),
    ("memory_reserved", (0,)), ("max_memory_allocated", ()), ("max_memory_reserved", ()),
    ("memory_stats", ()), ("reset_peak_memory_stats", ()), ("empty_cache", ()),
]


@without_gpu
@pytest.mark.parametrize("name, args", UNAVAILABLE_CALLS)
def test_calls_raise_naming_themselves_and_the_reason(name, args):
    with pytest.raises(RuntimeError) as e:
        getattr(pf.cuda, name)(*args)
    assert str(e.value) == "pf.cuda.%s: CUDA is not available: %s" % (name, pf.cuda.status())


@without_gpu
def test_show_config_gives_the_reason(capsys):
    pf.show_config()
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("CUDA")][0]
    assert line.split(None, 1)[1] == pf.cuda.status()
    c = pf.config()
    assert c["cuda_available"] is False and c["cuda_device_count"] == 0


def test_bad_device_arguments():
    with pytest.raises(TypeError, match=r"pf.cuda.synchronize: device must be an int, "
                                        r"'cuda:N', a pf.device or None; got float"):
        pf.cuda.synchronize(1.0)
    with pytest.raises(TypeError, match=r"got bool"):
        pf.cuda.memory_allocated(True)
    with pytest.raises(ValueError, match=r"pf.cuda.memory_allocated: expected a CUDA device; "
                                         r"got 'cpu'"):
        pf.cuda.memory_allocated("cpu")


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory):
    """A copy of the pyframe package whose CUDA library the tests below replace."""
    root = tmp_path_factory.mktemp("pkg")
    shutil.copytree(PKG, root / "pyframe",
                    ignore=shutil.ignore_patterns("__pycache__", "libpyframe_cuda.so"))
    return root


def _status_of_copy(root):
    env = dict(os.environ, PYTHONPATH=str(root))
    out = _run("""
        import pyframe as pf
        s = pf._C._cuda_status()
        print(pf.__file__)
        print(s["kind"])
        print(s["reason"])
        try:
            pf.cuda.synchronize()
        except RuntimeError as e:
            print(e)
    """, cwd=str(root), env=env)
    file, kind, reason, error = out.splitlines()
    assert file.startswith(str(root))
    assert error == "pf.cuda.synchronize: CUDA is not available: " + reason
    return kind, reason


def test_reports_a_library_that_was_not_built(package_copy):
    lib = package_copy / "pyframe" / "libpyframe_cuda.so"
    if lib.exists():
        lib.unlink()
    kind, reason = _status_of_copy(package_copy)
    assert kind == "not built"
    assert reason == (f"not built: {lib} does not exist (this pyframe was built without nvcc; "
                      "install the CUDA toolkit and rebuild, with PYFRAME_CUDA=1 to make a "
                      "missing nvcc an error)")


def test_reports_a_library_that_fails_to_load(package_copy):
    lib = package_copy / "pyframe" / "libpyframe_cuda.so"
    lib.write_bytes(b"this is not a shared object\n")
    kind, reason = _status_of_copy(package_copy)
    assert kind == "load failed"
    # the dynamic loader's own words follow the path
    assert reason.startswith(f"{lib} failed to load: {lib}: ")
    assert "invalid ELF header" in reason or "too short" in reason


def test_reports_a_library_without_the_entry_points(package_copy):
    # a real shared object, but not ours: pyframe._C itself exports none of pf_cuda_*
    lib = package_copy / "pyframe" / "libpyframe_cuda.so"
    shutil.copyfile(_C.__file__, lib)
    kind, reason = _status_of_copy(package_copy)
    assert kind == "incompatible"
    assert reason == (f"{lib} lacks the entry point pf_cuda_abi_version (it was built from "
                      "other sources than this pyframe._C); rebuild pyframe")


# ------------------------------------------- the caching allocator over host memory

H = _C._HostCachingAllocator


def test_round_size_classes():
    assert H.round_size(0) == 0
    for size, block in [(1, 512), (512, 512), (513, 576), (1000, 1024), (1024, 1024),
                        (1025, 1152), (3000, 3072), (10**6, 2**20), (2**20 + 1, 2**20 + 2**17),
                        (2**48, 2**48), (2**48 + 1, 0)]:
        assert H.round_size(size) == block, size
    rng = random.Random(0)
    previous = 0
    for size in sorted(rng.randrange(513, 2**40) for _ in range(2000)):
        block = H.round_size(size)
        step = 1 << ((size - 1).bit_length() - 4)    # 1/8 of the power of two below
        assert block >= size and block - size < step and block % step == 0
        assert block < size * 1.125 and block >= previous
        previous = block


def test_freed_blocks_are_reused_by_their_class():
    h = H()
    a = h.alloc(1000)
    assert a % 256 == 0
    h.free(a)
    assert h.alloc(970) == a            # 970 and 1000 share the 1024-byte class
    b = h.alloc(2000)                   # another class: a new block
    assert b != a
    s = h.stats()
    assert (s["alloc_calls"], s["cache_hits"], s["raw_alloc_calls"]) == (3, 1, 2)
    # most recently freed first
    c = h.alloc(1000)
    h.free(a)
    h.free(c)
    assert h.alloc(1000) == c and h.alloc(1000) == a


def test_counters_and_empty_cache():
    h = H()
    ptrs = [h.alloc(n) for n in (100, 1000, 3000, 5000)]
    blocks = sum(H.round_size(n) for n in (100, 1000, 3000, 5000))
    s = h.stats()
    assert s["allocated_bytes"] == s["reserved_bytes"] == s["peak_allocated_bytes"] == blocks
    assert s["cached_bytes"] == 0 and h.raw_bytes == blocks
    for p in ptrs[:2]:
        h.free(p)
    s = h.stats()
    freed = H.round_size(100) + H.round_size(1000)
    assert s["allocated_bytes"] == blocks - freed
    assert s["reserved_bytes"] == blocks and s["cached_bytes"] == freed
    assert s["peak_allocated_bytes"] == blocks and s["free_calls"] == 2
    h.reset_peak()
    assert h.stats()["peak_allocated_bytes"] == blocks - freed
    assert h.empty_cache() == freed
    s = h.stats()
    assert s["reserved_bytes"] == blocks - freed == h.raw_bytes
    assert s["cached_bytes"] == 0 and s["raw_free_calls"] == 2
    assert h.empty_cache() == 0
    for p in ptrs[2:]:
        h.free(p)
    assert h.empty_cache() == blocks - freed and h.raw_bytes == 0
    assert h.stats()["peak_reserved_bytes"] == blocks


def test_devices_have_their_own_lists_and_counters():
    h = H(devices=2)
    a = h.alloc(4096, 0)
    h.free(a)
    b = h.alloc(4096, 1)
    assert b != a                                   # device 0's cached block is not given
    assert h.stats(0)["cached_bytes"] == 4096 and h.stats(1)["allocated_bytes"] == 4096
    assert h.empty_cache(1) == 0 and h.empty_cache(0) == 4096
    h.free(b)
    assert h.stats(1)["cached_bytes"] == 4096
    with pytest.raises(ValueError, match=r"device 2 does not exist: the allocator serves "
                                         r"host:0 to host:1"):
        h.alloc(10, 2)


def test_zero_size_null_and_bad_frees():
    h = H()
    assert h.alloc(0) == 0
    h.free(0)
    assert h.stats()["alloc_calls"] == 0 and h.raw_attempts == 0
    a = h.alloc(64)
    h.free(a)
    with pytest.raises(ValueError, match=r"was not handed out by the host allocator, or was "
                                         r"already freed"):
        h.free(a)
    with pytest.raises(ValueError, match=r"not handed out"):
        h.free(a + 256)
    with pytest.raises(OverflowError):
        h.alloc(-1)


def test_out_of_memory_releases_the_cache_and_retries_once():
    h = H(limit=4096)
    a = h.alloc(2048)
    h.free(a)                                       # 2048 bytes cached
    before = h.raw_attempts
    b = h.alloc(3000)                               # a 3072-byte block does not fit beside it
    assert h.raw_attempts == before + 2             # failed, released the cache, retried
    s = h.stats()
    assert s["oom_retries"] == 1 and s["ooms"] == 0
    assert s["reserved_bytes"] == 3072 == h.raw_bytes and s["cached_bytes"] == 0
    assert h.raw_bytes == 3072 and b != 0


def test_out_of_memory_reports_the_size_asked_for():
    h = H(limit=4096)
    big = h.alloc(3000)
    # nothing cached: one raw attempt, no retry
    before = h.raw_attempts
    with pytest.raises(MemoryError) as e:
        h.alloc(1500)
    assert h.raw_attempts == before + 1
    assert str(e.value) == (
        "_HostCachingAllocator.alloc: out of memory on host:0: could not allocate 1500 bytes "
        "(1.46 KiB, a block of 1.50 KiB); tensors hold 3.00 KiB on this device and the "
        "allocator reserves 3.00 KiB. Free tensors you no longer need, or use a smaller batch "
        "size")
    # something cached, but not enough: released, retried, failed again
    small = h.alloc(512)
    h.free(small)
    before = h.raw_attempts
    with pytest.raises(MemoryError, match=r"could not allocate 1500 bytes \(1.46 KiB, a block "
                                          r"of 1.50 KiB\) even after releasing 512 B of cached "
                                          r"blocks; tensors hold 3.00 KiB"):
        h.alloc(1500)
    assert h.raw_attempts == before + 2
    s = h.stats()
    assert (s["ooms"], s["oom_retries"], s["cached_bytes"]) == (2, 1, 0)
    assert s["allocated_bytes"] == s["reserved_bytes"] == 3072
    # still usable after failing: the cached 3 KiB block goes back to make room
    h.free(big)
    assert h.alloc(1500) != 0
    s = h.stats()
    assert (s["allocated_bytes"], s["reserved_bytes"], s["oom_retries"]) == (1536, 1536, 2)
    with pytest.raises(MemoryError, match=r"out of memory on host:0: 1152921504606846976 bytes "
                                          r"\(1024.00 PiB\) were asked for, more than any "
                                          r"device holds"):
        h.alloc(2**60)


def test_a_budget_below_what_is_held_refuses_new_blocks():
    h = H()
    a = h.alloc(4096)
    h.limit = 1024
    with pytest.raises(MemoryError, match=r"could not allocate 100 bytes \(100 B, a block of "
                                          r"512 B\)"):
        h.alloc(100)
    h.free(a)
    assert h.alloc(4000) == a           # a cached block needs no new memory
    h.limit = None
    assert h.alloc(100) != 0


def test_raw_failures_other_than_oom_pass_through():
    h = H()
    h.fail_with_error = True
    with pytest.raises(RuntimeError, match=r"^_HostCachingAllocator.alloc: simulated failure of "
                                           r"the raw allocator on host:0$"):
        h.alloc(100)
    s = h.stats()
    assert s["allocated_bytes"] == s["reserved_bytes"] == s["alloc_calls"] == 0
    h.fail_with_error = False
    assert h.alloc(100) != 0


def test_random_traffic_keeps_the_books():
    # many live blocks grow the pointer table; frees in random order exercise its deletion
    rng = random.Random(1)
    h = H(devices=2)
    live = {}
    for _ in range(20000):
        if live and rng.random() < 0.48:
            p = rng.choice(list(live))
            h.free(p)
            del live[p]
        else:
            size = rng.randrange(1, 4096) if rng.random() < 0.5 else rng.randrange(1, 1 << 16)
            dev = rng.randrange(2)
            p = h.alloc(size, dev)
            assert p not in live
            live[p] = (H.round_size(size), dev)
        if rng.random() < 0.002:
            h.empty_cache()
    for dev in (0, 1):
        s = h.stats(dev)
        assert s["allocated_bytes"] == sum(b for b, d in live.values() if d == dev)
        assert s["reserved_bytes"] == s["allocated_bytes"] + s["cached_bytes"]
        assert s["alloc_calls"] - s["free_calls"] == sum(1 for _, d in live.values() if d == dev)
    assert h.raw_bytes == h.stats(0)["reserved_bytes"] + h.stats(1)["reserved_bytes"]
    assert h.stats(0)["cache_hits"] > 1000
    for p in live:
        h.free(p)
    h.empty_cache()
    assert h.raw_bytes == 0


# ------------------------------------------------------------------ with a GPU

@needs_gpu
def test_devices_and_properties():
    n = pf.cuda.device_count()
    assert n >= 1 and 0 <= pf.cuda.current_device() < n
    for i in range(n):
        p = pf.cuda.get_device_properties(i)
        assert isinstance(p.name, str) and p.name
        assert p.total_memory > 2**30 and p.multi_processor_count > 0
        assert (p.major, p.minor) == pf.cuda.get_device_capability(f"cuda:{i}")
        assert pf.cuda.get_device_name(i) == p.name
        assert f"cuda:{i} {p.name}" in pf.cuda.status()
    before = pf.cuda.current_device()
    pf.cuda.set_device(n - 1)
    assert pf.cuda.current_device() == n - 1
    pf.cuda.synchronize()
    pf.cuda.set_device(before)
    free, total = pf.cuda.mem_get_info()
    assert 0 < free <= total
    with pytest.raises(ValueError, match=rf"pf.cuda.set_device: device cuda:{n} does not "
                                         rf"exist: {n} CUDA device"):
        pf.cuda.set_device(n)


@needs_gpu
def test_device_allocations_round_trip():
    pf.cuda.empty_cache()
    base = pf.cuda.memory_stats(0)
    p = _C._cuda_alloc("test", 1000, 0)
    assert p != 0 and p % 256 == 0
    assert pf.cuda.memory_allocated(0) == base["allocated_bytes"] + 1024
    assert pf.cuda.memory_reserved(0) == base["reserved_bytes"] + 1024
    assert pf.cuda.max_memory_allocated(0) >= base["allocated_bytes"] + 1024
    _C._cuda_free("test", p)
    assert pf.cuda.memory_allocated(0) == base["allocated_bytes"]
    assert pf.cuda.memory_reserved(0) == base["reserved_bytes"] + 1024
    assert _C._cuda_alloc("test", 970, 0) == p          # served from the cache
    _C._cuda_free("test", p)
    s = pf.cuda.memory_stats(0)
    assert s["cache_hits"] == base["cache_hits"] + 1
    assert s["raw_alloc_calls"] == base["raw_alloc_calls"] + 1
    assert pf.cuda.empty_cache() >= 1024
    assert pf.cuda.memory_reserved(0) == base["reserved_bytes"] - base["cached_bytes"]
    with pytest.raises(ValueError, match=r"test: .*was not handed out"):
        _C._cuda_free("test", p)


@needs_gpu
def test_device_out_of_memory_is_a_memory_error():
    total = pf.cuda.get_device_properties(0).total_memory
    with pytest.raises(MemoryError, match=rf"test: out of memory on cuda:0: could not allocate "
                                          rf"{2 * total} bytes .* use a smaller batch size "
                                          rf"\(the device has .* free of .*\)"):
        _C._cuda_alloc("test", 2 * total, 0)
    assert pf.cuda.memory_stats(0)["ooms"] >= 1
    p = _C._cuda_alloc("test", 4096, 0)                 # the allocator still works
    _C._cuda_free("test", p)
