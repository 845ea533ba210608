"""transformer: raw object -> normalized Parquet batches (bad records sidelined), one event per batch."""

import functions_framework

from tarn import pipeline
from tarn.runtime import context, install_health

install_health("store")


@functions_framework.cloud_event
def handle(event):
    pipeline.transform(context(), event)
