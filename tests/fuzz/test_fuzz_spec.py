"""Family (b): audit spec TOML files fed to ``xai check``.

Each input is a small, cheap, valid spec (german-mlp on 40 rows, no explainers, no
probes, one gate ``accuracy >= 0`` that always holds) with one to three mutations: a key
set to a value of the right or a wrong type (rich markup, escapes, NaN, datetimes,
nested tables ...), a key removed, or an unknown key added, within and outside the
schema. A few inputs are not TOML at all. Besides the contract of
:mod:`tests.fuzz._contract` (exit 0, 1 or 2; JUnit, summary and report whole): when no
mutation touched the gate, exit 1 ("a gate failed") is a lie, so the code must be 0 or 2.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ._contract import assert_contract, fuzz_settings, invoke
from ._strategies import hostile_float, hostile_text, small_int, toml_any, toml_document

EXAMPLES = 50

BASE: dict[str, Any] = {
    "title": "fuzz",
    "seed": 0,
    "explain": [],
    "probe": [],
    "model": {"name": "german-mlp"},
    "data": {"name": "german", "samples": 40, "sensitive": ["sex"]},
    "gate": [{"metric": "accuracy", "op": ">=", "value": 0.0}],
}

#: File stems: the stem becomes the audit's slug, shown on the terminal and in the report.
STEMS = ("spec", "[b]x[", "[red]", "\x1b[31mred", "javascript:alert(1)", "é性", "a b", "-o")

# Model names never contain ':' from the random pool: package.module:factory imports a module.
model_name = st.one_of(st.sampled_from(["german-mlp", "adult-mlp", "lenet", "no-such-model", "", "zoo/german-mlp",
                                        "xai.zoo.cnn:LeNet5", "xai.zoo.cnn:nope", "nope.module:f", "/etc/hostname"]),
                       hostile_text.filter(lambda s: ":" not in s))
explain_entry = st.fixed_dictionaries(
    {"method": st.sampled_from(["saliency", "integrated-gradients", "nope"]) | hostile_text},
    optional={"samples": small_int | toml_any,
              "target": st.sampled_from(["predicted", "label", 0, 1, 99, -1]) | toml_any,
              "options": st.dictionaries(st.sampled_from(["steps", "baseline", "internal_batch_size"]) | hostile_text,
                                         small_int | toml_any, max_size=2)})
probe_entry = st.fixed_dictionaries(
    {"name": st.sampled_from(["group-metrics", "nope"]) | hostile_text},
    optional={"sensitive": st.lists(st.sampled_from(["sex", "age_group", "nope"]) | hostile_text, max_size=2)
              | toml_any,
              "options": st.dictionaries(st.sampled_from(["n_boot", "confidence", "min_group_size"]) | hostile_text,
                                         small_int | hostile_float | toml_any, max_size=2)})
gate_entry = st.fixed_dictionaries(
    {"metric": st.sampled_from(["accuracy", "equalized_odds_difference", "nope"]) | hostile_text,
     "op": st.sampled_from(["<=", "<", ">=", ">", "==", "=<"]) | toml_any},
    optional={"value": hostile_float | toml_any, "regression": st.booleans() | toml_any,
              "tolerance": hostile_float | toml_any, "name": hostile_text | toml_any})

#: Where a mutation lands, and the values it may put there (right types and wrong ones).
PATHS: dict[tuple[Any, ...], st.SearchStrategy[Any]] = {
    ("title",): hostile_text | toml_any,
    ("seed",): st.sampled_from([-1, 2**32, 2**63 - 1, -(2**63), 2**64]) | small_int | toml_any,
    ("model", "name"): model_name | toml_any,
    ("model", "weights"): st.sampled_from(["/etc/hostname", "", "/nonexistent.safetensors"]) | toml_any,
    ("model", "trust_pickle"): st.booleans() | toml_any,
    ("data", "name"): st.sampled_from(["german", "adult", "digits", "nope"]) | hostile_text | toml_any,
    ("data", "split"): st.sampled_from(["train", "test", "all", "validation"]) | toml_any,
    ("data", "samples"): st.sampled_from([1, 2, 10**6, 2**63 - 1]) | small_int | toml_any,
    ("data", "sensitive"): st.lists(st.sampled_from(["sex", "age_group", "nope"]) | hostile_text, max_size=3)
    | toml_any,
    ("explain",): st.lists(explain_entry, max_size=2) | toml_any,
    ("probe",): st.lists(probe_entry, max_size=2) | toml_any,
    ("sanity",): toml_any,
    ("dream",): toml_any,
    ("invert",): toml_any,
    ("gate",): st.lists(gate_entry, max_size=2) | toml_any,
    ("gate", 0, "metric"): gate_entry.map(lambda g: g["metric"]),
    ("gate", 0, "op"): gate_entry.map(lambda g: g["op"]),
    ("gate", 0, "value"): hostile_float | toml_any,
    ("gate", 0, "regression"): st.booleans() | toml_any,
    ("gate", 0, "tolerance"): hostile_float | toml_any,
    ("gate", 0, "name"): hostile_text | toml_any,
}
#: Leaving these out runs every method that applies: an expensive audit, not a malformed one.
NEVER_DELETED = {("explain",), ("probe",)}


@st.composite
def mutated_specs(draw: st.DrawFn) -> tuple[str, bool]:
    """TOML text, and whether a mutation touched the gates."""
    spec = copy.deepcopy(BASE)
    touched_gate = False
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["set", "set", "set", "delete", "unknown"]))
        if kind == "unknown":  # a key the schema does not know, at the top or inside a table
            where = draw(st.sampled_from([(), ("model",), ("data",), ("gate", 0)]))
            path = (*where, draw(hostile_text | st.sampled_from(["trust", "pickle", "extra"])))
            value = draw(toml_any)
        else:
            path = draw(st.sampled_from(sorted(PATHS, key=str)))
            if kind == "delete" and path in NEVER_DELETED:
                kind = "set"
            value = draw(PATHS[path]) if kind == "set" else None
        touched_gate |= path[0] == "gate"
        _apply(spec, path, value, delete=kind == "delete")
    return toml_document(spec), touched_gate


def _apply(spec: dict[str, Any], path: tuple[Any, ...], value: Any, *, delete: bool) -> None:
    """Set (or delete) ``path`` in ``spec``; a path through a value that is no table is skipped."""
    node: Any = spec
    for step in path[:-1]:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(node, dict):
        if delete:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = value
    elif isinstance(node, list) and isinstance(path[-1], int) and path[-1] < len(node):
        if not delete:
            node[path[-1]] = value


@given(data=st.data())
@fuzz_settings(EXAMPLES)
def test_fuzzed_specs_keep_the_contract(data: st.DataObject) -> None:
    if data.draw(st.sampled_from([False] * 9 + [True]), label="not TOML"):
        text = data.draw(st.one_of(st.text(max_size=80), st.binary(max_size=80)), label="raw")
        codes = {2}  # too short to name a title and a model: never a spec
    else:
        text, touched_gate = data.draw(mutated_specs(), label="spec")
        codes = {0, 1, 2} if touched_gate else {0, 2}
    stem = data.draw(st.sampled_from(STEMS), label="stem")
    quiet = data.draw(st.sampled_from([["--json"], ["--quiet"], []]), label="quiet")
    with tempfile.TemporaryDirectory(prefix="xai-fuzz-") as tmp:
        spec = Path(tmp) / f"{stem}.toml"
        if isinstance(text, bytes):
            spec.write_bytes(text)
        else:
            spec.write_text(text, encoding="utf-8")
        out, ci = Path(tmp) / "reports", Path(tmp) / "ci"
        args = ["check", str(spec), "-o", str(out), "--junit", str(ci / "junit.xml"), "--summary",
                str(ci / "summary.md"), "--baselines", str(Path(tmp) / "baselines"), "--device", "cpu", *quiet]
        result = invoke(args, family="spec")
        assert_contract(result, args, codes=codes, outputs=[out, ci])
