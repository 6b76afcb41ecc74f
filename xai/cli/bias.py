"""``xai bias``: embedding-bias probes of static word vectors (``xai bias weat``, ``xai bias direct``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xai._text import safe_text
from xai._typing import SEED_MAX
from xai.audit import AuditSpec, DataSpec, ModelSpec, ProbeSpec
from xai.cli._common import (
    DataOpt,
    DeviceOpt,
    JsonOpt,
    MethodOptionsOpt,
    ModelArg,
    OutOpt,
    SeedOpt,
    TrustPickleOpt,
    WeightsOpt,
    ZooDirOpt,
    parse_options,
    print_json,
    run_cli_audit,
    stderr_console,
    stdout_console,
)
from xai.datasets import WordVectors, list_word_vectors, load_word_vectors
from xai.errors import DataError
from xai.fairness.direct_bias import (
    bolukbasi_definitional_pairs,
    bolukbasi_neutral_professions,
    bolukbasi_professions,
    direct_bias,
    read_word_pairs,
)
from xai.fairness.embedding import (
    DEFAULT_PERMUTATIONS,
    WeatTest,
    check_permutations,
    read_word_set,
    read_word_vectors,
    weat,
    weat_tests,
)
from xai.report.terminal_commands import print_direct_bias, print_seat, print_template_bias, print_weat

bias_app = typer.Typer(help="Bias probes of word embeddings and text classifiers.", no_args_is_help=True)


@bias_app.command("weat")
def weat_command(
    vectors: Annotated[str | None, typer.Option(
        "--vectors", help="Word vectors: a file (word2vec binary or text, GloVe text, or .npz with words, "
                          f"vectors) or a shipped embedding ({', '.join(list_word_vectors())}).")] = None,
    embedding: Annotated[str | None, typer.Option(
        "--embedding", help=f"Shipped embedding: {', '.join(list_word_vectors())} "
                            "(default googlenews-weat; same as --vectors NAME).")] = None,
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
    seed: Annotated[int, typer.Option("--seed", min=0, max=SEED_MAX,
                                                help="Seed of the random partitions.")] = 0,
    json_out: JsonOpt = False,
    out: OutOpt = None,
) -> None:
    """WEAT (Caliskan et al. 2017): effect size and one-sided permutation p-value per test.

    xai bias weat --embedding googlenews-weat --test math-arts
    xai bias weat --vectors my.bin --targets x.txt y.txt --attributes a.txt b.txt
    xai bias weat --vectors googlenews --targets x.txt y.txt --attributes a.txt b.txt
    """
    check_permutations(permutations)  # before any file is read
    if vectors is not None and embedding is not None:
        raise DataError("give --vectors FILE or --embedding NAME, not both")
    if (targets is None) != (attributes is None):
        raise DataError("custom word sets need both --targets X Y and --attributes A B")
    tests: list[str | WeatTest] | None = list(test) if test else None
    if targets is not None and attributes is not None:
        sets = [read_word_set(p) for p in (*targets, *attributes)]
        custom = WeatTest(f"{sets[0].name}-{sets[1].name}", sets[0], sets[1], sets[2], sets[3])
        tests = [*(tests or []), custom]
    if vectors is not None:
        wanted = {w for t in (_resolve(tests)) for s in t.sets for w in s.words}
        wv = load_vectors(vectors, keep=wanted)
    else:
        wv = load_word_vectors(embedding or "googlenews-weat")
    result = weat(wv, tests, permutations=permutations, seed=seed)
    page = None
    if out is not None:  # an audit page: verdict, provenance, the audit JSON, listed in the index
        from xai.report.weat import write_weat_report

        page = write_weat_report(result, out, source=vectors or embedding or "googlenews-weat")
    if json_out:
        print_json(result.to_dict())
        return
    console = stdout_console()
    print_weat(console, result)
    if page is not None:
        console.print(f"Report: [bold]{safe_text(page)}[/]")


def load_vectors(spec: str, keep: set[str] | None = None) -> WordVectors:
    """A vectors file (``keep``: only these words) or, when no such file exists, a shipped embedding."""
    path = Path(spec)
    if path.is_file():
        return read_word_vectors(path, keep=keep)
    if spec in list_word_vectors():
        return load_word_vectors(spec)
    raise DataError(f"--vectors {spec}: no such file, and not a shipped embedding "
                    f"(known: {', '.join(list_word_vectors())})")


@bias_app.command("direct")
def direct_command(
    vectors: Annotated[str, typer.Option(
        "--vectors", help="Word vectors: a file (word2vec binary or text, GloVe text, .npz) or a shipped "
                          f"embedding ({', '.join(list_word_vectors())}).")] = "googlenews",
    pairs: Annotated[Path | None, typer.Option(
        "--pairs", help="Definitional pairs file, two words per line [default: Bolukbasi's ten, female first].")
    ] = None,
    neutral: Annotated[Path | None, typer.Option(
        "--neutral", help="Gender-neutral words, one per line [default: Bolukbasi's neutral professions].")
    ] = None,
    words: Annotated[Path | None, typer.Option(
        "--words", help="Words to project and rank, one per line [default: --neutral, else all professions].")
    ] = None,
    c: Annotated[float, typer.Option("--c", help="Strictness of DirectBias_c (1: mean |cos|).")] = 1.0,
    top: Annotated[int, typer.Option("--top", help="Length of the most-positive / most-negative lists.")] = 10,
    json_out: JsonOpt = False,
) -> None:
    """Direct bias (Bolukbasi et al. 2016): gender direction by PCA, projections, DirectBias_c.

    xai bias direct                                   # shipped GoogleNews subset, Bolukbasi's words
    xai bias direct --vectors my.bin --pairs pairs.txt --neutral jobs.txt --c 1 --json
    """
    if top < 0:
        raise DataError(f"--top must be at least 0, got {top}")
    pair_list = read_word_pairs(pairs) if pairs is not None else bolukbasi_definitional_pairs()
    neutral_list = list(read_word_set(neutral).words) if neutral is not None else None
    shown = list(read_word_set(words).words) if words is not None else None
    wanted = {w for pair in pair_list for w in pair}
    wanted |= set(neutral_list if neutral_list is not None else bolukbasi_neutral_professions())
    wanted |= set(shown if shown is not None else (neutral_list or bolukbasi_professions()))
    wv = load_vectors(vectors, keep=wanted)
    result = direct_bias(wv, pairs=pair_list, neutral=neutral_list, project=shown, c=c, top=top)
    if json_out:
        print_json(result.to_dict())
        return
    print_direct_bias(stdout_console(), result)


def _resolve(tests: list[str | WeatTest] | None) -> list[WeatTest]:
    shipped = weat_tests()
    if tests is None:
        return list(shipped.values())
    return [t if isinstance(t, WeatTest) else shipped[t] for t in tests if isinstance(t, WeatTest) or t in shipped]


@bias_app.command("eec")
def eec_command(
    model: ModelArg,
    axis: Annotated[list[str] | None, typer.Option(
        "--axis", help="Group axis to compare; repeat for more [default: gender and name_group].")] = None,
    score: Annotated[str, typer.Option(
        "--score", help="probability of the positive class, or its log-odds.")] = "probability",
    top: Annotated[int, typer.Option("--top", min=1, help="How many frames with the largest gaps to list.")] = 5,
    option: MethodOptionsOpt = None,
    data: DataOpt = None,
    weights: WeightsOpt = None,
    trust_pickle: TrustPickleOpt = False,
    out: OutOpt = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = None,
    zoo_dir: ZooDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """EEC-style template bias (Kiritchenko & Mohammad 2018) of a text classifier.

    Fills sentiment templates with the words of two groups and compares the model's
    positive scores over identical templates: mean difference, Wilcoxon and paired-t
    p-values, and the templates with the largest gaps.

    xai bias eec bert-mini
    xai bias eec lstm-text --axis name_group --score log-odds --json
    """
    axes = list(axis) if axis else ["gender", "name_group"]
    options = {**parse_options(option), "score": score, "top": top}
    spec = AuditSpec(
        title=f"template bias of {model}",
        model=ModelSpec(name=model, weights=str(weights) if weights else None),
        data=DataSpec(name=data, sensitive=axes),
        explain=[],
        probe=[ProbeSpec(name="template-bias", sensitive=axes, options=options)],
        seed=seed or 0,
    )
    result, page = run_cli_audit(spec, slug="bias-eec", device=device, zoo_dir=zoo_dir, json_out=json_out, out=out,
                                 trust_pickle=trust_pickle)
    probe = result.fairness[0]
    if json_out:
        print_json(probe.to_dict())
        return
    console = stdout_console()
    print_template_bias(console, probe, options["score"])
    if page is not None:
        console.print(f"Report: [bold]{safe_text(page)}[/]")


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
    seed: Annotated[int, typer.Option("--seed", min=0, max=SEED_MAX,
                                                help="Seed of the random partitions.")] = 0,
    zoo_dir: ZooDirOpt = None,
    json_out: JsonOpt = False,
    out: OutOpt = None,
) -> None:
    """SEAT (May et al. 2019): WEAT over sentence embeddings of the word sets in bleached templates.

    xai bias seat --model minilm --test career-family --test math-arts
    """
    from xai.fairness.seat import seat
    from xai.zoo import load_model

    check_permutations(permutations)  # before the encoder is loaded
    handle = load_model(model, zoo_dir=zoo_dir, train_missing=True, console=stderr_console(enabled=not json_out))
    result = seat(handle, list(test) if test else None, permutations=permutations, seed=seed)
    page = None
    if out is not None:
        from xai.report.weat import write_seat_report

        page = write_seat_report(result, handle, out)
    if json_out:
        print_json(result.to_dict())
        return
    console = stdout_console()
    print_seat(console, result)
    if page is not None:
        console.print(f"Report: [bold]{safe_text(page)}[/]")
