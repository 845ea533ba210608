"""The manifests agree with each other and with the code.

- every Trigger's subscriber and dead-letter sink is a Knative Service that exists;
- every event type a function emits (tarn.events.EMITS) has a Trigger or is documented
  as terminal (tarn.events.TERMINAL), and every Trigger's type is emitted by someone;
- every function has a Service or CronJob, and an image built by skaffold.yaml;
- the functions that emit get K_SINK from a SinkBinding aimed at the Broker;
- each Service follows the sizing and safety rules below; each CronJob too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tarn import config, events
from tarn.exceptions import ConfigError

from ._manifests import ROOT, Rendered, Resource, load_file, render

TRIGGERS = sorted((ROOT / "eventing" / "triggers").glob("*.yaml"))
FUNCTIONS = sorted(
    set(events.EMITS)
    | {p.parent.name for p in (ROOT / "functions").glob("*/main.py")}
    # Runs as the scheduled-detections CronJob (its function is for PingSource use).
    | {"scheduled_detections"}
)
PUBLIC_SERVICES = {"ingestor"}
SINK_LABEL = ("tarn.dev/sink", "broker")
AUTOSCALING = "autoscaling.knative.dev/"
QUANTITY = re.compile(r"^([0-9.]+)(m|k|Ki|M|Mi|G|Gi|T|Ti)?$")
SUFFIX = {
    None: 1,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def deployed_name(function: str) -> str:
    return function.replace("_", "-")


def quantity(value: Any) -> float:
    match = QUANTITY.match(str(value))
    assert match, f"{value!r} is not a quantity tarn uses"
    return float(match.group(1)) * SUFFIX[match.group(2)]


def load_triggers() -> list[Resource]:
    out = []
    for path in TRIGGERS:
        found, problems = load_file(path)
        assert not problems, problems
        out += found
    return out


def skaffold() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "skaffold.yaml").read_text())


def artifacts(profile: str | None = None) -> list[dict[str, Any]]:
    build = skaffold()
    if profile is not None:
        build = next(p for p in build["profiles"] if p["name"] == profile)
    return build["build"]["artifacts"]


def container(workload: Resource) -> dict[str, Any]:
    spec = workload.doc["spec"]
    if workload.kind == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    (only,) = spec["template"]["spec"]["containers"]
    return only


def pod_spec(workload: Resource) -> dict[str, Any]:
    spec = workload.doc["spec"]
    if workload.kind == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


def workloads(base: Rendered) -> list[Resource]:
    return base.of_kind("Service") + base.of_kind("CronJob")


def routed_types() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for t in load_triggers():
        out.setdefault(t.doc["spec"]["filter"]["attributes"]["type"], []).append(t.name)
    return out


TRIGGER_RESOURCES = load_triggers()


# Triggers


@pytest.mark.parametrize("trigger", TRIGGER_RESOURCES, ids=lambda t: t.name)
def test_trigger_subscriber_is_an_existing_service(trigger: Resource, base: Rendered) -> None:
    ref = trigger.doc["spec"]["subscriber"].get("ref") or {}
    where = f"{trigger.file}: {trigger.label}: spec.subscriber.ref"
    assert ref.get("apiVersion") == "serving.knative.dev/v1" and ref.get("kind") == "Service", where
    assert base.find("Service", ref.get("name", "")), (
        f"{where}: no Service {ref.get('name')!r} in knative/"
    )


@pytest.mark.parametrize("trigger", TRIGGER_RESOURCES, ids=lambda t: t.name)
def test_trigger_filters_type_and_retries_to_the_dead_letter_service(
    trigger: Resource, base: Rendered
) -> None:
    spec, where = trigger.doc["spec"], f"{trigger.file}: {trigger.label}"
    broker = base.find("Broker", spec.get("broker", ""))
    assert broker and broker.namespace == trigger.namespace, f"{where}: spec.broker names no Broker"
    assert spec.get("filter", {}).get("attributes", {}).get("type"), f"{where}: no type filter"
    delivery = spec.get("delivery") or {}
    assert delivery.get("retry", 0) >= 1, f"{where}: spec.delivery.retry"
    assert delivery.get("backoffPolicy") == "exponential", f"{where}: spec.delivery.backoffPolicy"
    assert re.fullmatch(r"PT[0-9.]+S", str(delivery.get("backoffDelay"))), (
        f"{where}: spec.delivery.backoffDelay"
    )
    dls = (delivery.get("deadLetterSink") or {}).get("ref") or {}
    assert dls.get("kind") == "Service" and dls.get("name") == "dead-letter", (
        f"{where}: spec.delivery.deadLetterSink must be the dead-letter Service"
    )
    assert base.find("Service", "dead-letter")


def test_broker_dead_letters_to_the_dead_letter_service(base: Rendered) -> None:
    broker = base.find("Broker", "tarn")
    assert broker is not None
    ref = broker.doc["spec"]["delivery"]["deadLetterSink"]["ref"]
    assert base.find("Service", ref["name"]), ref


# Event types


@pytest.mark.parametrize(
    ("function", "event_type"),
    [(f, t) for f, types in sorted(events.EMITS.items()) for t in types],
    ids=lambda x: str(x),
)
def test_emitted_type_is_routed_or_terminal(function: str, event_type: str) -> None:
    assert event_type in routed_types() or event_type in events.TERMINAL, (
        f"{function} emits {event_type}, which no Trigger in eventing/triggers/ filters on; "
        "add a Trigger, or list it in tarn.events.TERMINAL with the reason"
    )


def test_terminal_types_have_no_trigger() -> None:
    both = sorted(set(events.TERMINAL) & set(routed_types()))
    assert not both, f"documented as terminal but routed by a Trigger: {both}"


def test_every_routed_type_is_emitted() -> None:
    emitted = {t for types in events.EMITS.values() for t in types}
    unknown = {t: names for t, names in routed_types().items() if t not in emitted}
    assert not unknown, f"Triggers on types no function emits (tarn.events.EMITS): {unknown}"


# Functions, workloads and images


@pytest.mark.parametrize("function", FUNCTIONS)
def test_function_has_a_service_or_cronjob(function: str, base: Rendered) -> None:
    name = deployed_name(function)
    assert base.find("Service", name) or base.find("CronJob", name), (
        f"function {function} has no Knative Service or CronJob named {name} in knative/base"
    )


@pytest.mark.parametrize("function", FUNCTIONS)
def test_function_has_an_image_in_skaffold(function: str, base: Rendered) -> None:
    image = f"tarn-{deployed_name(function)}"
    for profile in (None, "dev"):
        built = [a for a in artifacts(profile) if a["image"] == image]
        assert len(built) == 1, f"skaffold.yaml ({profile or 'default'} build) lacks {image}"
        assert built[0]["docker"]["buildArgs"]["FUNCTION"] == function
    name = deployed_name(function)
    workload = base.find("Service", name) or base.find("CronJob", name)
    assert workload and container(workload)["image"] == image


def test_every_image_used_is_built(base: Rendered) -> None:
    built = {a["image"] for a in artifacts()}
    for w in workloads(base):
        assert container(w)["image"] in built, f"{w.file}: {w.label}: image not built by skaffold"


def test_every_artifact_builds_a_known_function() -> None:
    for profile in (None, "dev"):
        for a in artifacts(profile):
            function = a["docker"]["buildArgs"]["FUNCTION"]
            assert function in FUNCTIONS, f"skaffold builds {a['image']} for unknown {function}"
            assert a["image"] == f"tarn-{deployed_name(function)}"


# K_SINK


def _selected(binding: Resource, workload_labels: dict[str, str], kind: str) -> bool:
    subject = binding.doc["spec"]["subject"]
    wanted = subject.get("selector", {}).get("matchLabels", {})
    return subject.get("kind") == kind and all(
        workload_labels.get(k) == v for k, v in wanted.items()
    )


def test_sinkbindings_aim_at_the_broker(base: Rendered) -> None:
    bindings = base.of_kind("SinkBinding")
    assert bindings
    for b in bindings:
        ref = b.doc["spec"]["sink"]["ref"]
        broker = base.find("Broker", ref["name"])
        assert ref["kind"] == "Broker" and broker and broker.namespace == ref["namespace"], b.label


@pytest.mark.parametrize("function", sorted(f for f, t in events.EMITS.items() if t))
def test_emitting_function_gets_k_sink(function: str, base: Rendered) -> None:
    workload = base.find("Service", deployed_name(function))
    kind = "Service"
    if workload is None:  # a function that runs on a schedule: its CronJob's Jobs need K_SINK
        workload = base.find("CronJob", deployed_name(function))
        kind = "Job"
    assert workload is not None, f"{function} emits events but has no Service or CronJob"
    if kind == "Job":
        labels = workload.doc["spec"]["jobTemplate"]["metadata"].get("labels", {})
    else:
        labels = workload.metadata.get("labels", {})
    assert any(_selected(b, labels, kind) for b in base.of_kind("SinkBinding")), (
        f"{workload.file}: {workload.label} emits events but no SinkBinding selects it "
        f"(label {SINK_LABEL[0]}: {SINK_LABEL[1]})"
    )


def test_labelled_workloads_are_bound(base: Rendered) -> None:
    bindings = base.of_kind("SinkBinding")
    for w in workloads(base):
        if w.kind == "CronJob":
            labels, kind = w.doc["spec"]["jobTemplate"]["metadata"].get("labels", {}), "Job"
        else:
            labels, kind = w.metadata.get("labels", {}), "Service"
        if labels.get(SINK_LABEL[0]) == SINK_LABEL[1]:
            assert any(_selected(b, labels, kind) for b in bindings), w.label


# Services


def _services() -> list[Resource]:
    return render(ROOT / "knative" / "base").of_kind("Service")


@pytest.mark.parametrize("service", _services(), ids=lambda s: s.name)
def test_service_scales_to_zero_with_a_sized_concurrency(service: Resource) -> None:
    template = service.doc["spec"]["template"]
    notes = template["metadata"]["annotations"]
    spec, where = template["spec"], f"{service.file}: {service.label}"
    assert notes.get(AUTOSCALING + "class") == "kpa.autoscaling.knative.dev", where
    assert notes.get(AUTOSCALING + "min-scale", "0") == "0", f"{where}: must scale to zero"
    cc = spec.get("containerConcurrency", 0)
    assert cc >= 1, f"{where}: set containerConcurrency for the function's work"
    assert notes.get(AUTOSCALING + "metric") == "concurrency", where
    assert 1 <= int(notes[AUTOSCALING + "target"]) <= cc, f"{where}: target must be in 1..{cc}"
    assert 1 <= int(notes[AUTOSCALING + "target-utilization-percentage"]) <= 100, where
    assert int(notes[AUTOSCALING + "max-scale"]) >= 1, where
    assert 0 < spec.get("timeoutSeconds", 0) <= 600, f"{where}: timeoutSeconds"
    env = {e["name"]: e.get("value") for e in container(service).get("env", [])}
    slots = int(env["WORKERS"]) * int(env["THREADS"])
    assert slots > cc, (
        f"{where}: WORKERS x THREADS ({slots}) must exceed containerConcurrency ({cc}), "
        "so that a thread is free for the health probes while every request slot works"
    )


@pytest.mark.parametrize("service", _services(), ids=lambda s: s.name)
def test_service_has_resources_probes_and_a_locked_down_container(service: Resource) -> None:
    c, where = container(service), f"{service.file}: {service.label}"
    requests, limits = c["resources"]["requests"], c["resources"]["limits"]
    for res in ("cpu", "memory"):
        assert quantity(requests[res]) <= quantity(limits[res]), f"{where}: {res} request > limit"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", where
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", where
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"].get("port", 8080) == 8080, f"{where}: {probe} port"
    assert [p["containerPort"] for p in c["ports"]] == [8080], where
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["allowPrivilegeEscalation"] is False, where
    assert sc["readOnlyRootFilesystem"] is True, where
    assert sc["capabilities"]["drop"] == ["ALL"], where


@pytest.mark.parametrize("service", _services(), ids=lambda s: s.name)
def test_service_visibility(service: Resource) -> None:
    visibility = service.metadata.get("labels", {}).get("networking.knative.dev/visibility")
    if service.name in PUBLIC_SERVICES:
        assert visibility is None, f"{service.label} is the public ingest route"
    else:
        assert visibility == "cluster-local", f"{service.label} must not have a public route"


# Configuration and Secrets of every workload

WORKLOADS = [*_services(), *render(ROOT / "knative" / "base").of_kind("CronJob")]


@pytest.mark.parametrize("workload", WORKLOADS, ids=lambda w: w.label)
def test_workload_config_and_secrets_exist(
    workload: Resource, base: Rendered, secrets: Rendered
) -> None:
    c, pod, where = container(workload), pod_spec(workload), f"{workload.file}: {workload.label}"
    assert base.find("ServiceAccount", pod["serviceAccountName"]), f"{where}: serviceAccountName"
    for source in c.get("envFrom", []):
        if "configMapRef" in source:
            assert base.find("ConfigMap", source["configMapRef"]["name"]), f"{where}: {source}"
        if "secretRef" in source:
            assert secrets.find("Secret", source["secretRef"]["name"]), f"{where}: {source}"
    env_cm = base.find("ConfigMap", "tarn-env")
    assert env_cm is not None
    assert {"configMapRef": {"name": "tarn-env"}} in c["envFrom"], f"{where}: envFrom tarn-env"
    config_file = env_cm.doc["data"]["TARN_CONFIG_FILE"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = [m for m in c["volumeMounts"] if volumes[m["name"]].get("configMap")]
    assert any(
        volumes[m["name"]]["configMap"]["name"] == "tarn-config"
        and config_file == f"{m['mountPath']}/tarn.yaml"
        for m in mounts
    ), f"{where}: TARN_CONFIG_FILE {config_file} is not where tarn-config is mounted"


@pytest.mark.parametrize("workload", WORKLOADS, ids=lambda w: w.label)
def test_workload_configuration_loads(
    workload: Resource, base: Rendered, secrets: Rendered, tmp_path: Path
) -> None:
    """tarn.yaml plus the workload's TARN_* variables pass tarn's own config validation."""
    c = container(workload)
    environ = {e["name"]: str(e.get("value", "")) for e in c.get("env", [])}
    for source in c.get("envFrom", []):
        if "configMapRef" in source:
            found = base.find("ConfigMap", source["configMapRef"]["name"])
            assert found is not None
            environ.update(found.doc["data"])
        if "secretRef" in source:
            found = secrets.find("Secret", source["secretRef"]["name"])
            assert found is not None
            environ.update(found.doc["stringData"])
    for line in re.findall(
        r"^ENV ((?:[^\n]*\\\n)*[^\n]*)", (ROOT / "Dockerfile").read_text(), re.M
    ):
        environ.update(re.findall(r"(\w+)=(\S+)", line))
    tarn_yaml = base.find("ConfigMap", "tarn-config")
    assert tarn_yaml is not None
    path = tmp_path / "tarn.yaml"
    path.write_text(tarn_yaml.doc["data"]["tarn.yaml"])
    environ["TARN_CONFIG_FILE"] = str(path)
    try:
        cfg = config.load(environ=environ)
    except ConfigError as exc:
        pytest.fail(f"{workload.file}: {workload.label}: {exc}")
    assert cfg.storage.kind == "s3" and cfg.query.engine == "trino"


# CronJobs


@pytest.mark.parametrize(
    "cronjob", render(ROOT / "knative" / "base").of_kind("CronJob"), ids=lambda c: c.name
)
def test_cronjob_runs_the_tarn_cli_one_at_a_time(cronjob: Resource) -> None:
    spec, where = cronjob.doc["spec"], f"{cronjob.file}: {cronjob.label}"
    assert len(spec["schedule"].split()) == 5, f"{where}: schedule"
    assert spec["concurrencyPolicy"] == "Forbid", where
    job = spec["jobTemplate"]["spec"]
    assert job.get("activeDeadlineSeconds", 0) > 0, f"{where}: a stuck run must end"
    assert container(cronjob)["command"][0] == "tarn", where
    assert pod_spec(cronjob)["securityContext"]["runAsNonRoot"] is True, where


def test_cronjobs_cover_the_scheduled_work(base: Rendered) -> None:
    commands = {tuple(container(c)["command"]) for c in base.of_kind("CronJob")}
    assert ("tarn", "detections", "run-scheduled") in commands
    assert ("tarn", "maintenance") in commands


# tarn.yaml and the Secrets


def test_tarn_yaml_holds_the_production_settings(base: Rendered) -> None:
    cm = base.find("ConfigMap", "tarn-config")
    assert cm is not None
    settings = yaml.safe_load(cm.doc["data"]["tarn.yaml"])
    assert settings["storage"]["kind"] == "s3"
    assert settings["storage"]["endpoint"]
    assert (settings["storage"]["raw_bucket"], settings["storage"]["lake_bucket"]) == (
        "tarn-raw",
        "tarn-lake",
    )
    assert settings["catalog"]["name"] == "tarn"
    assert settings["catalog"]["warehouse"] == "s3://tarn-lake/warehouse"
    assert settings["query"]["engine"] == "trino"
    assert settings["query"]["trino"]["catalog"] == "iceberg"
    assert {"host", "port", "user"} <= set(settings["query"]["trino"])
    assert settings["nats"]["url"] == "nats://nats.nats.svc:4222"
    text = cm.doc["data"]["tarn.yaml"].lower()
    for secret in ("token", "secret_key", "access_key", "password", "uri:"):
        assert secret not in text, f"tarn.yaml must not hold {secret}: it comes from a Secret"


def test_secrets_hold_placeholders_only(secrets: Rendered) -> None:
    found = secrets.of_kind("Secret")
    assert found
    keys = set()
    for s in found:
        assert "data" not in s.doc, f"{s.label}: use stringData with placeholders"
        for key, value in s.doc["stringData"].items():
            where = f"{s.file}: {s.label}: stringData.{key}"
            assert key.startswith("TARN_"), where
            if key.endswith("__TYPE"):
                assert re.fullmatch(r"[a-z][a-z0-9_]*", value), f"{where}: a destination type"
            else:
                assert "REPLACE_ME" in value, f"{where} is not a placeholder"
            keys.add(key)
    assert {
        "TARN_INGEST__TOKEN",
        "TARN_STORAGE__ACCESS_KEY",
        "TARN_STORAGE__SECRET_KEY",
        "TARN_CATALOG__URI",
    } <= keys
    destinations: dict[str, set[str]] = {}
    for key in keys:
        match = re.fullmatch(r"TARN_DESTINATIONS__([A-Z0-9]+)__([A-Z]+)", key)
        if key.startswith("TARN_DESTINATIONS__"):
            assert match and match.group(2) in {
                "TYPE",
                "URL",
                "TOKEN",
                "SECRET",
                "CHANNEL",
                "ROUTING_KEY",
            }, key
            destinations.setdefault(match.group(1), set()).add(match.group(2))
    assert destinations, "no destination in the placeholder Secrets"
    for name, fields in destinations.items():
        # tarn's DestinationConfig requires a type; a URL or token says where to deliver.
        assert "TYPE" in fields and fields & {"URL", "TOKEN"}, f"destination {name}: {fields}"


# Broker and channel


def test_broker_is_channel_based_on_nats_jetstream(base: Rendered) -> None:
    broker = base.find("Broker", "tarn")
    assert broker is not None
    notes = broker.metadata.get("annotations", {})
    assert notes.get("eventing.knative.dev/broker.class") == "MTChannelBasedBroker"
    config = broker.doc["spec"]["config"]
    cm = base.find(config["kind"], config["name"])
    assert cm is not None and cm.namespace == config["namespace"], config
    template = yaml.safe_load(cm.doc["data"]["channel-template-spec"])
    assert template["apiVersion"] == "messaging.knative.dev/v1alpha1"
    assert template["kind"] == "NatsJetStreamChannel"
    stream = template["spec"]["stream"]["config"]
    # Limits: the terminal types stay readable on the stream (see tarn.events.TERMINAL).
    assert stream["retention"] == "Limits"
    assert stream["replicas"] >= 1
    assert stream["maxAge"]


# The walkthrough's event


def test_deploy_doc_sends_a_routed_event_type() -> None:
    text = (ROOT / "docs" / "deploy.md").read_text()
    sent = re.findall(r"Ce-Type: (\S+?)[\"'\s]", text)
    assert sent, "docs/deploy.md sends no CloudEvent with curl"
    for event_type in sent:
        assert event_type in routed_types(), (
            f"docs/deploy.md sends {event_type}, which no Trigger routes"
        )
