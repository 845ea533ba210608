"""dead_letter: every Trigger's deadLetterSink; keeps failed deliveries in a durable stream."""

import functions_framework

from tarn import pipeline
from tarn.runtime import context, install_health

install_health("bus")


@functions_framework.cloud_event
def handle(event):
    pipeline.dead_letter(context(), event)
