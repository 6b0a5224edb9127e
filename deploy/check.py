#!/usr/bin/python3
"""Checks the deployment material in deploy/ without Docker or a cluster.

    deploy/check.py --respite build/respite              # check everything
    deploy/check.py --respite build/respite --self-test  # prove the checks bite

What it checks:
  * every YAML file under deploy/ parses (all documents);
  * each Kubernetes object against a small JSON schema written here (below);
  * the properties the sidecar pattern needs (respite a native sidecar, probes on the
    admin port, Secret-sourced password, resources, security context, grace period...);
  * respite's own configuration, wherever a manifest or the compose file takes it from,
    with `respite --check-config`;
  * deploy/compose.yaml (services, loopback-only ports, the mounted config);
  * deploy/Dockerfile (stages, base, user, what the final image holds, exposed ports, and
    that its runtime packages cover the shared libraries `ldd respite` reports);
  * when they are installed: yamllint on the YAML files, `docker-compose config` on the
    compose file (Debian's docker-compose needs no daemon for it), and the output of
    `kubectl kustomize deploy/k8s` (kubectl is not in Debian) checked again.
Only Debian 12 packages are used: python3, python3-yaml, python3-jsonschema (yamllint
and docker-compose are optional). Exit status 0 when all checks pass, 1 otherwise.

--self-test first requires the real files to pass, then applies mutations to in-memory
copies (drop restartPolicy, admin on loopback, writable root filesystem, a missing
runtime package...) and requires each one to be reported.
"""

import argparse
import copy
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib

import jsonschema
import yaml

DEPLOY = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(DEPLOY)
K8S_DIR = os.path.join(DEPLOY, "k8s")
COMPOSE_FILE = os.path.join(DEPLOY, "compose.yaml")
DOCKERFILE = os.path.join(DEPLOY, "Dockerfile")
DOCKERIGNORE = os.path.join(ROOT, ".dockerignore")

# The app's shutdown time the grace period must leave room for, on top of respite's
# drain (server.drain_timeout_ms) and any preStop sleep.
GRACE_MARGIN_S = 10
# Libraries the base image (debian:bookworm-slim) already has, by package.
BASE_PACKAGES = {"libc6", "libstdc++6", "libgcc-s1"}
BASE_SONAMES = re.compile(r"^(linux-vdso|linux-gate|ld-linux.*|libc|libm|libdl|libpthread|librt|"
                          r"libstdc\+\+|libgcc_s)\.so")
# Sanitizer runtimes appear when this runs against an ASan/UBSan build; the image is a
# Release build without them.
SANITIZER_SONAMES = re.compile(r"^lib(asan|ubsan|lsan|tsan|hwasan)\.so")
FINAL_BASES = re.compile(r"^debian:bookworm(-slim)?(@sha256:[0-9a-f]{64})?$")
BUILD_BASES = re.compile(r"^debian:bookworm(-slim)?(@sha256:[0-9a-f]{64})?$")

# ---------------------------------------------------------------------------------------
# JSON schema for the Kubernetes objects used here.
#
# This is NOT the upstream OpenAPI schema of Kubernetes (which Debian does not package):
# it covers the kinds deploy/k8s uses and the fields that matter to them, closes the
# objects where a misspelt key would silently do nothing (containers, probes, security
# contexts, ports, env), and checks types (ports are integers, annotation and env values
# are strings...). An object of another kind is reported as unchecked.
# ---------------------------------------------------------------------------------------
DNS_LABEL = {"type": "string", "maxLength": 63, "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"}
DNS_SUBDOMAIN = {"type": "string", "maxLength": 253,
                 "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"}
PORT_NAME = {"type": "string", "maxLength": 15, "pattern": r"^(?=.*[a-z])[a-z0-9]([a-z0-9-]*[a-z0-9])?$"}
PORT_NUMBER = {"type": "integer", "minimum": 1, "maximum": 65535}
INT_OR_PORT_NAME = {"oneOf": [PORT_NUMBER, PORT_NAME]}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
STRINGS = {"type": "array", "items": {"type": "string"}}
QUANTITY = {"oneOf": [{"type": "number", "minimum": 0},
                      {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?([eE][0-9]+|[mkMGTPE]|[KMGTPE]i)?$"}]}
NONNEG_INT = {"type": "integer", "minimum": 0}
POS_INT = {"type": "integer", "minimum": 1}

METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": DNS_SUBDOMAIN,
        "namespace": DNS_LABEL,
        "labels": {"type": "object", "additionalProperties": {
            "type": "string", "maxLength": 63, "pattern": r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$"}},
        "annotations": STRING_MAP,
    },
}
HTTP_GET = {"type": "object", "required": ["port"], "additionalProperties": False, "properties": {
    "path": {"type": "string", "pattern": "^/"}, "port": INT_OR_PORT_NAME, "host": {"type": "string"},
    "scheme": {"enum": ["HTTP", "HTTPS"]}, "httpHeaders": {"type": "array"}}}
TCP_SOCKET = {"type": "object", "required": ["port"], "additionalProperties": False,
              "properties": {"port": INT_OR_PORT_NAME, "host": {"type": "string"}}}
EXEC = {"type": "object", "required": ["command"], "additionalProperties": False,
        "properties": {"command": STRINGS}}
PROBE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "httpGet": HTTP_GET, "tcpSocket": TCP_SOCKET, "exec": EXEC,
        "grpc": {"type": "object", "required": ["port"], "properties": {"port": PORT_NUMBER}},
        "initialDelaySeconds": NONNEG_INT, "timeoutSeconds": POS_INT, "periodSeconds": POS_INT,
        "successThreshold": POS_INT, "failureThreshold": POS_INT, "terminationGracePeriodSeconds": POS_INT,
    },
    "oneOf": [{"required": ["httpGet"]}, {"required": ["tcpSocket"]}, {"required": ["exec"]},
              {"required": ["grpc"]}],
}
HANDLER = {"type": "object", "additionalProperties": False, "properties": {
    "exec": EXEC, "httpGet": HTTP_GET, "tcpSocket": TCP_SOCKET,
    "sleep": {"type": "object", "required": ["seconds"], "properties": {"seconds": POS_INT}}}}
KEY_REF = {"type": "object", "required": ["name", "key"], "additionalProperties": False,
           "properties": {"name": DNS_SUBDOMAIN, "key": {"type": "string"}, "optional": {"type": "boolean"}}}
ENV_VAR = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"},
        "value": {"type": "string"},
        "valueFrom": {"type": "object", "additionalProperties": False, "minProperties": 1, "maxProperties": 1,
                      "properties": {"secretKeyRef": KEY_REF, "configMapKeyRef": KEY_REF,
                                     "fieldRef": {"type": "object", "required": ["fieldPath"]},
                                     "resourceFieldRef": {"type": "object", "required": ["resource"]}}},
    },
    "not": {"required": ["value", "valueFrom"]},
}
CAPABILITIES = {"type": "object", "additionalProperties": False,
                "properties": {"add": STRINGS, "drop": STRINGS}}
SECCOMP = {"type": "object", "required": ["type"], "additionalProperties": False, "properties": {
    "type": {"enum": ["RuntimeDefault", "Unconfined", "Localhost"]}, "localhostProfile": {"type": "string"}}}
CONTAINER_SECURITY = {"type": "object", "additionalProperties": False, "properties": {
    "allowPrivilegeEscalation": {"type": "boolean"}, "capabilities": CAPABILITIES,
    "privileged": {"type": "boolean"}, "procMount": {"type": "string"},
    "readOnlyRootFilesystem": {"type": "boolean"}, "runAsGroup": NONNEG_INT,
    "runAsNonRoot": {"type": "boolean"}, "runAsUser": NONNEG_INT, "seLinuxOptions": {"type": "object"},
    "seccompProfile": SECCOMP, "appArmorProfile": {"type": "object"}, "windowsOptions": {"type": "object"}}}
