"""The one protocol every analysis implements: a :class:`Method` that returns a :class:`Result`.

An attribution method, a bias probe, a sanity check, a dream, an inversion, cross-attention
maps, a projection, token relevance and the embedding tests are all the same kind of
object to the runner, the CLI, ``xai methods``, the report and the tests:

- ``name`` and ``kind`` (which registry, which spec section);
- :class:`Capabilities`: the tasks and modalities it applies to and what it needs of a
  model (a layer, attention modules, a tokenizer, a sampler, gradients); ``why_not``
  is derived from them, never written by hand;
- ``Options``: one pydantic model that validates TOML, ``--option KEY=VALUE`` and Python
  keyword arguments alike (:meth:`Method.parse_options`);
- ``run(handle, data, options, seed) -> Result``.

This module imports neither torch nor captum: listing, describing and validating methods
is cheap; only ``run`` needs the heavy libraries.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, get_args, runtime_checkable

from pydantic import BaseModel, ConfigDict, ValidationError

from xai._typing import Modality, Task
from xai.errors import DataError, NotApplicableError

if TYPE_CHECKING:
    from xai._provenance import Provenance
    from xai.datasets import Dataset
    from xai.zoo.handle import ModelHandle

__all__ = [
    "ALL_MODALITIES",
    "ALL_TASKS",
    "Capabilities",
    "Kind",
    "Method",
    "NoOptions",
    "Options",
    "Result",
    "options_error",
]

#: The registries, one per kind; each kind is also the name of its spec section.
Kind = Literal["explain", "probe", "sanity", "dream", "invert", "daam", "project", "tokens", "drift", "recurrent",
               "heads", "bias", "agents", "seq2seq", "llm", "training"]

ALL_TASKS: frozenset[str] = frozenset(get_args(Task))
ALL_MODALITIES: frozenset[str] = frozenset(get_args(Modality))


@dataclass(frozen=True)
class Capabilities:
    """What a method applies to and what it needs of a model.

    Examples
    --------
    >>> caps = Capabilities(tasks=frozenset({"classification"}), needs_layer=True)
    >>> caps.applies(task="regression", modality="image", has_layers=True)
    'it applies to classification models, not regression'
    >>> caps.applies(task="classification", modality="image", has_layers=True) is None
    True
    """

    tasks: frozenset[str] = ALL_TASKS
    modalities: frozenset[str] = ALL_MODALITIES
    needs_layer: bool = False
    needs_attention: bool = False
    needs_tokenizer: bool = False
    needs_sampler: bool = False
    needs_gradients: bool = True
    needs_sensitive: bool = False

    def applies(self, *, task: str, modality: str, name: str = "the model", has_layers: bool = True,
                has_attention: bool = True, has_tokenizer: bool = True, has_sampler: bool = True,
                has_gradients: bool = True) -> str | None:
        """Why a model with these properties is out of reach (``None`` when it is not)."""
        if task not in self.tasks:
            return f"it applies to {', '.join(sorted(self.tasks))} models, not {task}"
        if modality not in self.modalities:
            return f"it takes {', '.join(sorted(self.modalities))} inputs, not {modality}"
        needs = (
            (self.needs_layer and not has_layers, f"a layer to read; {name} names none"),
            (self.needs_attention and not has_attention, f"attention modules; {name} has none"),
            (self.needs_tokenizer and not has_tokenizer, f"a tokenizer; {name} carries none"),
            (self.needs_sampler and not has_sampler, f"a sampler (a generative model); {name} is not one"),
            (self.needs_gradients and not has_gradients, f"gradients; {name} gives none (e.g. an ONNX model)"),
        )
        for missing, reason in needs:
            if missing:
                return f"it needs {reason}"
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready flags (sorted sets), for ``xai methods --json``."""
        return {"tasks": sorted(self.tasks), "modalities": sorted(self.modalities),
                **{k: v for k, v in self.__dict__.items() if k.startswith("needs_")}}


