"""Data parallelism with paddle.distributed: one process (rank) per device, started by paddle.distributed.launch.

Every rank computes the same global batch order (a function of seed and epoch) and trains on its
own slice of each global batch; paddle.DataParallel averages the gradients during backward. What
the ranks must decide together - the step's loss and accuracy sums, divergence, a stop request,
evaluation counts - is summed with one small all_reduce, so every rank takes the same decision at
the same step and holds the same TrainState (rank 0's checkpoint is every rank's checkpoint).

On CPU the collectives run over gloo, which gives up on a silent peer after 30 s (gloo's fixed
default); NCCL waits PADDLE_PG_TIMEOUT ms. Either way a collective that fails raises PeerLost
instead of hanging.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import numpy as np
import paddle

from .engine import PeerLost

# Words in the RuntimeErrors paddle raises when a collective cannot complete (a peer died,
# a connection was reset or a timeout expired), e.g. "[.../gloo/transport/tcp/pair.cc:584] TIMEOUT".
_COLLECTIVE_FAILURE = ("gloo", "nccl", "connection", "timeout", "socket")


@dataclass(frozen=True)
class World:
    """This process's place in a data-parallel run: rank, number of ranks, rank and ranks on this node."""
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes checkpoints, logs and the results row."""
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        """More than one rank."""
        return self.size > 1

    @contextlib.contextmanager
    def guard(self, what: str):
        """Turn a failed collective inside the block into PeerLost, naming `what` was being done."""
        try:
            yield
        except RuntimeError as e:
            text = str(e)
            if not any(word in text.lower() for word in _COLLECTIVE_FAILURE):
                raise
            first = next((line.strip() for line in text.splitlines() if line.strip()), type(e).__name__)
            raise PeerLost(f"rank {self.rank} of {self.size}: {what} failed - another process of this run "
                           f"stopped or stopped answering ({first[:160]})") from None

    def all_sum(self, values) -> np.ndarray:
        """The element-wise sum over all ranks of a small vector (float64: counts stay exact)."""
        array = np.asarray(values, dtype=np.float64)
        if not self.parallel:
            return array
        tensor = paddle.to_tensor(array)
        with self.guard("summing the step's statistics"):
            paddle.distributed.all_reduce(tensor)
        return tensor.numpy()

    @paddle.no_grad()
    def broadcast_state(self, layer) -> None:
        """Give every rank rank 0's parameters and buffers (BatchNorm running statistics included)."""
        if not self.parallel:
            return
        with self.guard("sharing rank 0's weights"):
            for tensor in layer.state_dict().values():
                paddle.distributed.broadcast(tensor, src=0)

    def barrier(self, what: str) -> None:
        """Wait until every rank gets here."""
        if self.parallel:
            with self.guard(what):
                paddle.distributed.barrier()


SINGLE = World()


def launched() -> World:
    """The World paddle.distributed.launch describes in this process's environment (SINGLE without it)."""
    env = os.environ
    size = int(env.get("PADDLE_TRAINERS_NUM", "1") or 1)
    if size <= 1:
        return SINGLE
    local_size = int(env.get("PADDLE_LOCAL_SIZE", "") or size)
    local_rank = int(env.get("PADDLE_LOCAL_RANK", env.get("PADDLE_RANK_IN_NODE", "0")) or 0)
    return World(rank=int(env.get("PADDLE_TRAINER_ID", "0")), size=size, local_rank=local_rank,
                 local_size=local_size)


def init(world: World) -> None:
    """Join the run's process group (gloo on CPU, NCCL on GPU); nothing for a single process."""
    if world.parallel:
        paddle.distributed.init_parallel_env()


def device_for(world: World, on_gpu: bool) -> str:
    """The device of this rank: its own GPU (the launcher's choice), or the CPU."""
    if not on_gpu:
        return "cpu"
    if not world.parallel:
        return "gpu"
    return f"gpu:{paddle.distributed.ParallelEnv().device_id}"


def parallel_model(model, world: World, sync_bn: bool):
    """(model, net): `net` is what trains (DataParallel when there are several ranks), `model` the
    layer that is saved and evaluated. With sync_bn, BatchNorm layers become SyncBatchNorm first
    (GPU only: they then normalise over the global batch, as one device would)."""
    if not world.parallel:
        return model, model
    if sync_bn:
        model = paddle.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model, paddle.DataParallel(model)

