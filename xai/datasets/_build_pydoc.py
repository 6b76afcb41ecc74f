"""Rebuild the shipped word2vec corpus file from this interpreter's ``pydoc_data.topics``.

Not imported by the package: a maintainer's script, kept so the shipped file can be
re-derived and checked (sha256 in DATASETS.md). Nothing here runs at install or run time.

The help topics differ between Python releases (3.12's give a 1,403-word vocabulary where
3.11.7's give 1,355), so the corpus ships as a snapshot and every Python reads the same
rows: the zoo's ``cbow`` and ``skipgram`` weights load and re-evaluate anywhere. The
snapshot was written by CPython 3.11.7.

Usage::

    python -m xai.datasets._build_pydoc

It writes ``xai/datasets/data/pydoc-topics-tokens.txt.gz``: one line per help topic (in
sorted key order), the topic's key, a tab, then its lower-cased identifier tokens
(``[a-z_][a-z0-9_]*``) separated by spaces; gzip with mtime 0, so the bytes are stable.
"""

from __future__ import annotations

import gzip
import hashlib
import platform
from pathlib import Path

from xai.datasets._pydoc import TOKEN_PATTERN

OUT = Path(__file__).with_name("data") / "pydoc-topics-tokens.txt.gz"


def main() -> None:
    from pydoc_data.topics import topics

    lines = [f"{key}\t{' '.join(TOKEN_PATTERN.findall(topics[key].lower()))}\n" for key in sorted(topics)]
    data = gzip.compress("".join(lines).encode(), compresslevel=9, mtime=0)
    OUT.write_bytes(data)
    tokens = sum(len(line.split("\t", 1)[1].split()) for line in lines)
    print(f"{OUT}: {len(lines)} topics, {tokens} tokens, {len(data)} bytes, Python {platform.python_version()}, "
          f"sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
