"""`make demo`: the whole pipeline on this machine, start to finish, then everything stopped.

Starts nats-server, the broker and every function; ingests the bundled CloudTrail samples
(and a file with a few broken lines); waits for the lake and the detections; shows the alerts
a local webhook receiver got, the lake's answer to a query, and the sidelined lines.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import sys
import time
from pathlib import Path

from rich.console import Console

from tarn import _proc, config
from tarn._paths import shipped
from tarn.webhook_receiver import Received, WebhookReceiver

console = Console()


def _free_block(start: int, size: int) -> int:
    for base in range(start, start + 2000, size + 3):
        if all(not _proc.port_open("127.0.0.1", base + i) for i in range(size)):
            return base
    raise SystemExit("no free block of local ports found for the demo")


def _print_alert(item: Received) -> None:
    a = item.body["alert"]
    console.print(
        f"  [bold red]ALERT[/] \\[{a['severity']}] {a['title']}  "
        f"[dim]({item.body['action']}, {a['match_count']} match{'es' if a['match_count'] != 1 else ''}, "
        f"detection {a['detection']})[/]"
    )


def main() -> int:
    from tarn import broker as broker_mod
    from tarn import query, watch
    from tarn.cli import post_ingest, print_rows
    from tarn.devstack import FUNCTIONS, DevStack

    home = Path(os.environ.get("TARN_DEMO_HOME", ".tarn/demo")).resolve()
    shutil.rmtree(home, ignore_errors=True)  # every demo starts from an empty lake
    secret = secrets.token_hex(16)
    receiver = WebhookReceiver(secret=secret, on_alert=_print_alert)
    hook_url = receiver.start()
    base = _free_block(18600, len(FUNCTIONS) + 2)
    os.environ.update(
        {
            "TARN_HOME": str(home),
            "TARN_NATS__URL": f"nats://127.0.0.1:{base + len(FUNCTIONS)}",
            "TARN_BROKER__PORT": str(base + len(FUNCTIONS) + 1),
            "TARN_DEV__BASE_PORT": str(base),
            "TARN_DESTINATIONS__DEMO_WEBHOOK__TYPE": "webhook",
            "TARN_DESTINATIONS__DEMO_WEBHOOK__URL": hook_url,
            "TARN_DESTINATIONS__DEMO_WEBHOOK__SECRET": secret,
        }
    )
    config.reset()
    cfg = config.get()
    stack = DevStack(cfg)
    samples = shipped("samples") / "aws_cloudtrail"
    files = [*sorted(samples.glob("*.json.gz")), samples / "bad_lines.ndjson"]
    started = time.monotonic()
    try:
        console.rule("[bold]tarn demo")
        console.print(f"lake and logs under {home}")
        with console.status("starting") as status:
            stack.up(lambda line: status.update(f"starting {line}"))
        console.print(
            f"[green]up[/]: nats-server, broker, {len(FUNCTIONS)} functions ({time.monotonic() - started:.1f}s)"
        )

        console.rule("ingest")
        start_seq = asyncio.run(watch.stream_position(cfg))
        ingests = {}
        for path in files:
            with open(path, "rb") as f:
                accepted = post_ingest(cfg, "aws_cloudtrail", f)
            ingests[accepted["ingest_id"]] = path.name
            console.print(
                f"  sent {path.name} ({accepted['bytes']:,} bytes) -> ingest {accepted['ingest_id'][:12]}"
            )
        with console.status("waiting for the lake and the detections") as status:

            def show(progress: dict[str, watch.IngestProgress]) -> None:
                done = sum(p.done for p in progress.values())
                rows = sum(p.good for p in progress.values())
                status.update(f"{done}/{len(progress)} ingests done, {rows:,} records normalized")

            progress = asyncio.run(watch.wait_for_ingests(cfg, list(ingests), start_seq, 180, show))
        total = sum(p.good for p in progress.values())
        sidelined = sum(p.sidelined for p in progress.values())
        matches = sum(p.matches for p in progress.values())
        console.print(
            f"  [green]landed[/] {total:,} records in Iceberg; {sidelined} sidelined; {matches} detection matches"
        )

        console.rule("alerts delivered to the local webhook")
        triggers = [t.name for t in broker_mod.load_triggers(cfg.broker.eventing_dir)]
        asyncio.run(watch.wait_idle(cfg, triggers, timeout=120))
        delivered = receiver.alerts()
        console.print(
            f"  {len(delivered)} alerts delivered ({len(receiver.received)} webhook calls, signatures checked)"
        )

        console.rule("the lake: events per action (top 10)")
        result = query.run(
            cfg,
            "SELECT event.action AS action, count(*) AS events, count(DISTINCT user.name) AS users "
            "FROM aws_cloudtrail GROUP BY event.action ORDER BY events DESC, action LIMIT 10",
        )
        print_rows(result.columns, result.rows, False)
        result = query.run(
            cfg, "SELECT severity, title, match_count FROM tarn_alerts ORDER BY severity, title"
        )
        print_rows(result.columns, result.rows, False, title="tarn_alerts")
        result = query.run(cfg, "SELECT stage, reason FROM tarn_sideline ORDER BY position")
        print_rows(result.columns, result.rows, False, title="tarn_sideline (kept, with reasons)")
        if receiver.rejected:
            console.print(
                f"[red]the webhook receiver rejected {len(receiver.rejected)} calls: {receiver.rejected[:3]}"
            )
            return 1
        if len(delivered) < 2:
            console.print("[red]expected at least two alerts")
            return 1
        console.print(f"[bold green]demo done[/] in {time.monotonic() - started:.1f}s")
        return 0
    finally:
        stopped = stack.down()
        receiver.stop()
        console.print(f"stopped {len(stopped)} processes: {', '.join(stopped)}")


if __name__ == "__main__":
    sys.exit(main())