POD_SECURITY = {"type": "object", "additionalProperties": False, "properties": {
    "runAsNonRoot": {"type": "boolean"}, "runAsUser": NONNEG_INT, "runAsGroup": NONNEG_INT,
    "fsGroup": NONNEG_INT, "fsGroupChangePolicy": {"enum": ["OnRootMismatch", "Always"]},
    "supplementalGroups": {"type": "array", "items": NONNEG_INT}, "supplementalGroupsPolicy": {"type": "string"},
    "seccompProfile": SECCOMP, "sysctls": {"type": "array"}, "seLinuxOptions": {"type": "object"},
    "seLinuxChangePolicy": {"type": "string"}, "appArmorProfile": {"type": "object"},
    "windowsOptions": {"type": "object"}}}
CONTAINER = {
    "type": "object",
    "required": ["name", "image"],
    "additionalProperties": False,
    "properties": {
        "name": DNS_LABEL,
        "image": {"type": "string", "minLength": 1},
        "imagePullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
        "command": STRINGS, "args": STRINGS, "workingDir": {"type": "string"},
        "ports": {"type": "array", "items": {
            "type": "object", "required": ["containerPort"], "additionalProperties": False,
            "properties": {"containerPort": PORT_NUMBER, "name": PORT_NAME,
                           "protocol": {"enum": ["TCP", "UDP", "SCTP"]}, "hostPort": PORT_NUMBER,
                           "hostIP": {"type": "string"}}}},
        "env": {"type": "array", "items": ENV_VAR},
        "envFrom": {"type": "array"},
        "resources": {"type": "object", "additionalProperties": False, "properties": {
            "requests": {"type": "object", "additionalProperties": QUANTITY},
            "limits": {"type": "object", "additionalProperties": QUANTITY},
            "claims": {"type": "array"}}},
        "resizePolicy": {"type": "array"},
        # Only init containers may have one, and only "Always" (a native sidecar).
        "restartPolicy": {"enum": ["Always"]},
        "volumeMounts": {"type": "array", "items": {
            "type": "object", "required": ["name", "mountPath"], "additionalProperties": False,
            "properties": {"name": DNS_LABEL, "mountPath": {"type": "string", "pattern": "^/"},
                           "readOnly": {"type": "boolean"}, "subPath": {"type": "string"},
                           "subPathExpr": {"type": "string"}, "mountPropagation": {"type": "string"},
                           "recursiveReadOnly": {"type": "string"}}}},
        "volumeDevices": {"type": "array"},
        "livenessProbe": PROBE, "readinessProbe": PROBE, "startupProbe": PROBE,
        "lifecycle": {"type": "object", "additionalProperties": False,
                      "properties": {"postStart": HANDLER, "preStop": HANDLER, "stopSignal": {"type": "string"}}},
        "terminationMessagePath": {"type": "string"},
        "terminationMessagePolicy": {"enum": ["File", "FallbackToLogsOnError"]},
        "securityContext": CONTAINER_SECURITY,
        "stdin": {"type": "boolean"}, "stdinOnce": {"type": "boolean"}, "tty": {"type": "boolean"},
    },
}
VOLUME = {"type": "object", "required": ["name"], "properties": {
    "name": DNS_LABEL,
    "configMap": {"type": "object", "required": ["name"], "properties": {
        "name": DNS_SUBDOMAIN, "defaultMode": NONNEG_INT, "optional": {"type": "boolean"},
        "items": {"type": "array", "items": {"type": "object", "required": ["key", "path"]}}}},
    "secret": {"type": "object", "required": ["secretName"], "properties": {"secretName": DNS_SUBDOMAIN}},
    "emptyDir": {"type": "object", "additionalProperties": False, "properties": {
        "medium": {"enum": ["", "Memory"]}, "sizeLimit": QUANTITY}}}}
POD_SPEC = {
    "type": "object",
    "required": ["containers"],
    "additionalProperties": False,
    "properties": {
        "containers": {"type": "array", "minItems": 1, "items": CONTAINER},
        "initContainers": {"type": "array", "items": CONTAINER},
        "volumes": {"type": "array", "items": VOLUME},
        "securityContext": POD_SECURITY,
        "terminationGracePeriodSeconds": NONNEG_INT,
        "activeDeadlineSeconds": POS_INT,
        "automountServiceAccountToken": {"type": "boolean"},
        "enableServiceLinks": {"type": "boolean"},
        "serviceAccountName": DNS_SUBDOMAIN,
        "restartPolicy": {"enum": ["Always", "OnFailure", "Never"]},
        "shareProcessNamespace": {"type": "boolean"},
        "hostNetwork": {"type": "boolean"}, "hostPID": {"type": "boolean"}, "hostIPC": {"type": "boolean"},
        "hostUsers": {"type": "boolean"},
        "nodeSelector": STRING_MAP, "affinity": {"type": "object"}, "tolerations": {"type": "array"},
        "topologySpreadConstraints": {"type": "array"}, "priorityClassName": {"type": "string"},
        "imagePullSecrets": {"type": "array"}, "dnsPolicy": {"type": "string"}, "dnsConfig": {"type": "object"},
        "runtimeClassName": {"type": "string"}, "schedulerName": {"type": "string"},
        "hostname": {"type": "string"}, "subdomain": {"type": "string"}, "hostAliases": {"type": "array"},
        "readinessGates": {"type": "array"}, "os": {"type": "object"}, "overhead": {"type": "object"},
        "preemptionPolicy": {"type": "string"}, "setHostnameAsFQDN": {"type": "boolean"},
    },
}


def top(api_version, kind, extra_props, required=()):
    props = {"apiVersion": {"const": api_version}, "kind": {"const": kind}, "metadata": METADATA}
    props.update(extra_props)
    return {"type": "object", "required": ["apiVersion", "kind", "metadata", *required],
            "additionalProperties": False, "properties": props}


SCHEMAS = {
    "Deployment": top("apps/v1", "Deployment", {"status": {"type": "object"}, "spec": {
        "type": "object", "required": ["selector", "template"], "additionalProperties": False,
        "properties": {
            "replicas": NONNEG_INT, "minReadySeconds": NONNEG_INT, "revisionHistoryLimit": NONNEG_INT,
            "progressDeadlineSeconds": POS_INT, "paused": {"type": "boolean"}, "strategy": {"type": "object"},
            "selector": {"type": "object", "required": ["matchLabels"], "properties": {
                "matchLabels": STRING_MAP, "matchExpressions": {"type": "array"}}},
            "template": {"type": "object", "required": ["metadata", "spec"], "additionalProperties": False,
                         "properties": {"metadata": {"type": "object", "required": ["labels"], "properties": {
                             "labels": METADATA["properties"]["labels"], "annotations": STRING_MAP}},
                             "spec": POD_SPEC}},
        }}}, required=["spec"]),
    "Service": top("v1", "Service", {"status": {"type": "object"}, "spec": {
        "type": "object", "required": ["ports"], "properties": {
            "type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]},
            "selector": STRING_MAP,
            "ports": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["port"], "additionalProperties": False, "properties": {
                    "name": PORT_NAME, "port": PORT_NUMBER, "targetPort": INT_OR_PORT_NAME,
                    "protocol": {"enum": ["TCP", "UDP", "SCTP"]}, "nodePort": PORT_NUMBER,
                    "appProtocol": {"type": "string"}}}}}}}, required=["spec"]),
    "Secret": top("v1", "Secret", {"type": {"type": "string"}, "immutable": {"type": "boolean"},
                                   "data": {"type": "object", "additionalProperties": {
                                       "type": "string", "pattern": r"^[A-Za-z0-9+/]*={0,2}$"}},
                                   "stringData": STRING_MAP}),
    "ConfigMap": top("v1", "ConfigMap", {"immutable": {"type": "boolean"}, "data": STRING_MAP,
                                         "binaryData": STRING_MAP}),
}
KUSTOMIZATION_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "resources"],
    "properties": {
        "apiVersion": {"const": "kustomize.config.k8s.io/v1beta1"},
        "kind": {"const": "Kustomization"},
        "resources": STRINGS,
        "configMapGenerator": {"type": "array", "items": {
            "type": "object", "required": ["name"], "properties": {
                "name": DNS_SUBDOMAIN, "files": STRINGS, "literals": STRINGS}}},
        "images": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string"}, "newName": {"type": "string"}, "newTag": {"type": "string"},
            "digest": {"type": "string"}}}},
        "namespace": DNS_LABEL,
    },
}


