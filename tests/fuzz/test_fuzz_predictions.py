"""Family (a): prediction files fed to ``xai fairness --data F --y-true ... --y-pred/--score ... -s ...``.

Random CSVs (and a few files that are not CSV at all) with hostile column names and group
values (rich markup, ANSI/OSC escapes, unicode, duplicates), labels that are not 0/1, NaN
and infinite scores, empty files, one group, and thresholds from NaN to 1e308. The
command may pass (0) or refuse the input (2); it must keep the contract of
:mod:`tests.fuzz._contract`, and three of the issue's silent wrong audits are checked
directly: a NaN threshold, a duplicated header and a single group's "four-fifths: pass".
"""

from __future__ import annotations

import csv
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from ._contract import assert_contract, fuzz_settings, invoke
from ._strategies import HOSTILE_TEXT, hostile_float, hostile_text

EXAMPLES = 60
SIMPLE_NAMES = ("label", "pred", "score", "sex", "race")
column_name = st.one_of(st.sampled_from(SIMPLE_NAMES), hostile_text)

_VALUES = {
    "binary": ("0", "1"),
    "binary-text": ("yes", "no"),
    "labels": ("0", "1", "2"),
    "probability": ("0.0", "0.1", "0.49", "0.5", "0.51", "0.9", "1.0"),
    "scores": ("-3.5", "0.2", "7", "nan", "inf", "-inf", "1e308", ""),
    "groups": ("F", "M", "[/]", "\x1b[31mred\x1b[0m", "\x1b]8;;https://evil.example\x1b\\x", "性别", "a,b", '"q"'),
    "one-group": ("only",),
    "mixed": HOSTILE_TEXT,
}


@dataclass(frozen=True)
class PredictionFile:
    """A file's bytes, its suffix, and (when it is a table) its header and columns as written."""

    content: bytes
    suffix: str
    header: tuple[str, ...] = ()
    columns: tuple[tuple[str, ...], ...] = ()


#: Value pools by role: the column a call uses for labels, predictions, scores or groups
#: mostly holds what that role expects, so most inputs get past the first check.
_ROLE_POOLS = {"y_true": "binary", "y_pred": "binary", "score": "probability", "group": "groups"}


def rarely(draw: st.DrawFn, one_in: int) -> bool:
    """True about once in ``one_in`` draws (hypothesis favours the first choice: the usual one)."""
    return draw(st.sampled_from([False] * (one_in - 1) + [True]))


@st.composite
def prediction_files(draw: st.DrawFn) -> PredictionFile:
    """A CSV with columns for labels, predictions, scores and groups (names and values hostile at times)."""
    kind = draw(st.sampled_from(["table"] * 16 + ["empty", "header-only", "bytes"]))
    suffix = draw(st.sampled_from([".csv"] * 16 + [".parquet", ".gz", ".txt", ".CSV"]))
    if kind == "empty":
        return PredictionFile(b"", suffix)
    if kind == "bytes":
        return PredictionFile(draw(st.binary(max_size=120)), suffix)
    roles = ["y_true", "y_pred", "score", *["group"] * draw(st.sampled_from([1, 2, 0]))]
    header = tuple(draw(column_name) if rarely(draw, 5) else default
                   for default in ("label", "pred", "score", "sex", "race")[: len(roles)])
    rows = 0 if kind == "header-only" else draw(st.integers(1, 30).filter(lambda n: n > 4) | st.integers(1, 4))
    columns = []
    for role in roles:
        kind_of_values = draw(st.sampled_from(sorted(_VALUES))) if rarely(draw, 8) else _ROLE_POOLS[role]
        pool = _VALUES[kind_of_values]
        columns.append(tuple(draw(st.lists(st.sampled_from(pool), min_size=rows, max_size=rows))))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(zip(*columns, strict=True))
    return PredictionFile(buffer.getvalue().encode("utf-8"), suffix, header, tuple(columns))


