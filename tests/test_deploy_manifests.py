"""The deployment kit (infra/deploy/): every YAML document valid, and the documents agreeing.

Built-in kinds are validated against the Kubernetes OpenAPI schemas that kubernetes-validate
ships, in its strict form (an unknown field is an error, as a misspelt one would be silently
dropped by the API server), without the network. The custom resources (Prometheus Operator,
KEDA, Config Connector) have no schema here, so their shape is checked field by field against
what their CRDs accept. Then the names the documents give each other are followed: the
ConfigMap and Secret behind every envFrom, the ports probes and Services name, the pods
budgets and policies select, the Deployment each autoscaler drives, and the configuration
itself, which must load in both processes.

Each check returns its problems rather than asserting, so that the tests below can also show
it finds the mistake it is there for, on a copy of the manifests with that mistake made.
"""

from __future__ import annotations

import base64
import copy
import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

import config
import metrics

ROOT = Path(__file__).resolve().parent.parent
DEPLOY_DIR = ROOT / "infra" / "deploy"
# The oldest Kubernetes whose schemas every kubernetes-validate of the pinned range ships.
KUBERNETES_VERSION = "1.34"

# What is applied together: these, plus one of the worker's two autoscalers.
BASE_FILES = ("kubernetes.yaml", "monitoring.yaml", "pubsub.yaml")
AUTOSCALER_FILES = ("autoscaling.yaml", "autoscaling-cpu.yaml")

Body = dict[str, Any]


@dataclass(frozen=True)
class Document:
    file: str
    body: Body

    @property
    def kind(self) -> str:
        return str(self.body.get("kind"))

    @property
    def name(self) -> str:
        return str(self.body.get("metadata", {}).get("name"))

    def __str__(self) -> str:
        return f"{self.file}: {self.kind}/{self.name}"


@dataclass(frozen=True)
class Bundle:
    """Documents applied together, which may refer to each other by name."""

    documents: tuple[Document, ...]

    def of_kind(self, kind: str) -> list[Document]:
        return [doc for doc in self.documents if doc.kind == kind]

    def named(self, kind: str, name: str) -> Document | None:
        return next((doc for doc in self.of_kind(kind) if doc.name == name), None)

    def changed(self, kind: str, name: str, change: Callable[[Body], None]) -> Bundle:
        """A deep copy with ``change`` applied to one document's body."""
        documents = copy.deepcopy(self.documents)
        target = next(doc for doc in documents if (doc.kind, doc.name) == (kind, name))
        change(target.body)
        return Bundle(documents)


def load(file: str) -> list[Document]:
    documents = []
    for body in yaml.safe_load_all((DEPLOY_DIR / file).read_text()):
        if body is None:  # an empty document, e.g. after a trailing ---
            continue
        if not isinstance(body, dict):
            raise TypeError(f"{file}: a document is not a mapping: {body!r}")
        documents.append(Document(file, body))
    return documents


def manifest_files() -> list[str]:
    return sorted(path.name for path in DEPLOY_DIR.iterdir() if path.suffix in (".yaml", ".yml"))


def bundle(autoscaler: str) -> Bundle:
    return Bundle(tuple(doc for file in (*BASE_FILES, autoscaler) for doc in load(file)))


ALL_DOCUMENTS = [doc for file in manifest_files() for doc in load(file)]


# Schemas of the built-in kinds.


