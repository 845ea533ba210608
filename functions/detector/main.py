"""detector: runs the real-time Python detections on a normalized batch, emits rule matches."""

import functions_framework

from tarn import pipeline
from tarn.runtime import context, install_health

install_health("store")


@functions_framework.cloud_event
def handle(event):
    pipeline.detect_batch(context(), event)
