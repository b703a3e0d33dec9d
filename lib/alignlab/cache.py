"""The stage cache: keys, code versions, markers and atomic writes.

A stage's results live under ``.cache/alignlab/<profile>/<stage>/<key>`` (``ALIGNLAB_CACHE``
moves the root). The key hashes every value that changes the result *and* the source of the
code that computes it (:func:`code_version`), so an edit to the Vaccine trainer recomputes the
Vaccine alignment and what depends on it, and nothing else.

A write goes to a temp file in the same folder and is renamed over the target, so a killed
process leaves either the old file or the new one, never half of one. A read of a missing or
corrupt entry returns None, so the stage recomputes it instead of using it.

:func:`timed` stores how long each stage took to compute beside its result (``timing.json``), so
the cold cost of a profile can be summed from stages computed in different runs
(``python -m alignlab.timing``).
"""

import contextlib
import functools
import hashlib
import importlib.util
import json
import os
import time
from pathlib import Path

from alignlab import paths


def write_text(path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def write_json(path, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, default=float))


def write_jsonl(path, rows) -> Path:
    return write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def read_json(path):
    """The parsed file, or None when it is missing or corrupt (never half a result)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def code_version(*modules: str) -> str:
    """A hash of the source of the named alignlab modules (``"vaccine.trainer"``), the code a
    stage runs. Computed from the files, so there is no version number to forget to bump."""
    digest = hashlib.sha256()
    for name in sorted(set(modules)):
        spec = importlib.util.find_spec(f"alignlab.{name}")
        if spec is None or spec.origin is None:
            raise ValueError(f"code_version: no module alignlab.{name}; fix the stage's CODE declaration")
        digest.update(name.encode() + b"\0" + Path(spec.origin).read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def stage_key(**params) -> str:
    """A short, stable hash of a stage's parameters (records are keyed by their ids).

    An upstream stage's folder enters the key relative to the cache root, so the keys (and the
    results that name them) do not depend on where the cache lives.
    """
    cache = str(paths.CACHE)
    portable = {k: "<cache>" + v[len(cache):] if isinstance(v, str) and (v + os.sep).startswith(cache + os.sep) else v
                for k, v in params.items()}
    blob = json.dumps(portable, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def stage_dir(profile: str, stage: str, *, code: tuple[str, ...], **params) -> Path:
    """The folder of one stage run: its key hashes ``params`` and the source of ``code``."""
    return paths.cache_dir(profile, stage) / stage_key(code=code_version(*code), **params)


def record_ids(records) -> list[str]:
    """Records by source, id and a hash of prompt and response (an edited text changes the key)."""
    return [f"{r['source']}:{r['id']}:{hashlib.sha1((r['prompt'] + chr(0) + r['response']).encode()).hexdigest()[:8]}"
            for r in records]


def read_done(out_dir: Path):
    """The finished stage's summary, or None when the stage has not finished (or is corrupt)."""
    return read_json(Path(out_dir) / "done.json")


TIMING = "timing.json"


def _written_since(folder: Path, since: float) -> bool:
    return any(f.stat().st_mtime >= since for f in folder.rglob("*") if f.is_file() and f.name != TIMING)


@contextlib.contextmanager
def timed(profile: str, stage: str):
    """Time the block and write ``timing.json`` into each folder of ``stage`` that the block wrote
    to (none when every result came from the cache): the seconds, whether the folder held files
    before (a resumed stage times its remainder only), how many folders shared the time,
    and two signs of another job on the cores: the CPU time the process got and the 1-minute load
    average at the end."""
    root = paths.cache_dir(profile, stage)
    before = {d.name for d in root.iterdir() if d.is_dir() and any(f.is_file() for f in d.rglob("*"))}
    timed_before = {d.name for d in root.iterdir() if (d / TIMING).exists()}  # finished and timed: never again
    since, start, cpu = time.time() - 1.0, time.perf_counter(), time.process_time()  # 1 s: coarse file times
    yield
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    written = [d for d in root.iterdir() if d.is_dir() and d.name not in timed_before and _written_since(d, since)]
    for folder in written:
        write_json(folder / TIMING, {"stage": stage, "seconds": round(seconds, 1), "resumed": folder.name in before,
                                     "shared_with": len(written), "cpu_seconds": round(cpu, 1),
                                     "cpu_count": os.cpu_count(),
                                     "load_average_1m": round(os.getloadavg()[0], 2),
                                     "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})


def timed_stage(stage: str):
    """:func:`timed` as a decorator of a stage function whose first argument is the run."""
    def wrap(fn):
        @functools.wraps(fn)
        def timed_fn(run, *args, **kwargs):
            with timed(run.profile.name, stage):
                return fn(run, *args, **kwargs)
        return timed_fn
    return wrap
