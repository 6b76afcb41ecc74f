"""Audit specs: TOML files validated with pydantic.

Example (``audits/lenet.toml``)::

    title = "LeNet-5 on digits"
    [model]
    name = "lenet"
    [data]
    sensitive = ["ink"]
    [[explain]]
    method = "integrated-gradients"
    samples = 8
    options = { steps = 32 }
    [[probe]]
    name = "group-metrics"
    [[gate]]                      # absolute threshold
    metric = "equalized_odds_difference"
    op = "<="
    value = 0.10
    [[gate]]                      # no regression against reports/baselines/lenet.json
    metric = "accuracy"
    op = ">="
    regression = true
    tolerance = 0.01

Leaving out ``explain`` (or ``probe``) runs every registered method that applies to
the model; an empty list runs none. Gate metrics are names of the audit's flat metric
namespace (:mod:`xai.audit.metrics`): a dotted key or a short name.
"""

from __future__ import annotations

import os
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from xai._method import Kind
from xai._typing import SEED_MAX
from xai.errors import SpecError, XaiError

if TYPE_CHECKING:
    from xai._method import Method, Options
    from xai.datasets._user import DataSource
    from xai.zoo.handle import ModelHandle


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(_Strict):
    """Which model: a zoo name or folder, a TorchScript file, or a factory plus weights.

    There is no ``trust_pickle`` key: a spec (say, one in a pull request) must never grant
    itself the right to run code from a model file. Trust comes only from the command
    line's ``--trust-pickle`` or ``trust_pickle=True`` in Python.
    """

    name: str = Field(min_length=1)
    weights: str | None = None
    #: Class names of a timm / torchvision / Hugging Face / ONNX model (default: the data's or ``class i``).
    classes: list[str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_trust_in_specs(cls, data: Any) -> Any:
        if isinstance(data, dict) and "trust_pickle" in data:
            raise ValueError("`trust_pickle` is not allowed in a spec (a spec cannot grant trust); "
                             "pass --trust-pickle on the command line if you trust the model file")
        return data


class DataSpec(_Strict):
    """Which data: a bundled dataset (default: the model's own) or your own files, and the groups.

    ``name`` picks a bundled dataset (and its ``split``); ``path`` your own: an image folder
    (one sub-folder per class), a manifest, feature table or text table (``.csv``/``.parquet``),
    see :mod:`xai.datasets._user` for the keys. Relative paths resolve against the spec's folder.
    """

    name: str | None = None
    split: Literal["train", "test", "all"] = "test"
    samples: int | None = Field(default=None, gt=0)
    sensitive: list[str] = Field(default_factory=list)
    path: str | None = Field(default=None, min_length=1)
    label: str | None = Field(default=None, min_length=1)
    features: list[str] | None = None
    text: str | None = Field(default=None, min_length=1)
    image: str | None = Field(default=None, min_length=1)
    id: str | None = Field(default=None, min_length=1)
    side: str | None = Field(default=None, min_length=1)
    preprocess: str | None = Field(default=None, pattern=r"^[\w.]+:\w+$")
    classes: list[str] | None = Field(default=None, min_length=2)
    size: int | tuple[int, int] | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    channels: Literal[1, 3] | None = None
    strict: bool = False
    allow_outside_paths: bool = False
    #: Stream your own data in batches (``local``: in this process; ``ray``: Ray Data workers): every row is
    #: counted for the group metrics, explanations and other probes run on ``per_group`` rows of each group.
    #: Unset: the rows are loaded (``samples`` of them) as before. ``xai audit --engine`` overrides it.
    engine: Literal["local", "ray"] | None = None
    #: Rows of each sensitive group (their intersection) kept for explanations in a streamed audit (default 32).
    per_group: int | None = Field(default=None, ge=1, le=100_000)

    @model_validator(mode="after")
    def _name_or_path(self) -> DataSpec:
        if self.name is not None and self.path is not None:
            raise ValueError("give `name` (a bundled dataset) or `path` (your own data), not both")
        own = [k for k in _OWN_DATA_KEYS if getattr(self, k) not in (None, False)]
        if self.path is None and own:
            raise ValueError(f"`{own[0]}` applies to your own data: set `path`")
        if self.path is not None and "split" in self.model_fields_set:
            raise ValueError("`split` applies to bundled datasets (`name`); your own data is used whole "
                             "(`samples` draws a subset)")
        if self.engine is not None and self.samples is not None:
            raise ValueError("a streamed audit (`engine`) counts every row: `samples` does not apply "
                             "(`per_group` sets the rows explained per group)")
        if self.per_group is not None and self.engine is None:
            raise ValueError("`per_group` applies to a streamed audit: set `engine` (local or ray)")
        if isinstance(self.size, int) and self.size <= 0 or isinstance(self.size, tuple) and min(self.size) <= 0:
            raise ValueError("`size` must be positive: one number or [height, width]")
        return self

    def source(self) -> DataSource:
        """The section as a :class:`~xai.datasets._user.DataSource` (``path`` must be set)."""
        from xai.datasets._user import DataSource

        assert self.path is not None
        size = (self.size, self.size) if isinstance(self.size, int) else self.size
        return DataSource(
            path=Path(self.path), label=self.label, sensitive=tuple(self.sensitive),
            features=tuple(self.features) if self.features is not None else None, text=self.text,
            image=self.image, id=self.id, side=Path(self.side) if self.side else None,
            preprocess=self.preprocess, classes=tuple(self.classes) if self.classes else None, size=size,
            mean=tuple(self.mean) if self.mean else None, std=tuple(self.std) if self.std else None,
            channels=self.channels, strict=self.strict, allow_outside_paths=self.allow_outside_paths)


_OWN_DATA_KEYS = ("label", "features", "text", "image", "id", "side", "preprocess", "classes", "size", "mean",
                  "std", "channels", "strict", "allow_outside_paths", "engine", "per_group")


class PredictionsSpec(_Strict):
    """Any system's predictions in a CSV/parquet file, gated like a model audit (no model runs).

    ``y_pred`` (a column of predictions) or ``score`` with ``threshold`` (predicted positive
    when ``score >= threshold``); ``task`` binary (0/1 labels or ``pos_label``), multiclass
    or regression. The audit is the group-metrics probe's, with bootstrap intervals.
    """

    path: str = Field(min_length=1)
    y_true: str = Field(min_length=1)
    y_pred: str | None = Field(default=None, min_length=1)
    score: str | None = Field(default=None, min_length=1)
    threshold: float | None = Field(default=None, allow_inf_nan=False)
    pos_label: str | None = None
    task: Literal["binary", "multiclass", "regression"] = "binary"
    sensitive: list[str] = Field(min_length=1)
    n_boot: int = Field(default=1000, ge=0, le=100_000)
    confidence: float = Field(default=0.95, gt=0, lt=1)
    min_group_size: int = Field(default=30, ge=1)

    @model_validator(mode="after")
    def _pred_or_score(self) -> PredictionsSpec:
        if (self.y_pred is None) == (self.score is None):
            raise ValueError("give exactly one of `y_pred` or `score` (with `threshold`)")
        if self.threshold is not None and self.score is None:
            raise ValueError("`threshold` applies to `score`")
        return self


class ExplainSpec(_Strict):
    """One attribution method and how many samples it explains.

    The method's name and ``options`` are checked by its ``Options`` model when the spec
    loads, so a typo fails before any model runs (model-dependent checks come at run time).
    """

    method: str = Field(min_length=1)
    samples: int = Field(default=8, gt=0)
    target: Literal["predicted", "label"] | int = "predicted"
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _method_and_options(self) -> ExplainSpec:
        from xai.explain._index import EXPLAINERS

        _check_options(lambda: EXPLAINERS.get(self.method).parse_options({**self.options, "target": self.target}))
        return self


class ProbeSpec(_Strict):
    """One bias probe; ``sensitive`` defaults to the data's sensitive columns (options checked at load)."""

    name: str = Field(min_length=1)
    sensitive: list[str] | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _probe_and_options(self) -> ProbeSpec:
        from xai.fairness._index import PROBES

        _check_options(lambda: PROBES.get(self.name).parse_options(self.options))
        return self


def _check_options(parse: Any) -> None:
    """Run a method's option parsing; its one-line error becomes this entry's validation error."""
    try:
        parse()
    except XaiError as exc:
        raise ValueError(str(exc)) from None


GateOp = Literal["<=", "<", ">=", ">"]


class MethodSection(BaseModel):
    """A spec section whose keys are one method's options, validated by that method's ``Options``.

    The section keeps its readable keys (``[[dream]]``, ``[[invert]]``, ``[[sanity]]``); the
    method's ``Options`` model is the one source of their types and defaults, so the spec and
    the Python function cannot drift. The method's module is imported when a spec with the
    section is validated, not when this module is.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    #: The registry (kind) and the method in it that this section runs.
    KIND: ClassVar[Kind]
    METHOD: ClassVar[str]
    #: Whether the method reads the audit's rows (else ``None``: its own default data).
    READS_AUDIT_DATA: ClassVar[bool] = True

    @classmethod
    def method_class(cls) -> type[Method]:
        """The registered method this section runs."""
        from xai.explain._index import method_registry

        return method_registry(cls.KIND).get(cls.METHOD)

    @model_validator(mode="before")
    @classmethod
    def _validate_by_options(cls, data: Any) -> Any:
        # errors keep their key (pydantic nests the Options' locations under this section's)
        return cls.method_class().Options.model_validate(data).model_dump()

    @property
    def options(self) -> Options:
        """The validated options (what ``Method.run`` takes)."""
        return self.method_class().parse_options(self.model_extra or {})

    def why_not(self, handle: ModelHandle) -> str | None:
        """Why this entry's method cannot run on ``handle`` (the method's ``why_not``)."""
        return self.method_class().why_not(handle)

    def step(self) -> str:
        """The progress line of this entry."""
        return self.KIND


class SanitySpec(MethodSection):
    """One check on an explainer's trustworthiness (deletion/insertion, MPRT, infidelity)."""

    KIND: ClassVar[Kind] = "sanity"
    METHOD: ClassVar[str] = "sanity-checks"

    def step(self) -> str:
        """``sanity <explainer>``."""
        return f"sanity {self.options.method}"  # type: ignore[attr-defined]


