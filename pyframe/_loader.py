"""Loading pyframe._C and the OpenBLAS library it links against.

The extension carries an rpath to ``../scipy_openblas32/lib``, which finds the
library in a regular install (both packages in one site-packages).  Where that
does not hold (an editable install keeps the extension in the source tree), the
library is located through the scipy_openblas32 package's files and loaded into
the process first, without importing that package (its import costs ~40 ms).
"""
import importlib
import os


def _preload_openblas():
    import ctypes
    import importlib.util

    spec = importlib.util.find_spec("scipy_openblas32")
    if spec is None or not spec.origin:
        raise ImportError(
            "pyframe needs the scipy-openblas32 package (its OpenBLAS library); "
            "install it with `pip install scipy-openblas32`")
    libdir = os.path.join(os.path.dirname(spec.origin), "lib")
    names = [n for n in os.listdir(libdir) if n.startswith("libscipy_openblas")]
    if not names:
        raise ImportError("pyframe: no OpenBLAS library found in %s" % libdir)
    ctypes.CDLL(os.path.join(libdir, names[0]), mode=ctypes.RTLD_GLOBAL)


def load_extension():
    # Our OpenMP threads and OpenBLAS's own threads share the cores.  With
    # GNU OpenMP's default (spin for a while after each parallel loop) the
    # two pools steal each other's cores between ops: a small training step
    # ran 5-10x slower on two cores (bench/train.py).  Idle OpenMP threads
    # sleep instead; a user's own setting wins.  Read once, when libgomp loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        return importlib.import_module("pyframe._C")
    except ImportError as e:
        if "openblas" not in str(e):
            raise
    _preload_openblas()
    return importlib.import_module("pyframe._C")
