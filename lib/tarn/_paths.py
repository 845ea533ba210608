"""Where tarn's own shipped folders are: beside the package in a checkout, or inside a wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parents[1]  # lib/tarn -> the project root


def shipped(name: str) -> Path:
    """`detections`, `eventing`, `samples` or `functions`: the checkout's, else the wheel's copy."""
    in_checkout = _CHECKOUT / name
    if in_checkout.is_dir():
        return in_checkout
    return _PACKAGE / "_builtin" / name


def project_root() -> Path:
    return _CHECKOUT
