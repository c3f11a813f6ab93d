"""The deployment files: docker-compose.yml (validated offline), Dockerfile, .env.example, dagster.yaml."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def _readme_services() -> set[str]:
    """The services the operators guide's deployment table names (first column, in backticks)."""
    text = (ROOT / "docs" / "operators.md").read_text()
    section = text.split("## Deployment (docker compose)", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z-]+)` \|", section, flags=re.M))


def test_every_service_the_docs_name_is_there_with_a_healthcheck() -> None:
    named = _readme_services()
    assert named == {"postgres", "elasticsearch", "jaeger", "code-location", "dagster-webserver", "dagster-daemon",
                     "agent-server", "load-balancer", "memory-server"}  # fmt: skip
    assert named == set(SERVICES)
    for name in named:
        assert "test" in SERVICES[name]["healthcheck"], name


def test_images_ports_and_dependencies() -> None:
    assert SERVICES["postgres"]["image"] == "pgvector/pgvector:pg17"
    assert SERVICES["elasticsearch"]["environment"]["xpack.security.enabled"] == "true"
    published = {name: s.get("ports", []) for name, s in SERVICES.items()}
    assert all(port.startswith("127.0.0.1:") for ports in published.values() for port in ports)
    assert {p for ports in published.values() for p in ports} >= {
        "127.0.0.1:3000:3000", "127.0.0.1:8080:8080", "127.0.0.1:17800:17800"}  # fmt: skip
    # Agent-server replicas publish nothing: the load balancer is their one address.
    assert "ports" not in SERVICES["agent-server"] and SERVICES["agent-server"]["deploy"]["replicas"] >= 2
    assert SERVICES["load-balancer"]["depends_on"]["agent-server"]["condition"] == "service_healthy"
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in SERVICES["load-balancer"]["volumes"]
    for name in ("dagster-webserver", "dagster-daemon"):
        assert SERVICES[name]["depends_on"]["code-location"]["condition"] == "service_healthy"
    for name in ("agent-server", "memory-server", "code-location"):
        assert SERVICES[name]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_secrets_come_only_from_env() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    assert "${POSTGRES_PASSWORD:?" in text and "${ELASTIC_PASSWORD:?" in text
    assert "${SAGE_API_KEYS:?" in text and "${SAGE_MCP_TOKENS:?" in text
    example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line and line[0] != "#"
    )
    assert {"POSTGRES_PASSWORD", "ELASTIC_PASSWORD", "SAGE_API_KEYS", "SAGE_MCP_TOKENS"} <= set(example)
    assert all(value in ("", "change-me", "change-me-too") for value in example.values())
    assert (ROOT / ".env") not in list(ROOT.iterdir()) or ".env" in (ROOT / ".gitignore").read_text()


@pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="docker-compose is not installed (scripts/install-test-tools)"
)
def test_compose_validates_offline(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    filled = (ROOT / ".env.example").read_text().replace("change-me-too", "e").replace("change-me", "p")
    env.write_text(
        filled.replace("SAGE_API_KEYS=\n", "SAGE_API_KEYS=ops=k1\n").replace(
            "SAGE_MCP_TOKENS=\n", "SAGE_MCP_TOKENS=ops=t1\n"
        )
    )
    done = subprocess.run(
        ["docker-compose", "--env-file", str(env), "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    empty = tmp_path / "empty.env"
    empty.write_text("")
    missing = subprocess.run(
        ["docker-compose", "--env-file", str(empty), "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True, text=True, env={"PATH": os.environ["PATH"]},
    )  # fmt: skip
    assert missing.returncode != 0 and "set POSTGRES_PASSWORD in .env" in missing.stderr
    keyless = tmp_path / "keyless.env"
    keyless.write_text(filled)  # passwords set, keys left empty: the servers would be open, so it fails
    no_keys = subprocess.run(
        ["docker-compose", "--env-file", str(keyless), "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True, text=True, env={"PATH": os.environ["PATH"]},
    )  # fmt: skip
    assert no_keys.returncode != 0 and "set SAGE_API_KEYS" in no_keys.stderr


def test_dagster_yaml_is_the_production_instance(settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from dagster import DagsterInstance

    from sage_platform.db import Database
    from sage_platform.runtime import prepare_dagster_home, set_pool_limits

    monkeypatch.setenv("SAGE_MAX_CONCURRENT_RUNS", "3")
    settings = settings.model_copy(update={"max_concurrent_runs": 3})
    Database.from_settings(settings)
    prepare_dagster_home(settings)
    assert set_pool_limits(settings) == {"llm": 4, "embedding": 1, "database": 1}
    # embedding=auto: one shard at a time in process; one per core when steps have processes of their own
    multiprocess = settings.model_copy(update={"dagster_executor": "multiprocess"})
    assert set_pool_limits(multiprocess)["embedding"] == (os.cpu_count() or 1)
    assert set_pool_limits(settings)["embedding"] == 1
    with DagsterInstance.get() as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        # only a crashed run worker is retried, never a deterministic asset or check failure
        assert not instance.run_retries_retry_on_asset_or_op_failure
        concurrency = instance.get_concurrency_config()
        assert concurrency.run_queue_config.max_concurrent_runs == 3  # the setting, written into the copy
        assert concurrency.pool_config.pool_granularity.value == "op"
        assert instance.event_log_storage.get_concurrency_keys() == {"llm", "embedding", "database"}
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    from sage_platform.definitions import defs

    pools = {node.key.path[-1]: node.pools for node in defs.resolve_asset_graph().asset_nodes}
    assert pools["chunk_embeddings"] == {"embedding"} and pools["rag_answers"] == {"llm"}
    assert pools["pgvector_index"] == {"database"}


@pytest.mark.parametrize("profile", ["docker", "k8s"])
def test_each_run_launcher_profile_validates_as_a_dagster_instance(
    profile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file passes Dagster's instance schema, and its run launcher's own config passes that class's
    schema (as the instance checks it when it builds the launcher, which would need a cluster or engine)."""
    import importlib

    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config

    folder = ROOT / "deploy" / "dagster" / profile
    monkeypatch.setenv("SAGE_DAGSTER_RUN_IMAGE", "sage-platform:latest")  # as the deployment sets it
    config, _ = dagster_instance_config(str(folder))
    launcher = config["run_launcher"]
    launcher_class = getattr(importlib.import_module(launcher["module"]), launcher["class"])
    assert launcher_class.__name__ == {"docker": "DockerRunLauncher", "k8s": "K8sRunLauncher"}[profile]
    checked = process_config(launcher_class.config_type(), launcher["config"])
    assert checked.success, checked.errors
    broken = {**launcher["config"], "no_such_option": 1}
    assert not process_config(launcher_class.config_type(), broken).success  # the check can fail
    assert config["storage"]["postgres"]["postgres_url"] == {"env": "SAGE_DAGSTER_PG_URL"}
    assert config["run_retries"]["retry_on_asset_or_op_failure"] is False


def test_the_helm_values_name_the_platform_image_and_its_postgres() -> None:
    values = yaml.safe_load((ROOT / "deploy" / "helm" / "values.yaml").read_text())
    assert values["postgresql"]["enabled"] is False and values["generatePostgresqlPasswordSecret"] is False
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", "sage_platform.definitions"]
    assert {"name": "SAGE_DAGSTER_EXECUTOR", "value": "k8s"} in deployment["env"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["dagsterDaemon"]["runCoordinator"]["type"] == "QueuedRunCoordinator"

    def values_in(node: object) -> list[str]:
        if isinstance(node, dict):
            return [v for value in node.values() for v in values_in(value)]
        if isinstance(node, list):
            return [v for item in node for v in values_in(item)]
        return [str(node)]

    assert not any("password" in v.lower() for v in values_in(values))  # secrets come from Secrets


@pytest.mark.parametrize(
    ("kind", "name"),
    [("in_process", "in_process"), ("multiprocess", "multiprocess"), ("k8s", "k8s"), ("docker", "docker")],
)
def test_the_executor_follows_the_setting(kind: str, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    import sage_platform.definitions as definitions

    monkeypatch.setenv("SAGE_DAGSTER_EXECUTOR", kind)
    reloaded = importlib.reload(definitions)
    try:
        assert reloaded.defs.resolve_job_def("rag_job").executor_def.name == name
    finally:
        monkeypatch.delenv("SAGE_DAGSTER_EXECUTOR")
        importlib.reload(definitions)


@pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="docker-compose is not installed (scripts/install-test-tools)"
)
def test_the_elasticsearch_cluster_profile_merges_into_three_nodes_over_tls(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    filled = (ROOT / ".env.example").read_text().replace("change-me-too", "e").replace("change-me", "p")
    env.write_text(filled.replace("SAGE_API_KEYS=\n", "SAGE_API_KEYS=ops=k1\n").replace(
        "SAGE_MCP_TOKENS=\n", "SAGE_MCP_TOKENS=ops=t1\n"))  # fmt: skip
    merged = subprocess.run(
        ["docker-compose", "--env-file", str(env), "-f", str(ROOT / "docker-compose.yml"),
         "-f", str(ROOT / "deploy" / "compose.es-cluster.yml"), "config"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert merged.returncode == 0, merged.stderr
    services = yaml.safe_load(merged.stdout)["services"]
    nodes = {name: services[name]["environment"] for name in ("elasticsearch", "es02", "es03")}
    assert {env["node.name"] for env in nodes.values()} == set(nodes)
    for name, node in nodes.items():
        assert node["discovery.type"] == "multi-node" and node["discovery.seed_hosts"] == "elasticsearch,es02,es03"
        assert node["xpack.security.transport.ssl.enabled"] == "true"
        assert node["xpack.security.transport.ssl.certificate"] == f"certs/{name}/{name}.crt"
        assert services[name]["depends_on"]["es-certs"]["condition"] == "service_completed_successfully"
    assert "ports" not in services["es02"] and "ports" not in services["es03"]
