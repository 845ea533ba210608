"""tarn's command line, for people: tables for reading, --json for scripts."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

import click
import httpx
from rich.console import Console
from rich.table import Table

from tarn import config
from tarn.exceptions import TarnError

console = Console()
err_console = Console(stderr=True)


def _cfg() -> config.Config:
    try:
        return config.get()
    except TarnError as exc:
        raise click.ClickException(str(exc)) from exc


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def print_rows(
    columns: list[str], rows: list[tuple[Any, ...]], as_json: bool, title: str | None = None
) -> None:
    if as_json:
        click.echo(
            json.dumps([_jsonable(dict(zip(columns, r, strict=True))) for r in rows], indent=2)
        )
        return
    table = Table(title=title, show_lines=False)
    for c in columns:
        table.add_column(c, overflow="fold")
    for r in rows:
        table.add_row(*("" if v is None else str(_jsonable(v)) for v in r))
    console.print(table)
    console.print(f"[dim]{len(rows)} row{'s' if len(rows) != 1 else ''}[/dim]")


@click.group()
@click.version_option(package_name="tarn")
def main() -> None:
    """tarn: an open-source security lake."""


# -- dev ---------------------------------------------------------------------------------------
@main.group()
def dev() -> None:
    """The embedded stack on this machine (nats-server, broker, every function)."""


@dev.command("up")
def dev_up() -> None:
    """Start nats-server, every function and the broker; logs under <home>/logs."""
    from tarn.devstack import DevStack

    stack = DevStack(_cfg())
    try:
        with console.status("starting the embedded stack") as status:
            stack.up(lambda line: status.update(f"starting {line}"))
    except TarnError as exc:
        stack.down()
        raise click.ClickException(str(exc)) from exc
    _print_status(stack)
    console.print(
        f"ingest with: tarn ingest aws_cloudtrail FILE   (token in {stack.home / 'ingest-token'})"
    )


@dev.command("down")
def dev_down() -> None:
    """Stop every process `tarn dev up` started (by pid file)."""
    from tarn.devstack import DevStack

    stopped = DevStack(_cfg()).down()
    console.print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


@dev.command("status")
def dev_status() -> None:
    """Show what runs, with pids and addresses."""
    from tarn.devstack import DevStack

    _print_status(DevStack(_cfg()))


def _print_status(stack: Any) -> None:
    rows = [(c.name, c.pid or "", c.url, "up" if c.up else "down") for c in stack.status()]
    print_rows(["component", "pid", "address", "state"], rows, False, title="tarn dev")


# -- ingest ------------------------------------------------------------------------------------
def _chunks(f: IO[bytes]) -> Iterator[bytes]:
    while chunk := f.read(1 << 20):
        yield chunk


def ingest_url(cfg: config.Config) -> str:
    if cfg.ingest.url:
        return cfg.ingest.url.rstrip("/")
    from tarn.devstack import DevStack

    return DevStack(cfg).ingest_url


def post_ingest(cfg: config.Config, log_source: str, body: IO[bytes]) -> dict[str, Any]:
    url = f"{ingest_url(cfg)}/ingest/{log_source}"
    try:
        resp = httpx.post(
            url,
            content=_chunks(body),
            headers={
                "Authorization": f"Bearer {cfg.ingest_token()}",
                "Content-Type": "application/octet-stream",
            },
            timeout=httpx.Timeout(300, connect=5),
        )
    except httpx.ConnectError as exc:
        raise click.ClickException(
            f"cannot reach the ingestor at {url}: {exc}. Start it with `tarn dev up`."
        ) from exc
    if resp.status_code != 202:
        try:
            detail = resp.json().get("error", resp.text)
        except ValueError:
            detail = resp.text
        raise click.ClickException(f"ingest refused (HTTP {resp.status_code}): {detail}")
    return dict(resp.json())


@main.command()
@click.argument("log_source")
@click.argument("file", type=click.File("rb"))
@click.option(
    "--wait", is_flag=True, help="Return once the data is committed and its detections have run."
)
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait with --wait.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def ingest(log_source: str, file: IO[bytes], wait: bool, timeout: float, as_json: bool) -> None:
    """Send FILE (NDJSON, a JSON document, gzip or zstd; - for stdin) to LOG_SOURCE."""
    from tarn import watch

    cfg = _cfg()
    start = asyncio.run(watch.stream_position(cfg)) if wait else 0
    accepted = post_ingest(cfg, log_source, file)
    result: dict[str, Any] = {"accepted": accepted}
    if wait:
        with console.status(
            f"ingest {accepted['ingest_id']}: waiting for the lake and detections"
        ) as status:

            def show(progress: dict[str, Any]) -> None:
                p = progress[accepted["ingest_id"]]
                status.update(
                    f"{p.good} records, {p.sidelined} sidelined; batches committed {len(p.committed)}/{p.chunks or '?'}, "
                    f"detected {len(p.detected)}/{p.chunks or '?'}"
                )

            try:
                progress = asyncio.run(
                    watch.wait_for_ingests(cfg, [accepted["ingest_id"]], start, timeout, show)
                )
            except TimeoutError as exc:
                raise click.ClickException(
                    f"{exc}. See `tarn dev status` and the logs under {cfg.home_path / 'logs'}."
                ) from exc
        result["done"] = progress[accepted["ingest_id"]].as_dict()
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    console.print(f"accepted {accepted['bytes']} bytes as ingest {accepted['ingest_id']}")
    if wait:
        d = result["done"]
        console.print(
            f"committed {d['records']} records in {d['batches']} batch(es); {d['sidelined']} sidelined; {d['matches']} detection matches"
        )


# -- query -------------------------------------------------------------------------------------
@main.command()
@click.argument("sql")
@click.option("--json", "as_json", is_flag=True, help="Print rows as JSON objects.")
@click.option(
    "--engine", type=click.Choice(["duckdb", "trino"]), default=None, help="Override query.engine."
)
def query(sql: str, as_json: bool, engine: str | None) -> None:
    """Run SQL (Trino dialect) over the lake."""
    from tarn import query as q

    try:
        result = q.run(_cfg(), sql, engine)
    except TarnError as exc:
        raise click.ClickException(str(exc)) from exc
    print_rows(result.columns, result.rows, as_json)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print alerts as JSON objects.")
@click.option("--limit", default=100, show_default=True)
def alerts(as_json: bool, limit: int) -> None:
    """List alerts, newest first."""
    from tarn import query as q
    from tarn.lake import ALERTS_TABLE, Lake

    cfg = _cfg()
    if ALERTS_TABLE not in Lake(cfg).table_names():
        if as_json:
            click.echo("[]")
        else:
            console.print("no alerts yet")
        return
    sql = (
        "SELECT alert_id, severity, detection, title, match_count, first_matched, last_matched "
        f"FROM {ALERTS_TABLE} ORDER BY last_matched DESC LIMIT {int(limit)}"
    )
    result = q.run(cfg, sql)
    print_rows(result.columns, result.rows, as_json, title="alerts")


# -- dead letters ------------------------------------------------------------------------------
@main.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def dlq(ctx: click.Context, as_json: bool) -> None:
    """Dead letters: deliveries that kept failing. `tarn dlq replay SEQ` sends one again."""
    if ctx.invoked_subcommand is None:
        from tarn import deadletters

        rows = asyncio.run(deadletters.list_dead_letters(_cfg()))
        cols = ["seq", "trigger", "type", "id", "error", "destination", "time"]
        print_rows(cols, [tuple(r[c] for c in cols) for r in rows], as_json, title="dead letters")


@dlq.command("replay")
@click.argument("seqs", nargs=-1, type=int)
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter.")
def dlq_replay(seqs: tuple[int, ...], replay_all: bool) -> None:
    """Publish dead letters back to the broker and remove them from the dead-letter stream."""
    from tarn import deadletters

    if not seqs and not replay_all:
        raise click.UsageError("name the sequence numbers to replay, or --all")
    done = asyncio.run(deadletters.replay(_cfg(), list(seqs) or None))
    console.print(f"replayed {len(done)} dead letter(s): {', '.join(map(str, done)) or '-'}")


# -- detections --------------------------------------------------------------------------------
@main.group()
def detections() -> None:
    """Detections: list them, run their inline tests."""


@detections.command("test")
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
def detections_test(path: Path | None) -> None:
    """Run every detection's inline tests (or those under PATH) and print a pass/fail table."""
    from tarn import detection

    cfg = _cfg()
    dirs = [path] if path else detection.detection_dirs(cfg.config_dir)
    try:
        dets = detection.load_all(dirs)
    except TarnError as exc:
        raise click.ClickException(str(exc)) from exc
    rows, failed = [], 0
    for det in dets:
        for name, ok, detail in detection.run_inline_tests(det):
            failed += not ok
            rows.append((det.id, name, "pass" if ok else "FAIL", detail))
    print_rows(["detection", "test", "result", "detail"], rows, False, title="detection tests")
    if failed:
        raise click.ClickException(f"{failed} of {len(rows)} detection tests failed")
    console.print(f"{len(rows)} passed, 0 failed")


