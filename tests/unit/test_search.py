"""Embedding index and string baselines (alignlab.extraction.search).

The real MiniLM is loaded once, in a module-scoped fixture, and only sees tiny corpora; all
index mechanics (save/load, refusals, IVF recall) run on synthetic vectors.
"""

import json
import random

import numpy as np
import pytest
from rapidfuzz.distance import Indel, Levenshtein

from alignlab.extraction import search
from alignlab.extraction.search import EmbeddingIndex, extracted, string_similarity
from alignlab.models import DEFAULT_EMBEDDER, canonical_embedder, load_embedder

pytestmark = pytest.mark.unit

CORPUS = [
    "How do I bake sourdough bread at home?",
    "Explain the difference between TCP and UDP.",
    "Write a haiku about autumn leaves.",
    "What is the capital of Australia?",
    "Give me three tips for a job interview.",
]


@pytest.fixture(scope="module")
def minilm():
    return load_embedder()


@pytest.fixture(scope="module")
def text_index(minilm):
    return EmbeddingIndex.build(CORPUS)


def unit_vectors(n, d=32, seed=0):
    v = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


# --------------------------------------------------------------------------- embeddings


def test_alias_loads_the_same_embedder(minilm):
    assert load_embedder("sentence-transformers/all-MiniLM-L6-v2") is minilm
    assert canonical_embedder("sentence-transformers/all-MiniLM-L6-v2") == DEFAULT_EMBEDDER == "all-MiniLM-L6-v2"
    assert canonical_embedder("BAAI/bge-m3") == "BAAI/bge-m3"
    assert load_embedder(cached=False) is not minilm  # a private copy


def test_embed_is_normalised_float32(minilm):
    v = search.embed(CORPUS[:3], minilm)
    assert v.shape == (3, minilm.get_embedding_dimension())
    assert v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(search.embed(CORPUS[:3], "all-MiniLM-L6-v2"), v)  # a name loads the same model
    assert search.embed([], minilm).shape == (0, v.shape[1])


def test_build_search_shapes_and_self_match(text_index):
    scores, ids = text_index.search(CORPUS, k=2)
    assert scores.shape == ids.shape == (len(CORPUS), 2)
    assert list(ids[:, 0]) == list(range(len(CORPUS)))
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-4)
    assert (scores[:, 1] < scores[:, 0]).all()
    assert text_index.model == "all-MiniLM-L6-v2"
    assert text_index.fingerprint == search.fingerprint(CORPUS)


def test_paraphrase_finds_its_source(text_index):
    scores, ids = text_index.search(["What's the capital city of Australia?"])
    assert ids[0, 0] == 3 and 0.8 < scores[0, 0] < 1.0


def test_text_index_round_trip(text_index, tmp_path):
    text_index.save(tmp_path / "idx")
    loaded = EmbeddingIndex.load(tmp_path / "idx", model="all-MiniLM-L6-v2", texts=CORPUS)
    queries = ["tips for interviews", "sourdough"]
    for a, b in zip(text_index.search(queries, k=3), loaded.search(queries, k=3)):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- index mechanics


def test_flat_agrees_with_numpy_matmul():
    corpus, queries = unit_vectors(500, seed=1), unit_vectors(50, seed=2)
    scores, ids = EmbeddingIndex.from_vectors(corpus).search_vectors(queries, k=1)
    sims = queries @ corpus.T
    np.testing.assert_array_equal(ids[:, 0], sims.argmax(axis=1))
    np.testing.assert_allclose(scores[:, 0], sims.max(axis=1), atol=1e-5)


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_save_load_round_trip(tmp_path, kind):
    texts = [f"t{i}" for i in range(2000)]
    index = EmbeddingIndex.from_vectors(unit_vectors(2000), model="m", texts=texts, kind=kind, nprobe=3)
    index.save(tmp_path / "idx")
    index.save(tmp_path / "idx")  # overwriting an existing index works too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]  # no temp dirs left behind
    loaded = EmbeddingIndex.load(tmp_path / "idx", model="m", texts=texts)
    assert (loaded.kind, loaded.nprobe, len(loaded)) == (kind, index.nprobe, 2000)
    q = unit_vectors(20, seed=5)
    for a, b in zip(index.search_vectors(q, k=4), loaded.search_vectors(q, k=4)):
        np.testing.assert_array_equal(a, b)


@pytest.fixture
def saved(tmp_path):
    texts = ["a", "b", "c"]
    EmbeddingIndex.from_vectors(unit_vectors(3), model="all-MiniLM-L6-v2", texts=texts).save(tmp_path / "idx")
    return tmp_path / "idx", texts


def test_load_accepts_model_alias(saved):
    path, texts = saved
    loaded = EmbeddingIndex.load(path, model="sentence-transformers/all-MiniLM-L6-v2", texts=texts)
    assert (loaded.model, len(loaded), loaded.fingerprint) == ("all-MiniLM-L6-v2", 3, search.fingerprint(texts))


