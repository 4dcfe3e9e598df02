"""pf.data: datasets, splits and the DataLoader (order, shuffling from the
framework seed, drop_last, collation, worker threads, errors)."""
import traceback

import numpy as np
import pytest

import pyframe as pf
from pyframe.data import DataLoader, Dataset, TensorDataset, random_split


def test_tensor_dataset_batches_in_order_without_copying_rows():
    x = np.arange(20.0).reshape(10, 2)
    y = np.arange(10)
    ds = TensorDataset(x, y)
    assert len(ds) == 10
    xi, yi = ds[3]
    np.testing.assert_array_equal(np.array(xi), x[3])
    batches = list(DataLoader(ds, batch_size=4))
    assert [tuple(b[0].shape) for b in batches] == [(4, 2), (4, 2), (2, 2)]
    np.testing.assert_array_equal(np.concatenate([np.array(b[1]) for b in batches]), y)
    assert len(DataLoader(ds, batch_size=4)) == 3
    assert len(DataLoader(ds, batch_size=4, drop_last=True)) == 2
    assert [b[1].shape[0] for b in DataLoader(ds, batch_size=4, drop_last=True)] == [4, 4]


def test_shuffle_follows_the_framework_seed_and_changes_each_epoch():
    ds = TensorDataset(np.arange(50))
    dl = DataLoader(ds, batch_size=50, shuffle=True)
    pf.manual_seed(3)
    e1 = np.array(next(iter(dl))[0])
    e2 = np.array(next(iter(dl))[0])
    pf.manual_seed(3)
    again = np.array(next(iter(dl))[0])
    np.testing.assert_array_equal(e1, again)
    assert not np.array_equal(e1, e2)
    assert sorted(e1.tolist()) == list(range(50))


class Squares(Dataset):
    def __len__(self):
        return 7

    def __getitem__(self, i):
        if i >= 7:
            raise IndexError(i)
        return {"x": pf.tensor([float(i), float(i * i)]), "label": i % 2}


def test_generic_dataset_collates_dicts_and_numbers():
    b = next(iter(DataLoader(Squares(), batch_size=3)))
    assert set(b) == {"x", "label"}
    np.testing.assert_array_equal(np.array(b["x"]), [[0, 0], [1, 1], [2, 4]])
    np.testing.assert_array_equal(np.array(b["label"]), [0, 1, 0])
    custom = next(iter(DataLoader(Squares(), batch_size=2, collate_fn=lambda s: len(s))))
    assert custom == 2


@pytest.mark.parametrize("workers", [1, 3])
def test_worker_threads_give_the_same_batches_in_order(workers):
    ds = Squares()
    plain = [np.array(b["x"]) for b in DataLoader(ds, batch_size=2)]
    threaded = [np.array(b["x"]) for b in DataLoader(ds, batch_size=2, num_workers=workers)]
    assert len(plain) == len(threaded) == 4
    for a, b in zip(plain, threaded):
        np.testing.assert_array_equal(a, b)


class Broken(Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        if i == 4:
            raise KeyError("sample 4 is corrupt")
        return pf.tensor([float(i)])


def test_an_error_in_a_worker_reaches_the_caller_with_its_traceback():
    dl = DataLoader(Broken(), batch_size=2, num_workers=2)
    with pytest.raises(KeyError, match="sample 4 is corrupt") as info:
        list(dl)
    frames = traceback.extract_tb(info.value.__traceback__)
    assert any(f.name == "__getitem__" for f in frames)


def test_random_split_sizes_fractions_and_disjointness():
    ds = TensorDataset(np.arange(10))
    pf.manual_seed(0)
    a, b = random_split(ds, [7, 3])
    assert len(a) == 7 and len(b) == 3
    got = sorted(int(a[i][0]) for i in range(7)) + sorted(int(b[i][0]) for i in range(3))
    assert sorted(got) == list(range(10))
    c, d, e = random_split(ds, [0.5, 0.3, 0.2])
    assert (len(c), len(d), len(e)) == (5, 3, 2)
    batch = next(iter(DataLoader(a, batch_size=7)))
    assert sorted(np.array(batch[0]).tolist()) == sorted(int(a[i][0]) for i in range(7))
    with pytest.raises(ValueError, match=r"lengths \[4, 4\] do not add up to the dataset's 10"):
        random_split(ds, [4, 4])


def test_errors():
    with pytest.raises(ValueError, match=r"TensorDataset: every tensor needs the same first "
                                         r"dimension; got shapes \[\(3,\), \(4,\)\]"):
        TensorDataset(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match=r"DataLoader: batch_size must be a positive integer"):
        DataLoader(TensorDataset(np.zeros(3)), batch_size=0)
    with pytest.raises(ValueError, match=r"num_workers must be a non-negative integer"):
        DataLoader(TensorDataset(np.zeros(3)), num_workers=-1)
    with pytest.raises(TypeError, match=r"the dataset needs __len__ and __getitem__; got int"):
        DataLoader(3)


def test_training_loop_over_a_loader():
    pf.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5], np.float32))[:, None]
    model = pf.nn.Linear(3, 1)
    opt = pf.optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, num_workers=2)
    for _ in range(30):
        for xb, yb in loader:
            opt.zero_grad()
            pf.nn.MSELoss()(model(xb), yb).backward()
            opt.step()
    np.testing.assert_allclose(np.array(model.weight)[0], [1.0, -2.0, 0.5], atol=1e-3)