@detections.command("run-scheduled")
@click.option("--json", "as_json", is_flag=True)
def detections_run_scheduled(as_json: bool) -> None:
    """Run the scheduled SQL detections whose cron tick has come (the CronJob's command)."""
    from tarn import runtime, scheduled

    try:
        report = scheduled.run_due(runtime.context())
    except TarnError as exc:
        raise click.ClickException(str(exc)) from exc
    cols = ["detection", "tick", "matches", "engine"]
    print_rows(
        cols, [tuple(r[c] for c in cols) for r in report], as_json, title="scheduled detections run"
    )


@main.command()
@click.option(
    "--retention-days",
    type=float,
    default=None,
    help="Keep snapshots this young (default: nats.max_age_days + 1).",
)
@click.option(
    "--min-files",
    default=8,
    show_default=True,
    help="Compact a day partition holding at least this many files.",
)
@click.option("--json", "as_json", is_flag=True)
def maintenance(retention_days: float | None, min_files: int, as_json: bool) -> None:
    """Compact small files and expire old snapshots in every table (the hourly CronJob)."""
    from tarn import maintenance as m
    from tarn.lake import Lake

    reports = m.run(Lake(_cfg()), retention_days, min_files)
    cols = ["table", "files_before", "files_after", "partitions_compacted", "snapshots_expired"]
    print_rows(
        cols, [tuple(getattr(r, c) for c in cols) for r in reports], as_json, title="maintenance"
    )