class DreamSpec(MethodSection):
    """One activation-maximisation panel: the input that most excites a unit (``xai dream``)."""

    KIND: ClassVar[Kind] = "dream"
    METHOD: ClassVar[str] = "activation-maximisation"
    #: The top-k examples come from the model's own test split, whatever rows the audit samples.
    READS_AUDIT_DATA: ClassVar[bool] = False

    def why_not(self, handle: ModelHandle) -> str | None:
        """The method's ``why_not`` for this panel's objective (a class objective needs class names)."""
        return self.method_class().why_not(handle, self.options.objective)  # type: ignore[attr-defined,call-arg]

    def step(self) -> str:
        """``dream <layer> <objective> <channel>``."""
        o: Any = self.options
        return f"dream {o.layer or 'class'} {o.objective} {o.channel}"


class InvertSpec(MethodSection):
    """One feature-inversion panel: a test image reconstructed from one layer (``xai invert``)."""

    KIND: ClassVar[Kind] = "invert"
    METHOD: ClassVar[str] = "feature-inversion"

    def step(self) -> str:
        """``invert <layer> (sample <n>)``."""
        o: Any = self.options
        return f"invert {o.layer} (sample {o.sample})"


class ProjectSpec(MethodSection):
    """One representation map: PCA or t-SNE of a layer's activations, coloured by class and groups (``xai project``)."""

    KIND: ClassVar[Kind] = "project"
    METHOD: ClassVar[str] = "projection"

    def step(self) -> str:
        """``project <layer> (<method>)``."""
        o: Any = self.options
        return f"project {o.layer or 'last layer'} ({o.method})"


