"""Elementwise bandwidth on a CUDA device: pyframe vs PyTorch CUDA on the same
tensors, with the bytes each op moves per second as a share of the H100's
3.35 TB/s HBM3 peak (issue 8: goal >= 75% for large tensors).

Bytes moved = every input element read once + the output written once (no
caching at these sizes: 64M elements are 256 MB in float32, far above L2).
Each timed call ends with a device synchronisation.

Run: python bench/bench_cuda_ew.py [--quick] [--filter S] [--json-only]
(skips with a message where pyframe has no usable CUDA device)
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import reexec_clean_env  # noqa: E402

reexec_clean_env()

from harness import Bench  # noqa: E402

PEAK_BYTES_PER_S = 3.35e12     # H100 SXM HBM3


def main():
    bench = Bench("cuda_ew")
    np, torch, pf = bench.numpy, bench.torch, bench.pyframe
    if not pf.cuda.is_available():
        print("   pyframe cannot use CUDA here: %s" % pf.cuda.status())
        return
    if torch is not None and not torch.cuda.is_available():
        torch = None
    print("   device: %s" % pf.cuda.get_device_name(0))
    n = (1 << 22) if bench.args.quick else (1 << 26)
    rng = np.random.default_rng(0)
    host = rng.standard_normal(n).astype(np.float32)
    for dtype in ("float32", "bfloat16"):
        pa = pf.tensor(host, device="cuda").astype(getattr(pf, dtype))
        pb = pf.tensor(host[::-1].copy(), device="cuda").astype(getattr(pf, dtype))
        ta = tb = None
        if torch is not None:
            ta = torch.tensor(host, device="cuda").to(getattr(torch, dtype))
            tb = torch.tensor(host[::-1].copy(), device="cuda").to(getattr(torch, dtype))
        isz = 4 if dtype == "float32" else 2
        cases = (
            ("add", 3, lambda: pa + pb, lambda: ta + tb),
            ("mul scalar", 2, lambda: pa * 1.5, lambda: ta * 1.5),
            ("relu", 2, lambda: pf.relu(pa), lambda: torch.relu(ta)),
            ("exp", 2, lambda: pf.exp(pa), lambda: torch.exp(ta)),
            ("copy (astype float32->same)", 2, lambda: pa.clone() if hasattr(pa, "clone")
             else pa.copy(), lambda: ta.clone()),
        )
        for name, tensors, pf_fn, t_fn in cases:
            label = "%s %s %dM" % (name, dtype, n >> 20)

            def pf_call(f=pf_fn):
                f()
                pf.cuda.synchronize()

            def t_call(f=t_fn):
                f()
                torch.cuda.synchronize()
            rec = bench.case(label, pyframe=pf_call, torch=t_call if torch is not None else None)
            if rec is None or "pyframe" not in rec["median"]:
                continue
            moved = tensors * n * isz
            rate = {k: moved / (v * 1e-9) for k, v in rec["median"].items()}
            share = {k: r / PEAK_BYTES_PER_S for k, r in rate.items()}
            print("   %s: pyframe %.0f GB/s = %.0f%% of 3.35 TB/s%s" % (
                label, rate["pyframe"] / 1e9, 100 * share["pyframe"],
                "" if "torch" not in rate else "; torch %.0f GB/s = %.0f%%" % (
                    rate["torch"] / 1e9, 100 * share["torch"])))
            print("BENCH_JSON " + json.dumps({"benchmark": "cuda_ew", "case": label,
                                              "bytes_per_s": rate, "share_of_peak": share}))


if __name__ == "__main__":
    main()