def schema_problems(doc: Document) -> list[str]:
    try:
        kubernetes_validate.validate(doc.body, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        where = ".".join(str(step) for step in error.path) or "(top)"
        return [f"{doc}: {where}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError as error:
        return [f"{doc}: neither a built-in kind nor a checked custom one: {error.message}"]
    return []


# Custom resources: the fields their CRDs declare, and the rules the tests can state.

DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
DURATION = re.compile(r"(\d+(\.\d+)?)s")  # protobuf JSON durations, as Config Connector takes
PROMETHEUS_DURATION = re.compile(r"(\d+[smhdwy])+")


def _keys(
    where: str,
    mapping: object,
    allowed: set[str],
    required: frozenset[str] | set[str] = frozenset(),
) -> list[str]:
    if not isinstance(mapping, dict):
        return [f"{where} is not a mapping"]
    unknown = sorted(set(mapping) - allowed)
    missing = sorted(required - set(mapping))
    return [f"{where} has unknown key {key!r}" for key in unknown] + [
        f"{where} lacks {key!r}" for key in missing
    ]


def _envelope(doc: Document, api_version: str, spec_required: bool = True) -> list[str]:
    """What every custom resource needs: apiVersion, a valid name, and a spec mapping."""
    body = doc.body
    required = {"apiVersion", "kind", "metadata"} | ({"spec"} if spec_required else set())
    problems = _keys(str(doc), body, {"apiVersion", "kind", "metadata", "spec"}, required)
    if body.get("apiVersion") != api_version:
        problems.append(f"{doc}: apiVersion is {body.get('apiVersion')!r}, not {api_version!r}")
    metadata = body.get("metadata", {})
    allowed = {"name", "namespace", "labels", "annotations"}
    problems += _keys(f"{doc}: metadata", metadata, allowed, {"name"})
    if not DNS_SUBDOMAIN.fullmatch(doc.name):
        problems.append(f"{doc}: metadata.name is not a DNS subdomain")
    return problems


def _ref(where: str, ref: object, allowed: set[str] | None = None) -> list[str]:
    """A Config Connector reference: a name (of an object here) or an external id, not both."""
    keys = allowed or {"name", "namespace", "external"}
    problems = _keys(where, ref, keys)
    if isinstance(ref, dict) and ("name" in ref) == ("external" in ref):
        problems.append(f"{where} needs exactly one of name and external")
    return problems


def check_prometheus_rule(doc: Document) -> list[str]:
    problems = _envelope(doc, "monitoring.coreos.com/v1")
    spec = doc.body.get("spec", {})
    problems += _keys(f"{doc}: spec", spec, {"groups"}, {"groups"})
    allowed = {"name", "interval", "rules", "limit", "partial_response_strategy"}
    for group in spec.get("groups") or [None]:
        if not isinstance(group, dict):
            problems.append(f"{doc}: a group is not a mapping")
            continue
        where = f"{doc}: group {group.get('name')}"
        problems += _keys(where, group, allowed, {"name", "rules"})
        for rule in group.get("rules") or [None]:
            problems += _rule_problems(where, rule)
    return problems


def _rule_problems(where: str, rule: object) -> list[str]:
    allowed = {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}
    problems = _keys(f"{where}: rule", rule, allowed, {"expr"})
    if not isinstance(rule, dict):
        return problems
    where = f"{where}: rule {rule.get('alert') or rule.get('record')}"
    if ("alert" in rule) == ("record" in rule):
        problems.append(f"{where} needs exactly one of alert and record")
    if not isinstance(rule.get("expr"), str) or not rule["expr"].strip():
        problems.append(f"{where}: expr is not a PromQL expression")
    if "for" in rule and not PROMETHEUS_DURATION.fullmatch(str(rule["for"])):
        problems.append(f"{where}: for is not a duration")
    for field in ("labels", "annotations"):
        values = rule.get(field, {})
        if not all(isinstance(value, str) for value in values.values()):
            problems.append(f"{where}: {field} values must be strings")
    return problems


# KEDA 2.17+: the ScaledObject's fields, and the temporal and cpu triggers' parameters.
SCALED_OBJECT_FIELDS = {
    "scaleTargetRef", "pollingInterval", "cooldownPeriod", "initialCooldownPeriod",
    "idleReplicaCount", "minReplicaCount", "maxReplicaCount", "fallback", "advanced", "triggers",
}  # fmt: skip
TRIGGER_FIELDS = {"type", "name", "metadata", "authenticationRef", "metricType", "useCachedMetrics"}
TEMPORAL_PARAMETERS = {
    "endpoint", "endpointFromEnv", "namespace", "taskQueue", "queueTypes", "targetQueueSize",
    "activationTargetQueueSize", "buildId", "selectAllActive", "selectUnversioned",
    "workerDeploymentName", "workerDeploymentBuildId", "apiKeyFromEnv", "minConnectTimeout",
    "unsafeSsl", "tlsServerName",
}  # fmt: skip


def check_scaled_object(doc: Document) -> list[str]:
    problems = _envelope(doc, "keda.sh/v1alpha1")
    spec = doc.body.get("spec", {})
    problems += _keys(f"{doc}: spec", spec, SCALED_OBJECT_FIELDS, {"scaleTargetRef", "triggers"})
    target = spec.get("scaleTargetRef", {})
    problems += _keys(f"{doc}: scaleTargetRef", target, {"name", "kind", "apiVersion"}, {"name"})
    low, high = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
    if not (isinstance(low, int) and isinstance(high, int) and 0 <= low <= high):
        problems.append(f"{doc}: replica counts {low!r}..{high!r} are not a range")
    for trigger in spec.get("triggers") or [None]:
        problems += _trigger_problems(doc, trigger)
    return problems


def _trigger_problems(doc: Document, trigger: object) -> list[str]:
    problems = _keys(f"{doc}: trigger", trigger, TRIGGER_FIELDS, {"type", "metadata"})
    if not isinstance(trigger, dict):
        return problems
    where, parameters = f"{doc}: {trigger.get('type')} trigger", trigger.get("metadata", {})
    # KEDA reads trigger parameters as a map of strings: a bare 10 or true is refused.
    if not all(isinstance(value, str) for value in parameters.values()):
        problems.append(f"{where}: metadata values must be strings")
    if trigger.get("type") == "temporal":
        problems += _keys(f"{where}: metadata", parameters, TEMPORAL_PARAMETERS, {"taskQueue"})
        if not {"endpoint", "endpointFromEnv"} & set(parameters):
            problems.append(f"{where} needs endpoint or endpointFromEnv")
        queue_types = set(str(parameters.get("queueTypes", "workflow")).split(","))
        if not queue_types <= {"workflow", "activity", "nexus"}:
            problems.append(f"{where}: queueTypes {sorted(queue_types)} are not queue types")
    elif trigger.get("type") == "cpu":
        if trigger.get("metricType") not in ("Utilization", "AverageValue"):
            problems.append(f"{where}: metricType must be Utilization or AverageValue")
        problems += _keys(f"{where}: metadata", parameters, {"value", "containerName"}, {"value"})
    else:
        problems.append(f"{where}: not a trigger type this test knows")
    return problems


def check_pubsub_topic(doc: Document) -> list[str]:
    problems = _envelope(doc, "pubsub.cnrm.cloud.google.com/v1beta1", spec_required=False)
    allowed = {"kmsKeyRef", "messageRetentionDuration", "messageStoragePolicy", "resourceID"}
    return problems + _keys(f"{doc}: spec", doc.body.get("spec", {}), allowed | {"schemaSettings"})


SUBSCRIPTION_FIELDS = {
    "ackDeadlineSeconds", "bigqueryConfig", "cloudStorageConfig", "deadLetterPolicy",
    "enableExactlyOnceDelivery", "enableMessageOrdering", "expirationPolicy", "filter",
    "messageRetentionDuration", "pushConfig", "resourceID", "retainAckedMessages", "retryPolicy",
    "topicRef",
}  # fmt: skip


def check_pubsub_subscription(doc: Document) -> list[str]:
    problems = _envelope(doc, "pubsub.cnrm.cloud.google.com/v1beta1")
    spec = doc.body.get("spec", {})
    problems += _keys(f"{doc}: spec", spec, SUBSCRIPTION_FIELDS, {"topicRef"})
    problems += _ref(f"{doc}: topicRef", spec.get("topicRef"))
    if "pushConfig" in spec:
        problems += _push_problems(doc, spec["pushConfig"])
    if "deadLetterPolicy" in spec:
        policy = spec["deadLetterPolicy"]
        allowed = {"deadLetterTopicRef", "maxDeliveryAttempts"}
        problems += _keys(f"{doc}: deadLetterPolicy", policy, allowed, allowed)
        problems += _ref(f"{doc}: deadLetterTopicRef", policy.get("deadLetterTopicRef"))
        if policy.get("maxDeliveryAttempts") not in range(5, 101):  # Pub/Sub's bounds
            problems.append(f"{doc}: maxDeliveryAttempts must be 5 to 100")
    problems += _duration_problems(doc, spec)
    return problems


def _push_problems(doc: Document, push: object) -> list[str]:
    allowed = {"attributes", "noWrapper", "oidcToken", "pushEndpoint"}
    problems = _keys(f"{doc}: pushConfig", push, allowed, {"pushEndpoint"})
    if isinstance(push, dict):
        if not str(push.get("pushEndpoint", "")).startswith("https://"):
            problems.append(f"{doc}: pushEndpoint must be an https URL")
        token = push.get("oidcToken", {})
        allowed = {"serviceAccountEmail", "audience"}
        problems += _keys(f"{doc}: oidcToken", token, allowed, {"serviceAccountEmail"})
    return problems


def _duration_problems(doc: Document, spec: Body) -> list[str]:
    """Durations within Pub/Sub's bounds (seconds): what the API would refuse at apply time."""
    retry = spec.get("retryPolicy", {})
    bounds = {
        "minimumBackoff": (retry, 0, 600),
        "maximumBackoff": (retry, 0, 600),
        "messageRetentionDuration": (spec, 600, 604800),
    }
    problems = _keys(f"{doc}: retryPolicy", retry, {"minimumBackoff", "maximumBackoff"})
    for field, (holder, low, high) in bounds.items():
        if field in holder and not _duration_within(holder[field], low, high):
            problems.append(f"{doc}: {field} is not a duration of {low}s to {high}s")
    if "expirationPolicy" in spec:
        ttl = spec["expirationPolicy"].get("ttl")
        problems += _keys(f"{doc}: expirationPolicy", spec["expirationPolicy"], {"ttl"}, {"ttl"})
        if ttl != "" and not _duration_within(ttl, 86400, 10**10):
            problems.append(f"{doc}: expirationPolicy.ttl is neither '' (never) nor a day or more")
    return problems


def _duration_within(text: object, low: float, high: float) -> bool:
    match = DURATION.fullmatch(str(text))
    return match is not None and low <= float(match.group(1)) <= high


IAM_ROLE = re.compile(r"((projects|organizations)/[^/]+/)?roles/[\w_.]+")  # the CRD's pattern
SERVICE_ACCOUNT_ID = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]")


def check_iam_policy_member(doc: Document) -> list[str]:
    problems = _envelope(doc, "iam.cnrm.cloud.google.com/v1beta1")
    spec = doc.body.get("spec", {})
    allowed = {"member", "memberFrom", "role", "resourceRef", "condition"}
    problems += _keys(f"{doc}: spec", spec, allowed, {"role", "resourceRef"})
    if ("member" in spec) == ("memberFrom" in spec):
        problems.append(f"{doc}: needs exactly one of member and memberFrom")
    if not IAM_ROLE.fullmatch(str(spec.get("role"))):
        problems.append(f"{doc}: role {spec.get('role')!r} is not a role name")
    resource = spec.get("resourceRef", {})
    allowed = {"apiVersion", "kind", "name", "namespace", "external"}
    problems += _keys(f"{doc}: resourceRef", resource, allowed, {"kind"})
    if isinstance(resource, dict) and "name" in resource and "external" in resource:
        problems.append(f"{doc}: resourceRef has both name and external")
    return problems


def check_iam_service_account(doc: Document) -> list[str]:
    problems = _envelope(doc, "iam.cnrm.cloud.google.com/v1beta1")
    spec = doc.body.get("spec", {})
    allowed = {"displayName", "description", "disabled", "resourceID"}
    problems += _keys(f"{doc}: spec", spec, allowed)
    if not SERVICE_ACCOUNT_ID.fullmatch(str(spec.get("resourceID", doc.name))):
        problems.append(f"{doc}: not a service account id (6 to 30 of a-z, 0-9, -)")
    return problems


CUSTOM_KINDS: dict[str, Callable[[Document], list[str]]] = {
    "PrometheusRule": check_prometheus_rule,
    "ScaledObject": check_scaled_object,
    "PubSubTopic": check_pubsub_topic,
    "PubSubSubscription": check_pubsub_subscription,
    "IAMPolicyMember": check_iam_policy_member,
    "IAMServiceAccount": check_iam_service_account,
}


def document_problems(doc: Document) -> list[str]:
    check = CUSTOM_KINDS.get(doc.kind)
    return check(doc) if check else schema_problems(doc)


# Pods: what the cross-reference checks read from Deployments.


def pod_spec(deployment: Document) -> Body:
    spec: Body = deployment.body["spec"]["template"]["spec"]
    return spec


def pod_labels(deployment: Document) -> dict[str, str]:
    labels: dict[str, str] = deployment.body["spec"]["template"]["metadata"].get("labels", {})
    return labels


def containers(deployment: Document) -> list[Body]:
    spec = pod_spec(deployment)
    return [*spec.get("initContainers", []), *spec["containers"]]


def selects(selector: Body, labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels only: these manifests use nothing else) matches."""
    if "matchExpressions" in selector:
        raise NotImplementedError("matchExpressions: teach this test to read them")
    wanted = selector.get("matchLabels", {})
    return bool(wanted) and all(labels.get(key) == value for key, value in wanted.items())


def selected(bundle: Bundle, selector: Body) -> list[Document]:
    return [doc for doc in bundle.of_kind("Deployment") if selects(selector, pod_labels(doc))]


def declares_port(container: Body, port: object) -> bool:
    """Whether ``port`` (a name or a number) is one the container declares."""
    declared = container.get("ports", [])
    return any(port in (entry.get("name"), entry.get("containerPort")) for entry in declared)


def environment(bundle: Bundle, container: Body) -> dict[str, str]:
    """The container's environment as Kubernetes builds it: envFrom sources, then env."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            found = bundle.named("ConfigMap", source["configMapRef"]["name"])
            env |= found.body.get("data", {}) if found else {}
        if "secretRef" in source:
            found = bundle.named("Secret", source["secretRef"]["name"])
            env |= _secret_values(found.body) if found else {}
    env |= {item["name"]: item["value"] for item in container.get("env", []) if "value" in item}
    return env


def _secret_values(secret: Body) -> dict[str, str]:
    data = {key: base64.b64decode(value).decode() for key, value in secret.get("data", {}).items()}
    written: dict[str, str] = secret.get("stringData", {})
    return data | written


def component(container: Body) -> config.Component | None:
    """Which of the two processes a container runs, from its command (as in infra/Dockerfile)."""
    command = container.get("command", [])
    if command == ["python", "-m", "ingress"]:
        return "ingress"
    if command == ["python", "worker.py"]:
        return "worker"
    return None


def process_containers(bundle: Bundle) -> Iterator[tuple[Document, Body, config.Component]]:
    for deployment in bundle.of_kind("Deployment"):
        for container in containers(deployment):
            process = component(container)
            if process is not None:
                yield deployment, container, process


# Cross-references, each check over a bundle.


def check_env_sources(bundle: Bundle) -> list[str]:
    problems = []
    for deployment in bundle.of_kind("Deployment"):
        for container in containers(deployment):
            for source in container.get("envFrom", []):
                for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                    ref = source.get(field)
                    if ref and not ref.get("optional") and not bundle.named(kind, ref["name"]):
                        problems.append(f"{deployment}: envFrom names no {kind} {ref['name']!r}")
    return problems


def check_probe_ports(bundle: Bundle) -> list[str]:
    problems = []
    for deployment in bundle.of_kind("Deployment"):
        for container in containers(deployment):
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                for handler in ("httpGet", "tcpSocket", "grpc"):
                    port = container.get(probe, {}).get(handler, {}).get("port")
                    if port is not None and not declares_port(container, port):
                        problems.append(
                            f"{deployment}: {container['name']} {probe} port {port!r} is not"
                            " one the container declares"
                        )
    return problems


def check_volume_mounts(bundle: Bundle) -> list[str]:
    problems = []
    for deployment in bundle.of_kind("Deployment"):
        volumes = {volume["name"] for volume in pod_spec(deployment).get("volumes", [])}
        for container in containers(deployment):
            for mount in container.get("volumeMounts", []):
                if mount["name"] not in volumes:
                    problems.append(f"{deployment}: mounts an undeclared volume {mount['name']!r}")
    return problems


def check_service_accounts(bundle: Bundle) -> list[str]:
    problems = []
    for deployment in bundle.of_kind("Deployment"):
        name = pod_spec(deployment).get("serviceAccountName")
        if name is None or bundle.named("ServiceAccount", name) is None:
            problems.append(f"{deployment}: runs as no ServiceAccount of these files ({name!r})")
    for account in bundle.of_kind("ServiceAccount"):
        linked = "iam.gke.io/gcp-service-account" in account.body["metadata"].get("annotations", {})
        # Without a Google identity a pod has no use for a token: none is mounted.
        if not linked and account.body.get("automountServiceAccountToken") is not False:
            problems.append(f"{account}: mounts a token it has no use for")
    return problems


def check_disruption_budgets(bundle: Bundle) -> list[str]:
    problems = []
    budgets = bundle.of_kind("PodDisruptionBudget")
    for budget in budgets:
        if not selected(bundle, budget.body["spec"]["selector"]):
            problems.append(f"{budget}: its selector matches no Deployment's pods")
    for deployment in bundle.of_kind("Deployment"):
        labels = pod_labels(deployment)
        covering = [b for b in budgets if selects(b.body["spec"]["selector"], labels)]
        if len(covering) != 1:
            problems.append(f"{deployment}: {len(covering)} PodDisruptionBudgets, not one")
    return problems


def check_services(bundle: Bundle) -> list[str]:
    problems = []
    for service in bundle.of_kind("Service"):
        pods = selected(bundle, {"matchLabels": service.body["spec"].get("selector", {})})
        if not pods:
            problems.append(f"{service}: its selector matches no Deployment's pods")
        for port in service.body["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            for deployment in pods:
                if not any(declares_port(c, target) for c in containers(deployment)):
                    problems.append(f"{service}: targetPort {target!r} is not {deployment}'s")
    return problems


def check_network_policies(bundle: Bundle) -> list[str]:
    problems = []
    for policy in bundle.of_kind("NetworkPolicy"):
        pods = selected(bundle, policy.body["spec"]["podSelector"])
        if not pods:
            problems.append(f"{policy}: its podSelector matches no Deployment's pods")
        for rule in policy.body["spec"].get("ingress", []):
            for port in rule.get("ports", []):
                for deployment in pods:
                    if not any(declares_port(c, port["port"]) for c in containers(deployment)):
                        problems.append(f"{policy}: port {port['port']!r} is not {deployment}'s")
    return problems


def _autoscaled(bundle: Bundle) -> dict[str, list[Document]]:
    """The Deployments the autoscalers drive, with the autoscalers driving each."""
    driven: dict[str, list[Document]] = {}
    for scaler in [*bundle.of_kind("HorizontalPodAutoscaler"), *bundle.of_kind("ScaledObject")]:
        target = scaler.body["spec"]["scaleTargetRef"]
        if target.get("kind", "Deployment") == "Deployment":
            driven.setdefault(target["name"], []).append(scaler)
    return driven


def check_autoscalers(bundle: Bundle) -> list[str]:
    problems: list[str] = []
    for name, scalers in _autoscaled(bundle).items():
        deployment = bundle.named("Deployment", name)
        if deployment is None:
            problems.extend(f"{scaler}: drives no Deployment of these files" for scaler in scalers)
            continue
        if len(scalers) > 1:  # KEDA makes an HPA of its own: two would fight
            problems.append(f"{deployment}: driven by {', '.join(map(str, scalers))}")
        if "replicas" in deployment.body["spec"]:  # every apply would reset the autoscaler
            problems.append(f"{deployment}: sets replicas though an autoscaler owns them")
    return problems


def check_keda_triggers(bundle: Bundle) -> list[str]:
    """The temporal trigger watches the queue the worker polls, with the worker's settings."""
    problems = []
    for scaler in bundle.of_kind("ScaledObject"):
        deployment = bundle.named("Deployment", scaler.body["spec"]["scaleTargetRef"]["name"])
        if deployment is None:
            continue  # check_autoscalers says so
        env = environment(bundle, containers(deployment)[0])  # KEDA reads the first container's
        for trigger in scaler.body["spec"]["triggers"]:
            if trigger["type"] == "temporal":
                problems += _temporal_trigger_problems(scaler, trigger["metadata"], env)
    return problems


def _temporal_trigger_problems(
    scaler: Document, parameters: Body, env: dict[str, str]
) -> list[str]:
    problems = []
    for parameter in ("endpointFromEnv", "apiKeyFromEnv"):
        if parameter in parameters and parameters[parameter] not in env:
            problems.append(f"{scaler}: {parameter} names {parameters[parameter]!r}, unset")
    # (parameter, KEDA's default, the worker's variable)
    pairs = [
        ("namespace", "default", config.TEMPORAL_NAMESPACE),
        ("taskQueue", None, config.TEMPORAL_TASK_QUEUE),
    ]
    for parameter, keda_default, variable in pairs:
        watched = parameters.get(parameter, keda_default)
        polled = env.get(variable.name, variable.default)
        if watched != polled:
            problems.append(f"{scaler}: {parameter} {watched!r} is not the worker's {polled!r}")
    return problems


def check_metrics_port(bundle: Bundle) -> list[str]:
    """METRICS_PORT, the container's metrics port and the scrape annotation: one number."""
    problems = []
    for deployment, container, _ in process_containers(bundle):
        env_port = environment(bundle, container).get(config.METRICS_PORT.name)
        declared = [
            p["containerPort"] for p in container.get("ports", []) if p.get("name") == "metrics"
        ]
        annotations = deployment.body["spec"]["template"]["metadata"].get("annotations", {})
        scraped = annotations.get("prometheus.io/port")
        if env_port is None or [int(env_port)] != declared or scraped != env_port:
            problems.append(
                f"{deployment}: METRICS_PORT {env_port}, metrics port {declared} and"
                f" prometheus.io/port {scraped} disagree"
            )
    return problems


def image_uid() -> int:
    """The uid infra/Dockerfile gives the user the image runs as."""
    match = re.search(r"--uid (\d+)", (ROOT / "infra" / "Dockerfile").read_text())
    if match is None:
        raise LookupError("infra/Dockerfile creates no user with --uid")
    return int(match.group(1))


def check_security_contexts(bundle: Bundle) -> list[str]:
    problems = []
    for deployment in bundle.of_kind("Deployment"):
        pod = pod_spec(deployment).get("securityContext", {})
        expected = {"runAsNonRoot": True, "runAsUser": image_uid()}
        problems += [
            f"{deployment}: pod securityContext.{key} is {pod.get(key)!r}, not {value!r}"
            for key, value in expected.items()
            if pod.get(key) != value
        ]
        if not pod.get("runAsGroup"):  # unset, the runtime may pick group 0
            problems.append(f"{deployment}: pod securityContext.runAsGroup is unset or 0")
        if pod.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{deployment}: seccompProfile is not RuntimeDefault")
        for container in containers(deployment):
            problems += _container_security(deployment, pod_spec(deployment), container)
    return problems


def _container_security(deployment: Document, pod: Body, container: Body) -> list[str]:
    where = f"{deployment}: {container['name']}"
    context = container.get("securityContext", {})
    problems = []
    if context.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{where}: allowPrivilegeEscalation is not false")
    if context.get("readOnlyRootFilesystem") is not True:
        problems.append(f"{where}: readOnlyRootFilesystem is not true")
    capabilities = context.get("capabilities", {})
    if capabilities.get("drop") != ["ALL"] or "add" in capabilities:
        problems.append(f"{where}: capabilities are not drop [ALL]")
    if context.get("privileged"):
        problems.append(f"{where}: privileged")
    scratch = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
    if mounts.get("/tmp") not in scratch:
        problems.append(f"{where}: no writable emptyDir at /tmp beside the read-only root")
    return problems


def check_resources(bundle: Bundle) -> list[str]:
    problems = []
    for deployment in bundle.of_kind("Deployment"):
        for container in containers(deployment):
            resources = container.get("resources", {})
            requests, limits = resources.get("requests", {}), resources.get("limits", {})
            if not {"cpu", "memory"} <= set(requests) or "memory" not in limits:
                problems.append(
                    f"{deployment}: {container['name']} lacks cpu and memory requests"
                    " or a memory limit"
                )
    return problems


PUBSUB_AGENT = re.compile(r"serviceAccount:service-[^@]+@gcp-sa-pubsub\.iam\.gserviceaccount\.com")


def _grants(bundle: Bundle, role: str, kind: str, name: str) -> list[Body]:
    """The IAMPolicyMember specs granting ``role`` on the ``kind`` object or resource ``name``."""
    specs = [doc.body["spec"] for doc in bundle.of_kind("IAMPolicyMember")]
    return [
        spec
        for spec in specs
        if (spec["role"], spec["resourceRef"]["kind"]) == (role, kind)
        and name in (spec["resourceRef"].get("name"), spec["resourceRef"].get("external"))
    ]


def check_dead_letters(bundle: Bundle) -> list[str]:
    """Each dead-letter topic exists, is subscribed, and Pub/Sub's agent may use it."""
    problems = []
    for subscription in bundle.of_kind("PubSubSubscription"):
        policy = subscription.body["spec"].get("deadLetterPolicy")
        if policy is None:
            continue
        topic = policy["deadLetterTopicRef"].get("name")
        if topic is None or bundle.named("PubSubTopic", topic) is None:
            problems.append(f"{subscription}: dead letters go to no PubSubTopic of these files")
            continue
        if not _subscribed(bundle, topic):  # Pub/Sub drops what an unsubscribed topic gets
            problems.append(f"{subscription}: nothing subscribes to dead-letter topic {topic!r}")
        needed = [
            ("roles/pubsub.publisher", "PubSubTopic", topic),
            ("roles/pubsub.subscriber", "PubSubSubscription", subscription.name),
        ]
        for role, kind, name in needed:
            grants = _grants(bundle, role, kind, name)
            if not any(PUBSUB_AGENT.fullmatch(str(grant.get("member"))) for grant in grants):
                problems.append(f"{subscription}: Pub/Sub's agent lacks {role} on {kind} {name}")
    for subscription in bundle.of_kind("PubSubSubscription"):
        if subscription.body["spec"].get("expirationPolicy", {}).get("ttl") != "":
            problems.append(f"{subscription}: expires after 31 idle days (expirationPolicy)")
    return problems


def _subscribed(bundle: Bundle, topic: str) -> bool:
    refs = [doc.body["spec"]["topicRef"] for doc in bundle.of_kind("PubSubSubscription")]
    return any(ref.get("name") == topic for ref in refs)


def check_push_authentication(bundle: Bundle) -> list[str]:
    """The push token's audience and signer are the ones the ingress accepts."""
    problems = []
    ingress_envs = [
        environment(bundle, c) for _, c, p in process_containers(bundle) if p == "ingress"
    ]
    for subscription in bundle.of_kind("PubSubSubscription"):
        token = subscription.body["spec"].get("pushConfig", {}).get("oidcToken")
        if token is None:
            continue
        email = token["serviceAccountEmail"].lower()
        for env in ingress_envs:
            accepted = env.get(config.PUBSUB_PUSH_SERVICE_ACCOUNTS.name, "").lower().split(",")
            if token.get("audience") != env.get(config.PUBSUB_PUSH_AUDIENCE.name):
                problems.append(
                    f"{subscription}: audience is not the ingress's PUBSUB_PUSH_AUDIENCE"
                )
            if email not in [account.strip() for account in accepted]:
                problems.append(f"{subscription}: {email} is not in PUBSUB_PUSH_SERVICE_ACCOUNTS")
        if bundle.named("IAMServiceAccount", email.partition("@")[0]) is None:
            problems.append(f"{subscription}: pushes as {email}, which these files do not create")
    return problems


def check_worker_identity(bundle: Bundle) -> list[str]:
    """The worker's Kubernetes account is linked to an IAM one that may publish its replies."""
    if not bundle.of_kind("IAMServiceAccount"):
        return []  # the Google side is made with gcloud: nothing here to compare
    problems = []
    for deployment, container, process in process_containers(bundle):
        if process == "worker":
            problems += _worker_identity_problems(bundle, deployment, container)
    return problems


def _worker_identity_problems(bundle: Bundle, deployment: Document, container: Body) -> list[str]:
    account = bundle.named("ServiceAccount", pod_spec(deployment).get("serviceAccountName", ""))
    if account is None:
        return []  # check_service_accounts says so
    email = account.body["metadata"].get("annotations", {}).get("iam.gke.io/gcp-service-account")
    google_name = str(email).partition("@")[0]
    if bundle.named("IAMServiceAccount", google_name) is None:
        return [f"{account}: linked to {email}, no IAMServiceAccount of these files"]
    problems = []
    links = _grants(bundle, "roles/iam.workloadIdentityUser", "IAMServiceAccount", google_name)
    if not any(str(link.get("member")).endswith(f"/{account.name}]") for link in links):
        problems.append(f"{account}: {google_name} does not let it act as itself")
    topic = environment(bundle, container).get(config.CE_GPUBSUB_TOPIC.name, "")
    publishers = _grants(bundle, "roles/pubsub.publisher", "PubSubTopic", topic)
    members = {f"serviceAccount:{email}", google_name}
    granted = {grant.get("member") for grant in publishers} | {
        grant.get("memberFrom", {}).get("serviceAccountRef", {}).get("name") for grant in publishers
    }
    if not members & granted:
        problems.append(f"{deployment}: {google_name} may not publish to {topic!r}")
    return problems


def check_alert_metrics(bundle: Bundle) -> list[str]:
    """Every letro_* series an alert reads is one metrics.py declares, with its suffix."""
    declared = {
        value.name: value
        for value in vars(metrics).values()
        if isinstance(value, metrics.Counter | metrics.Timer)
    }
    problems = []
    for rule_set in bundle.of_kind("PrometheusRule"):
        for group in rule_set.body["spec"]["groups"]:
            for rule in group["rules"]:
                for series in re.findall(r"\bletro_[a-z0-9_]+", rule["expr"]):
                    if not _series_declared(series, declared):
                        problems.append(
                            f"{rule_set}: {rule.get('alert')} reads {series}, undeclared"
                        )
    return problems


def _series_declared(series: str, declared: dict[str, metrics.Counter | metrics.Timer]) -> bool:
    # The exporter names counters <name>_total and histograms <name>_bucket, _sum and _count.
    suffixes = {metrics.Counter: ("_total",), metrics.Timer: ("_bucket", "_sum", "_count")}
    return any(
        series == name + suffix
        for name, instrument in declared.items()
        for suffix in suffixes[type(instrument)]
    )


CROSS_CHECKS = (
    check_env_sources,
    check_probe_ports,
    check_volume_mounts,
    check_service_accounts,
    check_disruption_budgets,
    check_services,
    check_network_policies,
    check_autoscalers,
    check_keda_triggers,
    check_metrics_port,
    check_security_contexts,
    check_resources,
    check_dead_letters,
    check_push_authentication,
    check_worker_identity,
    check_alert_metrics,
)


# The tests.


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection attempt fails: the schemas must come from the installed package."""

    def refuse(*args: object, **kwargs: object) -> NoReturn:
        raise OSError("the network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_the_target_schemas_are_installed() -> None:
    # validate() would quietly fall back to the nearest older schemas, or fail obscurely.
    shipped = {
        re.sub(r"\.\d+$", "", version) for version in kubernetes_validate.utils.all_versions()
    }
    assert KUBERNETES_VERSION in shipped


def test_every_manifest_file_holds_documents() -> None:
    assert set(BASE_FILES + AUTOSCALER_FILES) <= set(manifest_files())
    for file in manifest_files():
        assert load(file), f"{file} holds no document"


@pytest.mark.usefixtures("offline")
@pytest.mark.parametrize("doc", ALL_DOCUMENTS, ids=str)
def test_document_is_valid(doc: Document) -> None:
    assert document_problems(doc) == []


def test_built_in_kinds_are_checked_against_the_schemas() -> None:
    # Every document not in CUSTOM_KINDS went through kubernetes-validate: no kind is skipped.
    built_in = [doc for doc in ALL_DOCUMENTS if doc.kind not in CUSTOM_KINDS]
    assert {doc.kind for doc in built_in} >= {
        "ConfigMap", "Secret", "ServiceAccount", "Deployment", "Service", "NetworkPolicy",
        "HorizontalPodAutoscaler", "PodDisruptionBudget",
    }  # fmt: skip


@pytest.mark.usefixtures("offline")
def test_schema_validation_catches_a_misspelt_field() -> None:
    deployment = copy.deepcopy(next(doc for doc in ALL_DOCUMENTS if doc.kind == "Deployment"))
    container = deployment.body["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe", {})
    [problem] = schema_problems(deployment)
    assert "'readinesProbe' was unexpected" in problem


@pytest.mark.usefixtures("offline")
def test_schema_validation_catches_a_value_of_the_wrong_type() -> None:
    # An unquoted `false` in a ConfigMap is a YAML boolean, which the API server refuses.
    config_map = copy.deepcopy(next(doc for doc in ALL_DOCUMENTS if doc.kind == "ConfigMap"))
    config_map.body["data"]["CONNECTION_PARAMS_ALLOW_PRIVATE_ADDRESSES"] = False
    [problem] = schema_problems(config_map)
    assert "data.CONNECTION_PARAMS_ALLOW_PRIVATE_ADDRESSES" in problem


def test_an_unknown_kind_is_not_waved_through() -> None:
    body = {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}}
    [problem] = document_problems(Document("x.yaml", body))
    assert "neither a built-in kind nor a checked custom one" in problem


def mistake(*values: Any) -> Any:
    """One parametrised case, named after the function that makes its mistake."""
    change = next(value for value in values if getattr(value, "__name__", "").startswith("_"))
    return pytest.param(*values, id=change.__name__.lstrip("_"))


def first(kind: str, having: str = "") -> Document:
    """The first document of ``kind`` (whose spec has the key ``having``), as a fresh copy."""
    found = next(
        doc
        for doc in ALL_DOCUMENTS
        if doc.kind == kind and (not having or having in doc.body["spec"])
    )
    return Document(found.file, copy.deepcopy(found.body))


def _set_trigger_number(body: Body) -> None:
    body["spec"]["triggers"][0]["metadata"]["targetQueueSize"] = 10


def _misspell_dead_letter_policy(body: Body) -> None:
    body["spec"]["deadLetterPolicies"] = body["spec"].pop("deadLetterPolicy")


def _raise_delivery_attempts(body: Body) -> None:
    body["spec"]["deadLetterPolicy"]["maxDeliveryAttempts"] = 200


def _make_alert_a_record_too(body: Body) -> None:
    body["spec"]["groups"][0]["rules"][0]["record"] = "letro:egress:ratio"


def _drop_role_prefix(body: Body) -> None:
    body["spec"]["role"] = "pubsub.publisher"


@pytest.mark.parametrize(
    ("kind", "having", "change", "expected"),
    [
        mistake("ScaledObject", "", _set_trigger_number, "metadata values must be strings"),
        mistake(
            "PubSubSubscription",
            "deadLetterPolicy",
            _misspell_dead_letter_policy,
            "unknown key 'deadLetterPolicies'",
        ),
        mistake(
            "PubSubSubscription",
            "deadLetterPolicy",
            _raise_delivery_attempts,
            "maxDeliveryAttempts must be 5 to 100",
        ),
        mistake("PrometheusRule", "", _make_alert_a_record_too, "exactly one of alert and record"),
        mistake("IAMPolicyMember", "", _drop_role_prefix, "is not a role name"),
    ],
)
def test_custom_resource_checks_catch_mistakes(
    kind: str, having: str, change: Callable[[Body], None], expected: str
) -> None:
    doc = first(kind, having)
    assert document_problems(doc) == []
    change(doc.body)
    assert any(expected in problem for problem in document_problems(doc))


@pytest.mark.parametrize("autoscaler", AUTOSCALER_FILES)
@pytest.mark.parametrize("check", CROSS_CHECKS, ids=lambda check: check.__name__)
def test_cross_references_hold(autoscaler: str, check: Callable[[Bundle], list[str]]) -> None:
    assert check(bundle(autoscaler)) == []


def _container(body: Body) -> Body:
    container: Body = body["spec"]["template"]["spec"]["containers"][0]
    return container


def _rename_config_map_source(body: Body) -> None:
    _container(body)["envFrom"][0]["configMapRef"]["name"] = "letro"


def _unname_first_port(body: Body) -> None:
    del _container(body)["ports"][0]["name"]


def _select_other_pods(body: Body) -> None:
    body["spec"]["selector"]["matchLabels"]["app"] = "worker"


def _pin_replicas(body: Body) -> None:
    body["spec"]["replicas"] = 2


def _watch_other_queue(body: Body) -> None:
    body["spec"]["triggers"][0]["metadata"]["taskQueue"] = "letro"


def _drop_run_as_user(body: Body) -> None:
    del body["spec"]["template"]["spec"]["securityContext"]["runAsUser"]


def _grant_someone_else(body: Body) -> None:
    body["spec"]["member"] = "serviceAccount:someone@example.com"


def _move_push_audience(body: Body) -> None:
    body["data"]["PUBSUB_PUSH_AUDIENCE"] = "https://elsewhere.example/"


def _move_metrics_port(body: Body) -> None:
    body["data"]["METRICS_PORT"] = "9100"


def _let_subscription_expire(body: Body) -> None:
    del body["spec"]["expirationPolicy"]


def _drop_counter_suffix(body: Body) -> None:
    rule = body["spec"]["groups"][0]["rules"][0]
    rule["expr"] = rule["expr"].replace("letro_egress_attempts_total", "letro_egress_attempts")


def _admit_undeclared_port(body: Body) -> None:
    body["spec"]["ingress"][0]["ports"][0]["port"] = 8081


def _unlink_worker_account(body: Body) -> None:
    body["spec"]["member"] = "serviceAccount:PROJECT.svc.id.goog[NAMESPACE/default]"


@pytest.mark.parametrize(
    ("check", "kind", "name", "change", "expected"),
    [
        mistake(
            check_env_sources,
            "Deployment",
            "letro-worker",
            _rename_config_map_source,
            "envFrom names no ConfigMap 'letro'",
        ),
        mistake(
            check_probe_ports, "Deployment", "letro-ingress", _unname_first_port, "port 'http'"
        ),
        mistake(
            check_disruption_budgets,
            "PodDisruptionBudget",
            "letro-worker",
            _select_other_pods,
            "matches no Deployment's pods",
        ),
        mistake(check_autoscalers, "Deployment", "letro-worker", _pin_replicas, "sets replicas"),
        mistake(
            check_keda_triggers,
            "ScaledObject",
            "letro-worker",
            _watch_other_queue,
            "taskQueue 'letro' is not the worker's 'letro-server'",
        ),
        mistake(
            check_security_contexts,
            "Deployment",
            "letro-worker",
            _drop_run_as_user,
            "runAsUser is None, not 10001",
        ),
        mistake(
            check_dead_letters,
            "IAMPolicyMember",
            "letro-dead-letters-publisher",
            _grant_someone_else,
            "Pub/Sub's agent lacks roles/pubsub.publisher",
        ),
        mistake(
            check_dead_letters,
            "PubSubSubscription",
            "letro-incoming-dead-letters",
            _let_subscription_expire,
            "expires after 31 idle days",
        ),
        mistake(
            check_push_authentication,
            "ConfigMap",
            "letro-server",
            _move_push_audience,
            "audience is not the ingress's PUBSUB_PUSH_AUDIENCE",
        ),
        mistake(check_metrics_port, "ConfigMap", "letro-server", _move_metrics_port, "disagree"),
        mistake(
            check_alert_metrics,
            "PrometheusRule",
            "letro-server",
            _drop_counter_suffix,
            "reads letro_egress_attempts, undeclared",
        ),
        mistake(
            check_network_policies,
            "NetworkPolicy",
            "letro-ingress",
            _admit_undeclared_port,
            "port 8081 is not",
        ),
        mistake(
            check_worker_identity,
            "IAMPolicyMember",
            "letro-worker-workload-identity",
            _unlink_worker_account,
            "does not let it act as itself",
        ),
    ],
)
def test_cross_reference_checks_catch_mistakes(
    check: Callable[[Bundle], list[str]],
    kind: str,
    name: str,
    change: Callable[[Body], None],
    expected: str,
) -> None:
    whole = bundle("autoscaling.yaml")
    assert check(whole) == []
    assert any(expected in problem for problem in check(whole.changed(kind, name, change)))


def test_both_autoscalers_at_once_are_refused() -> None:
    both = Bundle(bundle("autoscaling.yaml").documents + tuple(load("autoscaling-cpu.yaml")))
    [problem] = check_autoscalers(both)
    assert "Deployment/letro-worker: driven by" in problem


@pytest.mark.parametrize("autoscaler", AUTOSCALER_FILES)
def test_configuration_loads_in_both_processes(autoscaler: str) -> None:
    declared = {variable.name for variable in config.VARIABLES}
    found = set()
    for deployment, container, process in process_containers(bundle(autoscaler)):
        env = environment(bundle(autoscaler), container)
        assert set(env) <= declared, f"{deployment}: undeclared {sorted(set(env) - declared)}"
        settings = config.load_settings(process, env)  # raises ConfigError naming each problem
        assert settings.metrics_port == 9464
        assert settings.accounts.vauth_api_url == "https://veraid-authority.example.com/"
        assert settings.accounts.vauth_api_audience == settings.accounts.vauth_api_url
        found.add(process)
    assert found == {"ingress", "worker"}


def test_readme_names_every_manifest_file() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [file for file in manifest_files() if f"infra/deploy/{file}" not in readme]
    assert missing == []
