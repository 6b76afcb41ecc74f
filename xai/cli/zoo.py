"""``xai zoo list | train | reproduce | card``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from xai._typing import SEED_MAX
from xai.cli._common import (
    DeviceOpt,
    JsonOpt,
    ZooDirOpt,
    check_device,
    print_json,
    stderr_console,
    stdout_console,
)
from xai.errors import DataError
from xai.report.terminal_commands import print_zoo_card, print_zoo_list, print_zoo_reproduce
from xai.zoo._cards import entry_dir, is_trained, read_card, zoo_root
from xai.zoo._index import entry_info, list_models

# Listing and cards read the zoo's torch-free table (xai/zoo/_index.py); training imports the entries.

zoo_app = typer.Typer(help="List, train and inspect the model zoo.", no_args_is_help=True)


def zoo_rows(zoo_dir: Any = None) -> list[dict[str, Any]]:
    """One row per registered entry: metadata, trained or not, headline metric (no model is built)."""
    rows = []
    for name in list_models():
        entry = entry_info(name)
        trained = is_trained(name, zoo_dir)
        has_card = trained and (entry.pretrained_available is None
                                or (entry_dir(name, zoo_dir) / "card.json").is_file())
        card = read_card(name, zoo_dir) if has_card else None
        rows.append({
            "name": name,
            "family": entry.family,
            "task": entry.task,
            "dataset": entry.dataset,
            "params": card["params"] if card else entry.params,
            "trained": trained,
            "metric": entry.metric,
            "value": card["headline"]["value"] if card else None,
            "floor": entry.floor,
            "description": entry.description,
            "train_seconds": card.get("train_seconds") if card else None,
        })
    return rows


@zoo_app.command("list")
def list_(
    zoo_dir: ZooDirOpt = None,
    json_out: JsonOpt = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the README's zoo table.")] = False,
) -> None:
    """Every zoo entry with its family, task, data, size and headline metric."""
    rows = zoo_rows(zoo_dir)
    if json_out:
        print_json(rows)
        return
    if markdown:
        from xai.report.markdown import zoo_markdown  # the audit report's module: only for --markdown

        typer.echo(zoo_markdown(rows), nl=False)
        return
    print_zoo_list(stdout_console(), rows)


@zoo_app.command("train")
def train(
    names: Annotated[list[str] | None, typer.Argument(help="Entries to train.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Train every entry.")] = False,
    seed: Annotated[int, typer.Option("--seed", min=0, max=SEED_MAX, help="Training seed.")] = 0,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Entries trained at once, each in its own process "
                                      "on one CPU thread (the same recipes as one at a time).")] = 1,
    device: DeviceOpt = "auto",
    zoo_dir: ZooDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Train entries from scratch (seeded) and write weights and card."""
    from xai.zoo import get_entry, train_entries

    check_device(device)
    if jobs < 1:
        raise DataError(f"--jobs must be at least 1, got {jobs}")
    targets = list_models() if all_ else list(names or [])
    if not targets:
        raise DataError("name the entries to train, or pass --all")
    for name in targets:
        get_entry(name)  # unknown names fail before any training

    def report(card: dict) -> None:
        if json_out:
            return
        head = card["headline"]
        verdict = "[green]meets[/]" if get_entry(card["name"]).meets_floor(head["value"]) else "[red]misses[/]"
        stdout_console().print(f"{card['name']}: held-out {head['metric']} {head['value']:.4f} {verdict} floor "
                               f"{head['floor']} in {card['train_seconds']:.1f} s")

    # each entry after the ones it uses (e.g. lenet before its pruned variants and the GAN it judges)
    cards = train_entries(targets, jobs=jobs, seed=seed, device=device, zoo_dir=zoo_dir,
                          console=stderr_console(enabled=not json_out), on_done=report)
    if json_out:
        print_json(cards)


@zoo_app.command("reproduce")
def reproduce(
    names: Annotated[list[str] | None, typer.Argument(help="Entries to retrain and compare.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every trained entry.")] = False,
    tolerance: Annotated[float, typer.Option("--tolerance", help="Largest headline difference that still "
                                             "counts as reproduced.")] = 1e-6,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Entries trained at once (as in xai zoo train).")] = 1,
    device: DeviceOpt = "auto",
    zoo_dir: ZooDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Retrain entries from their cards' seeds in a scratch folder and compare with the cards.

    The zoo is not changed. Exit 1 when a retrained headline differs from its card by more
    than --tolerance.
    """
    from xai.zoo import reproduce_entries

    check_device(device)
    if jobs < 1:
        raise DataError(f"--jobs must be at least 1, got {jobs}")
    if not tolerance >= 0:
        raise DataError(f"--tolerance must be zero or more, got {tolerance}")
    targets = [n for n in list_models() if is_trained(n, zoo_dir) and (entry_dir(n, zoo_dir) / "card.json").is_file()
               ] if all_ else list(names or [])
    if not targets:
        raise DataError(f"no trained entries in {zoo_root(zoo_dir)} to reproduce" if all_
                        else "name the entries to reproduce, or pass --all")
    rows = reproduce_entries(targets, jobs=jobs, device=device, zoo_dir=zoo_dir,
                             console=stderr_console(enabled=not json_out))
    failed = [r["name"] for r in rows if abs(r["difference"]) > tolerance]
    if json_out:
        print_json({"tolerance": tolerance, "reproduced": not failed, "entries": rows})
    else:
        print_zoo_reproduce(stdout_console(), rows, failed, tolerance)
    if failed:
        raise typer.Exit(1)


@zoo_app.command("card")
def card(
    name: Annotated[str, typer.Argument(help="Zoo entry.")],
    format_: Annotated[Literal["table", "md", "json", "mct"], typer.Option(
        "--format", help="table (terminal), md (Markdown), json (card.json with its considerations and "
        "per-group results; --json prints card.json alone) or mct (Model Card Toolkit's JSON schema v0.0.2).")
    ] = "table",
    audits: Annotated[Path, typer.Option("--audits", help="Folder of audit specs whose baselines give the "
                                         "per-group results.")] = Path("audits"),
    baselines: Annotated[Path, typer.Option("--baselines", help="Folder of baseline JSON files.")
                         ] = Path("reports/baselines"),
    zoo_dir: ZooDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show the model card of a trained entry: what training recorded, intended use, limitations, ethics."""
    from xai.zoo._considerations import model_card

    entry_info(name)  # unknown names list the known ones
    if json_out:  # the stored card.json as it is (the training record), as before --format existed
        print_json(read_card(name, zoo_dir))
        return
    data = model_card(name, zoo_dir, audits_dir=audits, baselines_dir=baselines)
    if format_ == "json":
        print_json(data)
    elif format_ == "mct":
        from xai.report.model_card import card_mct

        print_json(card_mct(data))
    elif format_ == "md":
        from xai.report.model_card import card_markdown

        typer.echo(card_markdown(data), nl=False)
    else:
        print_zoo_card(stdout_console(), name, data)
