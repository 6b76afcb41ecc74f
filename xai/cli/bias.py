"""``xai bias``: embedding-bias probes of static word vectors (``xai bias weat``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from xai._io import atomic_write_text
from xai.cli._common import JsonOpt, OutOpt, ZooDirOpt, print_json, stdout_console
from xai.datasets import list_word_vectors, load_word_vectors
from xai.errors import DataError
from xai.fairness.embedding import (
    DEFAULT_PERMUTATIONS,
    WeatResult,
    WeatTest,
    read_word_set,
    read_word_vectors,
    weat,
    weat_tests,
)
from xai.report.json import dumps
from xai.report.weat import write_weat_report

bias_app = typer.Typer(help="Bias probes of word and sentence embeddings.", no_args_is_help=True)

_SETS = ("X", "Y", "A", "B")


@bias_app.command("weat")
def weat_command(
    vectors: Annotated[Path | None, typer.Option(
        "--vectors", help="Word vectors file: word2vec binary or text, GloVe text, or .npz (words, vectors).")] = None,
    embedding: Annotated[str | None, typer.Option(
        "--embedding", help=f"Shipped embedding: {', '.join(list_word_vectors())} (the default).")] = None,
    test: Annotated[list[str] | None, typer.Option(
        "--test", help=f"Shipped WEAT test; repeat for more [default: all]. Known: {', '.join(weat_tests())}.")
    ] = None,
    targets: Annotated[tuple[Path, Path] | None, typer.Option(
        "--targets", help="Two target word-set files X Y (one word per line).")] = None,
    attributes: Annotated[tuple[Path, Path] | None, typer.Option(
        "--attributes", help="Two attribute word-set files A B (one word per line).")] = None,
    permutations: Annotated[int, typer.Option(
        "--permutations", help="Exact p-value up to this many partitions, else this many random ones.")
    ] = DEFAULT_PERMUTATIONS,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random partitions.")] = 0,
    json_out: JsonOpt = False,
    out: OutOpt = None,
) -> None:
    """WEAT (Caliskan et al. 2017): effect size and one-sided permutation p-value per test.

    xai bias weat --embedding googlenews-weat --test math-arts
    xai bias weat --vectors my.bin --targets x.txt y.txt --attributes a.txt b.txt
    """
    if vectors is not None and embedding is not None:
        raise DataError("give --vectors FILE or --embedding NAME, not both")
    if (targets is None) != (attributes is None):
        raise DataError("custom word sets need both --targets X Y and --attributes A B")
    tests: list[str | WeatTest] | None = list(test) if test else None
    if targets is not None and attributes is not None:
        sets = [read_word_set(p) for p in (*targets, *attributes)]
        custom = WeatTest(f"{sets[0].name}-{sets[1].name}", *sets)
        tests = [*(tests or []), custom]
    if vectors is not None:
        wanted = {w for t in (_resolve(tests)) for s in t.sets for w in s.words}
        wv = read_word_vectors(vectors, keep=wanted)
    else:
        wv = load_word_vectors(embedding or "googlenews-weat")
    result = weat(wv, tests, permutations=permutations, seed=seed)
    page = write_weat_report(result, out) if out is not None else None
    if json_out:
        print_json(result.to_dict())
        return
    console = stdout_console()
    _print_result(console, result)
    if page is not None:
        console.print(f"Report: [bold]{page}[/]")


def _resolve(tests: list[str | WeatTest] | None) -> list[WeatTest]:
    shipped = weat_tests()
    if tests is None:
        return list(shipped.values())
    return [t if isinstance(t, WeatTest) else shipped[t] for t in tests if isinstance(t, WeatTest) or t in shipped]


def _print_result(console: Console, result: WeatResult) -> None:
    console.print(f"WEAT on [bold]{result.embedding}[/] ({result.vocab_size:,} words, {result.dim} dimensions)")
    for score in result.scores:
        view = Table(title=f"{score.test}: {score.targets[0]} vs {score.targets[1]} / "
                           f"{score.attributes[0]} vs {score.attributes[1]}", title_justify="left")
        view.add_column("effect size", justify="right")
        view.add_column("p-value", justify="right")
        view.add_column("statistic", justify="right")
        view.add_column("words X/Y/A/B", justify="right")
        view.add_column("missing words")
        lost = "; ".join(f"{name}: {', '.join(m)}" for name, m in zip(_SETS, score.missing, strict=True) if m)
        view.add_row(f"{score.effect_size:.3f}", f"{score.p_value:.2g} ({score.p_method})", f"{score.statistic:.4f}",
                     "/".join(str(len(u)) for u in score.used), lost or "none")
        console.print(view)
        if score.reference:
            console.print(f"  [dim]published (human IAT): d {score.reference.get('d', '?')}, "
                          f"p {score.reference.get('p', '?')}[/]")
    for name, reason in result.skipped.items():
        console.print(f"[yellow]not run:[/] {name}: {reason}")


@bias_app.command("seat")
def seat_command(
    model: Annotated[str, typer.Option("--model", help="Sentence encoder: a zoo name or folder.")] = "minilm",
    test: Annotated[list[str] | None, typer.Option(
        "--test", "--tests",
        help=f"Shipped WEAT test; repeat for more [default: all]. Known: {', '.join(weat_tests())}.")
    ] = None,
    permutations: Annotated[int, typer.Option(
        "--permutations", help="Exact p-value up to this many partitions, else this many random ones.")
    ] = DEFAULT_PERMUTATIONS,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random partitions.")] = 0,
    zoo_dir: ZooDirOpt = None,
    json_out: JsonOpt = False,
    out: OutOpt = None,
) -> None:
    """SEAT (May et al. 2019): WEAT over sentence embeddings of the word sets in bleached templates.

    xai bias seat --model minilm --test career-family --test math-arts
    """
    from xai.fairness.seat import seat
    from xai.report.weat import render_weat_page
    from xai.zoo import load_model

    handle = load_model(model, zoo_dir=zoo_dir)
    result = seat(handle, list(test) if test else None, permutations=permutations, seed=seed)
    page = None
    if out is not None:
        folder = Path(out)
        html = render_weat_page(result.weat, json_name="seat.json")
        atomic_write_text(folder / "seat.json", dumps(result.to_dict(), indent=2))
        atomic_write_text(folder / "seat.html", html)
        page = folder / "seat.html"
    if json_out:
        print_json(result.to_dict())
        return
    console = stdout_console()
    console.print(f"SEAT on [bold]{escape(result.model)}[/]: templates "
                  + ", ".join(escape(repr(t)) for t in result.templates))
    _print_result(console, result.weat)
    for name, missing in result.missing_words.items():
        lost = "; ".join(f"{key}: {', '.join(m)}" for key, m in zip(_SETS, missing, strict=True) if m)
        console.print(f"{name}: words the tokenizer cannot spell: {escape(lost) if lost else 'none'}")
    if page is not None:
        console.print(f"Report: [bold]{page}[/]")