class TokensSpec(MethodSection):
    """Per-token relevance of a text model's sentences by attention rollout (``xai rollout`` on text)."""

    KIND: ClassVar[Kind] = "tokens"
    METHOD: ClassVar[str] = "token-relevance"


class DaamSpec(MethodSection):
    """Cross-attention heat maps of a text-to-image model's prompt tokens (``xai daam``)."""

    KIND: ClassVar[Kind] = "daam"
    METHOD: ClassVar[str] = "daam"
    #: The images are generated from the prompt: the audit's rows are not read.
    READS_AUDIT_DATA: ClassVar[bool] = False


class DriftSpec(MethodSection):
    """Explanation drift against a baseline model or stored attributions (``drift.<explainer>.*`` metrics)."""

    KIND: ClassVar[Kind] = "drift"
    METHOD: ClassVar[str] = "explanation-drift"

    def step(self) -> str:
        """``drift <explainer> vs <baseline>``."""
        o: Any = self.options
        return f"drift {o.method} vs {o.baseline_model or o.baseline_attributions}"


class RecurrentSpec(MethodSection):
    """Gate activations over time and the gradient by distance of a recurrent model (``recurrent-gates``)."""

    KIND: ClassVar[Kind] = "recurrent"
    METHOD: ClassVar[str] = "recurrent-gates"

    def step(self) -> str:
        """``recurrent <layer>``."""
        return f"recurrent {self.options.layer or 'gates'}"  # type: ignore[attr-defined]


