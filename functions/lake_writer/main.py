"""lake_writer: commits a normalized batch to its Iceberg tables exactly once."""

import functions_framework

from tarn import pipeline
from tarn.runtime import context, install_health

install_health("store", "lake")


@functions_framework.cloud_event
def handle(event):
    pipeline.write_lake(context(), event)
