"""deploy/: the compose file, the Kubernetes manifests and their settings, checked statically.

No container engine or cluster runs where the suite runs, so nothing here starts a
container. What can be checked without one is checked against the real thing rather than
by eye: the compose file against the Compose Specification's JSON schema (the one
``docker compose`` validates with, as check-jsonschema ships it), the manifests against
Kubernetes' OpenAPI schemas (kubernetes-validate, strict: unknown fields fail), every
``renown ...`` command against the CLI's own argparse parser, and every process's
environment through ``renown.settings.load_settings``, the function the processes call at
start. The cross-file rules (one image tag, the publisher key only where it is needed,
ingest replicas within the partition count, probes on ports the containers expose) are
the ones a reviewer would otherwise have to hold in their head.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic import SecretStr

from renown.cli import build_parser
from renown.settings import CONFIG_ENV, Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
ENV_DIR = DEPLOY / "env"
SECRETS_EXAMPLE = ENV_DIR / "secrets.env.example"
K8S = DEPLOY / "k8s"

# The Kubernetes release the manifests are validated against: fixed, so that a new
# kubernetes-validate does not change what this test means.
K8S_VERSION = "1.30.0"

# The long-running processes, by compose service and Deployment (renown-<name>): the
# subcommand each runs.
PROCESSES = {
    "chain-source": "chain-source",
    "ingest": "ingest",
    "scorer": "score",
    "publisher": "publish",
    "api": "serve",
}

# Settings that name where things are (hosts, worker count per container): the only ones
# allowed to differ between compose and Kubernetes. Everything else is the same system.
DEPLOYMENT_SPECIFIC = {"RENOWN_KAFKA_BOOTSTRAP", "RENOWN_API_WORKERS"}


# --- helpers ---------------------------------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as compose and kustomize read them (comments and blanks skipped)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
        assert key not in values, f"{path.name}: {key} set twice"
        values[key] = value
    return values


def committed_env_files() -> list[Path]:
    return sorted(ENV_DIR.glob("*.env")) + sorted((K8S / "config").glob("*.env"))


def example_env_files() -> list[Path]:
    return [SECRETS_EXAMPLE, *sorted((K8S / "secrets").glob("*.env.example"))]


def env_name(field: str) -> str:
    return f"RENOWN_{field.upper()}"


SETTING_VARS = {env_name(name) for name in Settings.model_fields}

# What must never sit in a ConfigMap or a committed env file: the SecretStr settings and
# the database URL (it carries the password), and the PostgreSQL password itself.
SECRET_VARS = {
    env_name(name)
    for name, field in Settings.model_fields.items()
    if SecretStr in (getattr(field.annotation, "__args__", None) or (field.annotation,))
} | {"RENOWN_DATABASE_URL", "POSTGRES_PASSWORD"}


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's interpolation of ``${VAR}``, ``${VAR:?msg}``, ``${VAR:-default}`` and ``$$``."""

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if name in variables and (variables[name] or op not in (":-", ":?")):
            return variables[name]
        if op in (":?", "?"):
            raise AssertionError(f"compose needs {name} ({arg}); {SECRETS_EXAMPLE.name} lacks it")
        return arg or ""

    return re.sub(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}", sub, value)


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())  # PyYAML resolves the << merge keys
    assert isinstance(data, dict)
    return data


def renown_services() -> dict[str, dict[str, Any]]:
    """The compose services that run the Renown image."""
    return {
        name: service
        for name, service in compose()["services"].items()
        if str(service.get("image", "")).startswith("renown:")
    }


def compose_environment(service: dict[str, Any]) -> dict[str, str]:
    """What a service's process sees: its env files in order, then ``environment``, with
    the secrets example standing in for deploy/env/secrets.env."""
    env: dict[str, str] = {}
    for name in service.get("env_file", []):
        env.update(read_env_file(COMPOSE.parent / name))
    secrets = read_env_file(SECRETS_EXAMPLE)
    for key, value in (service.get("environment") or {}).items():
        env[key] = interpolate(str(value), secrets)
    return env


