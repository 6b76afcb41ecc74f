"""Run an audit spec: model + data -> explainers and probes -> an :class:`AuditResult`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from xai._method import Method, Result
from xai._provenance import Provenance
from xai.audit.result import AuditResult, DataSummary, ModelSummary
from xai.audit.spec import METHOD_SECTIONS, AuditSpec, MethodSection
from xai.datasets import Dataset, load_dataset
from xai.datasets._user import open_source
from xai.errors import DataError, NotApplicableError
from xai.explain import EXPLAINERS, AttributionResult, create_explainer, list_explainers
from xai.explain._base import TargetChoice
from xai.explain._index import method_registry
from xai.fairness import PROBES, FairnessResult, create_probe, list_probes
from xai.sources import prepare_bundled
from xai.zoo import ModelHandle, check_model_on_data, load_model


def run_audit(
    spec: AuditSpec,
    *,
    slug: str,
    spec_path: str = "",
    device: torch.device | None = None,
    zoo_dir: str | Path | None = None,
    console: Console | None = None,
    trust_pickle: bool = False,
) -> AuditResult:
    """Run one audit end to end (trains a missing zoo entry first).

    ``trust_pickle`` allows unpickling the model file (it runs code from the file); it is
    the caller's decision (``--trust-pickle``), never the spec's.
    """
    start = time.perf_counter()
    if spec.predictions is not None:
        return _run_predictions(spec, slug=slug, spec_path=spec_path)
    assert spec.model is not None  # the spec checks: a model or predictions
    if spec.data.engine is not None and spec.data.path is not None:
        return _run_streamed(spec, slug=slug, spec_path=spec_path, device=device, zoo_dir=zoo_dir, console=console,
                             trust_pickle=trust_pickle, start=start)
    if spec.data.engine is not None:
        raise DataError(f"{spec.title}: engine streams your own data ([data] path); a bundled dataset is loaded")
    # your own data is opened (files listed, columns checked) before the model loads
    source = open_source(spec.data.source()) if spec.data.path is not None else None
    handle = load_model(
        spec.model.name,
        weights=spec.model.weights,
        data=source.info if source is not None else spec.data.name,
        trust_pickle=trust_pickle,
        zoo_dir=zoo_dir,
        train_missing=True,
        seed=spec.seed,
        device=str(device.type) if device is not None else "auto",
        console=console,
        classes=spec.model.classes,
    )
    if device is not None:
        handle.to(device)
    notes: list[str] = []
    if source is not None:
        source.check_classes(handle)
        data = source.load(handle, samples=spec.data.samples, seed=spec.seed)  # decodes only the sampled rows
        notes.extend(source.notes)
        if handle.modality == "text" and handle.input_shape == (0,):
            handle.input_shape = tuple(data.x.shape[1:])  # a text table's length is its tokenizer's
    else:
        data_name = spec.data.name or handle.dataset
        if data_name is None:
            raise DataError(f"{spec.title}: say which data to audit on ([data] name or path)")
        data = prepare_bundled(handle, load_dataset(data_name, spec.data.split))  # raw images / text -> this model's
        if spec.data.samples is not None:
            data = sample_rows(data, spec.data.samples, spec.seed)
    check_model_on_data(handle, data)
    plan = _plan_sections(spec, handle)  # a section method that does not apply fails before any work
    performance = handle.performance(data)
    with AuditProgress(console, spec.title, _count_steps(spec, handle)) as steps:
        explanations = tuple(_run_explainers(spec, handle, data, notes, steps))
        fairness = tuple(_run_probes(spec, handle, data, notes, steps))
        sections = _run_sections(plan, handle, data, spec.seed, steps)
    return AuditResult(
        slug=slug,
        title=spec.title,
        spec_path=spec_path,
        model=ModelSummary(
            name=handle.name,
            source=handle.source,
            sha256=handle.sha256,
            task=handle.task,
            modality=handle.modality,
            params=sum(p.numel() for p in handle.module.parameters()),
            card=handle.card,
        ),
        data=DataSummary(data.name, data.split, len(data), data.sha256,
                         tuple(spec.data.sensitive)),
        performance=performance,
        results=(*explanations, *fairness, *(r for section in METHOD_SECTIONS for r in sections[section])),
        provenance=Provenance(
            model_sha256=handle.sha256,
            data_sha256=data.sha256,
            seed=spec.seed,
            wall_seconds=round(time.perf_counter() - start, 3),
            device=str(handle.device),
        ),
        notes=tuple(notes),
    )


def _run_streamed(spec: AuditSpec, *, slug: str, spec_path: str, device: torch.device | None,
                  zoo_dir: str | Path | None, console: Console | None, trust_pickle: bool,
                  start: float) -> AuditResult:
    """Your own data streamed in batches: every row counted for group metrics, a stratified sample explained.

    Memory holds a batch, the count tables and the sample (``per_group`` rows of each sensitive
    group), never the rows; ``engine = "ray"`` counts on Ray Data actors (one model per actor).
    """
    from xai.audit.streamed import PER_GROUP, count_model, group_metrics_result
    from xai.datasets._stream import open_stream

    assert spec.model is not None and spec.data.engine is not None
    source = open_stream(spec.data.source())  # columns and labels checked before the model loads
    handle = load_model(spec.model.name, weights=spec.model.weights, data=source.info, trust_pickle=trust_pickle,
                        zoo_dir=zoo_dir, train_missing=True, seed=spec.seed,
                        device=str(device.type) if device is not None else "auto", console=console,
                        classes=spec.model.classes)
    if device is not None:
        handle.to(device)
    source.check_classes(handle)
    head = source.head(handle, spec.seed)
    if handle.modality == "text" and handle.input_shape == (0,):
        handle.input_shape = tuple(head.x.shape[1:])
    check_model_on_data(handle, head)
    plan = _plan_sections(spec, handle)
    sensitive = tuple(spec.data.sensitive)
    probes: list[tuple[str, list[str] | None, dict[str, Any]]]
    if spec.probe is None:
        probes = [(name, None, {}) for name in list_probes(handle=handle, default_only=True)]
    else:
        probes = [(p.name, p.sensitive, p.options) for p in spec.probe]
    counted_by = [p for p in probes if p[0] == "group-metrics"]
    group_probe = None
    if counted_by:  # the options are checked before the pass
        name, columns, options = counted_by[0]
        if columns is not None and tuple(columns) != sensitive:
            raise DataError("in a streamed audit the group-metrics probe counts the [data] sensitive columns; "
                            "leave out its own `sensitive`")
        group_probe = create_probe(name, handle, **options)
    max_groups = group_probe.options["max_groups"] if group_probe is not None else None
    counted = count_model(handle, source, sensitive=sensitive, seed=spec.seed,
                          per_group=spec.data.per_group or PER_GROUP, max_groups=max_groups,
                          engine=spec.data.engine)
    sample = counted.sample
    notes: list[str] = list(source.notes)
    notes.append(f"streamed: {counted.rows:,} rows counted ({spec.data.engine} engine); explanations"
                 + (" and probes other than group-metrics" if len(probes) > len(counted_by) else "")
                 + f" ran on a stratified sample of {len(sample):,} rows (at most "
                 f"{spec.data.per_group or PER_GROUP} per group, seed {spec.seed})")
    if handle.evaluate is None:
        performance = {"accuracy": counted.table.accuracy}
    else:
        performance = handle.performance(sample)
        notes.append("performance: measured on the stratified sample")
    with AuditProgress(console, spec.title, _count_steps(spec, handle)) as steps:
        explanations = tuple(_run_explainers(spec, handle, sample, notes, steps))
        fairness: list[FairnessResult] = []
        for name, columns, options in probes:  # as _run_probes, the group metrics from the counts of every row
            probe_class = PROBES.get(name)
            used = columns if columns is not None else list(sensitive)
            if not used and probe_class.capabilities.needs_sensitive:
                notes.append(f"probe {name} skipped: no sensitive column named in [data] sensitive")
                continue
            if name == "group-metrics":
                assert group_probe is not None
                with steps.step(f"probe group-metrics by {', '.join(sensitive)} ({counted.rows:,} rows)"):
                    result = group_metrics_result(handle, counted, source.name, group_probe.options, spec.seed)
            else:
                probe = create_probe(name, handle, **options)
                with steps.step(f"probe {name}" + (f" by {', '.join(used)}" if used else "") + " (sample)"):
                    result = probe.probe(sample, sensitive=used, seed=spec.seed)
            notes.extend(f"{name}: {note}" for note in result.notes)
            fairness.append(result)
        sections = _run_sections(plan, handle, sample, spec.seed, steps)
    return AuditResult(
        slug=slug,
        title=spec.title,
        spec_path=spec_path,
        model=ModelSummary(name=handle.name, source=handle.source, sha256=handle.sha256, task=handle.task,
                           modality=handle.modality, params=sum(p.numel() for p in handle.module.parameters()),
                           card=handle.card),
        data=DataSummary(source.name, "all", counted.rows, counted.sha256, sensitive),
        performance=performance,
        results=(*explanations, *fairness,
                 *(r for section in METHOD_SECTIONS for r in sections[section])),
        provenance=Provenance(model_sha256=handle.sha256, data_sha256=counted.sha256, seed=spec.seed,
                              wall_seconds=round(time.perf_counter() - start, 3), device=str(handle.device)),
        notes=tuple(notes),
    )


def _run_predictions(spec: AuditSpec, *, slug: str, spec_path: str) -> AuditResult:
    """A ``[predictions]`` spec: group metrics of a file of any system's outputs (no model runs)."""
    from xai.audit.predictions import prediction_audit
    from xai.fairness.predictions import audit_predictions, load_predictions

    p = spec.predictions
    assert p is not None
    data = load_predictions(p.path, y_true=p.y_true, y_pred=p.y_pred, score=p.score,
                            threshold=0.5 if p.threshold is None else p.threshold, pos_label=p.pos_label,
                            sensitive=list(p.sensitive), task=p.task)
    verdict = audit_predictions(data, seed=spec.seed, n_boot=p.n_boot, confidence=p.confidence,
                                min_group_size=p.min_group_size)
    return prediction_audit(data, verdict, slug=slug, title=spec.title, spec_path=spec_path)


