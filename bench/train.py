"""Training steps: pyframe vs PyTorch eager on the same models, weights and
batches.  One step = forward + loss + backward + optimizer update (Adam).

  (a) MLP 784-128-10, batch 64            goal <= 0.6x PyTorch
  (b) MLP 784-1024-1024-10, batch 256     goal <= 1.0x, and >= 0.6 of two-core float32 peak
  (c) CNN 28x28x1, batch 64: Conv 32 3x3 - maxpool - Conv 64 3x3 - maxpool - Dense 128 - 10
                                          goal <= 1.0x
  (d) transformer encoder block, d_model 256, 4 heads, sequence 128, batch 16
                                          goal <= 1.0x
The "peak" reference is pyframe's own 2048^3 float32 matmul (OpenBLAS SGEMM
runs within a few per cent of the cores' FMA peak); it is printed with the
GFLOP/s each MLP step reaches.

--device cuda runs both libraries on the GPU (each step ends with a device
synchronisation, so a step is timed to its end).  --amp bf16|fp16 runs the
forward pass and the loss under each library's autocast (pf.autocast /
torch.autocast), with a gradient scaler for fp16; weights stay float32.
Run: python bench/train.py [--quick] [--filter S] [--threads N] [--device cuda] [--amp bf16]
"""
import contextlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import reexec_clean_env  # noqa: E402

reexec_clean_env()  # before numpy, torch or pyframe load OpenBLAS

from harness import Bench  # noqa: E402


def build(lib, kind):
    nn = lib.nn
    if kind == "mlp_small":
        return nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    if kind == "mlp_large":
        return nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                             nn.Linear(1024, 10))
    if kind == "cnn":
        return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, 10))
    raise KeyError(kind)


class PfEncoder:
    """A post-norm transformer encoder layer from pf.nn pieces, the same
    computation as torch.nn.TransformerEncoderLayer(batch_first=True, dropout=0)."""

    def __init__(self, pf, d, heads, ff):
        nn = pf.nn

        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.self_attn = nn.MultiheadAttention(d, heads, batch_first=True)
                self.linear1 = nn.Linear(d, ff)
                self.linear2 = nn.Linear(ff, d)
                self.norm1 = nn.LayerNorm(d)
                self.norm2 = nn.LayerNorm(d)

            def forward(self, x):
                a, _ = self.self_attn(x, x, x, need_weights=False)
                x = self.norm1(x + a)
                return self.norm2(x + self.linear2(pf.relu(self.linear1(x))))

        self.module = Block()


