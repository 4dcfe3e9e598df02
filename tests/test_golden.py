"""Golden runs: small models with fixed initial weights trained 20 steps on
fixed batches give the same losses as the same models in PyTorch (1e-4
relative, float32), and a standard PyTorch training snippet runs with only
its import lines changed."""
import numpy as np
import pytest

import pyframe as pf
from pyframe import nn

torch = pytest.importorskip("torch", reason="torch is the reference for the golden runs")

STEPS = 20


def batches(rng, shape, classes, n=4):
    """n fixed batches, cycled for STEPS steps (so the loss has something to learn)."""
    fixed = [(rng.standard_normal(shape).astype(np.float32), rng.integers(0, classes, shape[0]))
             for _ in range(n)]
    return [fixed[i % n] for i in range(STEPS)]


def run_pair(make_pf, make_torch, opt_pf, opt_torch, data):
    pm, tm = make_pf(), make_torch()
    tm.load_state_dict({k: torch.tensor(np.array(v)) for k, v in pm.state_dict().items()})
    po, to = opt_pf(pm.parameters()), opt_torch(tm.parameters())
    pl, tl = [], []
    for x, y in data:
        po.zero_grad()
        loss = nn.CrossEntropyLoss()(pm(pf.tensor(x)), pf.tensor(y))
        loss.backward()
        po.step()
        pl.append(loss.item())
        to.zero_grad()
        tloss = torch.nn.CrossEntropyLoss()(tm(torch.tensor(x)), torch.tensor(y))
        tloss.backward()
        to.step()
        tl.append(tloss.item())
    return np.array(pl), np.array(tl)


def mlp(lib):
    return lib.nn.Sequential(lib.nn.Linear(20, 32), lib.nn.ReLU(), lib.nn.Linear(32, 32),
                             lib.nn.Tanh(), lib.nn.Linear(32, 5))


def cnn(lib):
    return lib.nn.Sequential(lib.nn.Conv2d(1, 4, 3), lib.nn.ReLU(), lib.nn.MaxPool2d(2),
                             lib.nn.Conv2d(4, 6, 3, padding=1), lib.nn.BatchNorm2d(6),
                             lib.nn.ReLU(), lib.nn.Flatten(), lib.nn.Linear(6 * 4 * 4, 5))


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_mlp_golden_run(opt):
    pf.manual_seed(0)
    data = batches(np.random.default_rng(0), (16, 20), 5)
    mk = {"sgd": (lambda p: pf.optim.SGD(p, lr=0.1, momentum=0.9),
                  lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
          "adam": (lambda p: pf.optim.Adam(p, lr=1e-2), lambda p: torch.optim.Adam(p, lr=1e-2))}
    pl, tl = run_pair(lambda: mlp(pf), lambda: mlp(torch), *mk[opt], data)
    np.testing.assert_allclose(pl, tl, rtol=1e-4)
    assert pl[-4:].mean() < pl[:4].mean()


def test_cnn_golden_run():
    pf.manual_seed(1)
    data = batches(np.random.default_rng(1), (8, 1, 10, 10), 5)
    pl, tl = run_pair(lambda: cnn(pf), lambda: cnn(torch),
                      lambda p: pf.optim.Adam(p, lr=5e-3), lambda p: torch.optim.Adam(p, lr=5e-3),
                      data)
    np.testing.assert_allclose(pl, tl, rtol=1e-4)
    assert pl[-4:].mean() < pl[:4].mean()


def test_pytorch_training_snippet_runs_with_changed_imports():
    # the body below is a standard PyTorch MNIST-style loop; only these lines changed:
    import pyframe as torch_
    import pyframe.nn as nn_
    import pyframe.nn.functional as F
    import pyframe.optim as optim

    class Net(nn_.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn_.Conv2d(1, 8, 3, 1)
            self.dropout1 = nn_.Dropout(0.25)
            self.fc1 = nn_.Linear(8 * 5 * 5, 10)

        def forward(self, x):
            x = self.conv1(x)
            x = F.relu(x)
            x = F.max_pool2d(x, 2)
            x = self.dropout1(x)
            x = torch_.flatten(x, 1)
            x = self.fc1(x)
            return F.log_softmax(x, dim=1)

    torch_.manual_seed(1)
    model = Net()
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.5)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    data = torch_.randn(32, 1, 12, 12)
    target = torch_.randint(0, 10, (32,))
    model.train()
    losses = []
    for epoch in range(1, 4):
        for i in range(0, 32, 8):
            optimizer.zero_grad()
            output = model(data[i:i + 8])
            loss = F.nll_loss(output, target[i:i + 8])
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        scheduler.step()
    model.eval()
    correct = 0
    with torch_.no_grad():
        output = model(data)
        pred = output.argmax(dim=1, keepdim=True)
        correct += pred.eq(target.view_as(pred)).sum().item()
    assert losses[-1] < losses[0] and 0 <= correct <= 32
