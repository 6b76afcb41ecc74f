"""Checks on model archives before torch reads them: zip integrity and what a ``.pt2`` may hold.

A model file is untrusted input. ``torch.export.load`` runs code from a ``.pt2`` in
several places (torch 2.14):

- weights and tensor constants marked ``use_pickle`` in the payload configs are read with
  ``torch.load(weights_only=False)``; ``opaque_obj_*`` constants with ``pickle.loads``;
  ``custom_obj_*`` constants with the TorchScript unpickler;
- the sample inputs and the legacy ``data/weights/<model>.pt`` / ``data/constants/<model>.pt``
  files fall back to ``weights_only=False`` when the safe load fails;
- symbolic shape expressions (``expr_str``) go through ``sympy.sympify``, which evals them;
- ``guards_code`` strings are compiled with ``exec`` when ``.module()`` is called;
- an AOTInductor payload is a shared library that is loaded;
- archives older than the PT2 format take another reader with the same fallbacks.

:func:`check_pt2` refuses each of these unless the user trusts the file (guards and shape
expressions pass when they are plain size comparisons and arithmetic, checked on their
syntax tree; graph nodes may only call ATen, ``operator`` and ``math`` functions); the checks read
the archive only (nothing is unpickled or evaluated). :func:`read_verified_zip` checks every
entry's CRC so a corrupted archive is refused instead of loading changed weights.
"""

from __future__ import annotations

import ast
import io
import json
import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

from xai.errors import ModelLoadError

TRUST_HINT = "pass --trust-pickle if you trust its source"

# Folders of a PT2 archive whose payloads are native code or read by other runtimes.
_NATIVE_DIRS = ("data/aotinductor/", "data/executorch/", "data/mtia", "xl_model_weights/")
# Names a symbolic shape expression may call (sympy and torch.utils._sympy.functions).
_SYMPY_CALLS = frozenset({
    "Symbol", "Integer", "Rational", "Float", "Add", "Mul", "Pow", "Equality", "Unequality", "StrictLessThan",
    "LessThan", "StrictGreaterThan", "GreaterThan", "BooleanTrue", "BooleanFalse", "Infinity", "NegativeInfinity",
    "IntInfinity", "NegativeIntInfinity", "NaN", "Half", "One", "Zero", "NegativeOne",
    "Max", "Min", "Abs", "Eq", "Ne", "Lt", "Le", "Gt", "Ge",
    "And", "Or", "Not", "Piecewise", "floor", "ceiling", "sqrt", "FloorDiv", "ModularIndexing", "Where",
    "PythonMod", "Mod", "CleanDiv", "CeilToInt", "FloorToInt", "CeilDiv", "LShift", "RShift", "PowByNatural",
    "FloatPow", "FloatTrueDiv", "IntTrueDiv", "IsNonOverlappingAndDenseIndicator", "TruncToFloat",
    "TruncToInt", "RoundToInt", "RoundDecimal", "ToFloat", "Identity",
})
_SYMPY_NAMES = frozenset({"oo", "zoo", "nan", "true", "false", "S"}) | _SYMPY_CALLS
_SYMBOL = re.compile(r"[a-z]{1,8}\d+")  # s0, u3, s77: the names torch gives shape symbols
_SAFE_TEXT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9.eE+-]{1,40}")  # names, and numbers as Float('1.5')
_GUARD_METHODS = frozenset({"size", "stride", "storage_offset", "dim", "numel"})
_GUARD_MATH = frozenset({"inf", "nan", "isnan", "isinf", "floor", "ceil", "trunc", "sqrt"})
_EXPR_NODES = (ast.Expression, ast.Call, ast.Name, ast.Constant, ast.BinOp, ast.UnaryOp, ast.Compare,
               ast.BoolOp, ast.keyword, ast.Load, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)
# Graph node targets torch.export writes (ATen and higher-order ops, operator.*, math.*).
_TARGET_PREFIXES = ("torch.ops.", "_operator.", "math.")