def main():
    bench = Bench("train")
    np, torch, pf = bench.numpy, bench.torch, bench.pyframe
    rng = np.random.default_rng(0)
    dev, amp = bench.args.device, bench.args.amp
    if dev == "cuda":
        if not pf.cuda.is_available():
            print("   --device cuda: pyframe cannot use CUDA here: %s" % pf.cuda.status())
            return
        if torch is not None and not torch.cuda.is_available():
            print("   --device cuda: this PyTorch has no CUDA; pyframe runs alone")
            torch = None
    print("   device %s, mixed precision %s" % (dev, amp))

    def pf_ctx():
        if amp == "none":
            return contextlib.nullcontext()
        return pf.autocast(dev, dtype=pf.bfloat16 if amp == "bf16" else pf.float16)

    def t_ctx():
        if amp == "none":
            return contextlib.nullcontext()
        return torch.autocast(dev, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)

    pf_scaler = pf.amp.GradScaler(dev, enabled=amp == "fp16")
    t_scaler = torch.amp.GradScaler(dev, enabled=amp == "fp16") if torch is not None else None

    def pf_sync():
        if dev == "cuda":
            pf.cuda.synchronize()

    def t_sync():
        if dev == "cuda":
            torch.cuda.synchronize()

    def pf_update(opt, loss):
        pf_scaler.scale(loss).backward()
        pf_scaler.step(opt)
        pf_scaler.update()
        pf_sync()

    def t_update(opt, loss):
        t_scaler.scale(loss).backward()
        t_scaler.step(opt)
        t_scaler.update()
        t_sync()

    def pair(kind, x_shape, classes=10):
        pm = build(pf, kind)
        tm = build(torch, kind) if torch else None
        if tm is not None:
            tm.load_state_dict({k: torch.tensor(np.array(v)) for k, v in pm.state_dict().items()})
            tm.to(dev)
        pm.to(dev)
        x = rng.standard_normal(x_shape).astype(np.float32)
        y = rng.integers(0, classes, x_shape[0])
        return pm, tm, x, y

    def steps(pm, tm, x, y):
        px, py = pf.tensor(x, device=dev), pf.tensor(y, device=dev)
        popt = pf.optim.Adam(pm.parameters(), lr=1e-3)
        ploss = pf.nn.CrossEntropyLoss()

        def pf_step():
            popt.zero_grad()
            with pf_ctx():
                loss = ploss(pm(px), py)
            pf_update(popt, loss)

        t_step = None
        if tm is not None:
            tx, ty = torch.tensor(x, device=dev), torch.tensor(y, device=dev)
            topt = torch.optim.Adam(tm.parameters(), lr=1e-3)
            tloss = torch.nn.CrossEntropyLoss()

            def t_step():
                topt.zero_grad()
                with t_ctx():
                    loss = tloss(tm(tx), ty)
                t_update(topt, loss)
        return pf_step, t_step

    # the peak reference: a matmul in the precision the steps' products use
    ref_dt = {"none": pf.float32, "bf16": pf.bfloat16, "fp16": pf.float16}[amp]
    a = pf.randn(2048, 2048, device=dev).astype(ref_dt)
    a @ a
    pf_sync()
    t0 = time.perf_counter()
    for _ in range(3):
        a @ a
    pf_sync()
    peak = 3 * 2 * 2048 ** 3 / (time.perf_counter() - t0) / 1e9
    print("   reference: pyframe matmul 2048^3 %s = %.0f GFLOP/s on %s (%d threads)"
          % (ref_dt, peak, dev, bench.threads))

    for kind, shape, name in (("mlp_small", (64, 784), "(a) MLP 784-128-10, batch 64"),
                              ("mlp_large", (256, 784), "(b) MLP 784-1024-1024-10, batch 256"),
                              ("cnn", (64, 1, 28, 28), "(c) CNN 28x28x1, batch 64")):
        if bench.args.filter not in name:
            continue
        pm, tm, x, y = pair(kind, shape)
        pf_step, t_step = steps(pm, tm, x, y)
        rec = bench.case(name, pyframe=pf_step, torch=t_step)
        if kind.startswith("mlp") and rec is not None and "pyframe" in rec.get("median", {}):
            weights = sum(p.size for n, p in pm.named_parameters() if n.endswith("weight"))
            gflops = 6 * shape[0] * weights / rec["median"]["pyframe"]
            print("   %s: pyframe reaches %.0f GFLOP/s = %.2f of the matmul reference"
                  % (name, gflops, gflops / peak))

    name = "(d) transformer encoder block d=256, 4 heads, seq 128, batch 16"
    if bench.args.filter in name:
        pm = PfEncoder(pf, 256, 4, 1024).module
        tm = None
        if torch:
            tm = torch.nn.TransformerEncoderLayer(256, 4, 1024, dropout=0.0, batch_first=True)
            tm.load_state_dict({k: torch.tensor(np.array(v))
                                for k, v in pm.state_dict().items()})
            tm.to(dev)
        pm.to(dev)
        x = rng.standard_normal((16, 128, 256)).astype(np.float32)
        px = pf.tensor(x, device=dev)
        popt = pf.optim.Adam(pm.parameters(), lr=1e-4)

        def pf_step():
            popt.zero_grad()
            with pf_ctx():
                loss = (pm(px).astype(pf.float32) ** 2).mean()
            pf_update(popt, loss)

        t_step = None
        if tm is not None:
            tx = torch.tensor(x, device=dev)
            topt = torch.optim.Adam(tm.parameters(), lr=1e-4)

            def t_step():
                topt.zero_grad()
                with t_ctx():
                    loss = (tm(tx).float() ** 2).mean()
                t_update(topt, loss)
        bench.case(name, pyframe=pf_step, torch=t_step)


if __name__ == "__main__":
    main()
