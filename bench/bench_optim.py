"""Optimizer steps: pyframe's fused update against torch.optim.

One optimizer step (gradients already in .grad) over
  - the parameters of an MLP 784-1024-1024-10 (float32, 1.86 M values, 6 tensors):
    memory-bound, where the fused single pass should win;
  - 200 small tensors (64 to 1024 values): the per-call overhead case.
Peers: torch.optim with its CPU default (foreach=None, which on CPU is the
per-tensor loop), foreach=True, and fused=True (torch's fused CPU kernel,
where this torch has it).
Run: python bench/bench_optim.py [--quick] [--filter S] [--threads N]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import reexec_clean_env  # noqa: E402

reexec_clean_env()  # before numpy, torch or pyframe load OpenBLAS

from harness import Bench  # noqa: E402

PEERS = ("torch_foreach", "torch_fused")


def main():
    bench = Bench("optim", references=PEERS)
    np, torch, pf = bench.numpy, bench.torch, bench.pyframe
    rng = np.random.default_rng(0)
    mlp = [(1024, 784), (1024,), (1024, 1024), (1024,), (10, 1024), (10,)]
    small = [(int(rng.integers(64, 1025)),) for _ in range(200)]

    def make_pf(shapes):
        ps = []
        for s in shapes:
            p = pf.tensor(rng.standard_normal(s).astype(np.float32))
            p.requires_grad_(True)
            p.grad = pf.tensor(rng.standard_normal(s).astype(np.float32) * 1e-2)
            ps.append(p)
        return ps

    def make_torch(shapes):
        ps = []
        for s in shapes:
            p = torch.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True)
            p.grad = torch.tensor(rng.standard_normal(s).astype(np.float32) * 1e-2)
            ps.append(p)
        return ps

    def torch_step(shapes, cls, **kw):
        if torch is None:
            return None
        try:
            opt = cls(make_torch(shapes), **kw)
            opt.step()
        except Exception as e:     # fused=True may be missing on this build
            bench._note(f"torch {cls.__name__}({kw}) unavailable: {type(e).__name__}: {e}")
            return None
        return opt.step

    for label, shapes in (("MLP 784-1024-1024-10", mlp), ("200 small tensors", small)):
        for name, pcls, tname, kw in (("Adam", "Adam", "Adam", dict(lr=1e-3)),
                                      ("AdamW", "AdamW", "AdamW", dict(lr=1e-3)),
                                      ("SGD momentum", "SGD", "SGD", dict(lr=1e-2, momentum=0.9))):
            popt = bench.setup("pyframe", lambda: getattr(pf.optim, pcls)(make_pf(shapes), **kw))
            tcls = getattr(torch.optim, tname) if torch is not None else None
            bench.case(f"{name} step, {label}",
                       pyframe=popt.step if popt is not None else None,
                       torch=torch_step(shapes, tcls, foreach=False, **kw) if tcls else None,
                       torch_foreach=torch_step(shapes, tcls, foreach=True, **kw) if tcls else None,
                       torch_fused=torch_step(shapes, tcls, fused=True, **kw) if tcls else None)


if __name__ == "__main__":
    main()
