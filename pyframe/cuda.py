"""pf.cuda: CUDA devices and the memory of pyframe's caching device allocator.

The CUDA backend is a separate shared library, ``pyframe/libpyframe_cuda.so``,
built where nvcc was found.  Neither ``import pyframe`` nor ``import
pyframe.cuda`` loads it: the first call below that needs it does, once per
process.  When CUDA cannot be used -- the library was not built or failed to
load, there is no driver, or no device -- ``is_available()`` is False,
``device_count()`` is 0, ``status()`` says why, and every other function
raises RuntimeError naming itself and that reason.

    import pyframe as pf
    if pf.cuda.is_available():
        print(pf.cuda.get_device_name(0), pf.cuda.memory_allocated())
    else:
        print(pf.cuda.status())

Devices are given as an index, ``"cuda:N"``, a ``pf.device``, or None for the
current device.
"""
from collections import namedtuple

from . import _C

__all__ = [
    "is_available", "device_count", "status", "current_device", "set_device",
    "get_device_name", "get_device_capability", "get_device_properties", "DeviceProperties",
    "synchronize", "mem_get_info", "memory_allocated", "memory_reserved",
    "max_memory_allocated", "max_memory_reserved", "reset_peak_memory_stats", "memory_stats",
    "empty_cache", "Stream", "Event", "current_stream", "default_stream", "set_stream",
    "stream", "cublas_status",
]

DeviceProperties = namedtuple(
    "DeviceProperties", ["name", "total_memory", "major", "minor", "multi_processor_count"])
DeviceProperties.__doc__ = ("A CUDA device: its name, memory in bytes, compute capability "
                            "(major, minor) and number of streaming multiprocessors (SMs).")


def _device_index(device, caller):
    """The device ordinal that `device` names (None and "cuda": the current device)."""
    if device is None or (isinstance(device, str) and device == "cuda"):
        return _C._cuda_current_device(caller)
    if isinstance(device, bool):
        raise TypeError(f"{caller}: device must be an int, 'cuda:N', a pf.device or None; "
                        f"got bool")
    if isinstance(device, int):
        return device
    if isinstance(device, (str, _C.device)):
        d = _C.device(device) if isinstance(device, str) else device
        if d.type != "cuda":
            raise ValueError(f"{caller}: expected a CUDA device; got '{d}'")
        return _C._cuda_current_device(caller) if d.index is None else d.index
    raise TypeError(f"{caller}: device must be an int, 'cuda:N', a pf.device or None; "
                    f"got {type(device).__name__}")


def _gib(nbytes):
    return "%.1f GiB" % (nbytes / 2**30)