def test_load_refuses_model_mismatch(saved):
    with pytest.raises(ValueError, match="BAAI/bge-m3"):
        EmbeddingIndex.load(saved[0], model="BAAI/bge-m3")


def test_load_refuses_fingerprint_mismatch(saved):
    path, texts = saved
    with pytest.raises(ValueError, match="fingerprint"):
        EmbeddingIndex.load(path, texts=texts[::-1])


@pytest.mark.parametrize("field, value, message", [
    ("dimension", 384, "32-d.*384"),
    ("count", 4, "3 vectors but its manifest says 4"),
], ids=["dimension", "count"])
def test_load_refuses_a_manifest_that_does_not_match_the_index(saved, field, value, message):
    path, _ = saved
    manifest = json.loads((path / "manifest.json").read_text())
    manifest[field] = value
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=message):
        EmbeddingIndex.load(path)


def test_search_input_checks():
    index = EmbeddingIndex.from_vectors(unit_vectors(10))
    with pytest.raises(ValueError, match="bare vectors"):
        index.search(["a"])
    with pytest.raises(ValueError, match="k must be >= 1"):
        index.search_vectors(unit_vectors(2), k=0)
    with pytest.raises(ValueError, match="32-d"):
        index.search_vectors(unit_vectors(2, d=16))
    scores, ids = index.search_vectors(np.zeros((0, 32), np.float32), k=3)
    assert scores.shape == ids.shape == (0, 3)
    _, ids = index.search_vectors(unit_vectors(1), k=12)  # more neighbours than vectors
    assert list(ids[0, 10:]) == [-1, -1]
    with pytest.raises(ValueError, match="2 texts but 10 vectors"):
        EmbeddingIndex.from_vectors(unit_vectors(10), texts=["a", "b"])
    with pytest.raises(ValueError, match="Unknown index kind 'hnsw'"):
        EmbeddingIndex.from_vectors(unit_vectors(10), kind="hnsw")


@pytest.mark.parametrize("content", [None, "{not json", '{"kind": "flat"}', "[]"])
def test_load_refuses_missing_or_corrupt_manifest(saved, content):
    path, _ = saved
    if content is None:
        (path / "manifest.json").unlink()
    else:
        (path / "manifest.json").write_text(content)
    with pytest.raises(ValueError, match="manifest"):
        EmbeddingIndex.load(path)


def test_empty_corpus():
    with pytest.raises(ValueError, match="corpus is empty"):
        EmbeddingIndex.build([])
    with pytest.raises(ValueError, match="corpus is empty"):
        EmbeddingIndex.from_vectors(np.zeros((0, 8), np.float32))
    with pytest.raises(ValueError, match="corpus is empty"):
        string_similarity(["x"], [])


def test_ivf_recall_on_clustered_vectors():
    rng = np.random.default_rng(0)
    d, n, centres = 64, 4000, 40
    means = rng.standard_normal((centres, d)).astype(np.float32)
    data = means[rng.integers(0, centres, n)] + 0.35 * rng.standard_normal((n, d)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    queries = data[rng.choice(n, 200, replace=False)] + 0.05 * rng.standard_normal((200, d)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    _, exact = EmbeddingIndex.from_vectors(data).search_vectors(queries)
    ivf = EmbeddingIndex.from_vectors(data, kind="ivf")
    assert ivf.nlist == search.default_nlist(n) and ivf.nprobe == search.default_nprobe(ivf.nlist)
    _, approx = ivf.search_vectors(queries)
    assert (approx[:, 0] == exact[:, 0]).mean() >= 0.9


def test_defaults():
    assert search.default_nlist(1_000_000) == 4000
    assert search.default_nlist(100) == 2  # capped so each cell trains on >= 39 points
    assert search.default_nlist(10) == 1
    assert search.default_nprobe(4000) == 64 and search.default_nprobe(4) == 4


# --------------------------------------------------------------------------- string baselines


def random_texts(rng, n, lo, hi, alphabet="abcde "):
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi))) for _ in range(n)]


@pytest.mark.parametrize(
    "metric, scorer",
    [("levenshtein", Levenshtein.normalized_similarity), ("indel", Indel.normalized_similarity)],
)
def test_string_similarity_equals_brute_force(metric, scorer):
    rng = random.Random(0)
    corpus = random_texts(rng, 300, 0, 60) + ["", "abc"]
    generations = random_texts(rng, 40, 0, 60) + ["", "abc", corpus[7]]
    expected = np.array([max(scorer(g, c) for c in corpus) for g in generations])
    pruned = string_similarity(generations, corpus, metric=metric)
    unpruned = string_similarity(generations, corpus, metric=metric, prune=False)
    threaded = string_similarity(generations, corpus, metric=metric, prune=False, workers=2)
    np.testing.assert_array_equal(pruned, expected)
    np.testing.assert_array_equal(unpruned, expected)
    np.testing.assert_array_equal(threaded, expected)
    assert pruned[-1] == 1.0 and pruned[-2] == 1.0 and pruned[-3] == 1.0