def read_verified_zip(path: Path) -> tuple[bytes, zipfile.ZipFile | None]:
    """The file's bytes and, for a zip archive, the open archive after every CRC checked.

    Reading the bytes once and loading from them means the file that was checked is the
    one that is loaded.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read ({exc.strerror or exc})") from None
    buffer = io.BytesIO(raw)
    if not zipfile.is_zipfile(buffer):
        return raw, None
    try:
        archive = zipfile.ZipFile(buffer)
        bad = archive.testzip()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError,
            NotImplementedError) as exc:
        raise ModelLoadError(f"{path}: corrupt zip archive ({exc})") from None
    if bad is not None:
        raise ModelLoadError(f"{path}: corrupt zip archive (entry {bad!r} fails its CRC check)")
    return raw, archive


def _relative(name: str) -> str:
    """An entry's path below the archive's root folder (``lenet/data/...`` -> ``data/...``)."""
    return name.split("/", 1)[1] if "/" in name else name


def check_pt2(path: Path, archive: zipfile.ZipFile) -> None:
    """Refuse a ``.pt2`` archive that would run code when torch loads it (see the module doc)."""
    entries = {_relative(n): n for n in archive.namelist()}

    def refuse(why: str) -> ModelLoadError:
        return ModelLoadError(f"{path}: {why}; loading it could run arbitrary code; {TRUST_HINT}")

    if "archive_version" not in entries:
        raise refuse("not in the PT2 archive format (an older torch.export file, read with pickle fallbacks)")
    native = sorted(r for r in entries if r.startswith(_NATIVE_DIRS))
    if native:
        raise refuse(f"holds a compiled payload ({native[0]})")
    for rel, name in sorted(entries.items()):
        if rel.startswith("data/") and rel.endswith("_config.json"):
            _check_payload_config(rel, archive.read(name), refuse)
        elif rel.startswith("data/constants/") and _relative_file(rel).startswith(("custom_obj_", "opaque_obj_")):
            raise refuse(f"holds a pickled object constant ({rel})")
        elif rel.endswith(".pt") and rel.startswith(("data/sample_inputs/", "data/weights/", "data/constants/")):
            _check_tensor_pickle(rel, archive.read(name), refuse)
        elif rel.startswith("models/") and rel.endswith(".json"):
            _check_program(rel, archive.read(name), refuse)


def _relative_file(rel: str) -> str:
    return rel.rsplit("/", 1)[-1]


def _check_payload_config(rel: str, raw: bytes, refuse: Any) -> None:
    try:
        config = json.loads(raw).get("config", {})
    except (ValueError, AttributeError):
        raise refuse(f"{rel} is not a payload config") from None
    if not isinstance(config, dict):
        raise refuse(f"{rel} is not a payload config")
    for fqn, meta in config.items():
        if not isinstance(meta, dict) or meta.get("use_pickle", False) is not False:
            raise refuse(f"{rel} stores {str(fqn)[:60]!r} as a pickle (use_pickle)")


def _check_tensor_pickle(rel: str, raw: bytes, refuse: Any) -> None:
    """Sample inputs and legacy payloads: torch falls back to a full unpickle if the safe load fails."""
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError, AttributeError,
            KeyError, IndexError, zipfile.BadZipFile) as exc:
        raise refuse(f"{rel} is a pickle beyond plain tensors ({str(exc).splitlines()[0][:120] if str(exc) else exc})"
                     ) from None


def _check_program(rel: str, raw: bytes, refuse: Any) -> None:
    try:
        program = json.loads(raw)
    except ValueError:
        raise refuse(f"{rel} is not JSON") from None
    if not isinstance(program, dict):
        raise refuse(f"{rel} is not an exported program")
    guards = program.get("guards_code") or []
    if not isinstance(guards, list):
        raise refuse(f"{rel} holds guard code that is not a list of checks")
    for guard in guards:
        if not _safe_guard(guard):
            raise refuse(f"{rel} holds guard code that is not a plain shape check ({str(guard)[:60]!r}; "
                         "torch compiles it with exec)")
    for kind, value in _walk(program):
        if kind == "expr" and not _safe_expression(value):
            raise refuse(f"{rel} holds a shape expression that is not plain arithmetic ({str(value)[:60]!r})")
        if kind == "target" and not (isinstance(value, str) and value.startswith(_TARGET_PREFIXES)):
            raise refuse(f"{rel} calls {str(value)[:60]!r}, not an ATen or operator function")


def _walk(node: Any) -> Any:
    """``("expr", expr_str)`` and ``("target", node target)`` pairs anywhere in a program."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key == "expr_str":
                    yield "expr", value
                elif key == "nodes" and isinstance(value, list):
                    for graph_node in value:
                        if isinstance(graph_node, dict) and "target" in graph_node:
                            yield "target", graph_node["target"]
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)


def _safe_expression(text: Any) -> bool:
    """Whether ``text`` is arithmetic over shape symbols and sympy functions (what sympify may eval)."""
    if not isinstance(text, str) or len(text) > 10_000:
        return False
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError):
        return False
    for node in ast.walk(tree):
        if not isinstance(node, _EXPR_NODES):
            return False
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in _SYMPY_CALLS):
            return False
        if isinstance(node, ast.Name) and not (node.id in _SYMPY_NAMES or _SYMBOL.fullmatch(node.id)):
            return False
        if isinstance(node, ast.keyword) and (node.arg is None or not _SAFE_TEXT.fullmatch(node.arg)):
            return False
        if isinstance(node, ast.Constant) and not (
                isinstance(node.value, bool | int | float)
                or (isinstance(node.value, str) and _SAFE_TEXT.fullmatch(node.value))):
            return False
    return True


def _safe_guard(text: Any) -> bool:
    """Whether a guard is a comparison over input sizes (``L['x'].size()[0] == 2``), which torch ``exec``s.

    Torch pastes the text into generated source, so besides the node allowlist a guard must
    not carry what could end the surrounding call (comments, newlines, backslashes, quotes
    other than around a plain name).
    """
    if not isinstance(text, str) or len(text) > 10_000 or any(c in text for c in "#\n\r\\\";"):
        return False
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError):
        return False
    allowed = (ast.Expression, ast.Compare, ast.BoolOp, ast.UnaryOp, ast.BinOp, ast.Constant, ast.Subscript,
               ast.Name, ast.Attribute, ast.Call, ast.Load, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)
    for node in ast.walk(tree):
        if not isinstance(node, allowed):
            return False
        if isinstance(node, ast.Name) and node.id not in ("L", "math"):
            return False
        if isinstance(node, ast.Attribute) and not (
                (isinstance(node.value, ast.Name) and node.value.id == "math" and node.attr in _GUARD_MATH)
                or (node.attr in _GUARD_METHODS and not isinstance(node.value, ast.Name))):
            return False
        if isinstance(node, ast.Call) and (node.keywords or not isinstance(node.func, ast.Attribute)):
            return False
        if isinstance(node, ast.Constant) and not (
                isinstance(node.value, bool | int | float)
                or (isinstance(node.value, str) and _SAFE_TEXT.fullmatch(node.value))):
            return False
    return True
