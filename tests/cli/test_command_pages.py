"""``xai dream``, ``xai invert`` and ``xai sanity`` write audit pages (issue 14, one page family).

Each page goes through the audit's report writer: it leads with the verdict, carries the
provenance block, sits beside the audit JSON, and is listed in the folder's index, which
keeps every command's page written into the folder. The numbers on the page are the result's.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xai.cli import app

from ..conftest import ZOO

runner = CliRunner()


def _run(*args: str) -> dict:
    done = runner.invoke(app, [*args, "--json", "--device", "cpu", "--zoo-dir", str(ZOO)])
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def _page(folder: Path, slug: str) -> tuple[str, dict]:
    page = (folder / f"{slug}.html").read_text()
    saved = json.loads((folder / f"{slug}.json").read_text())
    # the verdict box comes first, before any section
    assert 'class="verdict-box' in page and page.index('class="verdict-box') < page.index("<h2")
    provenance = page[page.index('<h2 id="provenance">'):]
    assert saved["provenance"]["model_sha256"] in provenance and saved["provenance"]["data_sha256"] in provenance
    assert f'href="{slug}.json"' in page and 'href="index.html"' in page
    assert not re.search(r"src=\"(https?:)?//", page)
    return page, saved


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict]]:
    """The three commands, each writing its page into one folder: (folder, --json output by command)."""
    folder = tmp_path_factory.mktemp("pages")
    return folder, {
        "dream": _run("dream", "lenet", "--layer", "conv2", "--channel", "3", "--steps", "6", "--top-k", "3",
                      "-o", str(folder)),
        "invert": _run("invert", "lenet", "-l", "conv1", "-l", "fc1", "--steps", "4", "--sample", "2",
                       "-o", str(folder)),
        "sanity": _run("sanity", "adult-mlp", "-m", "saliency", "-n", "8", "--steps", "4", "-o", str(folder)),
    }


def test_dream_page(runs: tuple[Path, dict[str, dict]]):
    folder, docs = runs
    doc = docs["dream"]
    page, saved = _page(folder, "dream-lenet-conv2.channel3")
    assert saved["dreams"] == [doc] and saved["verdict"]["status"] == "pass"
    assert saved["provenance"]["model_sha256"] == doc["provenance"]["model_sha256"]
    section = page[page.index('<h2 id="dreams">'):page.index('<h2 id="provenance">')]
    assert f"dreamed · {doc['end_value']:.4g}" in section and f"start · {doc['start_value']:.4g}" in section
    for index, value in zip(doc["top_indices"], doc["top_values"], strict=True):
        assert f"#{index} (" in section and f">{value:.4g}<" in section
    for name, value in doc["metrics"].items():
        assert f"<code>{name}</code></dt><dd class=\"num\">{value:.4g}<" in section
    assert section.count('class="axis-x"') == 1  # the objective curve has titled axes


def test_invert_page_and_pngs(runs: tuple[Path, dict[str, dict]]):
    folder, docs = runs
    doc = docs["invert"]
    page, saved = _page(folder, "invert-lenet-gallery")
    assert [r["relative_error"] for r in saved["inversions"]] == [r["relative_error"] for r in doc["results"]]
    assert saved["metrics"] == doc["metrics"]
    section = page[page.index('<h2 id="inversions">'):page.index('<h2 id="provenance">')]
    for name, value in doc["metrics"].items():  # invert.<layer>.relative_error, in the summary and in detail
        assert f"<code>{name}</code></th><td class=\"num\">{value:.4g}<" in section
        assert section.count(f"{value:.4g}") >= 2
    assert section.count('class="axis-x"') == 2 and "digits test #2" in section
    assert (folder / "invert-lenet-gallery-01-fc1-reconstruction.png").is_file()


def test_sanity_page(runs: tuple[Path, dict[str, dict]]):
    folder, docs = runs
    doc = docs["sanity"]
    page, saved = _page(folder, "sanity-adult-mlp-saliency")
    assert saved["sanity"] == [doc] and saved["data"]["rows"] == 8
    assert saved["verdict"]["status"] == ("pass" if doc["verdict"]["trustworthy"] else "warn")
    section = page[page.index('<h2 id="sanity">'):page.index('<h2 id="provenance">')]
    assert f"{doc['deletion']['auc']:.4f} ({doc['deletion']['random_auc']:.4f})" in section
    assert f"{doc['insertion']['gain']:+.4f}" in section and f"{doc['infidelity']:.4g}" in section


def test_the_index_lists_every_command_page(runs: tuple[Path, dict[str, dict]]):
    folder, _ = runs
    index = (folder / "index.html").read_text()
    for slug in ("dream-lenet-conv2.channel3", "invert-lenet-gallery", "sanity-adult-mlp-saliency"):
        assert f'href="{slug}.html"' in index
        assert (folder / ".xai" / "manifests" / f"{slug}.json").is_file()
    assert 'class="verdict-box' in index
