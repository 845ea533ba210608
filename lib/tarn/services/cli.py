"""`tarn services up|down|status`: the local nats-server, PostgreSQL, MinIO and Trino."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from tarn.exceptions import TarnError

STATE_DIR_HELP = (
    "State dir (data, logs, pid files); default $TARN_SERVICES_DIR or ~/.local/state/tarn/services."
)


def _state_dir(value: str | None) -> Path | None:
    return Path(value) if value else None


@click.group(name="services")
def services() -> None:
    """Run tarn's backing services locally: nats-server, PostgreSQL, MinIO, Trino (127.0.0.1 only)."""


@services.command("up")
@click.argument("names", nargs=-1, type=click.Choice(["nats", "postgres", "minio", "trino"]))
@click.option("--state-dir", type=click.Path(file_okay=False), default=None, help=STATE_DIR_HELP)
def up_cmd(names: tuple[str, ...], state_dir: str | None) -> None:
    """Start NAMES (default: all; trino implies postgres and minio, minio implies nats). Safe to run again."""
    from tarn import services as svc

    err = Console(stderr=True)
    out = Console()
    started = time.monotonic()

    def progress(line: str) -> None:
        err.print(f"[dim]{time.monotonic() - started:6.1f}s[/dim] {line}", highlight=False)

    try:
        ep = svc.up(list(names) or None, state_dir=_state_dir(state_dir), progress=progress)
    except TarnError as exc:
        err.print("[bold red]error:[/bold red]", end=" ")
        err.print(str(exc), markup=False, highlight=False)
        sys.exit(1)

    table = Table(title="tarn services", show_lines=False)
    table.add_column("service")
    table.add_column("endpoint")
    table.add_column("pid", justify="right")
    rows = {
        "nats": f"{ep.nats_url} (bucket events: stream {ep.notify_stream})",
        "postgres": f"{ep.postgres_host}:{ep.postgres_port} database {ep.postgres_database}",
        "minio": f"{ep.minio_endpoint} (console {ep.minio_console})",
        "trino": f"{ep.trino_url} catalog {ep.trino_catalog}",
    }
    for name in ep.services:
        table.add_row(name, rows[name], str(ep.pids.get(name, "")))
    out.print(table)

    creds = Table(title="credentials (kept in the state dir, mode 0600)")
    creds.add_column("for")
    creds.add_column("user")
    creds.add_column("password")
    if "minio" in ep.services:
        creds.add_row("MinIO / S3", ep.minio_user, ep.minio_password)
    if "postgres" in ep.services:
        creds.add_row("PostgreSQL", ep.postgres_user, ep.postgres_password)
    if "trino" in ep.services:
        creds.add_row("Trino", ep.trino_user, "(none)")
    out.print(creds)
    out.print(f"tarn configuration: [bold]{ep.env_file}[/bold]", highlight=False)
    out.print(
        f"  use it in a shell with:  set -a; . {ep.env_file}; set +a", highlight=False, markup=False
    )


@services.command("down")
@click.option("--state-dir", type=click.Path(file_okay=False), default=None, help=STATE_DIR_HELP)
@click.option(
    "--purge", is_flag=True, help="Also delete all data, logs and credentials of the stack."
)
def down_cmd(state_dir: str | None, purge: bool) -> None:
    """Stop every service that `up` started (by pid file)."""
    from tarn import services as svc

    stopped = svc.down(_state_dir(state_dir), purge=purge)
    console = Console()
    console.print(
        f"stopped: {', '.join(stopped)}" if stopped else "nothing was running", highlight=False
    )
    if purge:
        console.print("purged the state dir (data, logs, credentials)")


@services.command("status")
@click.option("--state-dir", type=click.Path(file_okay=False), default=None, help=STATE_DIR_HELP)
def status_cmd(state_dir: str | None) -> None:
    """Show which services run, where, and whether they answer."""
    from tarn import services as svc

    info = svc.status(_state_dir(state_dir))
    table = Table(title="tarn services")
    for col in ("service", "state", "pid", "address", "version", "log"):
        table.add_column(col)
    for name, row in info.items():
        if not row["running"]:
            state = "[dim]stopped[/dim]"
        elif row["healthy"]:
            state = "[green]up[/green]"
        else:
            state = "[yellow]starting / not answering[/yellow]"
        address = row["address"] + (f" (console {row['console']})" if row.get("console") else "")
        table.add_row(name, state, str(row["pid"] or ""), address, row["version"], row["log"])
    Console().print(table)