@st.composite
def fairness_calls(draw: st.DrawFn, file: PredictionFile) -> tuple[list[str], dict[str, object]]:
    """Arguments after ``--data F``, and what the oracles need to know about them."""
    header = list(file.header) or ["label", "pred", "score"]

    def name(index: int) -> str:  # mostly the column of that role, else any header name or junk
        if index < len(header) and not rarely(draw, 8):
            return header[index]
        return draw(st.one_of(st.sampled_from(header), hostile_text))

    used = {"y_true": name(0)}
    args = ["--y-true", used["y_true"]]
    mode = draw(st.sampled_from(["pred"] * 6 + ["score"] * 6 + ["both", "neither"]))
    if mode in ("pred", "both"):
        used["y_pred"] = name(1)
        args += ["--y-pred", used["y_pred"]]
    if mode in ("score", "both"):
        used["score"] = name(2)
        args += ["--score", used["score"]]
    threshold = None
    if mode != "pred" and draw(st.booleans()):
        threshold = draw(st.one_of(st.sampled_from(["0.5", "0.3", "0", "1"]), hostile_float.map(repr),
                                   st.sampled_from(["abc", "", "0,5", "1e999"])))
        args += ["--threshold", threshold]
    groups = range(3, len(header)) if len(header) > 3 else [len(header)]
    sensitive = [name(i) for i in groups][: draw(st.sampled_from([1, 2, 3, 1, 2, 0]))]
    if sensitive and draw(st.booleans()):
        args += ["--sensitive", ",".join(sensitive)]
    else:
        for group in sensitive:
            args += ["-s", group]
    args += ["--n-boot", draw(st.sampled_from(["0", "3", "20"] * 4 + ["-1", "x"]))]
    for option, values in (("--pos-label", ["1", "yes", "[/]", "\x1b[31m1"]),
                           ("--task", ["binary", "multiclass", "regression", "[/]", ""]),
                           ("--confidence", ["0.9", "0", "1", "nan", "-1", "2"]),
                           ("--min-group-size", ["0", "5", "-3"]),
                           ("--seed", ["0", "7", "-1", "99999999999999999999"])):
        if rarely(draw, 10):
            args += [option, draw(st.sampled_from(values))]
    if draw(st.booleans()):
        args.append("--json")
    return args, {"threshold": threshold, "sensitive": sensitive, "used": used}


def _used_twice(file: PredictionFile, used: dict[str, str], sensitive: list[str]) -> bool:
    """A column the call names appears twice in the header (pandas would quietly take the first)."""
    named = [*used.values(), *sensitive]
    return any(n in SIMPLE_NAMES and file.header.count(n) > 1 for n in named)


def _one_group_each(file: PredictionFile, sensitive: list[str]) -> bool:
    """Every sensitive column named holds one value only (so no ratio of groups exists)."""
    if not sensitive or not file.columns or not all(n and n.strip() == n and "," not in n for n in sensitive):
        return False  # the CLI splits on commas and strips: then it names other columns
    values = dict(zip(file.header, file.columns, strict=True))  # the last of duplicated names
    return all(n in values and file.header.count(n) == 1 and len(set(values[n])) == 1 for n in sensitive)


@given(data=st.data())
@fuzz_settings(EXAMPLES)
def test_fuzzed_prediction_files_keep_the_contract(data: st.DataObject) -> None:
    file = data.draw(prediction_files(), label="file")
    tail, facts = data.draw(fairness_calls(file), label="call")
    with tempfile.TemporaryDirectory(prefix="xai-fuzz-") as tmp:
        path = Path(tmp) / f"preds{file.suffix}"
        path.write_bytes(file.content)
        out = Path(tmp) / "report" if data.draw(st.booleans(), label="-o") else None
        args = ["fairness", "--data", str(path), *tail, *(["-o", str(out)] if out else [])]
        result = invoke(args, family="csv")
        assert_contract(result, args, codes={0, 2}, outputs=[out])
        why = f"\nargs: {args!r}\nexit {result.exit_code}\nstdout: {result.stdout[-800:]!r}"
        threshold = facts["threshold"]
        if threshold is not None and threshold.lower() == "nan":
            assert result.exit_code == 2, "--threshold nan must be refused" + why
        if file.header and _used_twice(file, facts["used"], facts["sensitive"]):
            assert result.exit_code == 2, "a duplicated header column was used" + why
        if result.exit_code == 0 and _one_group_each(file, facts["sensitive"]):
            assert "four-fifths rule: pass" not in result.stdout, "one group cannot pass the four-fifths rule" + why
        if result.exit_code == 0 and out is not None:
            written = {p.suffix for p in out.rglob("*") if p.is_file()}
            assert {".html", ".json"} <= written, f"exit 0 with -o but the report is missing: {written}" + why