class Options(BaseModel):
    """Base of every method's options: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoOptions(Options):
    """A method that takes no option."""


#: :class:`Options` under a name that the ``Method.Options`` class attribute does not shadow.
_OptionsModel = Options


def options_error(method: str, exc: ValidationError, options_model: type[BaseModel]) -> DataError:
    """One line naming the method, the option and what it accepts.

    Examples
    --------
    >>> class Steps(Options):
    ...     steps: int = 32
    >>> try:
    ...     Steps.model_validate({"steps": "many"})
    ... except ValidationError as exc:
    ...     print(options_error("integrated-gradients", exc, Steps))  # doctest: +ELLIPSIS
    integrated-gradients: option steps: Input should be a valid integer, ... (got 'many')
    """
    first = exc.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(options)"
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        accepted = ", ".join(options_model.model_fields) or "no option"
        return DataError(f"{method}: unknown option {key!r}; it takes {accepted}")
    got = first.get("input")
    shown = "" if isinstance(got, Mapping) else f" (got {got!r})"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return DataError(f"{method}: option {key}: {message}{shown}{more}")


@runtime_checkable
class Result(Protocol):
    """What every method returns: JSON, the flat gate namespace, and where it came from."""

    @property
    def provenance(self) -> Provenance:
        """Where the result came from (read-only: results are frozen dataclasses)."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the machine-readable truth of the report)."""
        ...

    def metrics(self) -> dict[str, float]:
        """Named scalars that gates and baselines address, relative to the method's section."""
        ...


class Method(ABC):
    """One analysis: a name, a kind, capabilities, typed options and ``run``.

    Subclasses set the class attributes and implement :meth:`run`. A method object
    holds no model: the same registered class runs on any handle it applies to.
    """

    name: ClassVar[str] = ""
    kind: ClassVar[Kind]
    capabilities: ClassVar[Capabilities] = Capabilities()
    Options: ClassVar[type[Options]] = NoOptions
    #: The paper the method comes from (shown by ``xai methods`` and in the report).
    paper: ClassVar[str] = ""
    #: Whether an audit that names no method of this kind runs this one.
    default: ClassVar[bool] = False
    #: One line for ``xai methods`` (the class docstring's first line when empty).
    summary: ClassVar[str] = ""
    #: The class ``run`` returns, as ``"module:Class"`` (torch-free; it names the audit section and
    #: renderer that take it, see :data:`xai._results.RESULT_SECTIONS`).
    result_type: ClassVar[str] = ""

    @classmethod
    def why_not(cls, handle: ModelHandle) -> str | None:
        """Why this method cannot run on ``handle`` (``None`` when it can), from its capabilities."""
        return cls.capabilities.applies(
            task=handle.task, modality=handle.modality, name=handle.name, has_layers=bool(handle.layers),
            has_attention=bool(handle.attention), has_tokenizer=handle.preprocess is not None,
            has_sampler=callable(getattr(handle.module, "sample", None)),
            has_gradients=getattr(handle, "differentiable", True),
        )

    @classmethod
    def check_applies(cls, handle: ModelHandle) -> None:
        """Raise :class:`NotApplicableError` with the reason when the method does not apply."""
        reason = cls.why_not(handle)
        if reason:
            raise NotApplicableError(f"{cls.name} does not apply to {handle.name}: {reason}")

    @classmethod
    def parse_options(cls, raw: Mapping[str, Any] | BaseModel | None = None, **kwargs: Any) -> _OptionsModel:
        """Validate options from a spec table, ``--option`` pairs or keyword arguments.

        Raises
        ------
        DataError
            Naming the method, the option and what it accepts.
        """
        if isinstance(raw, cls.Options) and not kwargs:
            return raw
        values = {**(raw.model_dump() if isinstance(raw, BaseModel) else dict(raw or {})), **kwargs}
        try:
            return cls.Options.model_validate(values)
        except ValidationError as exc:
            raise options_error(cls.name, exc, cls.Options) from None

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """Name, kind, capabilities and options (with types and defaults) as JSON."""
        doc = (cls.__doc__ or "").strip().splitlines()
        return {
            "name": cls.name,
            "kind": cls.kind,
            "summary": cls.summary or (doc[0] if doc else ""),
            "paper": cls.paper,
            "default": cls.default,
            "capabilities": cls.capabilities.to_dict(),
            "options": cls._option_schemas(),
        }

    @classmethod
    def _option_schemas(cls) -> dict[str, Any]:
        """The options' JSON schemas; a ``default_factory`` (``{}``, ``[]``) shows its value too."""
        properties: dict[str, Any] = cls.Options.model_json_schema().get("properties", {})
        for name, field in cls.Options.model_fields.items():
            if field.default_factory is not None and name in properties and "default" not in properties[name]:
                properties[name]["default"] = field.get_default(call_default_factory=True)
        return properties

    @classmethod
    @abstractmethod
    def run(cls, handle: ModelHandle, data: Dataset | None, options: Any, seed: int = 0) -> Result:
        """Run the method on ``handle`` (and ``data`` where it reads data) with validated ``options``."""