def _version(v):
    return "%d.%d" % (v // 1000, v % 1000 // 10)


def is_available():
    """True when the CUDA backend is built, loads, finds a driver and at least one device."""
    return _C._cuda_status()["available"]


def device_count():
    """The number of visible CUDA devices; 0 when CUDA is unavailable (see status())."""
    return _C._cuda_status()["device_count"]


def status():
    """One line: the devices when CUDA is available, otherwise why it is not."""
    s = _C._cuda_status()
    if not s["available"]:
        return s["reason"]
    devices = []
    for i in range(s["device_count"]):
        p = get_device_properties(i)
        devices.append(f"cuda:{i} {p.name} (sm_{p.major}{p.minor}, "
                       f"{p.multi_processor_count} SMs, {_gib(p.total_memory)})")
    n = s["device_count"]
    return (f"{n} device{'s' if n != 1 else ''}: {'; '.join(devices)} "
            f"[CUDA runtime {_version(s['runtime_version'])}, driver supports "
            f"{_version(s['driver_version'])}]")


def _cublas_search_dirs():
    """Where cuBLAS may be, after the dynamic loader's own path: the nvidia-cublas wheel's
    lib directory (found without importing anything heavy), then a CUDA toolkit's.

    Called by pyframe._C on the first product of CUDA tensors.
    """
    import importlib.util
    import os

    dirs = []
    try:
        spec = importlib.util.find_spec("nvidia.cublas")
    except (ImportError, ValueError):
        spec = None
    for root in (spec.submodule_search_locations or []) if spec is not None else []:
        dirs.append(os.path.join(root, "lib"))
    for env in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(env):
            dirs.append(os.path.join(os.environ[env], "lib64"))
    dirs.append("/usr/local/cuda/lib64")
    return [d for i, d in enumerate(dirs) if d not in dirs[:i]]


def cublas_status():
    """Loads cuBLAS for the CUDA products if not yet (no GPU needed) and says how it went:
    a dict with ``loaded`` (bool), ``library`` (its path, or None) and ``message`` (where it
    was found, or everything that was tried and how to install it).  Raises RuntimeError
    when pyframe's CUDA library itself is not usable."""
    return _C._cuda_blas_probe("pf.cuda.cublas_status")


def current_device():
    """The index of the calling thread's current CUDA device."""
    return _C._cuda_current_device("pf.cuda.current_device")


def set_device(device):
    """Make `device` the calling thread's current CUDA device."""
    caller = "pf.cuda.set_device"
    _C._cuda_set_device(caller, _device_index(device, caller))


def get_device_properties(device=None):
    """The DeviceProperties of `device` (default: the current device)."""
    caller = "pf.cuda.get_device_properties"
    p = _C._cuda_device_properties(caller, _device_index(device, caller))
    return DeviceProperties(p["name"], p["total_memory"], p["capability"][0],
                            p["capability"][1], p["multi_processor_count"])


def get_device_name(device=None):
    """The name of `device`, e.g. 'NVIDIA H100 80GB HBM3'."""
    caller = "pf.cuda.get_device_name"
    return _C._cuda_device_properties(caller, _device_index(device, caller))["name"]


def get_device_capability(device=None):
    """The compute capability of `device` as (major, minor): (9, 0) for an H100."""
    caller = "pf.cuda.get_device_capability"
    return _C._cuda_device_properties(caller, _device_index(device, caller))["capability"]


def synchronize(device=None):
    """Wait until all work queued on `device` has finished."""
    caller = "pf.cuda.synchronize"
    _C._cuda_synchronize(caller, _device_index(device, caller))


def mem_get_info(device=None):
    """(free, total) bytes of `device`, as the driver counts them (all processes)."""
    caller = "pf.cuda.mem_get_info"
    return _C._cuda_mem_get_info(caller, _device_index(device, caller))


def _stats(device, caller):
    return _C._cuda_memory_stats(caller, _device_index(device, caller))


def memory_stats(device=None):
    """The caching allocator's counters for `device`, as a dict.

    allocated_bytes (in blocks held by tensors), reserved_bytes (held from
    cudaMalloc: allocated + cached), cached_bytes, their peaks, and the counts
    of allocations, frees, cache hits, cudaMalloc/cudaFree calls, retries after
    releasing the cache, and out-of-memory failures.
    """
    return _stats(device, "pf.cuda.memory_stats")


def memory_allocated(device=None):
    """Bytes of `device` memory in blocks handed out by the caching allocator."""
    return _stats(device, "pf.cuda.memory_allocated")["allocated_bytes"]


def memory_reserved(device=None):
    """Bytes of `device` memory the caching allocator holds (handed out or cached)."""
    return _stats(device, "pf.cuda.memory_reserved")["reserved_bytes"]


def max_memory_allocated(device=None):
    """The peak of memory_allocated(device) since start or reset_peak_memory_stats()."""
    return _stats(device, "pf.cuda.max_memory_allocated")["peak_allocated_bytes"]


def max_memory_reserved(device=None):
    """The peak of memory_reserved(device) since start or reset_peak_memory_stats()."""
    return _stats(device, "pf.cuda.max_memory_reserved")["peak_reserved_bytes"]


def reset_peak_memory_stats(device=None):
    """Start the peaks of `device` again from the current values."""
    caller = "pf.cuda.reset_peak_memory_stats"
    _C._cuda_reset_peak_memory_stats(caller, _device_index(device, caller))


def empty_cache():
    """Return the cached blocks of every device to CUDA; returns the bytes released.

    Memory held by live tensors stays; other processes can then use what was
    cached.  The allocator also does this by itself, once, before it reports
    out of memory.
    """
    return _C._cuda_empty_cache("pf.cuda.empty_cache")


# ------------------------------------------------------------------ streams and events

class Stream:
    """A CUDA stream: work queued on it runs in order, concurrently with other streams.

    ``with pf.cuda.stream(s):`` makes it current on its device for this
    thread; pyframe's kernels, copies and allocations there then go to it.
    Ordering across streams is explicit: ``s.wait_stream(other)``,
    ``s.wait_event(e)``, and ``tensor.record_stream(s)`` for a tensor made on
    one stream and used on another (its memory is reused only after that
    stream's work).  ``priority``: 0 is normal, negative is more urgent.
    Streams pyframe creates do not wait for the legacy default stream.
    """

    def __init__(self, device=None, priority=0, *, _handle=None):
        caller = "pf.cuda.Stream"
        self.device_index = _device_index(device, caller)
        if _handle is not None:
            self.cuda_stream, self._owned = int(_handle), False
        else:
            if isinstance(priority, bool) or not isinstance(priority, int):
                raise TypeError(f"{caller}: priority must be an int; got {priority!r}")
            self.cuda_stream = _C._cuda_stream_op(caller, "stream_create", self.device_index,
                                                  priority)
            self._owned = True

    @property
    def device(self):
        return _C.device("cuda:%d" % self.device_index)

    def synchronize(self):
        """Wait until everything queued on this stream has run."""
        _C._cuda_stream_op("Stream.synchronize", "stream_synchronize", self.device_index,
                           self.cuda_stream)

    def query(self):
        """True when everything queued on this stream has run."""
        return _C._cuda_stream_op("Stream.query", "stream_query", self.device_index,
                                  self.cuda_stream)

    def wait_event(self, event):
        """Later work on this stream waits for `event` (no wait on the host)."""
        if not isinstance(event, Event):
            raise TypeError(f"Stream.wait_event: expected a pf.cuda.Event; got "
                            f"{type(event).__name__}")
        _C._cuda_stream_op("Stream.wait_event", "stream_wait_event", self.device_index,
                           self.cuda_stream, event._handle())

    def wait_stream(self, stream):
        """Later work on this stream waits for the work queued on `stream` so far."""
        if not isinstance(stream, Stream):
            raise TypeError(f"Stream.wait_stream: expected a pf.cuda.Stream; got "
                            f"{type(stream).__name__}")
        self.wait_event(stream.record_event())

    def record_event(self, event=None):
        """Record `event` (a new one when None) at this point of the stream; returns it."""
        event = Event() if event is None else event
        event.record(self)
        return event

    def __eq__(self, other):
        return isinstance(other, Stream) and (other.cuda_stream, other.device_index) == (
            self.cuda_stream, self.device_index)

    def __hash__(self):
        return hash((self.cuda_stream, self.device_index))

    def __del__(self):
        if getattr(self, "_owned", False):
            try:
                _C._cuda_stream_op("Stream", "stream_destroy", self.device_index,
                                   self.cuda_stream)
            except Exception:   # at interpreter exit the library may be gone
                pass

    def __repr__(self):
        return "<pf.cuda.Stream device=cuda:%d cuda_stream=0x%x>" % (self.device_index,
                                                                    self.cuda_stream)


class Event:
    """A marker in a stream's work: record it, wait for it, time between two.

    ``enable_timing=True`` lets ``start.elapsed_time(end)`` give milliseconds.
    The CUDA event is made on first ``record``, on the recording stream's device.
    """

    def __init__(self, enable_timing=False, blocking=False, interprocess=False):
        if interprocess:
            raise ValueError("pf.cuda.Event: interprocess events are not supported")
        self.enable_timing = bool(enable_timing)
        self.cuda_event = 0
        self.device_index = None

    def _handle(self):
        if not self.cuda_event:
            raise RuntimeError("pf.cuda.Event: the event was never recorded; call record() "
                               "first")
        return self.cuda_event

    def record(self, stream=None):
        """Mark the current point of `stream` (the current stream when None)."""
        stream = current_stream() if stream is None else stream
        if not isinstance(stream, Stream):
            raise TypeError(f"Event.record: expected a pf.cuda.Stream; got "
                            f"{type(stream).__name__}")
        if not self.cuda_event:
            self.device_index = stream.device_index
            self.cuda_event = _C._cuda_stream_op("pf.cuda.Event", "event_create",
                                                 self.device_index, int(self.enable_timing))
        elif stream.device_index != self.device_index:
            raise ValueError(f"Event.record: the event belongs to cuda:{self.device_index}; "
                             f"the stream is on cuda:{stream.device_index}")
        _C._cuda_stream_op("Event.record", "event_record", self.device_index, self.cuda_event,
                           stream.cuda_stream)

    def wait(self, stream=None):
        """Later work on `stream` (the current stream when None) waits for this event."""
        (current_stream() if stream is None else stream).wait_event(self)

    def synchronize(self):
        """Wait on the host until the recorded work has run."""
        _C._cuda_stream_op("Event.synchronize", "event_synchronize", self.device_index or 0,
                           self._handle())

    def query(self):
        """True when the recorded work has run (an event never recorded counts as done)."""
        if not self.cuda_event:
            return True
        return _C._cuda_stream_op("Event.query", "event_query", self.device_index,
                                  self.cuda_event)

    def elapsed_time(self, end_event):
        """Milliseconds from this event to `end_event` (both recorded, with timing)."""
        if not (self.enable_timing and end_event.enable_timing):
            raise ValueError("Event.elapsed_time: both events need enable_timing=True")
        return _C._cuda_stream_op("Event.elapsed_time", "event_elapsed", self.device_index or 0,
                                  self._handle(), end_event._handle())

    def __del__(self):
        if getattr(self, "cuda_event", 0):
            try:
                _C._cuda_stream_op("pf.cuda.Event", "event_destroy", self.device_index,
                                   self.cuda_event)
            except Exception:
                pass

    def __repr__(self):
        return "<pf.cuda.Event%s>" % ("" if not self.cuda_event else
                                      " cuda:%d 0x%x" % (self.device_index, self.cuda_event))


def current_stream(device=None):
    """The stream this thread queues pyframe's work on, on `device`."""
    caller = "pf.cuda.current_stream"
    index = _device_index(device, caller)
    return Stream(index, _handle=_C._cuda_stream_op(caller, "get_stream", index))


def default_stream(device=None):
    """The device's legacy default stream (handle 0)."""
    return Stream(_device_index(device, "pf.cuda.default_stream"), _handle=0)


def set_stream(stream):
    """Make `stream` current on its device for this thread."""
    if not isinstance(stream, Stream):
        raise TypeError(f"pf.cuda.set_stream: expected a pf.cuda.Stream; got "
                        f"{type(stream).__name__}")
    _C._cuda_stream_op("pf.cuda.set_stream", "set_stream", stream.device_index,
                       stream.cuda_stream)


class stream:
    """``with pf.cuda.stream(s):`` runs the block's work on `s` (None: no change)."""

    def __init__(self, stream):
        if stream is not None and not isinstance(stream, Stream):
            raise TypeError(f"pf.cuda.stream: expected a pf.cuda.Stream or None; got "
                            f"{type(stream).__name__}")
        self.stream = stream
        self._saved = []

    def __enter__(self):
        if self.stream is not None:
            self._saved.append(current_stream(self.stream.device_index))
            set_stream(self.stream)
        return self.stream

    def __exit__(self, *exc):
        if self.stream is not None:
            set_stream(self._saved.pop())
        return False