def kustomization() -> dict[str, Any]:
    data = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert isinstance(data, dict)
    return data


def generated(kind: str) -> dict[str, dict[str, str]]:
    """The kustomization's ConfigMaps or Secrets by name, from their env files (a secret's
    committed .example standing in for the git-ignored file)."""
    key = "configMapGenerator" if kind == "ConfigMap" else "secretGenerator"
    out: dict[str, dict[str, str]] = {}
    for gen in kustomization().get(key, []):
        data: dict[str, str] = {}
        for name in gen.get("envs", []):
            path = K8S / name
            data.update(read_env_file(path if kind == "ConfigMap" else Path(f"{path}.example")))
        for entry in gen.get("files", []):  # key=path: the file's text under that key
            file_key, _, name = entry.rpartition("=")
            path = K8S / name
            text = (path if kind == "ConfigMap" else Path(f"{path}.example")).read_text()
            data[file_key or Path(name).name] = text
        out[gen["name"]] = data
    return out


def k8s_documents() -> list[dict[str, Any]]:
    """Every object ``kubectl apply -k`` would send: the resources, then the generated
    ConfigMaps and Secrets (without kustomize's hash suffix), in the kustomization's
    namespace."""
    kust = kustomization()
    docs: list[dict[str, Any]] = []
    for name in kust["resources"]:
        docs.extend(d for d in yaml.safe_load_all((K8S / name).read_text()) if d)
    for kind in ("ConfigMap", "Secret"):
        for name, data in generated(kind).items():
            body = "data" if kind == "ConfigMap" else "stringData"
            docs.append({"apiVersion": "v1", "kind": kind, "metadata": {"name": name}, body: data})
    for doc in docs:
        if doc["kind"] != "Namespace":
            doc["metadata"].setdefault("namespace", kust["namespace"])
    return docs


def workloads() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, pod spec) for every Deployment, Job and CronJob."""
    for doc in k8s_documents():
        if doc["kind"] in ("Deployment", "Job"):
            yield doc, doc["spec"]["template"]["spec"]
        elif doc["kind"] == "CronJob":
            yield doc, doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def deployments() -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["name"].removeprefix("renown-"): d
        for d in k8s_documents()
        if d["kind"] == "Deployment"
    }


def container_environment(container: dict[str, Any]) -> dict[str, str]:
    """What a container's process sees: envFrom in order, then env."""
    configmaps, secrets = generated("ConfigMap"), generated("Secret")
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(configmaps[source["configMapRef"]["name"]])
        else:
            env.update(secrets[source["secretRef"]["name"]])
    for item in container.get("env", []):
        env[item["name"]] = item["value"]
    return env


def renown_containers() -> Iterator[tuple[str, dict[str, Any]]]:
    for workload, pod in workloads():
        for container in pod["containers"]:
            if container["image"].startswith("renown:"):
                yield workload["metadata"]["name"], container


def package_version() -> str:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert isinstance(version, str)
    return version


