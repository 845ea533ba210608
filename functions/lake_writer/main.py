"""lake_writer: commits normalized batches to Iceberg exactly once, and keeps tarn_alerts current."""

import functions_framework

from tarn import alerting, events, pipeline
from tarn.runtime import context, install_health

install_health("store", "lake")


@functions_framework.cloud_event
def handle(event):
    if event["type"] == events.ALERT:
        alerting.record(context(), event)
    else:
        pipeline.write_lake(context(), event)
