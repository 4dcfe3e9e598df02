"""bfloat16 matrix products on the CPU: pyframe's bf16 GEMM against its own float32 one.

Cases: square products 256^3 .. 2048^3, and the layer of an MLP with batch 256, 1024 inputs
and 4096 outputs, both as a plain product (x @ W, W (1024, 4096)) and as nn.functional.linear
computes it (x @ W.T, W (4096, 1024) stored row-major, PyTorch's layout).
Competitors (every column on the same values):
  pyframe     pyframe, bfloat16 operands (the path pf.show_config() names: AMX, AVX512-BF16,
              or the float32 engine)
  pf_f32      pyframe, float32 operands (OpenBLAS sgemm): the goal is pyframe >= 3x faster
  torch       PyTorch, bfloat16 operands (oneDNN, which uses AMX where the CPU has it)
  torch_f32   PyTorch, float32 operands
So `pf/pf_f32` is the bf16-over-float32 time ratio (goal <= 0.33); each case also prints the
speed-up and GFLOP/s, which go into its JSON line ("speedup_bf16_over_f32", "gflops").
Run: python bench/bench_bf16.py [--quick] [--filter S] [--threads N]
On 2 cores, with PyTorch's OpenMP threads spinning between calls, prefer
OMP_WAIT_POLICY=PASSIVE for 2-thread figures (bench/README.md).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import reexec_clean_env  # noqa: E402

reexec_clean_env()  # before numpy, torch or pyframe load OpenBLAS

from harness import Bench  # noqa: E402

PEERS = ("pf_f32", "torch_f32")


def main():
    bench = Bench("bf16", libraries=("pyframe", "torch"), references=PEERS)
    torch, pf = bench.torch, bench.pyframe
    if pf is None:
        print("pyframe is not importable: pip install -e . first")
        return
    import numpy as np
    if not bench.args.json_only:
        print(f"   pyframe bfloat16 GEMM path: {pf._C._bf16_gemm_path()}")
    rng = np.random.default_rng(0)
    sizes = [256, 512, 1024] + ([] if bench.args.quick else [2048])
    # (name, shape of a, shape of b as stored, whether the product takes b transposed)
    cases = [(f"{s}^3", (s, s), (s, s), False) for s in sizes]
    cases += [("mlp 256x1024 @ 1024x4096", (256, 1024), (1024, 4096), False),
              ("linear 256x1024 @ (4096x1024)^T", (256, 1024), (4096, 1024), True)]

    def bf16_values(shape):
        # values bfloat16 holds exactly, so that every competitor multiplies the same numbers
        x = pf.from_numpy(rng.standard_normal(shape).astype(np.float32))
        return np.asarray(x.astype(pf.bfloat16).astype(pf.float32))

    for name, sa, sb, tb in cases:
        a, b = bf16_values(sa), bf16_values(sb)
        m, k = sa
        n = sb[0] if tb else sb[1]
        pa32, pb32 = pf.from_numpy(a), pf.from_numpy(b)
        pa16, pb16 = pa32.astype(pf.bfloat16), pb32.astype(pf.bfloat16)
        if tb:
            pb32, pb16 = pb32.T, pb16.T
        t32 = t16 = None
        if torch is not None:
            tb32 = torch.from_numpy(b).T if tb else torch.from_numpy(b)
            t32 = (torch.from_numpy(a), tb32)
            t16 = (t32[0].to(torch.bfloat16), t32[1].to(torch.bfloat16))
        rec = bench.case(
            f"matmul {name}",
            pyframe=lambda: pa16 @ pb16,
            pf_f32=lambda: pa32 @ pb32,
            torch=(lambda: t16[0] @ t16[1]) if t16 is not None else None,
            torch_f32=(lambda: t32[0] @ t32[1]) if t32 is not None else None)
        if rec is None:
            continue
        flops = 2.0 * m * n * k
        rec["gflops"] = {c: round(flops / t, 1) for c, t in rec["median"].items()}
        med = rec["median"]
        if "pyframe" in med and "pf_f32" in med:
            rec["speedup_bf16_over_f32"] = round(med["pf_f32"] / med["pyframe"], 2)
        rec["bf16_gemm_path"] = pf._C._bf16_gemm_path()
        if not bench.args.json_only:
            gf = "  ".join(f"{c} {v:.0f}" for c, v in rec["gflops"].items())
            print(f"{'':<30}GFLOP/s: {gf};  pyframe bf16 is "
                  f"{rec.get('speedup_bf16_over_f32', float('nan')):.2f}x its float32", flush=True)


if __name__ == "__main__":
    main()
