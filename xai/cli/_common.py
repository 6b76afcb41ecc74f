"""Options and helpers shared by every command (thin CLI: parse, hand off, print)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Console

from xai._device import resolve_device
from xai._text import SafeConsole
from xai._typing import SEED_MAX, DeviceName
from xai.errors import DataError
from xai.report.json import dumps

if TYPE_CHECKING:  # the runner and the HTML renderer load torch: imported where an audit runs
    from xai.audit import AuditResult, AuditSpec, DataSpec

DeviceOpt = Annotated[
    str,
    typer.Option("--device", help="auto (CUDA when available), cpu or cuda.",
                 show_default=True),
]
SeedOpt = Annotated[int | None, typer.Option("--seed", min=0, max=SEED_MAX,
                                          help="Random seed (overrides the spec's).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout, nothing else.")]
ZooDirOpt = Annotated[
    Path | None,
    typer.Option("--zoo-dir", help="Folder of trained zoo entries [default: $XAI_ZOO_DIR or ./zoo]."),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the closing line.")]
WeightsOpt = Annotated[
    Path | None,
    typer.Option("--weights", help="Weights for a package.module:factory, timm:NAME or torchvision:NAME model "
                 "(safetensors or state dict)."),
]
DataOpt = Annotated[
    str | None,
    typer.Option("--data", help="Bundled dataset to use (default: the model's own)."),
]
OwnDataOpt = Annotated[
    str | None,
    typer.Option("--data", help="Bundled dataset (default: the model's own), or your own data: an image folder "
                 "(one sub-folder per class), or a .csv/.parquet manifest, feature table or text table."),
]
LabelOpt = Annotated[str | None, typer.Option("--label", help="Your data: the label column [default: label].")]
TextOpt = Annotated[str | None, typer.Option("--text", help="Your data: the text column of a text table.")]
SideOpt = Annotated[Path | None, typer.Option("--side", help="Your data: a .csv/.parquet of sensitive columns, "
                                              "joined on --id.")]
IdOpt = Annotated[str | None, typer.Option("--id", help="Your data: the column joining --side to the rows (an "
                                           "image folder's rows are keyed by their path in it, e.g. cat/1.png).")]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Your data: fail on an image that cannot be decoded "
                                         "instead of skipping it with a note.")]
TrustPickleOpt = Annotated[
    bool,
    typer.Option("--trust-pickle", help="Trust the model file: allow unpickling it and loading a .pt2 "
                 "unscanned (runs code from the file). A spec cannot set this."),
]

ModelArg = Annotated[
    str,
    typer.Argument(help="Zoo name or folder, TorchScript or torch.export file, package.module:factory, "
                   "timm:NAME or torchvision:NAME (with --weights), a Hugging Face save_pretrained folder, "
                   "or an .onnx file."),
]
LayerOpt = Annotated[
    str | None,
    typer.Option("--layer", help="Layer to explain, for methods that take one (grad-cam ...); "
                 "default: the method's choice among the model's layers."),
]
ClassesOpt = Annotated[
    str | None,
    typer.Option("--classes", help="Comma-separated class names of a timm:/torchvision:/Hugging Face/ONNX model "
                 "[default: the data's labels when they count as many, else class 0, class 1, ...]."),
]


def parse_classes(raw: str | None) -> list[str] | None:
    """``--classes a,b,c`` -> ``["a", "b", "c"]`` (empty names are errors)."""
    if raw is None:
        return None
    names = [c.strip() for c in raw.split(",")]
    if not all(names):
        raise DataError(f"--classes takes comma-separated non-empty names, got {raw!r}")
    return names


def _out_dir(raw: str) -> Path:
    """``-o``: checked before any work (``''`` would mean the working directory; a file or a read-only folder fails)."""
    from xai._io import check_writable_dir

    return check_writable_dir(raw)


OutOpt = Annotated[Path | None, typer.Option("--out", "-o", parser=_out_dir, metavar="PATH",
                                             help="Write an HTML page and JSON here.")]

TargetOpt = Annotated[str, typer.Option("--target", help="predicted, label or a class index.")]
MethodOptionsOpt = Annotated[
    list[str] | None, typer.Option("--option", help="Method option KEY=VALUE (repeatable).")
]

DEVICES: tuple[DeviceName, ...] = ("auto", "cpu", "cuda")


def stdout_console() -> Console:
    """Console for tables and verdicts (stdout); user strings still go through :func:`safe_text`."""
    return SafeConsole(file=sys.stdout, highlight=False)


def stderr_console(enabled: bool = True) -> Console | None:
    """Console for progress and notes (stderr, so ``--json`` keeps stdout clean)."""
    return SafeConsole(stderr=True, highlight=False) if enabled else None


def check_device(device: str) -> str:
    """Validate ``--device`` early with the usual one-line error."""
    if device not in DEVICES:
        raise DataError(f"--device must be one of {', '.join(DEVICES)}, got {device!r}")
    return device


def _existing_ancestor(path: Path) -> Path:
    """The nearest of ``path``'s parents that exists (what a write would have to create folders in)."""
    for parent in path.absolute().parents:
        if parent.exists():
            return parent
    return Path(path.absolute().anchor)