# ---------------------------------------------------------------------------------------
# Small parsers
# ---------------------------------------------------------------------------------------
def parse_listen(addr):
    """'host:port' or '[v6]:port' -> (host, port); None if malformed."""
    m = re.fullmatch(r"\[([^\]]*)\]:(\d+)", addr) or re.fullmatch(r"([^:\[\]]*):(\d+)", addr)
    return (m.group(1), int(m.group(2))) if m else None


def is_loopback(host):
    return host in ("", "localhost", "::1") or host.startswith("127.")


def respite_size(value):
    """A respite byte size (conf/respite.toml: 512k = 512e3, 512kb = 512 * 1024)."""
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"\s*(\d+)\s*([kmg]b?)?\s*", str(value).lower())
    if not m:
        raise ValueError(f"not a byte size: {value!r}")
    unit = m.group(2) or ""
    base = 1024 if unit.endswith("b") else 1000
    power = {"": 0, "k": 1, "m": 2, "g": 3}[unit[:1]]
    return int(m.group(1)) * base ** power


def k8s_quantity(value):
    """A Kubernetes quantity as a float (memory in bytes, cpu in cores)."""
    if isinstance(value, (int, float)):
        return float(value)
    m = re.fullmatch(r"([0-9.]+)([eE][0-9]+|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?", str(value))
    if not m:
        raise ValueError(f"not a quantity: {value!r}")
    suffix = m.group(2) or ""
    factors = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
               "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
    if suffix[:1] in "eE" and suffix[1:].isdigit():
        return float(m.group(1)) * 10 ** int(suffix[1:])
    return float(m.group(1)) * factors[suffix]


def duration_seconds(value):
    """A compose duration ('10s', '1m30s', '500ms') in seconds."""
    total, rest = 0.0, str(value)
    for num, unit in re.findall(r"([0-9.]+)(ms|us|h|m|s)", rest):
        total += float(num) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6}[unit]
    if not re.fullmatch(r"([0-9.]+(ms|us|h|m|s))+", rest):
        raise ValueError(f"not a duration: {value!r}")
    return total


def interpolate(text, env=None):
    """Compose variable interpolation with the defaults written in the file
    (${VAR:-default}, ${VAR-default}, ${VAR}, $VAR, $$), against `env` (empty: defaults)."""
    env = env or {}

    def sub(m):
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        if m.group(2) is not None:
            value = env.get(name)
            if m.group(2) == ":-":
                return value if value else m.group(3)
            return value if value is not None else m.group(3)
        return env.get(name, "")
    return re.sub(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)", sub, text)


def image_repo(image):
    """'registry:5000/team/respite:1.0@sha256:..' -> 'respite'."""
    image = image.split("@", 1)[0]
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


# ---------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------
def rel(path):
    return os.path.relpath(path, ROOT)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def load_yaml_docs(text, name, problems):
    try:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        problems.append(f"{name}: YAML does not parse: {e}")
        return []


def load_bundle(problems):
    """Everything the checks look at, as plain data, so the self-test can mutate copies."""
    b = {"k8s": {}, "kustomization": None, "k8s_files": {}, "compose": None, "compose_files": {},
         "dockerfile": None, "dockerignore": None, "respite_default": None}
    yaml_files = []
    for dirpath, _, files in os.walk(DEPLOY):
        for f in sorted(files):
            if f.endswith((".yaml", ".yml")):
                yaml_files.append(os.path.join(dirpath, f))
    for path in sorted(yaml_files):
        docs = load_yaml_docs(read(path), rel(path), problems)
        if path == COMPOSE_FILE:
            b["compose"] = docs[0] if len(docs) == 1 else None
            if len(docs) != 1:
                problems.append(f"{rel(path)}: expected one YAML document, found {len(docs)}")
        elif os.path.dirname(path) == K8S_DIR and os.path.basename(path) == "kustomization.yaml":
            b["kustomization"] = docs[0] if docs else {}
        elif os.path.dirname(path) == K8S_DIR:
            b["k8s"][os.path.basename(path)] = docs
        else:
            problems.append(f"{rel(path)}: a YAML file the checker does not know; add it to deploy/check.py")
    if b["compose"] is None and not os.path.exists(COMPOSE_FILE):
        problems.append(f"{rel(COMPOSE_FILE)} is missing")
    if b["kustomization"] is None:
        problems.append(f"{rel(K8S_DIR)}/kustomization.yaml is missing")
    # Non-YAML files the manifests and the compose file refer to, by name.
    for name in os.listdir(K8S_DIR):
        if not name.endswith((".yaml", ".yml")):
            b["k8s_files"][name] = read(os.path.join(K8S_DIR, name))
    for dirpath, _, files in os.walk(os.path.join(DEPLOY, "compose")):
        for f in files:
            p = os.path.join(dirpath, f)
            b["compose_files"][os.path.relpath(p, DEPLOY)] = read(p)
    b["dockerfile"] = read(DOCKERFILE) if os.path.exists(DOCKERFILE) else None
    b["dockerignore"] = read(DOCKERIGNORE) if os.path.exists(DOCKERIGNORE) else None
    b["respite_default"] = read(os.path.join(ROOT, "conf", "respite.toml"))
    return b


def kustomize_objects(b, problems):
    """The objects `kubectl kustomize` would start from: the resources listed in
    kustomization.yaml plus a ConfigMap for each configMapGenerator entry (without the
    hash suffix, so references by the plain name resolve)."""
    k = b["kustomization"] or {}
    objects = []
    for name in k.get("resources", []) or []:
        if name not in b["k8s"]:
            problems.append(f"kustomization.yaml: resource {name} does not exist in deploy/k8s")
            continue
        objects.extend(b["k8s"][name])
    for name in b["k8s"]:
        if name not in (k.get("resources") or []):
            problems.append(f"deploy/k8s/{name} is not listed in kustomization.yaml resources")
    for gen in k.get("configMapGenerator", []) or []:
        data = {}
        for f in gen.get("files", []) or []:
            key, _, path = f.partition("=") if "=" in f else (os.path.basename(f), "", f)
            if path not in b["k8s_files"]:
                problems.append(f"kustomization.yaml: configMapGenerator file {path} does not exist")
                continue
            data[key] = b["k8s_files"][path]
        for lit in gen.get("literals", []) or []:
            key, _, value = lit.partition("=")
            data[key] = value
        objects.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": gen.get("name")},
                        "data": data})
    return objects