@pytest.mark.parametrize("metric", ["levenshtein", "indel"])
def test_similarity_among_candidates_is_the_best_of_them_and_a_lower_bound(metric):
    from alignlab.extraction.search import string_similarity_among

    rng = random.Random(1)
    corpus = random_texts(rng, 200, 5, 60)
    generations = random_texts(rng, 30, 5, 60) + [corpus[3]]
    candidates = np.array([rng.sample(range(len(corpus)), 10) for _ in generations])
    candidates[-1, 0] = 3  # the exact copy is among its candidates
    candidates[0, 5:] = -1  # fewer neighbours than k (an IVF probe that found too few)
    scorer = search._scorer(metric)
    expected = [max(scorer(g, corpus[j]) for j in ids if j >= 0) for g, ids in zip(generations, candidates)]
    bound = string_similarity_among(generations, corpus, candidates, metric)
    np.testing.assert_array_equal(bound, expected)
    assert np.all(bound <= string_similarity(generations, corpus, metric=metric)) and bound[-1] == 1.0
    with pytest.raises(ValueError, match="one row of corpus ids per generation"):
        string_similarity_among(generations, corpus, candidates[:-1], metric)


def test_string_bound_check_counts_what_the_bound_missed():
    import pandas as pd

    from alignlab.extraction.stages import string_bound_check

    whole = pd.DataFrame({"levenshtein": [0.5, 0.9], "indel": [0.5, 0.9], "string_scope": "whole set"})
    assert string_bound_check(whole, 0.95) is None
    scores = pd.DataFrame({"levenshtein": [0.5, 0.9, 0.97, 0.3], "indel": [0.6, 0.96, 0.97, 0.3],
                           "levenshtein_whole_set": [0.5, 0.96, 0.97, None], "indel_whole_set": [0.6, 0.96, 0.98, None],
                           "string_scope": "top 100 by embedding"})
    check = string_bound_check(scores, 0.95)
    assert check["n"] == 3 and check["scope"] == "top 100 by embedding"
    assert check["levenshtein"] == {"equal": pytest.approx(2 / 3), "max_gap": pytest.approx(0.06),
                                    "whole_set_matches": 2, "missed": 1}
    assert check["indel"]["missed"] == 0 and check["indel"]["whole_set_matches"] == 2


def test_string_similarity_formulas():
    # 1 - Lev/max(len): one substitution in 4 characters.
    assert string_similarity(["abcd"], ["abxd", "zzzzzzzz"])[0] == pytest.approx(0.75)
    # Indel counts the substitution as two edits over len(a) + len(b).
    assert string_similarity(["abcd"], ["abxd"], metric="indel")[0] == pytest.approx(0.75)
    assert string_similarity(["ab"], ["abcd"], metric="indel")[0] == pytest.approx(2 * 2 / 6)
    assert string_similarity([], ["a"]).shape == (0,)


def test_unknown_metric():
    with pytest.raises(ValueError, match="levenshtein, indel"):
        string_similarity(["a"], ["a"], metric="jaccard")


def test_extracted_threshold():
    np.testing.assert_array_equal(extracted(np.array([0.94, 0.95, 1.0])), [False, True, True])
    np.testing.assert_array_equal(extracted([0.5, 0.2], threshold=0.5), [True, False])
    for bad in (0, -0.1, 1.5):
        with pytest.raises(ValueError, match=str(bad)):
            extracted(np.array([0.5]), threshold=bad)


def test_a_missing_neighbour_is_refused_not_read_as_the_last_row():
    from alignlab.extraction.stages import nearest_ids

    assert nearest_ids(np.array([[3, 1], [0, -1]])) == [3, 0]  # -1 beyond the nearest is allowed
    with pytest.raises(ValueError, match="no nearest neighbour.*nprobe"):
        nearest_ids(np.array([[3], [-1]]))


def test_rates_by_target_gives_each_target_its_rates():
    import pandas as pd

    from alignlab.extraction.stages import rates_by_target

    scores = pd.DataFrame({"method": ["sft"] * 4 + ["base"] * 2, "embedding": [0.99, 0.96, 0.5, 0.1, 0.97, 0.2],
                           "levenshtein": [0.9, 0.1, 0.1, 0.1, 0.1, 0.1], "indel": [0.9, 0.2, 0.1, 0.1, 0.1, 0.1]})
    table = rates_by_target(scores, [0.95]).set_index("target")
    assert table.loc["sft", "embedding"] == 50.0 and table.loc["base", "embedding"] == 50.0
    assert table.loc["sft", "levenshtein"] == 0.0 and list(table.index) == ["sft", "base"]
