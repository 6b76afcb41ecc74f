"""Every registered method of every kind, described from its class: the data behind ``xai methods``.

``METHOD_REGISTRIES`` maps each kind (a spec section or command) to its lazy registry: the
explainers and the single-method families of :mod:`xai.explain._index`, and the probes.
Listing names is torch-free; :func:`list_methods` imports the method modules (each class's
``Options`` model and capabilities are the description, nothing is written by hand).

Examples
--------
>>> list(METHOD_REGISTRIES)
['explain', 'probe', 'sanity', 'dream', 'invert', 'daam', 'project', 'tokens', 'drift', 'recurrent', 'heads',
 'agents', 'seq2seq', 'llm', 'training']
>>> "saliency" in method_names("explain")
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from xai._registry import Registry
from xai.errors import UnknownNameError
from xai.explain._index import EXPLAINERS, METHODS
from xai.fairness._index import PROBES

if TYPE_CHECKING:
    from xai.zoo.handle import ModelHandle

__all__ = ["METHOD_REGISTRIES", "list_methods", "method_names", "option_rows", "registries"]

#: kind -> the registry of its methods (the kind is also the spec section's name).
METHOD_REGISTRIES: dict[str, Registry[Any]] = {
    "explain": EXPLAINERS,
    "probe": PROBES,
    **{kind: registry for kind, registry in METHODS.items() if kind != "explain"},
}


def registries(kind: str | None = None) -> dict[str, Registry[Any]]:
    """The registries to walk: all of them, or the one of ``kind`` (an unknown kind lists the known)."""
    if kind is None:
        return dict(METHOD_REGISTRIES)
    if kind not in METHOD_REGISTRIES:
        raise UnknownNameError("kind", kind, list(METHOD_REGISTRIES))
    return {kind: METHOD_REGISTRIES[kind]}


def method_names(kind: str | None = None) -> list[str]:
    """Names of the methods of ``kind`` (every kind when ``None``), without importing any method."""
    return [name for registry in registries(kind).values() for name in registry.names()]


def option_rows(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """``name, type, default, allowed, description`` of each option, from an ``Options`` JSON schema.

    Examples
    --------
    >>> option_rows({"steps": {"type": "integer", "default": 32, "minimum": 1},
    ...              "mode": {"enum": ["a", "b"], "default": "a", "type": "string"}})
    ... # doctest: +NORMALIZE_WHITESPACE
    [{'name': 'steps', 'type': 'integer', 'default': 32, 'allowed': '>= 1', 'description': ''},
     {'name': 'mode', 'type': 'string', 'default': 'a', 'allowed': 'a, b', 'description': ''}]
    """
    return [{"name": name, "type": _type_of(prop), "default": prop.get("default"), "allowed": _allowed(prop),
             "description": str(prop.get("description", ""))} for name, prop in schema.items()]


def _type_of(prop: dict[str, Any]) -> str:
    if "type" in prop:
        return str(prop["type"])
    if "enum" in prop:
        return "string"
    variants = prop.get("anyOf") or prop.get("oneOf") or []
    kinds = [_type_of(v) for v in variants if isinstance(v, dict)]
    return " | ".join(dict.fromkeys(k for k in kinds if k)) or "any"


def _allowed(prop: dict[str, Any]) -> str:
    """Allowed values (an enum, a literal, bounds) in words; empty when anything of the type goes."""
    if "enum" in prop:
        return ", ".join(map(str, prop["enum"]))
    if "const" in prop:
        return str(prop["const"])
    bounds = [f"{word} {prop[key]}" for key, word in (("minimum", ">="), ("exclusiveMinimum", ">"),
                                                       ("maximum", "<="), ("exclusiveMaximum", "<"))
              if key in prop]
    if bounds:
        return ", ".join(bounds)
    variants = [_allowed(v) for v in prop.get("anyOf") or prop.get("oneOf") or [] if isinstance(v, dict)]
    return "; ".join(v for v in variants if v)


def list_methods(kind: str | None = None, handle: ModelHandle | None = None) -> list[dict[str, Any]]:
    """Every method (of ``kind``) described: name, kind, summary, paper, default, capabilities, options.

    ``options`` is a list of :func:`option_rows`; ``option_schema`` is the raw JSON schema of
    its ``Options`` model. With ``handle``, each method also says whether it ``applies``
    to that model and, when not, ``why_not`` (one line from its capability flags).
    Imports the method modules (torch among them).
    """
    rows = []
    for registry in registries(kind).values():
        for name in registry.names():
            method = registry.get(name)
            row = method.describe()
            row["option_schema"] = row["options"]
            row["options"] = option_rows(row["options"])
            if handle is not None:
                reason = method.why_not(handle)
                row["applies"] = reason is None
                row["why_not"] = reason
            rows.append(row)
    return rows