def parse_cli(argv: list[str]) -> Any:
    """argv through the real parser; argparse's exit on a bad option becomes a failure."""
    try:
        return build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"renown {' '.join(argv)}: refused by the CLI's parser (exit {exc.code})")


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No RENOWN_* from the machine running the tests leaks into a loaded configuration."""
    for key in list(os.environ):
        if key.startswith("RENOWN_") or key == CONFIG_ENV:
            monkeypatch.delenv(key)
    return monkeypatch


# --- the files parse and match their schemas --------------------------------------------


def test_every_yaml_file_parses() -> None:
    files = sorted(DEPLOY.rglob("*.yaml"))
    assert COMPOSE in files and K8S / "kustomization.yaml" in files
    for path in files:
        assert [d for d in yaml.safe_load_all(path.read_text()) if d], f"{path} is empty"


def test_compose_file_matches_the_compose_specification() -> None:
    """The Compose Specification's schema (check-jsonschema's vendored copy) refuses
    unknown keys and wrong values, e.g. a misspelt depends_on condition."""
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_kustomization_lists_every_manifest() -> None:
    """A manifest left out of kustomization.yaml would silently not be applied."""
    listed = set(kustomization()["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


def test_manifests_match_the_kubernetes_schemas() -> None:
    for doc in k8s_documents():
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {exc.path}")


# --- commands ----------------------------------------------------------------------------


def _commands() -> list[Any]:
    params = [
        pytest.param(list(service["command"]), id=f"compose:{name}")
        for name, service in renown_services().items()
    ]
    params += [
        pytest.param(list(container["args"]), id=f"k8s:{workload}")
        for workload, container in renown_containers()
    ]
    return params


@pytest.mark.parametrize("argv", _commands())
def test_every_command_is_accepted_by_the_cli(argv: list[str]) -> None:
    args = parse_cli(argv)
    assert args.command == argv[0]


def test_the_processes_are_there_with_the_same_command_in_compose_and_k8s() -> None:
    services, deps = renown_services(), deployments()
    for name, subcommand in PROCESSES.items():
        assert services[name]["command"][0] == subcommand, name
        container = deps[name]["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == services[name]["command"], name
    assert services["migrate"]["command"] == ["db", "upgrade"]
    jobs = [c["args"] for w, c in renown_containers() if w.startswith("renown-migrate")]
    assert jobs == [["db", "upgrade"]]


def test_the_scorer_interval_is_the_configured_one() -> None:
    """``score --every N``: N is RENOWN_SCORE_INTERVAL_S as configured, in both."""
    for argv, env in [
        (renown_services()["scorer"]["command"],
         compose_environment(renown_services()["scorer"])),
        (deployments()["scorer"]["spec"]["template"]["spec"]["containers"][0]["args"],
         container_environment(
             deployments()["scorer"]["spec"]["template"]["spec"]["containers"][0])),
    ]:  # fmt: skip
        every = argv[argv.index("--every") + 1]
        assert float(every) == float(env["RENOWN_SCORE_INTERVAL_S"])


# --- settings ----------------------------------------------------------------------------


def test_env_files_document_every_variable() -> None:
    """A comment line right above every assignment (the operator's only documentation
    while editing the file)."""
    for path in [*committed_env_files(), *example_env_files()]:
        lines = path.read_text().splitlines()
        assert lines and lines[0].startswith("#"), f"{path}: no header comment"
        for i, line in enumerate(lines):
            if line.strip() and not line.startswith("#"):
                assert i > 0 and lines[i - 1].startswith("#"), f"{path.name}: {line} undocumented"


def test_every_renown_variable_is_a_setting() -> None:
    """A misspelt or invented RENOWN_* variable would be ignored by the process."""
    files = [*committed_env_files(), *example_env_files()]
    seen: dict[str, set[str]] = {}
    for path in files:
        for key in read_env_file(path):
            seen.setdefault(key, set()).add(path.name)
    for env in [compose_environment(s) for s in renown_services().values()]:
        for key in env:
            seen.setdefault(key, set()).add("compose.yaml")
    unknown = {
        k: sorted(v) for k, v in seen.items() if k.startswith("RENOWN_") and k not in SETTING_VARS
    }
    assert not unknown, f"not fields of renown.settings.Settings: {unknown}"
    # The only other variable is PostgreSQL's password, for the postgres service.
    assert {k for k in seen if not k.startswith("RENOWN_")} == {"POSTGRES_PASSWORD"}


@pytest.mark.parametrize("name", [*sorted(PROCESSES), "migrate"])
def test_compose_settings_load(name: str, clean_environ: pytest.MonkeyPatch) -> None:
    env = compose_environment(renown_services()[name])
    for key, value in env.items():
        clean_environ.setenv(key, value)
    settings = load_settings()
    assert settings.database_url.startswith("postgresql://renown:")
    assert settings.kafka_bootstrap == "kafka:9092"


@pytest.mark.parametrize("workload", sorted({w for w, _ in renown_containers()}))
def test_k8s_settings_load(workload: str, clean_environ: pytest.MonkeyPatch) -> None:
    (container,) = [c for w, c in renown_containers() if w == workload]
    for key, value in container_environment(container).items():
        clean_environ.setenv(key, value)
    assert load_settings().database_url.startswith("postgresql://")


def test_each_process_has_what_it_refuses_to_start_without(
    clean_environ: pytest.MonkeyPatch,
) -> None:
    """Required-at-run-time settings the Settings class cannot demand of every process."""
    needs = {
        "chain-source": {"RENOWN_CHAIN_CONTRACTS", "RENOWN_KAFKA_BOOTSTRAP"},
        "ingest": {"RENOWN_KAFKA_BOOTSTRAP", "RENOWN_GROUP_ID"},
        "scorer": {"RENOWN_SEEDS"},
        "publisher": {"RENOWN_CONTRACT_ID", "RENOWN_PUBLISHER_ACCOUNT_ID",
                      "RENOWN_PUBLISHER_PRIVATE_KEY"},
        "api": {"RENOWN_API_HOST"},
    }  # fmt: skip
    for name, required in needs.items():
        container = deployments()[name]["spec"]["template"]["spec"]["containers"][0]
        for env in (compose_environment(renown_services()[name]), container_environment(container)):
            assert required <= set(env), f"{name} lacks {required - set(env)}"
            if name == "api":  # reachable from outside the container
                assert env["RENOWN_API_HOST"] == "0.0.0.0"


def test_compose_and_k8s_run_the_same_settings() -> None:
    """Same variables in each k8s config file as in its compose twin; the same values
    except where a deployment names its own hosts."""
    for k8s_file in sorted((K8S / "config").glob("*.env")):
        compose_values = read_env_file(ENV_DIR / k8s_file.name)
        k8s_values = read_env_file(k8s_file)
        assert set(k8s_values) == set(compose_values), k8s_file.name
        differ = {k for k in k8s_values if k8s_values[k] != compose_values[k]}
        assert differ <= DEPLOYMENT_SPECIFIC, f"{k8s_file.name}: {sorted(differ)} differ"
    assert {p.name for p in (K8S / "config").glob("*.env")} == {
        p.name for p in ENV_DIR.glob("*.env")
    }


# --- secrets ----------------------------------------------------------------------------


def test_secrets_never_in_configmaps_or_committed_env_files() -> None:
    for path in committed_env_files():
        leaked = SECRET_VARS & set(read_env_file(path))
        assert not leaked, f"{path}: {leaked} belong in a secret"
    for name, data in generated("ConfigMap").items():
        assert not SECRET_VARS & set(data), name
    for doc in k8s_documents():
        if doc["kind"] == "ConfigMap":
            assert not SECRET_VARS & set(doc.get("data", {})), doc["metadata"]["name"]
    # Nor written into compose.yaml: only references to the --env-file's variables.
    for service in compose()["services"].values():
        for key, value in (service.get("environment") or {}).items():
            if key in SECRET_VARS:
                assert "${" in str(value), f"{key} is written into compose.yaml"


def test_the_real_secret_files_are_git_ignored() -> None:
    for path in ["deploy/env/secrets.env", "deploy/k8s/secrets/database.env",
                 "deploy/k8s/secrets/publisher.env", "deploy/env/api-keys.txt",
                 "deploy/k8s/secrets/api-keys.txt"]:  # fmt: skip
        result = subprocess.run(
            ["git", "check-ignore", "-q", path], cwd=ROOT, capture_output=True, timeout=30
        )
        assert result.returncode == 0, f"{path} is not git-ignored"


def test_the_publisher_key_reaches_only_the_publisher(clean_environ: pytest.MonkeyPatch) -> None:
    for name, service in renown_services().items():
        has_key = "RENOWN_PUBLISHER_PRIVATE_KEY" in compose_environment(service)
        assert has_key == (name == "publisher"), name
    for workload, container in renown_containers():
        has_key = "RENOWN_PUBLISHER_PRIVATE_KEY" in container_environment(container)
        assert has_key == (workload == "renown-publisher"), workload


def test_api_keys_come_from_a_secret_file_never_committed() -> None:
    """`renown keys import --file F` reads the mounted secret in both; the committed
    examples hold no key (every line a comment), and the import accepts them as they are."""
    service = renown_services()["api-keys"]
    assert service["secrets"] == ["api-keys"]
    assert compose()["secrets"]["api-keys"] == {"file": "./env/api-keys.txt"}
    argv = list(service["command"])
    assert argv[:3] == ["keys", "import", "--file"] and argv[3] == "/run/secrets/api-keys"
    assert parse_cli(argv).keys_action == "import"
    (cron,) = [d for d in k8s_documents() if d["kind"] == "CronJob"]
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "api-keys"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "api-keys"]
    assert volume["secret"]["secretName"] == "renown-api-keys"
    assert "api-keys.txt" in generated("Secret")["renown-api-keys"]
    assert container["args"][3] == f"{mount['mountPath']}/api-keys.txt"
    for example in (ENV_DIR / "api-keys.txt.example", K8S / "secrets/api-keys.txt.example"):
        lines = [line for line in example.read_text().splitlines() if line.strip()]
        assert lines and all(line.startswith("#") for line in lines), example


def test_every_referenced_secret_and_configmap_exists() -> None:
    configmaps, secrets = set(generated("ConfigMap")), set(generated("Secret"))
    for _, pod in workloads():
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                assert volume["secret"]["secretName"] in secrets
        for container in pod["containers"]:
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in configmaps
                else:
                    assert source["secretRef"]["name"] in secrets


# --- ordering, health, scale, image ------------------------------------------------------


def test_compose_start_order() -> None:
    services = compose()["services"]
    for name in ("kafka", "postgres"):
        assert services[name]["healthcheck"]["test"], name
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["migrate"]["restart"] == "no"
    assert services["topics"]["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    for name in PROCESSES:
        depends = services[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
        assert depends["topics"] == {"condition": "service_completed_successfully"}, name
        assert depends["kafka"] == {"condition": "service_healthy"}, name
        assert depends["postgres"] == {"condition": "service_healthy"}, name


def test_compose_kafka_is_a_single_kraft_node() -> None:
    env = compose()["services"]["kafka"]["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert "ZOOKEEPER" not in " ".join(env)
    common = read_env_file(ENV_DIR / "common.env")
    assert common["RENOWN_KAFKA_BOOTSTRAP"] == env["KAFKA_ADVERTISED_LISTENERS"].split("//")[1]


def test_topics_are_created_with_the_configured_partitions() -> None:
    """The topics one-shot reads the partition count from the same settings, not a copy."""
    service = compose()["services"]["topics"]
    script = service["command"][0]
    assert "--partitions" in script and "$$RENOWN_TOPIC_PARTITIONS" in script
    assert "env/common.env" in service["env_file"]
    (job,) = [d for d in k8s_documents() if d["metadata"]["name"].startswith("renown-topics")]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert "$RENOWN_TOPIC_PARTITIONS" in container["args"][0]
    assert {"configMapRef": {"name": "renown-common"}} in container["envFrom"]


def test_compose_health_checks_hit_the_process_port() -> None:
    for name, subcommand in PROCESSES.items():
        service = renown_services()[name]
        env = compose_environment(service)
        port = env["RENOWN_API_PORT" if subcommand == "serve" else "RENOWN_HEALTH_PORT"]
        test = " ".join(service["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/healthz" in test, name


def test_every_deployment_probes_healthz_on_an_exposed_port() -> None:
    for name, dep in deployments().items():
        for container in dep["spec"]["template"]["spec"]["containers"]:
            env = container_environment(container)
            serve = container["args"][0] == "serve"
            expected = int(env["RENOWN_API_PORT" if serve else "RENOWN_HEALTH_PORT"])
            # The kubelet probes the pod's address, not the container's loopback.
            assert env["RENOWN_API_HOST" if serve else "RENOWN_HEALTH_HOST"] == "0.0.0.0", name
            ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
            for probe in ("readinessProbe", "livenessProbe"):
                get = container[probe]["httpGet"]
                assert get["path"] == "/healthz", (name, probe)
                port = ports[get["port"]] if isinstance(get["port"], str) else get["port"]
                assert port in ports.values(), (name, probe, "port not exposed")
                assert port == expected, (name, probe, port, expected)
                # /healthz answers within about 2.5 s (docs/api.md)
                assert container[probe].get("timeoutSeconds", 1) >= 3, (name, probe)


def test_ingest_replicas_within_the_partition_count() -> None:
    compose_replicas = renown_services()["ingest"]["deploy"]["replicas"]
    partitions = int(read_env_file(ENV_DIR / "common.env")["RENOWN_TOPIC_PARTITIONS"])
    assert 2 <= compose_replicas <= partitions
    k8s_replicas = deployments()["ingest"]["spec"]["replicas"]
    k8s_partitions = int(read_env_file(K8S / "config" / "common.env")["RENOWN_TOPIC_PARTITIONS"])
    assert 1 <= k8s_replicas <= k8s_partitions
    rollout = deployments()["ingest"]["spec"]["strategy"]
    assert rollout["rollingUpdate"]["maxSurge"] == 0  # never above replicas mid-rollout


def test_single_writers_never_overlap() -> None:
    for name in ("chain-source", "scorer", "publisher"):
        spec = deployments()[name]["spec"]
        assert spec["replicas"] == 1, name
        assert spec["strategy"] == {"type": "Recreate"}, name
        assert "deploy" not in renown_services()[name], name  # one container in compose


def test_one_image_and_tag_everywhere() -> None:
    """The image compose builds is the one Kubernetes runs: renown:<package version>."""
    image = f"renown:{package_version()}"
    images = {s["image"] for s in renown_services().values()}
    images |= {c["image"] for _, c in renown_containers()}
    assert images == {image}
    (entry,) = [i for i in kustomization()["images"] if i["name"] == "renown"]
    assert entry["newTag"] == package_version()
    kafka_images = {compose()["services"][s]["image"] for s in ("kafka", "topics")}
    kafka_images |= {
        c["image"] for _, pod in workloads() for c in pod["containers"]
        if not c["image"].startswith("renown:")
    }  # fmt: skip
    assert len(kafka_images) == 1
    for service in renown_services().values():
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}


def test_dockerfile_runs_renown_as_a_non_root_user() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", text, re.M)
    assert re.search(r"^ENTRYPOINT \[\"renown\"\]", text, re.M)
    (user,) = re.findall(r"^USER (\S+)", text, re.M)
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    # The runtime dependencies only: `pip install .`, no extras (dev, bench).
    (install,) = re.findall(r"^RUN pip install (\S+)", text, re.M)
    assert install == "."
    for _, pod in workloads():
        context = pod.get("securityContext", {})
        if context.get("runAsUser") not in (None, 1000):  # 1000: Kafka's own image
            assert context["runAsUser"] == int(uid)
        assert context.get("runAsNonRoot") is True
    # Every package the wheel is built from is copied into the image.
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
    for pattern in include:
        package = pattern.rstrip("*")
        assert f"COPY {package}/ {package}/" in text, package