def sample_rows(data: Dataset, n: int, seed: int) -> Dataset:
    """A seeded random subset of ``n`` rows (all rows when ``n`` exceeds them).

    Rows that belong together (a ``pair`` column in ``data.groups``, e.g. the sentence
    pairs a sentence encoder is scored on) are drawn as whole pairs, so a subset scores
    like the full set would, only with fewer pairs.
    """
    if n >= len(data):
        return data
    generator = torch.Generator().manual_seed(seed)
    if "pair" in data.groups:
        pairs = torch.tensor(data.groups["pair"].tolist())
        ids = torch.unique(pairs)
        keep = ids[torch.randperm(len(ids), generator=generator)[:max(1, n // 2)]]
        return data.subset(torch.isin(pairs, keep).nonzero().flatten())
    index = torch.randperm(len(data), generator=generator)[:n].sort().values
    return data.subset(index)


class AuditProgress:
    """A transient progress bar over an audit's steps (explainers, probes, sanity checks).

    Does nothing without an interactive console (``--json``, ``-q``, CI logs, library use).
    """

    def __init__(self, console: Console | None, title: str, total: int) -> None:
        live = console is not None and console.is_terminal and total > 0
        self._progress = None if not live else Progress(
            TextColumn("[bold]{task.fields[title]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=True)
        self._task: TaskID | None = None
        self._title, self._total = title, total

    def __enter__(self) -> AuditProgress:
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task("", total=self._total, title=self._title)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    @contextmanager
    def step(self, description: str) -> Iterator[None]:
        """Show ``description`` while the body runs, then advance the bar."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=description, refresh=True)
        yield
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task)


def _count_steps(spec: AuditSpec, handle: ModelHandle) -> int:
    explain = len(list_explainers(handle=handle)) if spec.explain is None else len(spec.explain)
    probes = len(list_probes(handle=handle, default_only=True)) if spec.probe is None else len(spec.probe)
    return explain + probes + sum(len(getattr(spec, section)) for section in METHOD_SECTIONS)


def _run_explainers(spec: AuditSpec, handle: ModelHandle, data: Dataset,
                    notes: list[str], steps: AuditProgress) -> list[AttributionResult]:
    plan: list[tuple[str, int, TargetChoice, dict[str, Any]]]
    if spec.explain is None:
        plan = [(name, 8, "predicted", {}) for name in list_explainers(handle=handle)]
    else:
        plan = [(e.method, e.samples, e.target, e.options) for e in spec.explain]
    results = []
    for method, samples, target, options in plan:
        EXPLAINERS.get(method)  # unknown names fail before any work
        explainer = create_explainer(method, handle, **options)
        subset = sample_rows(data, samples, spec.seed)
        with steps.step(f"explain {method} ({len(subset)} samples)"):
            results.append(explainer.explain(subset, target=target, seed=spec.seed))
    if not results and spec.explain is None:
        notes.append("no registered explainer applies to this model")
    return results


def _plan_sections(spec: AuditSpec, handle: ModelHandle) -> list[tuple[str, MethodSection, type[Method]]]:
    """Every method-section entry ([[sanity]], [[dream]], [[project]] ...) with its registered method, checked.

    Raises
    ------
    NotApplicableError
        When an entry's method does not apply to the model (its ``why_not``), before any work.
    """
    plan: list[tuple[str, MethodSection, type[Method]]] = []
    for section in METHOD_SECTIONS:
        entry: MethodSection
        for entry in getattr(spec, section):
            method = method_registry(entry.KIND).get(entry.METHOD)
            reason = entry.why_not(handle)
            if reason:
                raise NotApplicableError(f"{section} does not apply to {handle.name}: {reason}")
            plan.append((section, entry, method))
    return plan


def _run_sections(plan: list[tuple[str, MethodSection, type[Method]]], handle: ModelHandle, data: Dataset,
                  seed: int, steps: AuditProgress) -> dict[str, list[Result]]:
    """Run the planned entries through ``Method.run``, grouped by section (in spec order)."""
    results: dict[str, list[Result]] = {section: [] for section in METHOD_SECTIONS}
    for section, entry, method in plan:
        with steps.step(entry.step()):
            rows = data if entry.READS_AUDIT_DATA else None
            results[section].append(method.run(handle, rows, entry.options, seed=seed))
    return results


def _run_probes(spec: AuditSpec, handle: ModelHandle, data: Dataset,
                notes: list[str], steps: AuditProgress) -> list[FairnessResult]:
    plan: list[tuple[str, list[str] | None, dict[str, Any]]]
    if spec.probe is None:
        plan = [(name, None, {}) for name in list_probes(handle=handle, default_only=True)]
    else:
        plan = [(p.name, p.sensitive, p.options) for p in spec.probe]
    results = []
    for name, sensitive, options in plan:
        probe_class = PROBES.get(name)
        columns = sensitive if sensitive is not None else list(spec.data.sensitive)
        if not columns and probe_class.capabilities.needs_sensitive:
            notes.append(f"probe {name} skipped: no sensitive column named in [data] sensitive")
            continue
        probe = create_probe(name, handle, **options)
        with steps.step(f"probe {name}" + (f" by {', '.join(columns)}" if columns else "")):
            result = probe.probe(data, sensitive=columns, seed=spec.seed)
        notes.extend(f"{name}: {note}" for note in result.notes)
        results.append(result)
    return results
