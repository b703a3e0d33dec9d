"""Atomic writes and careful reads for every cache entry and result.

A write goes to a temp file in the same folder and is renamed over the target, so a killed
process leaves either the old file or the new one, never half of one. A read of a missing or
corrupt entry returns None, so the stage recomputes it instead of using it.
"""

import json
import os
from pathlib import Path


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
