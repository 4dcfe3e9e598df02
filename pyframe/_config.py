"""pf.config() and pf.show_config(): what this pyframe was built with and runs on."""
import sys

from . import _C


def _cuda_status():
    # The CUDA backend is a separate shared object: asking loads it (once).
    from . import cuda
    return cuda.is_available(), cuda.status(), cuda.device_count()


def config():
    """Build and runtime facts as a dict (the data behind show_config)."""
    import platform

    info = dict(_C._build_info())
    info["python"] = platform.python_version()
    np = sys.modules.get("numpy")
    if np is None:
        import numpy as np
    info["numpy"] = np.__version__
    info["cuda_available"], info["cuda"], info["cuda_device_count"] = _cuda_status()
    return info


def show_config():
    """Print the version, BLAS library and core, thread counts, SIMD level, and the CUDA
    devices or the reason there are none."""
    c = config()
    lines = [
        ("pyframe", c["version"]),
        ("python", c["python"]),
        ("numpy", c["numpy"]),
        ("BLAS", c["blas"]),
        ("BLAS core", c["blas_core"]),
        ("threads", "%d (pyframe kernels), %d (OpenBLAS)" % (c["num_threads"], c["blas_threads"])),
        ("OpenMP", c["openmp"]),
        ("SIMD", "%s in use (build baseline %s)" % (c["simd"], c["simd_baseline"])),
        ("CUDA", c["cuda"]),
        ("compiler", c["compiler"]),
        ("sanitizers", "on" if c["sanitize"] else "off"),
    ]
    width = max(len(k) for k, _ in lines)
    print("\n".join("%-*s  %s" % (width, k, v) for k, v in lines))
