"""Batches as paddle tensors, gathered straight from the (memory-mapped) arrays in one process.

A batch is one fancy-indexed read of the uint8 cache plus a vectorised normalise: at 64 px, a
few milliseconds for 64 images, against seconds for a CPU training step. Measured on 2 shared
cores, this delivered about twice the images/s of paddle.io.DataLoader with a BatchSampler and
no workers (which calls __getitem__ per image) and four times that with 2 worker processes;
python -m ablations.bench data measures it against training.
"""
import numpy as np
import paddle

from ..errors import UsageError


class BatchLoader:
    """Iterable of (x float32 [B, C, S, S], y int64 [B]) paddle tensors on the current device.

    The order is a function of (seed, epoch) only: np.random.default_rng([seed, epoch]), so a run
    resumed after epoch k sees the same batches; the dataset's augmentation epoch follows along.
    """

    def __init__(self, dataset, batch_size: int, *, shuffle: bool, seed: int = 0, epoch: int = 0,
                 drop_last: bool = False):
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise UsageError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.epoch = int(epoch)
        self.drop_last = bool(drop_last)

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose order (and augmentation) the next iteration draws."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self) -> np.ndarray:
        """The sample order of the current epoch: a permutation drawn from (seed, epoch), or 0..n-1."""
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, self.epoch]).permutation(n)

    def batches(self):
        """Index arrays of this epoch's batches."""
        order = self.order()
        for b in range(len(self)):
            yield order[b * self.batch_size:(b + 1) * self.batch_size]

    def __iter__(self):
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(self.epoch)
        get_batch = getattr(self.dataset, "get_batch", None) or self._stack
        for indices in self.batches():
            x, y = get_batch(indices)
            yield paddle.to_tensor(x), paddle.to_tensor(np.asarray(y, dtype=np.int64))

    def _stack(self, indices):
        samples = [self.dataset[int(i)] for i in indices]
        return (np.stack([np.asarray(s[0], dtype=np.float32) for s in samples]),
                np.asarray([s[1] for s in samples], dtype=np.int64).reshape(-1))


def make_loader(dataset, batch_size: int, *, shuffle: bool, seed: int = 0, epoch: int = 0,
                drop_last: bool = False) -> BatchLoader:
    """Batches of `dataset` in an order fixed by (seed, epoch) when shuffled."""
    return BatchLoader(dataset, batch_size, shuffle=shuffle, seed=seed, epoch=epoch, drop_last=drop_last)
