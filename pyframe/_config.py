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
    info["bf16_gemm_paths"] = {p: why for p, why in _C._bf16_gemm_paths().items()}
    info["cuda_available"], info["cuda"], info["cuda_device_count"] = _cuda_status()
    return info


def _bf16_line(c):
    paths = c["bf16_gemm_paths"]
    names = {"amx": "AMX-BF16 tiles", "avx512": "AVX512-BF16",
             "generic": "widened to float32, OpenBLAS sgemm"}
    line = "%s (%s)" % (c["bf16_gemm"], names.get(c["bf16_gemm"], "?"))
    others = [p for p, why in paths.items() if why is None and p != c["bf16_gemm"]]
    missing = ["%s: %s" % (p, why) for p, why in paths.items() if why is not None]
    if others:
        line += "; also available: " + ", ".join(others)
    if missing:
        line += "; unavailable: " + "; ".join(missing)
    return line


def show_config():
    """Print the version, BLAS library and core, thread counts, SIMD level, the bfloat16
    GEMM path, and the CUDA devices or the reason there are none."""
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
        ("bfloat16 GEMM", _bf16_line(c)),
        ("CUDA", c["cuda"]),
        ("compiler", c["compiler"]),
        ("sanitizers", "on" if c["sanitize"] else "off"),
    ]
    width = max(len(k) for k, _ in lines)
    print("\n".join("%-*s  %s" % (width, k, v) for k, v in lines))