class HeadsSpec(MethodSection):
    """Per-layer, per-head attention maps and head importance by masking (``attention-heads``)."""

    KIND: ClassVar[Kind] = "heads"
    METHOD: ClassVar[str] = "attention-heads"

    def step(self) -> str:
        """``heads`` (``heads (maps)`` without the masking)."""
        return "heads" if self.options.importance else "heads (maps)"  # type: ignore[attr-defined]


class AgentsSpec(MethodSection):
    """What several RL agents attend to on the same states, and how their rankings agree (``agent-compare``)."""

    KIND: ClassVar[Kind] = "agents"
    METHOD: ClassVar[str] = "agent-compare"

    def step(self) -> str:
        """``agents <explainer> vs <agents>``."""
        o: Any = self.options
        return f"agents {o.method} vs {', '.join(o.agents)}"


class Seq2SeqSpec(MethodSection):
    """Cross-attention maps, their rollout and source ablation per generated token (``cross-attention``)."""

    KIND: ClassVar[Kind] = "seq2seq"
    METHOD: ClassVar[str] = "cross-attention"

    def step(self) -> str:
        """``seq2seq cross-attention`` (``+ ablation`` when it ablates)."""
        return "seq2seq cross-attention" + (" + ablation" if self.options.ablation else "")  # type: ignore[attr-defined]


class LLMSpec(MethodSection):
    """Which prompt tokens drive each generated token of a language model (``llm-attribution``)."""

    KIND: ClassVar[Kind] = "llm"
    METHOD: ClassVar[str] = "llm-attribution"

    def step(self) -> str:
        """``llm <methods>``."""
        return "llm " + ", ".join(self.options.methods)  # type: ignore[attr-defined]


class TrainingSpec(MethodSection):
    """Training diagnostics recorded by the zoo recipe: a GAN's gradient norms and D(x) / D(G(z)) (``gan-training``)."""

    KIND: ClassVar[Kind] = "training"
    METHOD: ClassVar[str] = "gan-training"
    #: The history comes from the model card: the audit's rows are not read.
    READS_AUDIT_DATA: ClassVar[bool] = False


