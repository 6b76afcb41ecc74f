"""``xai rollout``: attention rollout, attention flow or gradient-weighted rollout of a model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from xai._text import safe_text
from xai.audit import AuditSpec, ExplainSpec, ModelSpec
from xai.cli._common import (
    DeviceOpt,
    JsonOpt,
    LabelOpt,
    ModelArg,
    OutOpt,
    OwnDataOpt,
    SeedOpt,
    TargetOpt,
    TrustPickleOpt,
    WeightsOpt,
    ZooDirOpt,
    check_device,
    data_spec,
    parse_target,
    print_json,
    run_cli_audit,
    stderr_console,
    stdout_console,
)
from xai.errors import DataError
from xai.explain._choices import HEAD_FUSIONS
from xai.explain._choices import ROLLOUT_MODES as MODES

if TYPE_CHECKING:
    from xai.datasets import Dataset
    from xai.explain.tokens import TokenRelevance

METHOD = "attention-rollout"


def rollout(
    model: ModelArg,
    samples: Annotated[int | None, typer.Option("--samples", "-n", min=1,
                                                help="How many samples to explain [default: 8].")] = None,
    text: Annotated[list[str] | None, typer.Option(
        "--text", help="Explain this sentence (text models); repeat for more.")] = None,
    compare: Annotated[str | None, typer.Option(
        "--compare", help="grad mode on a sentence encoder: explain the cosine similarity to this sentence.")] = None,
    pool: Annotated[str | None, typer.Option(
        "--pool", help="Row of the rollout that scores tokens: cls or mean [default: the model's pooling].")] = None,
    mode: Annotated[str, typer.Option("--mode", help="rollout, flow (slow; small T) or grad (Chefer 2021).")]
    = "rollout",
    head_fusion: Annotated[str, typer.Option("--head-fusion", help="Fuse heads by mean, max or min.")] = "mean",
    discard_ratio: Annotated[float, typer.Option("--discard-ratio",
                                                 help="Share of the lowest attentions zeroed per layer, [0, 1).")]
    = 0.0,
    target: TargetOpt = "predicted",
    data: OwnDataOpt = None,
    label: LabelOpt = None,
    text_column: Annotated[str | None, typer.Option(
        "--text-column", help="Your data: the text column of a text table (its rows are explained).")] = None,
    weights: WeightsOpt = None,
    trust_pickle: TrustPickleOpt = False,
    out: OutOpt = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = None,
    zoo_dir: ZooDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Which input patches (or tokens) the CLS token, or the pooled sentence, draws on through every attention layer.

    xai rollout vit --mode grad
    xai rollout vqa-transformer --samples 4   # image patches + question words (padding excluded)
    xai rollout minilm --text "The nurse said she would help." [--mode rollout|flow|grad] [--json] [-o DIR]
    xai rollout minilm --mode grad --text "A man plays guitar." --compare "Someone is making music."
    xai rollout bert-mini --data reviews.csv --text-column review   # rows of your own text table
    """
    from xai.zoo import MODELS, get_entry

    if text and samples is not None:
        raise DataError("give --samples or --text, not both")
    if mode not in MODES:
        raise DataError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    if head_fusion not in HEAD_FUSIONS:
        raise DataError(f"--head-fusion must be one of {', '.join(HEAD_FUSIONS)}, got {head_fusion!r}")
    options: dict[str, Any] = {"mode": mode, "head_fusion": head_fusion, "discard_ratio": discard_ratio}
    if pool is not None:
        options["pool"] = pool
    if compare is not None:
        options["compare"] = compare
    own = data_spec(data, label=label, text=text_column)  # a bundled name, or your own data (checked here)
    if text or text_column or (model in MODELS and get_entry(model).modality == "text"):
        from xai._device import resolve_device
        from xai.datasets import load_dataset
        from xai.datasets._user import open_source
        from xai.explain.tokens import TokenRelevanceMethod
        from xai.zoo import check_model_on_data, load_model

        if text and own.path is not None:
            raise DataError("give --text sentences or --data with your text table, not both")
        source = open_source(own.source()) if own.path is not None else None  # columns checked before the model
        handle = load_model(model, weights=weights, data=source.info if source is not None else data,
                            trust_pickle=trust_pickle, zoo_dir=zoo_dir, train_missing=True, seed=seed or 0,
                            console=stderr_console(enabled=not json_out)).to(resolve_device(check_device(device)))
        TokenRelevanceMethod.check_applies(handle)
        rows: Dataset | None
        if source is not None:
            source.check_classes(handle)
            rows = source.load(handle, samples=samples or 8, seed=seed or 0)
        else:
            rows = load_dataset(data or handle.dataset or "", "test") if data or handle.dataset else None
            if rows is not None:
                check_model_on_data(handle, rows)
        request = {**options, "texts": list(text) if text else None, "samples": samples or 8,
                   "target": parse_target(target)}
        relevance = TokenRelevanceMethod.run(handle, None if text else rows, request, seed=seed or 0)
        page = None
        if out is not None:  # an audit page of the sentences: verdict, card, provenance, listed in the index
            from xai.audit.command import command_audit
            from xai.audit.result import DataSummary
            from xai.report.html import write_report

            given = DataSummary(name=rows.name if rows is not None and not text else "sentences given with --text",
                                split=rows.split if rows is not None and not text else "",
                                rows=len(relevance.texts), sha256=relevance.provenance.data_sha256, sensitive=())
            audit = command_audit(handle, [relevance], slug=f"rollout-text-{relevance.options['mode']}", data=given,
                                  title=f"Attention {relevance.options['mode']} on {handle.name}")
            write_report([audit], out)
            page = out / f"{audit.slug}.html"
        _text_output(relevance, json_out=json_out, page=page)
        return
    if pool is not None or compare is not None:
        raise DataError("--pool and --compare apply to text models")
    spec = AuditSpec(
        title=f"attention {mode} on {model}",
        model=ModelSpec(name=model, weights=str(weights) if weights else None),
        data=own,
        explain=[ExplainSpec(method=METHOD, samples=samples or 8, target=parse_target(target), options=options)],
        probe=[],
        seed=seed or 0,
    )
    result, page = run_cli_audit(spec, slug=f"rollout-{mode}", device=device, zoo_dir=zoo_dir,
                                 json_out=json_out, out=out, trust_pickle=trust_pickle)
    explanation = result.explanations[0]
    if json_out:
        print_json(explanation.to_dict())
        return
    from xai.report.terminal_commands import print_rollout

    console = stdout_console()
    print_rollout(console, explanation, mode, result.model.name, head_fusion, discard_ratio)
    if page is not None:
        console.print(f"Report: [bold]{safe_text(page)}[/]")


def _text_output(result: TokenRelevance, *, json_out: bool, page: Path | None) -> None:
    """Print (or dump as JSON) each sentence's token relevance, then where its page is."""
    if json_out:
        print_json(result.to_dict())
        return
    from xai.report.terminal_commands import print_token_relevance

    console = stdout_console()
    print_token_relevance(console, result)
    if page is not None:
        console.print(f"Report: [bold]{safe_text(page)}[/]")
