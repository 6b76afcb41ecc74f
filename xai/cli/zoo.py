"""``xai zoo list | train | reproduce | card``."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from xai._text import safe_text
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
from xai.zoo import (
    entry_dir,
    get_entry,
    is_trained,
    list_models,
    read_card,
    reproduce_entries,
    train_entries,
    zoo_root,
)

zoo_app = typer.Typer(help="List, train and inspect the model zoo.", no_args_is_help=True)


def zoo_rows(zoo_dir: Any = None) -> list[dict[str, Any]]:
    """One row per registered entry: metadata, trained or not, headline metric."""
    rows = []
    for name in list_models():
        entry = get_entry(name)
        trained = is_trained(name, zoo_dir)
        has_card = trained and (entry.pretrained is None or (entry_dir(name, zoo_dir) / "card.json").is_file())
        card = read_card(name, zoo_dir) if has_card else None
        rows.append({
            "name": name,
            "family": entry.family,
            "task": entry.task,
            "dataset": entry.dataset,
            "params": card["params"] if card else sum(p.numel() for p in entry.build().parameters()),
            "trained": trained,
            "metric": entry.metric,
            "value": card["headline"]["value"] if card else None,
            "floor": entry.floor,
            "description": entry.description,
            "train_seconds": card.get("train_seconds") if card else None,
        })
    return rows


def zoo_markdown(rows: list[dict[str, Any]]) -> str:
    """The README's zoo table (Markdown), one row per entry, numbers from the cards."""
    lines = ["| zoo entry | family | architecture and data | params | held-out metric | train s |",
             "|---|---|---|---:|---|---:|"]
    for r in rows:
        metric = (f"{r['metric']} {r['value']:.4f} (floor {r['floor']})" if r["value"] is not None
                  else f"not trained (floor {r['metric']} {r['floor']})")
        seconds = f"{r['train_seconds']:.1f}" if r["train_seconds"] is not None else "-"
        about = r["description"].replace("|", "\\|")
        lines.append(f"| `{r['name']}` | {r['family']} | {about} (`{r['dataset']}`) | {r['params']:,} "
                     f"| {metric} | {seconds} |")
    return "\n".join(lines) + "\n"


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
        typer.echo(zoo_markdown(rows), nl=False)
        return
    table = Table(title="xai zoo")
    for column in ("name", "family", "task", "dataset", "params", "trained", "metric"):
        table.add_column(column, justify="right" if column == "params" else "left", no_wrap=column == "name")
    for r in rows:
        metric = (f"{r['metric']} {r['value']:.4f} (floor {r['floor']})" if r["value"] is not None
                  else f"{r['metric']} - (floor {r['floor']})")
        table.add_row(r["name"], r["family"], r["task"], r["dataset"], f"{r['params']:,}",
                      "yes" if r["trained"] else "no", metric)
    stdout_console().print(table)


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
        table = Table(title=f"xai zoo reproduce (tolerance {tolerance:g})")
        for column in ("entry", "headline", "card", "retrained", "difference", "weights"):
            table.add_column(column, justify="right" if column in ("card", "retrained", "difference") else "left",
                             no_wrap=column == "entry")
        for r in rows:
            mark = "[red]" if r["name"] in failed else ""
            table.add_row(r["name"], r["metric"], f"{r['card']:.6f}", f"{r['retrained']:.6f}",
                          f"{mark}{r['difference']:+.2e}", "bit-identical" if r["weights_identical"] else "differ")
        stdout_console().print(table)
        verdict = (f"[red]NOT REPRODUCED[/]: {', '.join(failed)}" if failed
                   else f"[green]REPRODUCED[/]: {len(rows)} {'entry' if len(rows) == 1 else 'entries'} "
                        f"within {tolerance:g}")
        stdout_console().print(verdict)
    if failed:
        raise typer.Exit(1)


@zoo_app.command("card")
def card(
    name: Annotated[str, typer.Argument(help="Zoo entry.")],
    zoo_dir: ZooDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show the model card of a trained entry."""
    get_entry(name)
    data = read_card(name, zoo_dir)
    if json_out:
        print_json(data)
        return
    table = Table(title=f"model card: {name}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key in ("architecture", "family", "task", "params", "dataset", "split", "metrics",
                "headline", "seed", "recipe", "train_seconds", "layers", "paper", "weights_sha256"):
        table.add_row(key, safe_text(data.get(key)))
    for key, value in data.get("details", {}).items():  # non-numeric results (nearest neighbours ...)
        table.add_row(safe_text(key), safe_text(value))
    stdout_console().print(table)