def check_output_file(path: Path, what: str, *, append: bool = False) -> Path:
    """Refuse, before any work, an output file that cannot be written (one line, exit 2).

    A folder, a path under a file, or a folder we may not write into fails now rather
    than after minutes of auditing; ``append`` files (``$GITHUB_STEP_SUMMARY``) must also
    be writable themselves, since they are not replaced.
    """
    if str(path) == "" or path.is_dir():
        raise DataError(f"{what} {str(path)!r} is a folder; name a file")
    if path.exists() and not path.is_file():
        raise DataError(f"{what} {path}: not a regular file")
    ancestor = _existing_ancestor(path)
    if not ancestor.is_dir():
        raise DataError(f"{what} {path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise DataError(f"{what} {path}: cannot write into {ancestor}")
    if append and path.exists() and not os.access(path, os.W_OK):
        raise DataError(f"{what} {path}: file is not writable")
    return path


def data_spec(data: str | None, *, sensitive: list[str] | None = None, label: str | None = None,
              text: str | None = None, side: Path | None = None, id_column: str | None = None,
              strict: bool = False, split: str | None = None) -> DataSpec:
    """``--data`` and its column flags as a ``[data]`` section: a bundled name, or a path to your own data.

    A bundled name wins over a file of the same name (``--data ./adult`` names the file).
    """
    from xai.audit import DataSpec
    from xai.datasets._index import DATASETS

    own = {"label": label, "text": text, "side": str(side) if side else None, "id": id_column,
           "strict": strict or None}
    common: dict[str, Any] = {"sensitive": list(sensitive or [])}
    if data is None or data in DATASETS:
        given = [f"--{k}" for k, v in own.items() if v is not None]
        if given:
            raise DataError(f"{', '.join(given)} apply to your own data: give --data PATH")
        return DataSpec.model_validate({"name": data, **common, **({"split": split} if split else {})})
    if not Path(data).exists():
        if "/" in data or "." in data:
            raise DataError(f"--data {data}: no such file or folder")
        raise DataError(f"unknown dataset {data!r} (and no such file or folder); known: "
                        f"{', '.join(DATASETS.names())}")
    return DataSpec.model_validate({"path": data, **common, **{k: v for k, v in own.items() if v is not None}})


def print_json(document: Any) -> None:
    """Write one JSON document on stdout."""
    sys.stdout.write(dumps(document, indent=2) + "\n")


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` pairs to a dict; values are parsed as int, float or bool when they look so."""
    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise DataError(f"--option takes KEY=VALUE, got {pair!r}")
        options[key.strip()] = _parse_value(raw.strip())
    return options


def parse_target(raw: str) -> Literal["predicted", "label"] | int:
    """``--target``: ``predicted``, ``label`` or a class index."""
    if raw == "predicted":
        return "predicted"
    if raw == "label":
        return "label"
    try:
        return int(raw)
    except ValueError:
        raise DataError(f"--target must be predicted, label or a class index, got {raw!r}") from None


def _parse_value(raw: str) -> Any:
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw


def with_layer(options: dict[str, Any], layer: str | None) -> dict[str, Any]:
    """Add ``--layer`` to the method options (a clash with ``--option layer=`` is an error)."""
    if layer is None:
        return options
    if "layer" in options and options["layer"] != layer:
        raise DataError(f"--layer {layer!r} and --option layer={options['layer']!r} disagree")
    return {**options, "layer": layer}


def run_cli_audit(spec: AuditSpec, *, slug: str, device: str, zoo_dir: Path | None, json_out: bool,
                  out: Path | None, trust_pickle: bool = False) -> tuple[AuditResult, Path | None]:
    """Run a one-off audit built from a command's flags; write its page when ``out`` is given."""
    from xai.audit import run_audit
    from xai.report.html import write_report

    result = run_audit(spec, slug=slug, spec_path="cli", device=resolve_device(check_device(device)),
                       zoo_dir=zoo_dir, console=stderr_console(enabled=not json_out), trust_pickle=trust_pickle)
    page = write_report([result], out) if out is not None else None
    return result, page
