"""CUDA matrix products: pyframe's matmul (cuBLAS loaded at run time) against raw cuBLAS
and, where it has CUDA, torch.matmul.

Square products C = A B of 4096 and 8192 in float32 (full precision), float32 with TF32
tensor cores (pf.set_float32_matmul_precision("high")), bfloat16 and float16.  "raw" calls
cublasGemmEx through ctypes on the same libcublas.so.13 pyframe loaded, with the same
parameters pyframe's mapping picks for row-major operands (C^T = B^T A^T, both "N"), on
the same (legacy default) stream: the gap is pyframe's own cost per call.

Competitors alternate round by round; each sample times `reps` products between two
device synchronisations; medians are reported with TFLOP/s (2 n^3 per product) and the
percentage of the H100 SXM's dense bf16 peak (989 TFLOP/s), plus one BENCH_JSON line.
Without a usable GPU it prints why and exits 0.

Run: python bench/bench_cuda_gemm.py [--quick] [--sizes 4096,8192]
"""
import argparse
import ctypes
import json
import os
import statistics
import sys

import numpy as np

import pyframe as pf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import alternating_times  # noqa: E402


def _sync(torch):
    """Wait for both libraries' queued GPU work."""
    pf.cuda.synchronize()
    if torch is not None:
        torch.cuda.synchronize()

H100_BF16_PEAK = 989e12
CUBLAS = {"OP_N": 0, "R_16F": 2, "R_16BF": 14, "R_32F": 0, "COMPUTE_32F": 68,
          "COMPUTE_32F_FAST_TF32": 77, "GEMM_DEFAULT": -1}


def raw_cublas(path):
    """cublasGemmEx through ctypes on the library at `path` (None when it cannot be used)."""
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        print(f"raw cuBLAS unavailable: {e}", file=sys.stderr)
        return None
    handle = ctypes.c_void_p()
    if lib.cublasCreate_v2(ctypes.byref(handle)) != 0:
        return None
    lib.cublasGemmEx.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                 ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                 ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_int,
                                 ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int,
                                 ctypes.c_int, ctypes.c_int, ctypes.c_int]
    one, zero = ctypes.c_float(1.0), ctypes.c_float(0.0)

    def gemm(a, b, c, n, dtype, compute):
        # row-major n x n: C^T = B^T A^T, as pyframe maps it
        pa = a.__cuda_array_interface__["data"][0]
        pb = b.__cuda_array_interface__["data"][0]
        pc = c.__cuda_array_interface__["data"][0]
        s = lib.cublasGemmEx(handle, 0, 0, n, n, n, ctypes.byref(one), pb, dtype, n, pa, dtype,
                             n, ctypes.byref(zero), pc, dtype, n, compute,
                             CUBLAS["GEMM_DEFAULT"])
        if s != 0:
            raise RuntimeError(f"cublasGemmEx failed with status {s}")
    return gemm


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="3 rounds: a smoke test")
    p.add_argument("--sizes", default="4096,8192")
    args = p.parse_args()
    if not pf.cuda.is_available():
        print("bench_cuda_gemm: skipped, no usable CUDA GPU: " + pf.cuda.status())
        return 0
    blas = pf.cuda.cublas_status()
    if not blas["loaded"]:
        print("bench_cuda_gemm: skipped, cuBLAS is missing: " + blas["message"])
        return 0
    try:
        import torch
        torch = torch if torch.cuda.is_available() else None
    except ImportError:
        torch = None
    raw = raw_cublas(blas["library"])
    rounds = 3 if args.quick else 15
    print(f"device: {pf.cuda.status()}\ncuBLAS: {blas['library']}\n"
          f"torch: {torch.__version__ if torch else 'none with CUDA'}")
    rows = []
    configs = [("float32", "highest"), ("float32", "high"), ("bfloat16", "highest"),
               ("float16", "highest")]
    for n in [int(s) for s in args.sizes.split(",")]:
        for dtype, prec in configs:
            name = dtype + (" TF32" if prec == "high" else "")
            rng = np.random.default_rng(0)
            host_a = rng.standard_normal((n, n), dtype=np.float32)
            host_b = rng.standard_normal((n, n), dtype=np.float32)
            pdt = getattr(pf, dtype)
            if dtype == "bfloat16":
                import ml_dtypes
                cast = ml_dtypes.bfloat16
            else:
                cast = np.dtype(dtype)
            a = pf.tensor(host_a.astype(cast)).to("cuda")
            b = pf.tensor(host_b.astype(cast)).to("cuda")
            c = pf.empty((n, n), dtype=pdt, device="cuda")
            comp = {}

            def run_pf(a=a, b=b, prec=prec):
                pf.set_float32_matmul_precision(prec)
                try:
                    return pf.matmul(a, b)
                finally:
                    pf.set_float32_matmul_precision("highest")
            comp["pyframe"] = run_pf
            if raw is not None:
                dt = {"float32": CUBLAS["R_32F"], "bfloat16": CUBLAS["R_16BF"],
                      "float16": CUBLAS["R_16F"]}[dtype]
                cp = CUBLAS["COMPUTE_32F_FAST_TF32"] if prec == "high" else CUBLAS["COMPUTE_32F"]
                comp["raw cuBLAS"] = lambda a=a, b=b, c=c, dt=dt, cp=cp: raw(a, b, c, n, dt, cp)
            if torch is not None:
                tdt = getattr(torch, dtype)
                ta = torch.from_numpy(host_a).to("cuda", tdt)
                tb = torch.from_numpy(host_b).to("cuda", tdt)

                def run_torch(ta=ta, tb=tb, prec=prec):
                    torch.backends.cuda.matmul.allow_tf32 = prec == "high"
                    return torch.matmul(ta, tb)
                comp["torch"] = run_torch
            reps = max(1, int(2e12 / (2 * n ** 3)))   # ~ a few ms of work per sample
            for fn in comp.values():                   # warm-up: plans, handles, clocks
                fn()
            pf.cuda.synchronize()
            times = alternating_times(comp, rounds, reps, lambda: _sync(torch))
            names = list(comp)
            for k in names:
                med = statistics.median(times[k])
                tflops = 2 * n ** 3 / med / 1e12
                row = {"case": f"{name} {n}", "impl": k, "median_ms": round(med * 1e3, 4),
                       "tflops": round(tflops, 1),
                       "pct_h100_bf16_peak": round(100 * tflops * 1e12 / H100_BF16_PEAK, 1)}
                if k != "pyframe":
                    row["ratio_pyframe_over"] = round(statistics.median(times["pyframe"]) / med, 3)
                rows.append(row)
                print(f"{name:>14} {n:5d} {k:>10}: {med * 1e3:9.3f} ms  {tflops:7.1f} TFLOP/s  "
                      f"{row['pct_h100_bf16_peak']:5.1f}% of 989"
                      + (f"  pyframe/{k} {row['ratio_pyframe_over']:.3f}"
                         if "ratio_pyframe_over" in row else ""))
    print("BENCH_JSON " + json.dumps({"bench": "cuda_gemm", "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
