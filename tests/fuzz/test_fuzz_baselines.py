"""Family (c): baseline JSON files read by a regression gate (``xai check`` with ``regression = true``).

Each input is a baseline for a cheap audit (german-mlp on 40 rows, one regression gate on
accuracy), either well formed (finite numbers where the schema wants them) or broken in
one way: not JSON, not an object, ``metrics`` a string or a list, NaN or infinite or
overflowing numbers, strings and nested garbage where numbers belong, intervals that are
no pairs of numbers. Besides the contract of :mod:`tests.fuzz._contract`: a broken
baseline is bad input, so exit 2, never 1 (issue 17: CI then reports a bias regression
that is really a typo); a well-formed one gives 0 or 1 (the gate's verdict). Inputs
whose reading is a policy choice (booleans or numeric strings as numbers, nulls, lower
bound above the upper) may give 0, 1 or 2.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import event, given
from hypothesis import strategies as st

from ._contract import assert_contract, fuzz_settings, invoke
from ._strategies import hostile_text, json_any

EXAMPLES = 40
SLUG = "gated"
SPEC = """title = "regression gate"
explain = []
probe = []
[model]
name = "german-mlp"
[data]
samples = 40
[[gate]]
metric = "accuracy"
op = ">="
regression = true
tolerance = 0.01
"""

finite = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**6), 10**6)
unit = st.floats(0, 1)


@st.composite
def well_formed(draw: st.DrawFn) -> dict[str, Any]:
    """A baseline as ``xai check --update-baseline`` writes it, with random finite numbers."""
    metrics = {"accuracy": draw(unit | finite), **draw(st.dictionaries(hostile_text, finite, max_size=3))}
    document: dict[str, Any] = {"metrics": metrics}
    if draw(st.booleans()):
        low = draw(unit)
        document["intervals"] = {"accuracy": [low, draw(st.floats(low, 1))]}
    for key, value in (("slug", SLUG), ("title", "regression gate"), ("xai_version", "0.1.0"),
                       ("provenance", {"model": "german-mlp", "seed": 0})):
        if draw(st.booleans()):
            document[key] = value
    return document


BAD_NUMBERS = st.sampled_from([math.nan, math.inf, -math.inf, 10**400, "abc", "", [0.8], {"v": 0.8}, [], {}])
BAD_INTERVALS = st.sampled_from([[0.1], [0.1, 0.2, 0.3], [math.nan, 0.9], [0.1, math.inf], ["a", "b"], "x", 0.5,
                                 {"low": 0.1}, [None, 0.9]])


@st.composite
def baselines(draw: st.DrawFn) -> tuple[bytes, str]:
    """A baseline file's bytes and its class: 'ok', 'broken' (exit 2) or 'policy' (any of 0, 1, 2)."""
    document = draw(well_formed())
    flaw = draw(st.sampled_from(["metric", "none", "metrics", "other-metric", "none", "top", "interval", "none",
                                 "intervals", "text", "policy-number", "policy-null", "policy-order",
                                 "policy-provenance"]))
    event(f"baseline flaw: {flaw}")
    metrics = document["metrics"]
    if flaw == "none":
        return _dump(document), "ok"
    if flaw == "metric":
        metrics["accuracy"] = draw(BAD_NUMBERS)
    elif flaw == "other-metric":
        metrics[draw(hostile_text.filter(lambda k: k != "accuracy"))] = draw(BAD_NUMBERS)
    elif flaw == "metrics":
        choice = draw(st.sampled_from(["string", "list", "number", "null", "missing", "garbage"]))
        if choice == "missing":
            del document["metrics"]
        else:
            document["metrics"] = {"string": "accuracy", "list": [0.8], "number": 0.8, "null": None,
                                   "garbage": draw(json_any.filter(lambda v: not isinstance(v, dict)))}[choice]
    elif flaw == "top":
        return _dump(draw(st.sampled_from([[document], "baseline", 0.8, None, True]) | json_any.filter(
            lambda v: not isinstance(v, dict)))), "broken"
    elif flaw == "interval":
        document["intervals"] = {"accuracy": draw(BAD_INTERVALS)}
    elif flaw == "intervals":
        document["intervals"] = draw(st.sampled_from(["x", [0.1, 0.2], 3]))
    elif flaw == "text":
        raw = _dump(document)
        return draw(st.sampled_from([b"", b"{", raw[: len(raw) // 2], b"\xff\xfe{}", b"nul\x00l"])
                    | st.binary(max_size=40)), "broken"
    elif flaw == "policy-number":
        metrics["accuracy"] = draw(st.sampled_from([True, False, "0.8", "1e-3"]))
        return _dump(document), "policy"
    elif flaw == "policy-null":
        metrics[draw(st.sampled_from(["accuracy", "other"]))] = None
        return _dump(document), "policy"
    elif flaw == "policy-order":
        document["intervals"] = {"accuracy": [0.9, 0.1]}
        return _dump(document), "policy"
    else:
        document["provenance"] = draw(json_any)
        return _dump(document), "policy"
    return _dump(document), "broken"


def _dump(document: Any) -> bytes:
    """JSON as Python writes it, NaN and Infinity tokens included (a file may hold them)."""
    return json.dumps(document).encode("utf-8")


@given(data=st.data())
@fuzz_settings(EXAMPLES)
def test_fuzzed_baselines_keep_the_contract(data: st.DataObject) -> None:
    content, kind = data.draw(baselines(), label="baseline")
    quiet = data.draw(st.sampled_from([["--json"], ["--quiet"], []]), label="quiet")
    with tempfile.TemporaryDirectory(prefix="xai-fuzz-") as tmp:
        spec, folder, out = Path(tmp) / f"{SLUG}.toml", Path(tmp) / "baselines", Path(tmp) / "reports"
        spec.write_text(SPEC, encoding="utf-8")
        folder.mkdir()
        (folder / f"{SLUG}.json").write_bytes(content)
        args = ["check", str(spec), "-o", str(out), "--baselines", str(folder), "--device", "cpu", *quiet]
        result = invoke(args, family="baseline")
        codes = {"ok": {0, 1}, "broken": {2}, "policy": {0, 1, 2}}[kind]
        assert_contract(result, args, codes=codes, outputs=[out])
        assert (folder / f"{SLUG}.json").read_bytes() == content, "a gate run rewrote the baseline"
