"""pf.data: Dataset, TensorDataset, Subset, random_split and DataLoader.

Batches of a TensorDataset are gathered with one indexing call per tensor
(no Python loop over samples); other datasets are read item by item and
collated.  Shuffling draws from pyframe's generator, so ``pf.manual_seed``
fixes the order.  ``num_workers`` runs background threads that prefetch
batches in order -- safe in notebooks, nothing is forked -- and an error in
a worker is raised in the caller with the worker's traceback."""
import collections
import math

from .. import _C

__all__ = ["Dataset", "TensorDataset", "Subset", "random_split", "DataLoader", "default_collate"]


class Dataset:
    """A sized collection of samples: implement ``__getitem__`` and ``__len__``."""

    def __getitem__(self, index):
        raise NotImplementedError("%s must implement __getitem__" % type(self).__name__)

    def __len__(self):
        raise NotImplementedError("%s must implement __len__" % type(self).__name__)


class TensorDataset(Dataset):
    """Samples are rows of the given tensors (or arrays, shared without copying
    where pf.asarray can), which must agree in their first dimension."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: give at least one tensor")
        self.tensors = tuple(t if isinstance(t, _C.Tensor) else _C.asarray(t) for t in tensors)
        n = [t.shape[0] if t.ndim else None for t in self.tensors]
        if None in n or len(set(n)) != 1:
            raise ValueError("TensorDataset: every tensor needs the same first dimension; got "
                             "shapes %s" % [tuple(t.shape) for t in self.tensors])

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]


class Subset(Dataset):
    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, list(indices)

    def __getitem__(self, index):
        if isinstance(index, (list, tuple)) or (isinstance(index, _C.Tensor) and index.ndim):
            return self.dataset[_C.asarray([self.indices[int(i)] for i in index])] \
                if isinstance(self.dataset, TensorDataset) else \
                [self.dataset[self.indices[int(i)]] for i in index]
        return self.dataset[self.indices[index]]

    def __len__(self):
        return len(self.indices)


def _permutation(n):
    """A random permutation of range(n) from pyframe's generator."""
    if n == 0:
        return []
    return _C.argsort(_C.rand(n)).tolist()


def random_split(dataset, lengths):
    """Split into non-overlapping Subsets of the given lengths (or fractions summing to 1)."""
    n = len(dataset)
    if all(isinstance(x, float) for x in lengths) and math.isclose(sum(lengths), 1.0):
        sizes = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
    else:
        sizes = [int(x) for x in lengths]
    if sum(sizes) != n or any(s < 0 for s in sizes):
        raise ValueError("random_split: lengths %s do not add up to the dataset's %d samples"
                         % (list(lengths), n))
    perm = _permutation(n)
    out, start = [], 0
    for s in sizes:
        out.append(Subset(dataset, perm[start:start + s]))
        start += s
    return out


def default_collate(samples):
    """Stack a list of samples: tensors, arrays and numbers into one tensor with
    a batch dimension; tuples, lists and dicts element by element."""
    first = samples[0]
    if isinstance(first, _C.Tensor):
        return _C.stack(list(samples), axis=0)
    if isinstance(first, dict):
        return {k: default_collate([s[k] for s in samples]) for k in first}
    if isinstance(first, (tuple, list)):
        return type(first)(default_collate(list(col)) for col in zip(*samples)) \
            if isinstance(first, tuple) else [default_collate(list(c)) for c in zip(*samples)]
    if isinstance(first, (str, bytes)):
        return list(samples)
    return _C.asarray(samples) if not hasattr(first, "__array__") else \
        _C.stack([_C.asarray(s) for s in samples], axis=0)


def _pinned(batch):
    """The batch with every tensor in it copied to pinned memory (structure kept)."""
    if isinstance(batch, _C.Tensor):
        return batch.pin_memory()
    if isinstance(batch, (list, tuple)):
        return type(batch)(_pinned(b) for b in batch)
    if isinstance(batch, dict):
        return {k: _pinned(v) for k, v in batch.items()}
    return batch


class DataLoader:
    """Batches of a dataset.

    batch_size, shuffle (a new order each epoch, from pyframe's generator),
    drop_last, collate_fn, and num_workers background threads that prefetch
    ``prefetch_factor`` batches each, in order.  ``pin_memory=True`` puts each
    batch's tensors in page-locked memory (in the worker threads), so that
    ``.to("cuda", non_blocking=True)`` -- what ``fit`` does for a model on a
    GPU -- copies them without waiting; without a usable GPU it warns once
    and does nothing, as PyTorch does."""

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, collate_fn=None,
                 num_workers=0, prefetch_factor=2, pin_memory=False):
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError("DataLoader: batch_size must be a positive integer; got %r"
                             % (batch_size,))
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError("DataLoader: num_workers must be a non-negative integer; got %r"
                             % (num_workers,))
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError("DataLoader: the dataset needs __len__ and __getitem__; got %s"
                            % type(dataset).__name__)
        self.dataset, self.batch_size, self.shuffle = dataset, batch_size, bool(shuffle)
        self.drop_last, self.collate_fn = bool(drop_last), collate_fn
        self.num_workers, self.prefetch_factor = num_workers, max(1, int(prefetch_factor))
        self.pin_memory = bool(pin_memory)
        if self.pin_memory:
            from .. import cuda
            if not cuda.is_available():
                import warnings
                warnings.warn("DataLoader: pin_memory=True, but CUDA is not available (%s); "
                              "batches stay in ordinary memory" % cuda.status(), stacklevel=2)
                self.pin_memory = False

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _batches_of_indices(self):
        n = len(self.dataset)
        order = _permutation(n) if self.shuffle else range(n)
        order = list(order)
        stop = (n // self.batch_size) * self.batch_size if self.drop_last else n
        return [order[i:i + self.batch_size] for i in range(0, stop, self.batch_size)]

    def _fetch(self, idx):
        ds = self.dataset
        if self.collate_fn is None and isinstance(ds, TensorDataset):
            # one gather per tensor, no per-sample Python work
            return ds[_C.asarray(idx, dtype=_C.int64)]
        samples = [ds[i] for i in idx]
        return (self.collate_fn or default_collate)(samples)

    def _load(self, idx):
        batch = self._fetch(idx)
        return _pinned(batch) if self.pin_memory else batch

    def __iter__(self):
        batches = self._batches_of_indices()
        if self.num_workers == 0:
            for idx in batches:
                yield self._load(idx)
            return
        # imported here: concurrent.futures costs `import pyframe` a few milliseconds
        from concurrent.futures import ThreadPoolExecutor
        window = self.num_workers * self.prefetch_factor
        with ThreadPoolExecutor(self.num_workers, thread_name_prefix="pf-data") as pool:
            pending = collections.deque()
            it = iter(batches)
            for idx in it:
                pending.append(pool.submit(self._load, idx))
                if len(pending) >= window:
                    break
            while pending:
                fut = pending.popleft()
                nxt = next(it, None)
                if nxt is not None:
                    pending.append(pool.submit(self._load, nxt))
                try:
                    yield fut.result()
                except BaseException:
                    for f in pending:
                        f.cancel()
                    raise