#: The spec sections that reach a method through its registry, in the order an audit runs them.
METHOD_SECTIONS: dict[str, type[MethodSection]] = {"sanity": SanitySpec, "dream": DreamSpec, "invert": InvertSpec,
                                                   "project": ProjectSpec, "tokens": TokensSpec, "daam": DaamSpec,
                                                   "drift": DriftSpec,
                                                   "recurrent": RecurrentSpec, "heads": HeadsSpec,
                                                   "agents": AgentsSpec,
                                                   "seq2seq": Seq2SeqSpec, "llm": LLMSpec,
                                                   "training": TrainingSpec}


class GateSpec(_Strict):
    """One gate: ``metric op value``, or (``regression = true``) ``metric op baseline ± slack``.

    For a regression gate the operator says which way is better (``<=``: lower is
    better) and the slack is ``tolerance`` plus the half-width of the metric's bootstrap
    interval when the audit has one, so noise is not a regression.
    """

    metric: str = Field(min_length=1)
    op: GateOp
    value: float | None = Field(default=None, allow_inf_nan=False)  # NaN would fail every gate: exit 1
    regression: bool = False
    tolerance: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    name: str | None = None

    @model_validator(mode="after")
    def _value_or_regression(self) -> GateSpec:
        if self.regression and self.value is not None:
            raise ValueError("a regression gate compares with the baseline: drop `value` "
                             "(use `tolerance` for the allowed slack) or set regression = false")
        if not self.regression and self.value is None:
            raise ValueError("set `value` (the threshold) or `regression = true`")
        if not self.regression and self.tolerance:
            raise ValueError("`tolerance` only applies with regression = true")
        return self

    @property
    def label(self) -> str:
        """The gate's display name (its ``name`` or ``metric op value``)."""
        if self.name:
            return self.name
        if self.regression:
            sign = "+" if self.op in ("<=", "<") else "-"
            return f"{self.metric} {self.op} baseline {sign} {self.tolerance:g} (regression)"
        return f"{self.metric} {self.op} {self.value:g}"


class AuditSpec(_Strict):
    """A whole audit: model, data, explainers, probes and gates; or predictions and gates."""

    title: str = Field(min_length=1)
    model: ModelSpec | None = None
    predictions: PredictionsSpec | None = None
    data: DataSpec = Field(default_factory=DataSpec)
    explain: list[ExplainSpec] | None = None
    probe: list[ProbeSpec] | None = None
    sanity: list[SanitySpec] = Field(default_factory=list)
    dream: list[DreamSpec] = Field(default_factory=list)
    invert: list[InvertSpec] = Field(default_factory=list)
    project: list[ProjectSpec] = Field(default_factory=list)
    tokens: list[TokensSpec] = Field(default_factory=list)
    daam: list[DaamSpec] = Field(default_factory=list)
    drift: list[DriftSpec] = Field(default_factory=list)
    recurrent: list[RecurrentSpec] = Field(default_factory=list)
    heads: list[HeadsSpec] = Field(default_factory=list)
    agents: list[AgentsSpec] = Field(default_factory=list)
    seq2seq: list[Seq2SeqSpec] = Field(default_factory=list)
    llm: list[LLMSpec] = Field(default_factory=list)
    training: list[TrainingSpec] = Field(default_factory=list)
    gate: list[GateSpec] = Field(default_factory=list)
    seed: int = Field(default=0, ge=0, le=SEED_MAX)

    @field_validator("drift", mode="before")
    @classmethod
    def _one_drift_table(cls, value: Any) -> Any:
        # ``[drift]`` (one baseline) and ``[[drift]]`` (several) both read as a list
        return [value] if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _model_or_predictions(self) -> AuditSpec:
        if (self.model is None) == (self.predictions is None):
            both = ", not both" if self.model is not None else ""
            raise ValueError(f"give a [model] to audit, or [predictions] (a file of any system's outputs){both}")
        if self.predictions is not None:
            extra = [k for k in ("data", "explain", "probe", *METHOD_SECTIONS) if k in self.model_fields_set]
            if extra:
                raise ValueError(f"[{extra[0]}] needs a model; a [predictions] audit takes its columns "
                                 "from [predictions] and runs group metrics")
        return self

    def resolve_paths(self, folder: Path) -> AuditSpec:
        """The spec with its relative paths (weights, data, side file, predictions) taken from ``folder``.

        ``folder`` is the spec file's: a spec means the same from any working directory. Model
        weights that exist only relative to the working directory keep working (older specs).
        """

        def fix(raw: str | None) -> str | None:
            return raw if raw is None or Path(raw).is_absolute() else str(folder / raw)

        update: dict[str, Any] = {}
        weights = self.model.weights if self.model is not None else None
        if weights is not None and not Path(weights).is_absolute():
            # a spec's folder first; a file only the working directory has keeps working (older specs)
            if (folder / weights).exists() or not Path(weights).exists():
                update["model"] = self.model.model_copy(update={"weights": str(folder / weights)})  # type: ignore[union-attr]
        if self.data.path is not None:
            update["data"] = self.data.model_copy(update={"path": fix(self.data.path), "side": fix(self.data.side)})
        if self.predictions is not None:
            update["predictions"] = self.predictions.model_copy(update={"path": fix(self.predictions.path)})
        return self.model_copy(update=update) if update else self


