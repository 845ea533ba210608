"""Errors of alert delivery. Each names the destination, what went wrong and what to do."""

from __future__ import annotations

from tarn.exceptions import TarnError


class DeliveryError(TarnError, RuntimeError):
    """A delivery did not reach its destination; the broker retries it, then dead-letters it."""


class DestinationConfigError(DeliveryError):
    """A destination lacks a setting its type needs (or has one that cannot work)."""


class ThreadBusyError(DeliveryError):
    """Another delivery of the same alert is sending its first message; retry to thread under it."""
