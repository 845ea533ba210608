"""alert_manager: groups rule matches into alerts (dedupe, window, threshold); state in NATS KV."""

import functions_framework

from tarn import alerting
from tarn.runtime import context, install_health

install_health("bus", "lake")


@functions_framework.cloud_event
def handle(event):
    alerting.manage(context(), event)
