"""tarn's local broker: the Knative Eventing Trigger contract, run over NATS JetStream.

This module reads `eventing.knative.dev/v1` Trigger manifests (the same files Knative runs in
production) into plain values: filters, subscriber, retry policy, dead-letter sink.
`tarn.broker._server` runs them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tarn._paths import shipped
from tarn.exceptions import TarnError

TRIGGER_API = "eventing.knative.dev/v1"


class TriggerError(TarnError):
    pass


@dataclass(frozen=True)
class Destination:
    """A Knative Destination: a `ref` to an Addressable, a `uri`, or both (uri relative to ref)."""

    kind: str | None = None
    name: str | None = None
    uri: str | None = None

    def resolve(self, services: Mapping[str, str]) -> str:
        if self.name is not None:
            if self.name not in services:
                raise TriggerError(
                    f"no address for {self.kind or 'Service'} {self.name!r}; "
                    f"known: {', '.join(sorted(services)) or 'none'}"
                )
            base = services[self.name]
            return base.rstrip("/") + "/" + self.uri.lstrip("/") if self.uri else base
        if self.uri:
            return self.uri
        raise TriggerError("a destination needs ref or uri")


@dataclass(frozen=True)
class Trigger:
    name: str
    broker: str
    subscriber: Destination
    filter_attributes: Mapping[str, str] = field(default_factory=dict)
    filters: tuple[Mapping[str, Any], ...] = ()
    retry: int = 0
    backoff_policy: str = "exponential"
    backoff_delay: float = 0.2
    dead_letter: Destination | None = None
    source_file: str = ""

    def matches(self, attributes: Mapping[str, Any]) -> bool:
        # Knative: when `filters` is set it overrides `filter`.
        if self.filters:
            return all(_eval_filter(f, attributes) for f in self.filters)
        return all(
            str(attributes.get(k)) == str(v) for k, v in self.filter_attributes.items() if v != ""
        )

    def backoff(self, retry_number: int) -> float:
        """Delay before retry number `retry_number` (1-based), as Knative computes it."""
        if self.backoff_policy == "linear":
            return self.backoff_delay * retry_number
        return self.backoff_delay * (2**retry_number)

    @property
    def type_filter(self) -> str | None:
        """The one exact `type` this Trigger wants, if that is all it filters on."""
        if not self.filters and set(self.filter_attributes) == {"type"}:
            return str(self.filter_attributes["type"])
        return None


def _eval_filter(expr: Mapping[str, Any], attrs: Mapping[str, Any]) -> bool:
    if len(expr) != 1:
        raise TriggerError(f"a filter expression has exactly one dialect key, got {sorted(expr)}")
    ((dialect, arg),) = expr.items()
    if dialect == "exact":
        return all(str(attrs.get(k)) == str(v) for k, v in arg.items())
    if dialect == "prefix":
        return all(str(attrs.get(k, "")).startswith(str(v)) for k, v in arg.items())
    if dialect == "suffix":
        return all(str(attrs.get(k, "")).endswith(str(v)) for k, v in arg.items())
    if dialect == "all":
        return all(_eval_filter(e, attrs) for e in arg)
    if dialect == "any":
        return any(_eval_filter(e, attrs) for e in arg)
    if dialect == "not":
        return not _eval_filter(arg, attrs)
    raise TriggerError(
        f"filter dialect {dialect!r} is not supported locally; use exact, prefix, suffix, all, any, not"
    )


_DURATION = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str) -> float:
    """ISO 8601 duration (as Knative's backoffDelay) -> seconds."""
    m = _DURATION.match(text.strip())
    if not m or text.strip() in ("P", "PT"):
        raise TriggerError(f"{text!r} is not an ISO 8601 duration such as PT0.5S or PT1M")
    parts = {k: float(v) if v else 0.0 for k, v in m.groupdict().items()}
    return parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"]


def _destination(spec: Any, where: str) -> Destination:
    if not isinstance(spec, dict):
        raise TriggerError(f"{where}: must be a mapping with ref and/or uri")
    ref = spec.get("ref") or {}
    if not ref and not spec.get("uri"):
        raise TriggerError(f"{where}: needs ref or uri")
    return Destination(kind=ref.get("kind"), name=ref.get("name"), uri=spec.get("uri"))


def parse_trigger(doc: Mapping[str, Any], source_file: str = "") -> Trigger:
    name = (doc.get("metadata") or {}).get("name")
    where = f"{source_file}: Trigger {name!r}"
    spec = doc.get("spec") or {}
    if not name:
        raise TriggerError(f"{source_file}: a Trigger needs metadata.name")
    if "subscriber" not in spec:
        raise TriggerError(f"{where}: spec.subscriber is required")
    delivery = spec.get("delivery") or {}
    try:
        delay = parse_duration(delivery["backoffDelay"]) if "backoffDelay" in delivery else 0.2
    except TriggerError as exc:
        raise TriggerError(f"{where}: spec.delivery.backoffDelay: {exc}") from exc
    policy = delivery.get("backoffPolicy", "exponential")
    if policy not in ("linear", "exponential"):
        raise TriggerError(
            f"{where}: spec.delivery.backoffPolicy must be linear or exponential, not {policy!r}"
        )
    return Trigger(
        name=name,
        broker=spec.get("broker", "default"),
        subscriber=_destination(spec["subscriber"], f"{where}: spec.subscriber"),
        filter_attributes=dict((spec.get("filter") or {}).get("attributes") or {}),
        filters=tuple(spec.get("filters") or ()),
        retry=int(delivery.get("retry", 0)),
        backoff_policy=policy,
        backoff_delay=delay,
        dead_letter=_destination(
            delivery["deadLetterSink"], f"{where}: spec.delivery.deadLetterSink"
        )
        if delivery.get("deadLetterSink")
        else None,
        source_file=source_file,
    )


def load_triggers(directory: Path | str | None = None) -> list[Trigger]:
    """Every Trigger in every YAML file under `directory` (multi-document files too)."""
    root = Path(directory) if directory else shipped("eventing")
    if not root.is_dir():
        raise TriggerError(f"eventing directory {root} does not exist; set broker.eventing_dir")
    triggers = []
    for path in sorted([*root.rglob("*.yaml"), *root.rglob("*.yml")]):
        for doc in yaml.safe_load_all(path.read_text()):
            if (
                isinstance(doc, dict)
                and doc.get("kind") == "Trigger"
                and doc.get("apiVersion") == TRIGGER_API
            ):
                triggers.append(parse_trigger(doc, str(path.relative_to(root))))
    names = [t.name for t in triggers]
    if len(set(names)) != len(names):
        raise TriggerError(
            f"duplicate Trigger names in {root}: {sorted(n for n in set(names) if names.count(n) > 1)}"
        )
    return triggers
