"""Try destinations without the real services: `python -m tarn.peers` runs the local Slack,
PagerDuty and SMTP peers, prints the TARN_DESTINATIONS__* variables that point tarn at them,
and then prints each message they accept or refuse until Ctrl-C."""

from __future__ import annotations

import argparse
import secrets
import time

from tarn.peers.pagerduty import PagerDutyPeer
from tarn.peers.slack import SlackPeer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tarn.peers", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--no-smtp", action="store_true", help="skip the SMTP peer (needs aiosmtpd)"
    )
    args = parser.parse_args(argv)

    token = "xoxb-" + secrets.token_hex(12)
    routing_key = secrets.token_hex(16)  # 32 characters, as PagerDuty's are
    slack, pagerduty = SlackPeer(token=token), PagerDutyPeer(routing_key=routing_key)
    env = {
        "LOCAL_SLACK__TYPE": "slack",
        "LOCAL_SLACK__URL": slack.start(args.host),
        "LOCAL_SLACK__TOKEN": token,
        "LOCAL_SLACK__CHANNEL": "#alerts",
        "LOCAL_PAGERDUTY__TYPE": "pagerduty",
        "LOCAL_PAGERDUTY__URL": pagerduty.start(args.host),
        "LOCAL_PAGERDUTY__ROUTING_KEY": routing_key,
    }
    smtp = None
    if not args.no_smtp:
        from tarn.peers.smtp import SmtpPeer

        smtp = SmtpPeer()
        host, port = smtp.start(args.host)
        env |= {
            "LOCAL_EMAIL__TYPE": "email",
            "LOCAL_EMAIL__HOST": host,
            "LOCAL_EMAIL__PORT": str(port),
            "LOCAL_EMAIL__FROM": "tarn <tarn@localhost.localdomain>",
            "LOCAL_EMAIL__TO": "soc@localhost.localdomain",
        }
    print("# point tarn at the local peers (e.g. in the shell that runs `tarn dev up`):")
    for key, value in env.items():
        print(f"export TARN_DESTINATIONS__{key}='{value}'")
    print("# waiting for deliveries; Ctrl-C stops", flush=True)
    seen = {"slack": 0, "pagerduty": 0, "email": 0, "rejected": 0}
    try:
        while True:
            time.sleep(0.5)
            for m in slack.messages[seen["slack"] :]:
                where = f"in thread {m.thread_ts}" if m.thread_ts else "new thread"
                print(f"slack     {m.channel} {m.ts} ({where}): {m.text}", flush=True)
            for e in pagerduty.events[seen["pagerduty"] :]:
                summary = (e.get("payload") or {}).get("summary", e["event_action"])
                print(f"pagerduty {e['dedup_key']}: {summary}", flush=True)
            mails = smtp.mails if smtp else []
            for mail in mails[seen["email"] :]:
                print(f"email     {mail.message_id}: {mail.message['Subject']}", flush=True)
            rejected = slack.rejected + pagerduty.rejected + (smtp.rejected if smtp else [])
            for problem in rejected[seen["rejected"] :]:
                print(f"REFUSED   {problem}", flush=True)
            seen = {
                "slack": len(slack.messages),
                "pagerduty": len(pagerduty.events),
                "email": len(mails),
                "rejected": len(rejected),
            }
    except KeyboardInterrupt:
        return 0
    finally:
        slack.stop()
        pagerduty.stop()
        if smtp:
            smtp.stop()


if __name__ == "__main__":
    raise SystemExit(main())
