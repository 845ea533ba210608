"""scheduled_detections: on a tick (a PingSource event, or the CronJob's `tarn detections run-scheduled`), runs the due SQL detections."""

import functions_framework

from tarn import scheduled
from tarn.runtime import context, install_health

install_health("bus")


@functions_framework.cloud_event
def handle(event):
    scheduled.run_due(context())