def check_spec_files(spec: AuditSpec, source: str) -> None:
    """Refuse, before any audit runs, a spec whose data, side or predictions file does not exist (one line)."""
    named = [("[data] path", spec.data.path), ("[data] side", spec.data.side)]
    if spec.predictions is not None:
        named.append(("[predictions] path", spec.predictions.path))
    for key, raw in named:
        if raw is not None and not Path(raw).exists():
            raise SpecError(f"{source}: {key}: no such file or folder: {raw}")


def parse_spec(text: str, source: str = "<spec>") -> AuditSpec:
    """Validate TOML ``text``; errors name ``source``, the key and what was expected."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{source}: invalid TOML: {exc}") from None
    try:
        return AuditSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        line = _line_of(text, first["loc"])
        at = f" (line {line})" if line else ""
        message = first["msg"].removeprefix("Value error, ")
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise SpecError(f"{source}: {key}: {message}{at}{more}") from None


def _line_of(text: str, loc: tuple[int | str, ...]) -> int | None:
    """Best-effort 1-based line of the key at ``loc`` (its table header when the key is absent)."""
    lines = text.splitlines()
    header = re.compile(r"^\s*\[")
    start, end = 0, len(lines)
    parts = list(loc)
    found: int | None = None
    if len(parts) >= 2 and isinstance(parts[0], str):
        section = re.escape(parts[0])
        if isinstance(parts[1], int):  # [[section]] number parts[1]
            pattern, nth, rest = re.compile(rf"^\s*\[\[\s*{section}\s*\]\]"), parts[1], parts[2:]
        else:
            pattern, nth, rest = re.compile(rf"^\s*\[\s*{section}\s*\]"), 0, parts[1:]
        hits = [i for i, text_line in enumerate(lines) if pattern.match(text_line)]
        if nth >= len(hits):
            return None
        start = found = hits[nth]
        end = next((i for i in range(start + 1, len(lines)) if header.match(lines[i])), len(lines))
        start += 1
    else:
        rest = parts
        end = next((i for i, text_line in enumerate(lines) if header.match(text_line)), len(lines))
    if rest and isinstance(rest[0], str):
        key = re.compile(rf"^\s*{re.escape(rest[0])}\s*=")
        found = next((i for i in range(start, end) if key.match(lines[i])), found)
    return None if found is None else found + 1


def load_spec(path: str | Path) -> AuditSpec:
    """Read and validate a spec file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"audit spec not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read ({exc})") from None
    return parse_spec(text, str(path)).resolve_paths(path.parent)