# -- log sources -------------------------------------------------------------------------------
@main.group()
def logsources() -> None:
    """Log sources: list them, check their samples against their goldens."""


@logsources.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the sources as JSON objects.")
def logsources_list(as_json: bool) -> None:
    """List the built-in and your own log sources with their format and tables."""
    from tarn import logsources as ls

    ok, failed = ls.load_all(_cfg().config_dir)
    rows = []
    for name in sorted({*ok, *failed}):
        if name in failed:
            rows.append((name, "", "", "", f"does not load: {failed[name].problems[0]}"))
            continue
        s = ok[name]
        origin = (
            "built-in" if s.builtin else f"yours (extends {s.extends})" if s.extends else "yours"
        )
        summary = s.description.split(". ")[0]
        rows.append((name, s.format, ", ".join(s.tables), origin, summary[:80]))
    print_rows(
        ["log source", "format", "tables", "origin", "description"],
        rows,
        as_json,
        title="log sources",
    )
    if failed:
        raise click.ClickException(
            f"{len(failed)} log source(s) do not load: {', '.join(failed)}; "
            "see `tarn logsources test NAME` for the details"
        )


@logsources.command("test")
@click.argument("names", nargs=-1)
def logsources_test(names: tuple[str, ...]) -> None:
    """Normalize every sample of each log source (or of NAMES) and compare with its golden."""
    from tarn import logsources as ls
    from tarn.exceptions import UnknownLogSourceError
    from tarn.logsources import golden

    config_dir = _cfg().config_dir
    ok, failed = ls.load_all(config_dir)
    unknown = [n for n in names if n not in ok and n not in failed]
    if unknown:
        raise click.ClickException(str(UnknownLogSourceError(unknown[0], ls.names(config_dir))))
    rows: list[tuple[Any, ...]] = []
    bad = 0
    with console.status("normalizing samples") as status:
        for name in names or sorted({*ok, *failed}):
            if name in failed:
                bad += 1
                rows.append((name, "-", "", "", "FAIL", str(failed[name])))
                continue
            status.update(f"normalizing the samples of {name}")
            for r in golden.run(ok[name]):
                bad += not r.ok
                rows.append(
                    (name, r.sample, r.rows, r.sidelined, "pass" if r.ok else "FAIL", r.detail)
                )
    print_rows(
        ["source", "sample", "rows", "sidelined", "result", "detail"],
        rows,
        False,
        title="log source goldens",
    )
    if bad:
        raise click.ClickException(
            f"{bad} of {len(rows)} failed. If a change is intended, rewrite the goldens with "
            "`python -m tarn.logsources.golden --write NAME` and review the diff"
        )
    console.print(f"{len(rows)} passed, 0 failed")


def _register_services() -> None:
    try:
        from tarn.services.cli import services
    except ImportError:
        return
    main.add_command(services)


_register_services()

if __name__ == "__main__":
    sys.exit(main())
