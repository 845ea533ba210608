"""alert_forwarder: delivers alert events to their destinations, once per destination."""

import functions_framework

from tarn import alerting
from tarn.runtime import context, install_health

install_health("bus")


@functions_framework.cloud_event
def handle(event):
    alerting.forward(context(), event)
