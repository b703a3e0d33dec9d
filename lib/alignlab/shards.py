"""Data-parallel inference under ``accelerate launch``: generation, class log-likelihoods and
prefix sampling split their batches over the processes, and every process gets all results back.

The batches are formed first, as one process forms them, and then dealt out: process k computes
batches k, k + N, k + 2N, ... With greedy decoding each batch holds the same prompts and padding
as in one process, and sampling seeds each batch by its position, so the merged results are a
one-process run's (tests/slow/test_distributed.py). In a notebook (one process) :func:`deal` is
the plain loop. Results are exchanged after every round of N batches, so a resumable stage (the
sampler's store) can write each round as it arrives.
"""

import os
from collections.abc import Callable, Iterator, Sequence

import torch
from accelerate import PartialState
from accelerate.utils import gather_object


def processes() -> PartialState:
    """The process group accelerate started, or a group of one. On the CPU where there is no GPU
    or ``accelerate launch --cpu`` asks for it (as the Trainer's ``use_cpu`` does): without
    ``cpu=True`` accelerate would not join CPU processes into a (gloo) group."""
    cpu = not torch.cuda.is_available() or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true")
    return PartialState(cpu=cpu)


def deal(batches: Sequence, compute: Callable) -> Iterator[tuple]:
    """``(batch, compute(batch))`` for every batch, in order, on every process; with N processes
    each computes every N-th batch. Results must pickle (strings, lists, numpy arrays)."""
    group = processes()
    n, rank = group.num_processes, group.process_index
    for start in range(0, len(batches), n):
        this_round = batches[start:start + n]
        if n == 1:
            yield this_round[0], compute(this_round[0])
            continue
        mine = [compute(this_round[rank])] if rank < len(this_round) else []
        # gather_object concatenates the processes' lists in rank order; the ranks past the end
        # of a short last round add nothing.
        yield from zip(this_round, gather_object(mine), strict=True)


def write_on_main(write: Callable[[], object]) -> None:
    """Run ``write`` on the main process only, then wait until it has: a stage's files are written
    once, and no process reads them before they exist."""
    group = processes()
    if group.is_main_process:
        write()
    group.wait_for_everyone()
