"""The library's front door: ``xai.explain``, ``xai.audit``, ``xai.check``, thin over the core.

Each function takes what a Python user has in hand (a zoo name, a file, an ``nn.Module``
with a :class:`~xai.datasets.Dataset`, or a :class:`~xai.zoo.ModelHandle`) and calls the
same registries, runner and gates as the command line::

    data = xai.Dataset.from_arrays(x, y, groups={"sex": sex})
    result = xai.explain(model, data, method="saliency", samples=4)

An ``nn.Module`` given with a :class:`Dataset` is wrapped by :meth:`ModelHandle.from_module`
(classes, input shape and modality from the data).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xai.errors import DataError, ModelLoadError

if TYPE_CHECKING:
    import pandas as pd
    from pydantic import BaseModel
    from torch import nn

    from xai.audit import AuditResult, AuditSpec, CheckedAudit, DataSpec, ExplainSpec, ProbeSpec
    from xai.datasets import Dataset
    from xai.explain import AttributionResult
    from xai.zoo import ModelHandle

__all__ = ["audit", "check", "explain", "list_methods"]


def _data(data: Dataset | str | None, handle: ModelHandle | None, split: str = "test") -> Dataset:
    from xai.datasets import Dataset, load_dataset

    if isinstance(data, Dataset):
        return data
    if isinstance(data, str):
        return load_dataset(data, split)  # type: ignore[arg-type]
    if data is None and handle is not None and handle.dataset is not None:
        return load_dataset(handle.dataset, split)  # type: ignore[arg-type]
    raise DataError("say which data to use: a Dataset (Dataset.from_arrays) or a bundled dataset's name")


def _handle(model: ModelHandle | nn.Module | str, data: Dataset | str | None, *, weights: str | Path | None = None,
            trust_pickle: bool = False, zoo_dir: str | Path | None = None, train_missing: bool = True) -> ModelHandle:
    """The handle of ``model``: a handle as is, a module wrapped for ``data``, a name or file loaded.

    A zoo entry without weights is trained first, as every CLI command that runs a model does.
    """
    from torch import nn

    from xai.datasets import Dataset
    from xai.zoo import ModelHandle, load_model

    if isinstance(model, ModelHandle):
        return model
    if isinstance(model, nn.Module):
        if not isinstance(data, Dataset):
            raise ModelLoadError("an nn.Module needs a Dataset to know its classes and inputs; or wrap it "
                                 "with ModelHandle.from_module(module, classes=..., input_shape=...)")
        return ModelHandle.from_module(model, classes=data.class_names, input_shape=tuple(data.x.shape[1:]),
                                       modality=data.modality)
    if isinstance(model, str | Path):
        return load_model(str(model), weights=weights, data=data if isinstance(data, str) else None,
                          trust_pickle=trust_pickle, zoo_dir=zoo_dir, train_missing=train_missing)
    raise ModelLoadError(f"model must be a ModelHandle, an nn.Module or a name/path, got {type(model).__name__}")


def explain(model: ModelHandle | nn.Module | str, data: Dataset | str | None = None,
            method: str = "integrated-gradients", samples: int | None = 8, *, target: str | int = "predicted",
            seed: int = 0, **options: Any) -> AttributionResult:
    """Attribute ``samples`` rows of ``data`` (all rows when ``None``) with ``method``.

    ``options`` are the method's (``xai methods --kind explain`` lists them), validated by
    its ``Options`` model: a wrong name or value is a :class:`~xai.errors.DataError` naming it.
    The rows are the seeded subset an audit with the same seed explains.
    """
    from xai.audit import sample_rows
    from xai.explain import EXPLAINERS
    from xai.zoo import check_model_on_data

    explainer = EXPLAINERS.get(method)  # an unknown name lists the known ones, before any work
    parsed = explainer.parse_options({"target": target, **options})
    handle = _handle(model, data)
    rows = _data(data, handle)
    explainer.check_applies(handle)
    check_model_on_data(handle, rows)
    if samples is not None:
        rows = sample_rows(rows, samples, seed)
    return explainer.run(handle, rows, parsed, seed)


def _plan(items: Sequence[str | Mapping[str, Any] | Any] | None, model: type[BaseModel], key: str
          ) -> list[Any] | None:
    """Spec entries from names, dicts or spec objects (``None``: the audit's defaults)."""
    if items is None:
        return None
    if isinstance(items, str | Mapping):
        items = [items]
    return [item if isinstance(item, model) else model.model_validate({key: item} if isinstance(item, str) else item)
            for item in items]


def audit(model: ModelHandle | nn.Module | str | Path, data: Dataset | str | Path | pd.DataFrame | None = None, *,
          sensitive: Sequence[str] = (), explain: Sequence[str | Mapping[str, Any] | ExplainSpec] | None = None,
          probe: Sequence[str | Mapping[str, Any] | ProbeSpec] | None = None, seed: int = 0,
          title: str | None = None, weights: str | Path | None = None, trust_pickle: bool = False,
          zoo_dir: str | Path | None = None, label: str | None = None, text: str | None = None,
          data_options: Mapping[str, Any] | None = None) -> AuditResult:
    """Explain a model and probe it for bias: an :class:`~xai.audit.AuditResult` like ``xai audit``'s.

    ``explain`` and ``probe`` name methods (``"saliency"``) or give spec entries
    (``{"method": "integrated-gradients", "samples": 16, "options": {"steps": 32}}``);
    ``None`` runs the defaults that apply to the model, as a spec that names none does.
    A zoo name or file with a bundled dataset (or none) runs exactly :func:`~xai.audit.run_audit`;
    a handle, module or :class:`Dataset` in memory runs the same methods on them.

    ``data`` may also be your own: an image folder, a ``.csv``/``.parquet`` manifest, feature or
    text table, or a pandas DataFrame (a table in memory), with ``label`` and ``text`` columns
    and the other ``[data]`` keys of a spec in ``data_options`` (``side``, ``id``, ``features``,
    ``size``, ``mean``, ``std``, ``preprocess``, ``classes``, ``samples``, ``strict`` ...).
    """
    from xai.audit import AuditSpec, DataSpec, ExplainSpec, ModelSpec, ProbeSpec, run_audit, safe_slug

    explain_plan = _plan(explain, ExplainSpec, "method")
    probe_plan = _plan(probe, ProbeSpec, "name")
    name = model if isinstance(model, str | Path) else getattr(model, "name", type(model).__name__)
    title = title or f"audit of {name}"
    own = _own_data_spec(data, sensitive=sensitive, label=label, text=text, options=data_options)
    if isinstance(model, str | Path) and (data is None or isinstance(data, str | Path)):
        spec = AuditSpec(title=title, model=ModelSpec(name=str(model), weights=str(weights) if weights else None),
                         data=own or DataSpec(name=data, sensitive=list(sensitive)),  # type: ignore[arg-type]
                         explain=explain_plan, probe=probe_plan, seed=seed)
        return run_audit(spec, slug=safe_slug(title), spec_path="python", zoo_dir=zoo_dir, trust_pickle=trust_pickle)
    if own is not None:
        handle, rows = _own_data(model, data, own, weights=weights, trust_pickle=trust_pickle, zoo_dir=zoo_dir,
                                 seed=seed)
        return _audit_in_memory(handle, rows, title=title, sensitive=list(sensitive), explain=explain_plan,
                                probe=probe_plan, seed=seed)
    handle = _handle(model, data, weights=weights, trust_pickle=trust_pickle, zoo_dir=zoo_dir)  # type: ignore[arg-type]
    return _audit_in_memory(handle, _data(data, handle), title=title, sensitive=list(sensitive),  # type: ignore[arg-type]
                            explain=explain_plan, probe=probe_plan, seed=seed)


def _own_data_spec(data: Any, *, sensitive: Sequence[str], label: str | None, text: str | None,
                   options: Mapping[str, Any] | None) -> DataSpec | None:
    """A ``[data]`` section for your own data (a path that is not a bundled name, or a DataFrame), else ``None``."""
    import pandas as pd
    from pydantic import ValidationError

    from xai.audit import DataSpec
    from xai.datasets._index import DATASETS

    keys = {"label": label, "text": text, **(options or {})}
    keys = {k: str(v) if isinstance(v, Path) else v for k, v in keys.items() if v is not None}

    def section(path: str) -> DataSpec:
        try:
            return DataSpec(path=path, sensitive=list(sensitive), **keys)
        except ValidationError as exc:  # a wrong key or value: one line naming it, as a spec's would be
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "data"
            raise DataError(f"data option {where}: {first['msg'].removeprefix('Value error, ')}") from None

    if isinstance(data, pd.DataFrame):
        return section("DataFrame")
    if isinstance(data, str | Path) and not (isinstance(data, str) and data in DATASETS):
        if not Path(data).exists():
            raise DataError(f"data {str(data)!r}: neither a bundled dataset ({', '.join(DATASETS.names())}) nor a "
                            "file or folder")
        return section(str(data))
    if keys:
        raise DataError(f"{', '.join(sorted(keys))} apply to your own data (a folder, a table or a DataFrame)")
    return None


def _own_data(model: ModelHandle | nn.Module | str | Path, data: Any, spec: DataSpec, *, weights: str | Path | None,
              trust_pickle: bool, zoo_dir: str | Path | None, seed: int) -> tuple[ModelHandle, Dataset]:
    """The handle of ``model`` and the user's own ``data`` loaded for it (a module takes its classes from the data)."""
    import pandas as pd
    from torch import nn

    from xai.datasets._user import open_source
    from xai.zoo import ModelHandle, load_model

    source = open_source(spec.source(), frame=data if isinstance(data, pd.DataFrame) else None)
    if isinstance(model, ModelHandle):
        handle = model
    elif isinstance(model, nn.Module):
        info = source.info
        handle = ModelHandle.from_module(model, classes=info.class_names, input_shape=info.input_shape,
                                         modality=info.modality)
        encode = getattr(getattr(model, "tokenizer", None), "encode", None)
        handle.preprocess = encode if callable(encode) else None
    elif isinstance(model, str | Path):
        handle = load_model(str(model), weights=weights, data=source.info, trust_pickle=trust_pickle,
                            zoo_dir=zoo_dir, train_missing=True)
    else:
        raise ModelLoadError(f"model must be a ModelHandle, an nn.Module or a name/path, got {type(model).__name__}")
    source.check_classes(handle)
    rows = source.load(handle, samples=spec.samples, seed=seed)
    if handle.modality == "text" and handle.input_shape == (0,):
        handle.input_shape = tuple(rows.x.shape[1:])
    return handle, rows


def _audit_in_memory(handle: ModelHandle, data: Dataset, *, title: str, sensitive: list[str],
                     explain: list[ExplainSpec] | None, probe: list[ProbeSpec] | None, seed: int) -> AuditResult:
    """What :func:`~xai.audit.run_audit` does after loading, on a handle and data already in memory."""
    from xai._provenance import Provenance
    from xai.audit import AuditResult, DataSummary, ModelSummary, safe_slug, sample_rows
    from xai.explain import EXPLAINERS, create_explainer, list_explainers
    from xai.fairness import PROBES, create_probe, list_probes
    from xai.zoo import check_model_on_data

    start = time.perf_counter()
    explain_plan = ([(n, 8, "predicted", {}) for n in list_explainers(handle=handle)] if explain is None
                    else [(e.method, e.samples, e.target, e.options) for e in explain])
    probe_plan = ([(n, None, {}) for n in list_probes(handle=handle, default_only=True)] if probe is None
                  else [(p.name, p.sensitive, p.options) for p in probe])
    for method, *_ in explain_plan:
        EXPLAINERS.get(method)  # unknown names fail before any work
    for name, *_ in probe_plan:
        PROBES.get(name)
    missing = [c for c in sensitive if c not in data.groups.columns]
    if missing:
        raise DataError(f"{data.name} has no column {missing[0]!r}; its columns: "
                        f"{', '.join(map(str, data.groups.columns)) or 'none'}")
    check_model_on_data(handle, data)
    notes: list[str] = []
    performance = handle.performance(data)
    explanations = [create_explainer(method, handle, **options).explain(sample_rows(data, samples, seed),
                                                                        target=target, seed=seed)
                    for method, samples, target, options in explain_plan]
    if not explanations and explain is None:
        notes.append("no registered explainer applies to this model")
    fairness = []
    for name, columns, options in probe_plan:
        columns = columns if columns is not None else sensitive
        if not columns and PROBES.get(name).capabilities.needs_sensitive:
            notes.append(f"probe {name} skipped: no sensitive column named (sensitive=[...])")
            continue
        result = create_probe(name, handle, **options).probe(data, sensitive=list(columns), seed=seed)
        notes.extend(f"{name}: {note}" for note in result.notes)
        fairness.append(result)
    return AuditResult(
        slug=safe_slug(title),
        title=title,
        spec_path="python",
        model=ModelSummary(name=handle.name, source=handle.source, sha256=handle.sha256, task=handle.task,
                           modality=handle.modality, params=sum(p.numel() for p in handle.module.parameters()),
                           card=handle.card),
        data=DataSummary(data.name, data.split, len(data), data.sha256, tuple(sensitive)),
        performance=performance,
        results=(*explanations, *fairness),
        provenance=Provenance(model_sha256=handle.sha256, data_sha256=data.sha256, seed=seed,
                              wall_seconds=round(time.perf_counter() - start, 3), device=str(handle.device)),
        notes=tuple(notes),
    )


def check(spec: str | Path | AuditSpec | Sequence[str | Path], *, baselines: str | Path = "reports/baselines",
          update_baseline: bool = False, zoo_dir: str | Path | None = None,
          trust_pickle: bool = False) -> list[CheckedAudit]:
    """Run audit specs (files, folders of ``*.toml``, or an :class:`AuditSpec`) and judge their gates.

    The same as ``xai check``: each :class:`~xai.audit.CheckedAudit` says ``passed`` and
    which gates ``failed``; regression gates compare with ``<baselines>/<slug>.json``.
    """
    from xai.audit import AuditSpec, check_spec, collect_spec_paths, load_spec, safe_slug, spec_slugs

    if isinstance(spec, AuditSpec):
        plan = [(safe_slug(spec.title), spec, "python")]
    else:
        raw = [spec] if isinstance(spec, str | Path) else list(spec)
        paths = collect_spec_paths([str(p) for p in raw])
        plan = [(slug, load_spec(p), str(p)) for slug, p in zip(spec_slugs(paths), paths, strict=True)]
    return [check_spec(s, slug=slug, spec_path=source, baselines_dir=baselines, update_baseline=update_baseline,
                       zoo_dir=zoo_dir, trust_pickle=trust_pickle) for slug, s, source in plan]


def list_methods(kind: str | None = None, model: ModelHandle | str | None = None) -> list[dict[str, Any]]:
    """Every method (of ``kind``) with capabilities and options; with ``model``, whether each applies and why not.

    The same rows as ``xai methods --json``.
    """
    from xai.methods import list_methods as describe

    # what applies depends on the architecture, not the weights: nothing is trained for a listing
    return describe(kind, _handle(model, None, train_missing=False) if model is not None else None)
