"""Real local stand-ins for alert destinations: Slack, PagerDuty's Events API v2, an SMTP server.

Each is a real server on 127.0.0.1 that checks every request the way the service does (and a
little more strictly), answers as the service answers, keeps what it accepted and why it refused
the rest, and can be told to fail the next requests. Tests deliver to them; a user can try a
destination against them with `python -m tarn.peers`. The webhook peer is
tarn.webhook_receiver.

    from tarn.peers.slack import SlackPeer
    from tarn.peers.pagerduty import PagerDutyPeer
    from tarn.peers.smtp import SmtpPeer   # needs aiosmtpd
"""