# ---------------------------------------------------------------------------------------
# respite itself: --check-config, ldd
# ---------------------------------------------------------------------------------------
def base_env():
    """A clean environment for respite: none of the caller's RESPITE_* variables."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for k, v in os.environ.items():
        if k.startswith(("ASAN_", "UBSAN_", "LSAN_")):
            env[k] = v
    return env


def check_config(respite, text, extra_env, where, problems):
    with tempfile.TemporaryDirectory(prefix="respite-deploy-check-") as d:
        path = os.path.join(d, "respite.toml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        env = base_env()
        env.update(extra_env)
        try:
            r = subprocess.run([respite, "--check-config", "--config", path], env=env, capture_output=True,
                               text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as e:
            problems.append(f"{where}: cannot run {respite} --check-config: {e}")
            return
        if r.returncode != 0:
            problems.append(f"{where}: respite --check-config rejects the configuration (exit {r.returncode}): "
                            f"{r.stderr.strip()}")


_LDD_CACHE = {}


def runtime_packages_needed(respite, problems, notes):
    """{package: [sonames]} for the shared libraries of `respite` outside the base image."""
    if respite in _LDD_CACHE:
        needed, p, n = _LDD_CACHE[respite]
        problems.extend(p)
        notes.extend(n)
        return needed
    needed, p, n = {}, [], []
    if not shutil.which("ldd") or not shutil.which("dpkg"):
        p.append("ldd or dpkg not found: cannot check the image's runtime packages")
    else:
        r = subprocess.run(["ldd", respite], capture_output=True, text=True)
        if r.returncode != 0:
            p.append(f"ldd {respite} failed: {r.stderr.strip()}")
        for line in r.stdout.splitlines():
            m = re.match(r"\s*(\S+)\s+=>\s+(\S+)", line)
            if not m:
                continue
            soname, path = m.groups()
            if path == "not":
                p.append(f"ldd: {soname} not found for {respite}")
                continue
            if SANITIZER_SONAMES.match(soname):
                n.append(f"skipped {soname}: sanitizer runtime, not part of a Release image")
                continue
            pkg = dpkg_package(path)
            if pkg is None:
                if not BASE_SONAMES.match(soname):
                    p.append(f"ldd: no Debian package owns {path} ({soname}); cannot check the image has it")
                continue
            if pkg not in BASE_PACKAGES:
                needed.setdefault(pkg, []).append(soname)
    _LDD_CACHE[respite] = (needed, p, n)
    problems.extend(p)
    notes.extend(n)
    return needed


def dpkg_package(path):
    candidates = [path, os.path.realpath(path)]
    for c in list(candidates):  # merged /usr: dpkg may know either spelling
        if c.startswith("/usr/lib/"):
            candidates.append(c[len("/usr"):])
        elif c.startswith("/lib/"):
            candidates.append("/usr" + c)
    for c in candidates:
        r = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout:
            owners = r.stdout.split(": ", 1)[0]
            return owners.split(",")[0].strip().split(":")[0]
    return None


# ---------------------------------------------------------------------------------------
# Dockerfile
# ---------------------------------------------------------------------------------------
def dockerfile_instructions(text):
    """[(INSTRUCTION, argument text)], continuation lines joined, comments dropped."""
    out, pending = [], ""
    for line in text.splitlines():
        if not pending and line.strip().startswith("#"):
            continue
        if pending and line.strip().startswith("#"):
            continue  # comment lines inside a continued instruction are dropped
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            word, _, rest = full.partition(" ")
            out.append((word.upper(), rest.strip()))
    if pending.strip():
        word, _, rest = pending.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def split_flags(args):
    """COPY/FROM arguments -> ({flag: value}, [words]); handles the JSON array form."""
    flags = {}
    rest = args.strip()
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        k, _, v = flag[2:].partition("=")
        flags[k] = v
        rest = rest.strip()
    if rest.startswith("["):
        try:
            return flags, json.loads(rest)
        except ValueError:
            pass
    return flags, shlex.split(rest)


def apt_installs(run_text):
    pkgs = []
    for segment in re.split(r"&&|\|\||;|\n", run_text):
        try:
            tokens = shlex.split(segment)
        except ValueError:
            continue
        if "apt-get" in tokens and "install" in tokens:
            after = tokens[tokens.index("install") + 1:]
            pkgs += [t.split("=")[0] for t in after if not t.startswith("-")]
    return pkgs


def check_dockerfile(b, respite, problems, notes):
    """Returns the final stage's numeric uid (or None)."""
    text = b["dockerfile"]
    if text is None:
        problems.append("deploy/Dockerfile is missing")
        return None
    stages = []
    for inst, args in dockerfile_instructions(text):
        if inst == "FROM":
            flags, words = split_flags(args)
            alias = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append({"image": words[0] if words else "", "alias": alias, "insts": []})
        elif stages:
            stages[-1]["insts"].append((inst, args))
        else:
            if inst != "ARG":
                problems.append(f"Dockerfile: {inst} before the first FROM")
    if len(stages) < 2:
        problems.append(f"Dockerfile: a multi-stage build is required (found {len(stages)} stage(s))")
        if not stages:
            return None
    final = stages[-1]
    if not FINAL_BASES.match(final["image"]):
        problems.append(f"Dockerfile: the final stage must be FROM debian:bookworm-slim (or debian:bookworm), "
                        f"not {final['image']}")
    for s in stages[:-1]:
        if not BUILD_BASES.match(s["image"]):
            problems.append(f"Dockerfile: build stage FROM {s['image']}: must be debian:bookworm so the "
                            "libraries it links are the ones the final stage installs")
    earlier = {s["alias"] for s in stages[:-1] if s["alias"]} | {str(i) for i in range(len(stages) - 1)}

    # The build stage: tests need GoogleTest, which it does not install.
    build_text = " ".join(a for s in stages[:-1] for i, a in s["insts"] if i == "RUN")
    build_pkgs = {p for s in stages[:-1] for i, a in s["insts"] if i == "RUN" for p in apt_installs(a)}
    if "libgtest-dev" not in build_pkgs and not re.search(r"-DRESPITE_TESTS=(OFF|0|FALSE|NO)\b", build_text):
        problems.append("Dockerfile: the build stage neither installs libgtest-dev nor configures with "
                        "-DRESPITE_TESTS=OFF")
    for s in stages[:-1]:
        for inst, args in s["insts"]:
            if inst in ("COPY", "ADD"):
                flags, words = split_flags(args)
                if "from" in flags:
                    continue
                for src in words[:-1]:
                    if not os.path.exists(os.path.join(ROOT, src)):
                        problems.append(f"Dockerfile: COPY {src}: no such path in the repository")
                    elif dockerignored(b["dockerignore"] or "", src.rstrip("/")):
                        problems.append(f"Dockerfile: COPY {src}: excluded by .dockerignore")

    # The final stage holds the binary and the default config only.
    binary_dest = config_dest = None
    uid = None
    exposed = set()
    pkgs = []
    entrypoint = None
    for inst, args in final["insts"]:
        if inst == "ADD":
            problems.append(f"Dockerfile: ADD {args} in the final stage; only COPY of the binary and the config")
        elif inst == "COPY":
            flags, words = split_flags(args)
            srcs, dest = words[:-1], words[-1] if words else ""
            if flags.get("from") in earlier:
                if len(srcs) == 1 and os.path.basename(srcs[0].rstrip("/")) == "respite":
                    binary_dest = dest if not dest.endswith("/") else dest + "respite"
                else:
                    problems.append(f"Dockerfile: final stage copies {srcs} from the build stage; "
                                    "only the respite binary belongs there")
            elif "from" in flags:
                problems.append(f"Dockerfile: final stage copies from {flags['from']}, which is no earlier stage")
            elif srcs == ["conf/respite.toml"]:
                config_dest = dest
                if dockerignored(b["dockerignore"] or "", srcs[0]):
                    problems.append("Dockerfile: COPY conf/respite.toml: excluded by .dockerignore")
            else:
                problems.append(f"Dockerfile: final stage copies {srcs} from the build context; only "
                                "conf/respite.toml (and the binary from the build stage) belong there")
        elif inst == "USER":
            user = args.strip()
            m = re.fullmatch(r"(\d+)(?::(\d+))?", user)
            if not m:
                problems.append(f"Dockerfile: USER {user}: use a numeric uid[:gid] so runAsNonRoot can verify it")
                uid = None
            elif int(m.group(1)) == 0 or (m.group(2) is not None and int(m.group(2)) == 0):
                problems.append(f"Dockerfile: USER {user} is root")
                uid = None
            else:
                uid = int(m.group(1))
        elif inst == "EXPOSE":
            exposed |= {int(p.split("/")[0]) for p in args.split()}
        elif inst == "RUN":
            pkgs += apt_installs(args)
        elif inst == "ENTRYPOINT":
            _, words = split_flags(args)
            entrypoint = words
    if binary_dest is None:
        problems.append("Dockerfile: the final stage does not copy the respite binary from the build stage")
    if config_dest is None:
        problems.append("Dockerfile: the final stage does not copy conf/respite.toml")
    if not any(i == "USER" for i, _ in final["insts"]):
        problems.append("Dockerfile: the final stage has no USER: it would run as root")
    if binary_dest and (not entrypoint or entrypoint[0] != binary_dest):
        problems.append(f"Dockerfile: ENTRYPOINT {entrypoint} does not run {binary_dest}")
    default_cfg = tomllib.loads(b["respite_default"])
    for key in ("server", "admin"):
        port = parse_listen(default_cfg[key]["listen"])[1]
        if port not in exposed:
            problems.append(f"Dockerfile: EXPOSE lacks {port} ({key}.listen of conf/respite.toml)")
    for pkg, sonames in sorted(runtime_packages_needed(respite, problems, notes).items()):
        if pkg not in pkgs:
            problems.append(f"Dockerfile: the final stage does not install {pkg}, which provides "
                            f"{', '.join(sonames)} (ldd respite)")

    ignore = b["dockerignore"]
    if ignore is None:
        problems.append(".dockerignore is missing at the repository root")
    else:
        for p in ("build", "build-asan", ".run", ".git"):
            if not dockerignored(ignore, p):
                problems.append(f".dockerignore does not exclude {p}")
    return uid