def collect_spec_paths(paths: list[str]) -> list[Path]:
    """Expand files and folders (their ``*.toml``) into a sorted list of spec files."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            specs = sorted(path.glob("*.toml"))
            if not specs:
                raise SpecError(f"{path}: folder holds no *.toml audit spec")
            found.extend(specs)
        elif path.is_file():
            found.append(path)
        else:
            raise SpecError(f"audit spec not found: {path}")
    return found


_UNSAFE = re.compile(r"[^\w.-]+")
#: Slugs a spec cannot take: ``index`` would overwrite the report's ``index.html``.
RESERVED_SLUGS = frozenset({"index"})


def safe_slug(name: str) -> str:
    """``name`` as a report name that is safe as a file name and a relative link.

    Runs of characters other than letters, digits, ``_``, ``.`` and ``-`` become one
    ``-`` (so ``javascript:x`` cannot turn into a link scheme and ``/`` cannot leave the
    report folder); leading dots and dashes go (no hidden files, no option look-alikes).
    An empty result is ``audit``.
    """
    slug = _UNSAFE.sub("-", name).lstrip(".-")
    return slug or "audit"


def spec_slugs(paths: list[Path]) -> list[str]:
    """One report name (slug) per spec file, unique within the run, in the order given.

    A spec's slug is its file stem (:func:`safe_slug`), which also names its page
    ``<slug>.html``, its JSON ``<slug>.json`` and its baseline ``reports/baselines/<slug>.json``.
    Specs that do not collide keep their stem, so their baselines keep their names.
    Collisions are resolved deterministically, from the specs' absolute paths: in each
    group of equal slugs, the members with the longest prefix so far get one more parent
    folder name prefixed, round after round, until the slugs differ (``a/dup.toml``,
    ``b/dup.toml`` -> ``a-dup``, ``b-dup``). The same file named twice, or specs whose
    folders run out, get ``-2``, ``-3``, ... in order. Slugs are compared ignoring case
    (case-insensitive file systems), and ``index`` counts as taken (the index page).
    ``xai audit``, ``xai check`` and the pytest plugin all name audits with this function.
    """
    absolute = [os.path.abspath(p) for p in paths]
    unique = list(dict.fromkeys(absolute))  # the same file twice is told apart by a number below
    parts = [Path(a).parent.parts[1:] for a in unique]  # folder names from the root down
    stems = [safe_slug(Path(a).stem) for a in unique]
    depth = [0] * len(unique)

    def name(i: int) -> str:
        folders = parts[i][len(parts[i]) - depth[i]:] if depth[i] else ()
        return safe_slug("-".join((*folders, stems[i])))

    names = [name(i) for i in range(len(unique))]
    while True:
        groups: dict[str, list[int]] = {}
        for i, slug in enumerate(names):
            groups.setdefault(slug.casefold(), []).append(i)
        grow = []
        for key, members in groups.items():
            growable = [i for i in members if depth[i] < len(parts[i])]
            if (len(members) > 1 or key in RESERVED_SLUGS) and growable:
                deepest = max(depth[i] for i in growable)
                grow += [i for i in growable if depth[i] == deepest]
        if not grow:
            break
        for i in grow:
            depth[i] += 1
            names[i] = name(i)
    by_path = dict(zip(unique, names, strict=True))
    slugs: list[str] = []
    used = {*RESERVED_SLUGS}
    taken = {n.casefold() for n in names} | used
    for path in absolute:
        slug = by_path[path]
        if slug.casefold() in used:  # named twice, or no folder left to tell two specs apart
            n = 2
            while f"{slug}-{n}".casefold() in taken:
                n += 1
            slug = f"{slug}-{n}"
            taken.add(slug.casefold())
        used.add(slug.casefold())
        slugs.append(slug)
    return slugs


def default_specs() -> list[tuple[str, AuditSpec]]:
    """The bundled default audits ``(slug, spec)``: what ``xai audit`` runs with no argument."""
    folder = resources.files("xai.audit").joinpath("defaults")
    specs = []
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".toml"):
            specs.append((item.name.removesuffix(".toml"),
                          parse_spec(item.read_text(encoding="utf-8"), f"xai/audit/defaults/{item.name}")))
    return specs
