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


def test_each_of_three_ranks_computes_every_third_batch_and_yields_all_in_order(monkeypatch):
    """Three ranks simulated one at a time: the fake all-gather hands back what every rank of the
    round computed, as accelerate's gather_object would (rank order, a short last round)."""
    from types import SimpleNamespace

    from alignlab import shards

    batches = [[i] for i in range(7)]  # rounds of 3, 3 and 1: ranks 1 and 2 sit out the last
    results = {}
    for rank in range(3):
        computed = []

        def compute(batch):
            computed.append(batch)
            return f"answer {batch[0]}"

        def gather(mine, start=iter(range(0, 7, 3))):
            this_round = batches[next(start):][:3]  # the round this call belongs to
            assert mine == ([f"answer {this_round[rank][0]}"] if rank < len(this_round) else [])
            return [f"answer {b[0]}" for b in this_round]

        monkeypatch.setattr(shards, "processes", lambda: SimpleNamespace(num_processes=3, process_index=rank))
        monkeypatch.setattr(shards, "gather_object", gather)
        results[rank] = list(shards.deal(batches, compute))
        assert computed == batches[rank::3]
    expected = [([i], f"answer {i}") for i in range(7)]
    assert results[0] == results[1] == results[2] == expected
