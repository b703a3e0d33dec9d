"""alignlab.shards in one process: the plain loop (the 2-process case: tests/slow/test_distributed.py)."""

from alignlab.shards import deal, processes, write_on_main


def test_one_process_computes_every_batch_once_in_order():
    calls = []

    def compute(batch):
        calls.append(batch)
        return [x * 10 for x in batch]

    batches = [[0, 1], [2, 3], [4]]
    assert list(deal(batches, compute)) == [([0, 1], [0, 10]), ([2, 3], [20, 30]), ([4], [40])]
    assert calls == batches


def test_no_batches_compute_nothing():
    assert list(deal([], lambda b: 1 / 0)) == []


def test_one_process_is_the_main_process_and_writes():
    written = []
    assert processes().num_processes == 1
    write_on_main(lambda: written.append(True))
    assert written == [True]