def _ignore_pattern(pat):
    """A .dockerignore pattern as a regex: * and ? stop at '/', ** crosses it."""
    out, i = "", 0
    while i < len(pat):
        if pat.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pat[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pat[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pat[i]), i + 1
    return re.compile(out + r"\Z")


def dockerignored(ignore_text, path):
    """Whether `path` (relative to the context) is left out of the build context: the last
    pattern matching it or one of its parent directories decides; '!' re-includes."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    excluded = False
    for line in ignore_text.splitlines():
        pat = line.strip()
        if not pat or pat.startswith("#"):
            continue
        neg = pat.startswith("!")
        rx = _ignore_pattern(os.path.normpath(pat.lstrip("!").strip()).strip("/"))
        if any(rx.match(p) for p in prefixes):
            excluded = not neg
    return excluded


# ---------------------------------------------------------------------------------------
# Kubernetes
# ---------------------------------------------------------------------------------------
def schema_problems(obj, where):
    kind = obj.get("kind") if isinstance(obj, dict) else None
    if kind not in SCHEMAS:
        return [f"{where}: kind {kind!r} has no schema in deploy/check.py; add one"]
    validator = jsonschema.Draft7Validator(SCHEMAS[kind])
    out = []
    for e in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path)):
        path = ".".join(str(p) for p in e.absolute_path) or "(top)"
        out.append(f"{where}: schema: {path}: {e.message}")
    return out


def effective_security(pod_spec, container):
    pod = pod_spec.get("securityContext") or {}
    c = container.get("securityContext") or {}
    eff = {k: pod[k] for k in ("runAsNonRoot", "runAsUser", "runAsGroup", "seccompProfile") if k in pod}
    eff.update(c)
    return eff


def resolve_port(container, port):
    if isinstance(port, int):
        return port
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return p.get("containerPort")
    return None


def prestop_seconds(container):
    pre = (container.get("lifecycle") or {}).get("preStop")
    if not pre:
        return 0
    if "sleep" in pre:
        return int(pre["sleep"].get("seconds", 0))
    cmd = " ".join((pre.get("exec") or {}).get("command") or [])
    m = re.search(r"\bsleep\s+(\d+)", cmd)
    return int(m.group(1)) if m else 0


def check_k8s(objects, respite, image_uid, label, problems, notes):
    by_kind = {}
    for i, obj in enumerate(objects):
        name = (obj.get("metadata") or {}).get("name") if isinstance(obj, dict) else None
        where = f"{label}: {obj.get('kind') if isinstance(obj, dict) else '?'}/{name or '#' + str(i)}"
        problems.extend(schema_problems(obj, where))
        if isinstance(obj, dict) and name:
            if name in by_kind.setdefault(obj.get("kind"), {}):
                problems.append(f"{where}: defined twice")
            by_kind[obj.get("kind")][name] = obj
    secrets = by_kind.get("Secret", {})
    configmaps = by_kind.get("ConfigMap", {})
    deployments = by_kind.get("Deployment", {})

    def secret_has(name, key):
        s = secrets.get(name)
        return s is not None and key in {**(s.get("data") or {}), **(s.get("stringData") or {})}

    # References every pod makes: volumes, mounts, secret/configmap keys, selectors.
    for dname, d in deployments.items():
        where = f"{label}: Deployment/{dname}"
        spec = d.get("spec") or {}
        tmpl = spec.get("template") or {}
        labels = (tmpl.get("metadata") or {}).get("labels") or {}
        for k, v in ((spec.get("selector") or {}).get("matchLabels") or {}).items():
            if labels.get(k) != v:
                problems.append(f"{where}: selector {k}={v} does not match the pod template's labels")
        pod = tmpl.get("spec") or {}
        volumes = {v.get("name"): v for v in pod.get("volumes") or []}
        for v in volumes.values():
            cm = (v.get("configMap") or {}).get("name")
            if cm and cm not in configmaps:
                problems.append(f"{where}: volume {v['name']} refers to ConfigMap {cm}, which is not in the manifests")
        for c in (pod.get("initContainers") or []) + (pod.get("containers") or []):
            for m in c.get("volumeMounts") or []:
                if m.get("name") not in volumes:
                    problems.append(f"{where}: container {c.get('name')} mounts volume {m.get('name')}, "
                                    "which the pod does not define")
            for e in c.get("env") or []:
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if ref and not secret_has(ref.get("name"), ref.get("key")):
                    problems.append(f"{where}: container {c.get('name')} env {e.get('name')} refers to Secret "
                                    f"{ref.get('name')} key {ref.get('key')}, which is not in the manifests")
    for sname, s in by_kind.get("Service", {}).items():
        sel = (s.get("spec") or {}).get("selector") or {}
        pods = [d for d in deployments.values()
                if sel and all(((d.get("spec") or {}).get("template") or {}).get("metadata", {})
                               .get("labels", {}).get(k) == v for k, v in sel.items())]
        if not pods:
            problems.append(f"{label}: Service/{sname} selects no pod of the manifests")

    # respite: the native sidecar.
    found = []
    for dname, d in deployments.items():
        tmpl = (d.get("spec") or {}).get("template") or {}
        pod = tmpl.get("spec") or {}
        annotations = (tmpl.get("metadata") or {}).get("annotations") or {}
        for c in pod.get("containers") or []:
            if image_repo(c.get("image", "")) == "respite":
                problems.append(f"{label}: Deployment/{dname}: respite is in containers; it must be a native "
                                "sidecar: in initContainers with restartPolicy: Always")
        for c in pod.get("initContainers") or []:
            if image_repo(c.get("image", "")) == "respite":
                found.append((dname, pod, annotations, c))
    if not found:
        problems.append(f"{label}: no Deployment has respite in its initContainers")
    for dname, pod, annotations, c in found:
        check_sidecar(f"{label}: Deployment/{dname} respite", pod, annotations, c, configmaps, secrets,
                      by_kind.get("Service", {}), respite, image_uid, problems)


def check_sidecar(where, pod, annotations, c, configmaps, secrets, services, respite, image_uid, problems):
    if c.get("restartPolicy") != "Always":
        problems.append(f"{where}: restartPolicy must be Always (a native sidecar); "
                        f"it is {c.get('restartPolicy')!r}")

    # The configuration: --config PATH, served by a ConfigMap volume mounted at PATH's dir.
    args = (c.get("command") or []) + (c.get("args") or [])
    cfg_path = None
    for i, a in enumerate(args):
        if a in ("--config", "-c") and i + 1 < len(args):
            cfg_path = args[i + 1]
        elif a.startswith("--config="):
            cfg_path = a.split("=", 1)[1]
    cfg_text = None
    if cfg_path is None:
        problems.append(f"{where}: no --config argument; the container would run the image's default config")
    else:
        volumes = {v.get("name"): v for v in pod.get("volumes") or []}
        for m in c.get("volumeMounts") or []:
            vol = volumes.get(m.get("name")) or {}
            cm = (vol.get("configMap") or {}).get("name")
            if not cm:
                continue
            if m.get("subPath") and m.get("mountPath") == cfg_path:
                key = m["subPath"]
            elif not m.get("subPath") and os.path.dirname(cfg_path) == m.get("mountPath", "").rstrip("/"):
                key = os.path.basename(cfg_path)
                items = (vol.get("configMap") or {}).get("items")
                if items:
                    key = next((it.get("key") for it in items if it.get("path") == key), None)
            else:
                continue
            cfg_text = ((configmaps.get(cm) or {}).get("data") or {}).get(key)
            if cfg_text is None:
                problems.append(f"{where}: ConfigMap {cm} has no key {key} for --config {cfg_path}")
        if cfg_text is None and not any(p.startswith(f"{where}: ConfigMap") for p in problems):
            problems.append(f"{where}: --config {cfg_path} is not served by a mounted ConfigMap")
    cfg = {}
    if cfg_text is not None:
        try:
            cfg = tomllib.loads(cfg_text)
        except tomllib.TOMLDecodeError as e:
            problems.append(f"{where}: the ConfigMap's config is not TOML: {e}")

    # The admin listener and the probes.
    admin_port_decl = resolve_port(c, "admin")
    if admin_port_decl is None:
        problems.append(f"{where}: no container port named admin")
    admin = parse_listen((cfg.get("admin") or {}).get("listen", "127.0.0.1:9180"))
    if admin is None:
        problems.append(f"{where}: admin.listen in the ConfigMap's config is malformed or empty")
    else:
        if is_loopback(admin[0]):
            problems.append(f"{where}: admin.listen {admin[0]}:{admin[1]} is loopback; the kubelet probes "
                            "the pod IP, so it must listen on 0.0.0.0 (or the pod IP)")
        if admin_port_decl is not None and admin[1] != admin_port_decl:
            problems.append(f"{where}: admin.listen port {admin[1]} differs from the admin container port "
                            f"{admin_port_decl}")
    scrape_port = annotations.get("prometheus.io/port")
    if scrape_port is not None and admin is not None and scrape_port != str(admin[1]):
        problems.append(f"{where}: the prometheus.io/port annotation {scrape_port} is not the admin port {admin[1]}")
    for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz"), ("startupProbe", "/readyz")):
        p = c.get(probe)
        if not p:
            problems.append(f"{where}: no {probe}")
            continue
        get = p.get("httpGet")
        if not get:
            problems.append(f"{where}: {probe} must be an httpGet of {path}")
            continue
        if get.get("path") != path:
            problems.append(f"{where}: {probe} path is {get.get('path')!r}, expected {path}")
        port = resolve_port(c, get.get("port"))
        if port is None or (admin is not None and port != admin[1]):
            problems.append(f"{where}: {probe} port {get.get('port')!r} is not the admin listener's port")

    # The app: REDIS_URL at respite's loopback listener.
    listen = parse_listen((cfg.get("server") or {}).get("listen", "127.0.0.1:6380"))
    app_urls = [(a.get("name"), e.get("value", "")) for a in pod.get("containers") or []
                for e in a.get("env") or [] if e.get("name") == "REDIS_URL"]
    if not app_urls:
        problems.append(f"{where}: no app container has REDIS_URL")
    for app, url in app_urls:
        m = re.fullmatch(r"redis://(?:[^@/]*@)?([^:/]+)(?::(\d+))?(?:/\d*)?", url)
        if not m or m.group(1) not in ("127.0.0.1", "localhost") or int(m.group(2) or 6379) != (listen or (0, 0))[1]:
            problems.append(f"{where}: container {app} REDIS_URL {url!r} does not point at respite "
                            f"(127.0.0.1:{(listen or (0, '?'))[1]})")

    # The upstream: password from a Secret, URL at a known Service (or external).
    env = {e.get("name"): e for e in c.get("env") or []}
    pw = env.get("RESPITE_UPSTREAM_PASSWORD")
    ref = ((pw or {}).get("valueFrom") or {}).get("secretKeyRef")
    if not ref:
        problems.append(f"{where}: RESPITE_UPSTREAM_PASSWORD must come from a secretKeyRef")
    elif ref.get("name") not in secrets:
        problems.append(f"{where}: RESPITE_UPSTREAM_PASSWORD's Secret {ref.get('name')} is not in the manifests")
    url = (cfg.get("upstream") or {}).get("url", "")
    if re.match(r"redis://[^@/]*:[^@/]+@", url):
        problems.append(f"{where}: upstream.url carries a password; use the Secret")
    m = re.fullmatch(r"redis://(?:[^@/]*@)?([^:/]+)(?::(\d+))?(?:/\d*)?", url)
    if m and "." not in m.group(1) and m.group(1) in services:
        ports = [p.get("port") for p in (services[m.group(1)].get("spec") or {}).get("ports") or []]
        if int(m.group(2) or 6379) not in ports:
            problems.append(f"{where}: upstream.url port {m.group(2) or 6379} is not a port of Service {m.group(1)}")

    # Resources, consistent with the near-cache budget.
    res = c.get("resources") or {}
    for kind in ("requests", "limits"):
        for r in ("cpu", "memory"):
            if r not in (res.get(kind) or {}):
                problems.append(f"{where}: resources.{kind}.{r} is not set")
    try:
        q = {(k, r): k8s_quantity(res[k][r]) for k in ("requests", "limits") for r in ("cpu", "memory")
             if r in (res.get(k) or {})}
        for r in ("cpu", "memory"):
            if ("requests", r) in q and ("limits", r) in q and q[("requests", r)] > q[("limits", r)]:
                problems.append(f"{where}: resources.requests.{r} exceeds the limit")
        cache = cfg.get("cache") or {}
        if cache.get("enabled", True):
            budget = respite_size(cache.get("memory_bytes", "64mb"))
            if ("requests", "memory") in q and q[("requests", "memory")] < budget:
                problems.append(f"{where}: memory request {res['requests']['memory']} is below "
                                f"cache.memory_bytes ({budget} bytes)")
            if ("limits", "memory") in q and q[("limits", "memory")] < 2 * budget:
                problems.append(f"{where}: memory limit {res['limits']['memory']} leaves no room beside "
                                f"cache.memory_bytes ({budget} bytes); make it at least twice that")
    except ValueError as e:
        problems.append(f"{where}: {e}")

    # Security context.
    sec = effective_security(pod, c)
    if sec.get("runAsNonRoot") is not True:
        problems.append(f"{where}: runAsNonRoot must be true")
    if not sec.get("runAsUser"):
        problems.append(f"{where}: runAsUser must be set to the image's non-root uid")
    elif image_uid is not None and sec["runAsUser"] != image_uid:
        problems.append(f"{where}: runAsUser {sec['runAsUser']} differs from the image's USER {image_uid}")
    if sec.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{where}: allowPrivilegeEscalation must be false")
    if "ALL" not in ((sec.get("capabilities") or {}).get("drop") or []):
        problems.append(f"{where}: capabilities must drop ALL")
    if (sec.get("capabilities") or {}).get("add"):
        problems.append(f"{where}: capabilities.add must be empty")
    if sec.get("readOnlyRootFilesystem") is not True:
        problems.append(f"{where}: readOnlyRootFilesystem must be true")
    if sec.get("privileged"):
        problems.append(f"{where}: must not be privileged")
    if (sec.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
        problems.append(f"{where}: seccompProfile must be RuntimeDefault (or Localhost)")

    # Termination: the grace period covers the app's shutdown, a preStop sleep and the drain.
    drain_ms = (cfg.get("server") or {}).get("drain_timeout_ms", 5000)
    grace = pod.get("terminationGracePeriodSeconds")
    need = math.ceil(drain_ms / 1000) + prestop_seconds(c) + GRACE_MARGIN_S
    if grace is None:
        problems.append(f"{where}: set terminationGracePeriodSeconds explicitly (at least {need} s)")
    elif grace < need:
        problems.append(f"{where}: terminationGracePeriodSeconds {grace} is too short: server.drain_timeout_ms "
                        f"{drain_ms} ms + preStop {prestop_seconds(c)} s + {GRACE_MARGIN_S} s for the app "
                        f"= {need} s")

    # And respite itself must accept the configuration, with the env the pod gives it.
    if cfg_text is not None and respite:
        extra = {}
        for e in c.get("env") or []:
            if "value" in e:
                extra[e["name"]] = e["value"]
            elif (e.get("valueFrom") or {}).get("secretKeyRef"):
                extra[e["name"]] = "placeholder-from-secret"
        check_config(respite, cfg_text, extra, where, problems)


def check_kustomization(b, problems):
    k = b["kustomization"]
    if k is None:
        return
    v = jsonschema.Draft7Validator(KUSTOMIZATION_SCHEMA)
    for e in v.iter_errors(k):
        problems.append(f"kustomization.yaml: schema: {'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}")
    images = {image_repo(c.get("image", "")) for docs in b["k8s"].values() for d in docs if isinstance(d, dict)
              for c in (((d.get("spec") or {}).get("template") or {}).get("spec") or {}).get("initContainers", [])
              + (((d.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers", [])}
    for img in k.get("images") or []:
        if img.get("name") not in images:
            problems.append(f"kustomization.yaml: images entry {img.get('name')} matches no container image")


# ---------------------------------------------------------------------------------------
# docker compose
# ---------------------------------------------------------------------------------------
def check_compose(b, respite, problems):
    c = b["compose"]
    if not isinstance(c, dict):
        problems.append("compose.yaml: not a mapping")
        return
    services = c.get("services") or {}
    for name in ("redis", "respite"):
        if name not in services:
            problems.append(f"compose.yaml: no {name} service")
    for name, s in services.items():
        for p in s.get("ports") or []:
            host_ip = p.get("host_ip") if isinstance(p, dict) else None
            if isinstance(p, (str, int)):
                parts = str(p).split(":")
                host_ip = parts[0] if len(parts) == 3 else None
            if host_ip not in ("127.0.0.1", "::1", "[::1]"):
                problems.append(f"compose.yaml: service {name} publishes {p!r} beyond the host's loopback")
    r = services.get("respite")
    if not r:
        return
    build = r.get("build") or {}
    if isinstance(build, str):
        build = {"context": build}
    ctx = os.path.normpath(os.path.join(DEPLOY, build.get("context", ".")))
    dockerfile = os.path.join(ctx, build.get("dockerfile", "Dockerfile"))
    if ctx != ROOT or os.path.normpath(dockerfile) != DOCKERFILE:
        problems.append(f"compose.yaml: respite must build deploy/Dockerfile with the repository root as context "
                        f"(context {os.path.relpath(ctx, ROOT)}, dockerfile {build.get('dockerfile')})")
    cmd = r.get("command") or []
    cmd = shlex.split(cmd) if isinstance(cmd, str) else cmd
    cfg_path = next((cmd[i + 1] for i, a in enumerate(cmd[:-1]) if a in ("--config", "-c")), None)
    if cfg_path is None:
        problems.append("compose.yaml: respite's command has no --config")
        return
    cfg_text = None
    for v in r.get("volumes") or []:
        src, _, rest = v.partition(":") if isinstance(v, str) else (v.get("source"), "", v.get("target"))
        target = rest.split(":")[0]
        if target == cfg_path:
            key = os.path.normpath(src)
            cfg_text = b["compose_files"].get(key)
            if cfg_text is None:
                problems.append(f"compose.yaml: respite mounts {src}, which does not exist under deploy/")
    if cfg_text is None:
        problems.append(f"compose.yaml: no volume provides respite's --config {cfg_path}")
        return
    try:
        cfg = tomllib.loads(cfg_text)
    except tomllib.TOMLDecodeError as e:
        problems.append(f"compose.yaml: respite's config is not TOML: {e}")
        return
    published = set()
    for p in r.get("ports") or []:
        published.add(int(p["target"]) if isinstance(p, dict) else int(str(p).split(":")[-1].split("/")[0]))
    for key in ("server", "admin"):
        addr = parse_listen((cfg.get(key) or {}).get("listen", ""))
        if addr is None:
            problems.append(f"compose.yaml: respite's {key}.listen is malformed or empty")
            continue
        if is_loopback(addr[0]):
            problems.append(f"compose.yaml: respite's {key}.listen {addr[0]}:{addr[1]} is loopback inside the "
                            "container; the published port cannot reach it")
        if addr[1] not in published:
            problems.append(f"compose.yaml: respite's {key}.listen port {addr[1]} is not published")
    url = (cfg.get("upstream") or {}).get("url", "")
    m = re.fullmatch(r"redis://(?:[^@/]*@)?([^:/]+)(?::(\d+))?(?:/\d*)?", url)
    if not m or m.group(1) not in services:
        problems.append(f"compose.yaml: respite's upstream.url {url!r} is not a compose service")
    deps = r.get("depends_on") or {}
    if m and m.group(1) not in deps:
        problems.append(f"compose.yaml: respite does not depend_on {m.group(1)}")
    drain_s = (cfg.get("server") or {}).get("drain_timeout_ms", 5000) / 1000
    try:
        grace = duration_seconds(r.get("stop_grace_period", "10s"))
        if grace <= drain_s:
            problems.append(f"compose.yaml: respite's stop_grace_period {grace:g} s does not exceed "
                            f"server.drain_timeout_ms ({drain_s:g} s)")
    except ValueError as e:
        problems.append(f"compose.yaml: {e}")
    env = r.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    env = {k: interpolate(str(v)) for k, v in env.items()}
    if respite:
        check_config(respite, cfg_text, env, "compose.yaml: respite", problems)


# ---------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------
def check_bundle(b, respite):
    problems, notes = [], []
    uid = check_dockerfile(b, respite, problems, notes)
    check_kustomization(b, problems)
    check_k8s(kustomize_objects(b, problems), respite, uid, "deploy/k8s", problems, notes)
    if b["compose"] is not None:
        check_compose(b, respite, problems)
    return problems, notes, uid


def external_tools(respite, uid, problems, notes):
    if shutil.which("yamllint"):
        conf = "{extends: relaxed, rules: {line-length: {max: 120}}}"
        r = subprocess.run(["yamllint", "-f", "parsable", "-d", conf, DEPLOY], capture_output=True, text=True)
        if r.returncode != 0:
            problems.append("yamllint:\n" + (r.stdout + r.stderr).strip())
        else:
            notes.append("yamllint (relaxed): passed" + (" with warnings" if r.stdout.strip() else ""))
    else:
        notes.append("skipped: yamllint not found")
    # Debian's docker-compose (Compose v1) validates the file against the Compose schema
    # without a Docker daemon; its config command also resolves paths and variables.
    if shutil.which("docker-compose"):
        r = subprocess.run(["docker-compose", "-f", COMPOSE_FILE, "config", "-q"], capture_output=True, text=True,
                           timeout=120, env={**os.environ, "REDIS_PASSWORD": ""})
        if r.returncode != 0:
            problems.append(f"docker-compose config rejects compose.yaml: {(r.stdout + r.stderr).strip()}")
        else:
            notes.append("docker-compose config (Compose schema): passed")
    else:
        notes.append("skipped: docker-compose not found (compose.yaml was not checked against the Compose schema)")
    if shutil.which("kubectl"):
        r = subprocess.run(["kubectl", "kustomize", K8S_DIR], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            problems.append(f"kubectl kustomize deploy/k8s failed: {r.stderr.strip()}")
        else:
            docs = load_yaml_docs(r.stdout, "kubectl kustomize output", problems)
            check_k8s(docs, respite, uid, "kustomize output", problems, notes)
            notes.append(f"kubectl kustomize deploy/k8s: rendered {len(docs)} objects, checked them again")
    else:
        notes.append("skipped: kubectl not found (the kustomize rendering was not checked)")


def find_app_deployment(b):
    for d in b["k8s"]["app.yaml"]:
        if d.get("kind") == "Deployment":
            return d["spec"]["template"]["spec"]
    raise AssertionError("app.yaml has no Deployment")


def sidecar(b):
    pod = find_app_deployment(b)
    return next(c for c in pod["initContainers"] if c["name"] == "respite")


def replace_text(b, section, key, old, new):
    """Replaces the first `old` in b[section][key] (or in b[section] when key is None)."""
    text = b[section] if key is None else b[section][key]
    if old not in text:
        raise AssertionError(f"mutation does not apply: {old!r} not in {key or section}")
    if key is None:
        b[section] = text.replace(old, new, 1)
    else:
        b[section][key] = text.replace(old, new, 1)


def mutations():
    """(description, mutate(bundle), a substring the report must contain)."""
    def pod(b):
        return find_app_deployment(b)

    def app(b):
        return next(c for c in pod(b)["containers"] if c["name"] == "app")

    def set_env(container, name, entry):
        container["env"] = [e for e in container["env"] if e["name"] != name] + [entry]

    return [
        ("respite without restartPolicy (a plain init container)",
         lambda b: sidecar(b).pop("restartPolicy"), "restartPolicy must be Always"),
        ("respite moved to the main containers",
         lambda b: (pod(b)["containers"].append(pod(b)["initContainers"].pop())), "respite is in containers"),
        ("admin.listen on loopback",
         lambda b: replace_text(b, "k8s_files", "respite.toml", 'listen = "0.0.0.0:9180"',
                                'listen = "127.0.0.1:9180"'), "is loopback; the kubelet"),
        ("admin.listen on another port than the probes",
         lambda b: replace_text(b, "k8s_files", "respite.toml", 'listen = "0.0.0.0:9180"',
                                'listen = "0.0.0.0:9181"'), "differs from the admin container port"),
        ("readOnlyRootFilesystem dropped",
         lambda b: sidecar(b)["securityContext"].pop("readOnlyRootFilesystem"), "readOnlyRootFilesystem must be true"),
        ("runAsNonRoot false",
         lambda b: sidecar(b)["securityContext"].update(runAsNonRoot=False), "runAsNonRoot must be true"),
        ("runAsUser not the image's user",
         lambda b: sidecar(b)["securityContext"].update(runAsUser=4242), "differs from the image's USER"),
        ("capabilities not dropped",
         lambda b: sidecar(b)["securityContext"].pop("capabilities"), "capabilities must drop ALL"),
        ("liveness probe on /readyz",
         lambda b: sidecar(b)["livenessProbe"]["httpGet"].update(path="/readyz"), "livenessProbe path"),
        ("readiness probe on the client port",
         lambda b: sidecar(b)["readinessProbe"]["httpGet"].update(port=6380), "readinessProbe port"),
        ("probe key misspelt (livenessprobe)",
         lambda b: sidecar(b).update(livenessprobe=sidecar(b).pop("livenessProbe")), "Additional properties"),
        ("annotation value not a string",
         lambda b: b["k8s"]["app.yaml"][0]["spec"]["template"]["metadata"]["annotations"].update(
             {"prometheus.io/port": 9180}), "is not of type 'string'"),
        ("REDIS_URL bypassing respite",
         lambda b: set_env(app(b), "REDIS_URL", {"name": "REDIS_URL", "value": "redis://redis:6379"}),
         "does not point at respite"),
        ("upstream password as a plain value",
         lambda b: set_env(sidecar(b), "RESPITE_UPSTREAM_PASSWORD",
                           {"name": "RESPITE_UPSTREAM_PASSWORD", "value": "hunter2"}), "must come from a secretKeyRef"),
        ("upstream password from a Secret that does not exist",
         lambda b: sidecar(b)["env"][0]["valueFrom"]["secretKeyRef"].update(name="nope"), "not in the manifests"),
        ("memory limit missing",
         lambda b: sidecar(b)["resources"]["limits"].pop("memory"), "resources.limits.memory is not set"),
        ("memory limit below the near-cache budget",
         lambda b: replace_text(b, "k8s_files", "respite.toml", 'memory_bytes = "32mb"', 'memory_bytes = "200mb"'),
         "leaves no room beside cache.memory_bytes"),
        ("grace period shorter than the drain",
         lambda b: pod(b).update(terminationGracePeriodSeconds=5), "terminationGracePeriodSeconds 5 is too short"),
        ("drain longer than the grace period allows",
         lambda b: replace_text(b, "k8s_files", "respite.toml", "drain_timeout_ms = 5000", "drain_timeout_ms = 60000"),
         "is too short"),
        ("a key respite does not know in the ConfigMap's config",
         lambda b: replace_text(b, "k8s_files", "respite.toml", "[server]\n", "[server]\nno_such_key = 1\n"),
         "respite --check-config rejects"),
        ("password_file in the config beside RESPITE_UPSTREAM_PASSWORD",
         lambda b: replace_text(b, "k8s_files", "respite.toml", "[upstream]\n",
                                '[upstream]\npassword_file = "/etc/respite/pw"\n'), "respite --check-config rejects"),
        ("config volume dropped",
         lambda b: pod(b).update(volumes=[]), "which the pod does not define"),
        ("Secret left out of kustomization.yaml",
         lambda b: b["kustomization"]["resources"].remove("secret.yaml"), "not listed in kustomization.yaml"),
        ("compose: respite published on every host address",
         lambda b: b["compose"]["services"]["respite"].update(ports=["6380:6380", "127.0.0.1:9180:9180"]),
         "beyond the host's loopback"),
        ("compose: respite listening on loopback in its container",
         lambda b: replace_text(b, "compose_files", "compose/respite.toml", 'listen = "0.0.0.0:6380"',
                                'listen = "127.0.0.1:6380"'), "is loopback inside the container"),
        ("compose: invalid respite config",
         lambda b: replace_text(b, "compose_files", "compose/respite.toml", 'level = "info"', 'level = "loud"'),
         "respite --check-config rejects"),
        ("compose: stop_grace_period within the drain",
         lambda b: b["compose"]["services"]["respite"].update(stop_grace_period="3s"), "does not exceed"),
        ("Dockerfile: a runtime library package missing",
         lambda b: replace_text(b, "dockerfile", None, " libtomlplusplus3 ", " "), "does not install libtomlplusplus3"),
        ("Dockerfile: a single stage",
         lambda b: b.update(dockerfile=re.sub(r"(?s)^.*?(?=FROM debian:bookworm-slim)", "", b["dockerfile"])),
         "multi-stage build is required"),
        ("Dockerfile: final stage on another base",
         lambda b: replace_text(b, "dockerfile", None, "FROM debian:bookworm-slim", "FROM ubuntu:24.04"),
         "final stage must be FROM debian:bookworm"),
        ("Dockerfile: runs as root",
         lambda b: replace_text(b, "dockerfile", None, "USER 10001:10001", "USER 0"), "is root"),
        ("Dockerfile: no USER",
         lambda b: replace_text(b, "dockerfile", None, "USER 10001:10001\n", ""), "has no USER"),
        ("Dockerfile: the source tree in the final image",
         lambda b: replace_text(b, "dockerfile", None, "USER 10001", "COPY --from=build /src /src\nUSER 10001"),
         "only the respite binary belongs there"),
        ("Dockerfile: admin port not exposed",
         lambda b: replace_text(b, "dockerfile", None, "EXPOSE 6380 9180", "EXPOSE 6380"), "EXPOSE lacks 9180"),
        ("Dockerfile: tests on without GoogleTest",
         lambda b: replace_text(b, "dockerfile", None, "-DRESPITE_TESTS=OFF", ""), "-DRESPITE_TESTS=OFF"),
        ("scrape annotation on another port",
         lambda b: b["k8s"]["app.yaml"][0]["spec"]["template"]["metadata"]["annotations"].update(
             {"prometheus.io/port": "9090"}), "prometheus.io/port annotation 9090"),
        (".dockerignore letting build directories in",
         lambda b: replace_text(b, "dockerignore", None, "\n*\n", "\n"), "does not exclude build-asan"),
        (".dockerignore leaving out a file the image needs",
         lambda b: replace_text(b, "dockerignore", None, "!conf/respite.toml\n", ""),
         "conf/respite.toml: excluded by .dockerignore"),
    ]


def self_test(respite):
    problems = []
    b = load_bundle(problems)
    base, _, _ = check_bundle(b, respite)
    if problems or base:
        for p in problems + base:
            print(f"FAIL: {p}")
        print("self-test: the unmodified files must pass first")
        return 1
    failed = 0
    for desc, mutate, expect in mutations():
        m = copy.deepcopy(b)
        try:
            mutate(m)
        except AssertionError as e:
            print(f"NOT APPLIED  {desc}: {e}")
            failed += 1
            continue
        found, _, _ = check_bundle(m, respite)
        if any(expect in p for p in found):
            print(f"caught       {desc}")
        else:
            print(f"NOT CAUGHT   {desc} (expected a report containing {expect!r}; got {found})")
            failed += 1
    total = len(mutations())
    print(f"self-test: {total - failed} of {total} mutations caught")
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--respite", required=True, help="the respite binary (for --check-config and ldd)")
    ap.add_argument("--self-test", action="store_true", help="prove each check reports a violation")
    args = ap.parse_args()
    respite = os.path.abspath(args.respite)
    if not os.access(respite, os.X_OK):
        print(f"FAIL: {args.respite} is not an executable respite binary")
        return 1
    if args.self_test:
        return self_test(respite)
    problems = []
    b = load_bundle(problems)
    found, notes, uid = check_bundle(b, respite)
    problems += found
    external_tools(respite, uid, problems, notes)
    for n in notes:
        print(f"note: {n}")
    for p in problems:
        print(f"FAIL: {p}")
    if problems:
        print(f"deploy/check.py: {len(problems)} problem(s)")
        return 1
    print("deploy/check.py: deploy/ is consistent (Dockerfile, compose.yaml, k8s manifests, respite configs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
