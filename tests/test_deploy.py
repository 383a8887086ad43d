"""What ships for Kubernetes, checked with what runs here: our manifests against the Kubernetes schemas
(kubernetes-validate), the Kubernetes parts of the Helm values against theirs, the instance configs loaded by
Dagster itself on a real Postgres (dagster.yaml, and the dagster.yaml the chart makes from our values), and
the Dockerfile linted (hadolint). The chart itself is not rendered here (no helm binary, no network).
"""

import subprocess
import sys
from pathlib import Path

import dagster as dg
import kubernetes_validate
import pytest
import yaml
from sqlalchemy.engine import make_url

ROOT = Path(__file__).parent.parent
DEPLOY = ROOT / "deploy"
K8S_VERSIONS = ("1.30.0", "1.37.0")  # the oldest minor still run by the big clouds, and the newest we know
SECRET = "ops-platform-secrets"
HADOLINT = str(Path(sys.executable).with_name("hadolint"))


def manifests() -> list[dict]:
    return [doc for path in sorted((DEPLOY / "k8s").glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text()) if doc]


def values() -> dict:
    return yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())


def pod_specs() -> list[dict]:
    return [doc["spec"]["template"]["spec"] for doc in manifests() if doc["kind"] in ("Deployment", "Job")]


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_manifests_are_valid_kubernetes_objects(version):
    docs = manifests()
    assert {doc["kind"] for doc in docs} == {"Deployment", "Service", "Job"}
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def ops_api() -> dict:
    [deployment] = [doc for doc in manifests() if doc["kind"] == "Deployment"]
    return deployment


def test_a_wrong_manifest_is_refused_naming_the_field():
    wrong_type = ops_api()
    wrong_type["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] = 8090
    with pytest.raises(kubernetes_validate.ValidationError, match="8090 is not of type 'string'"):
        kubernetes_validate.validate(wrong_type, K8S_VERSIONS[-1], strict=True)
    misspelt = ops_api()
    misspelt["spec"]["replica"] = 2  # strict: a misspelt field is an error, not silently ignored
    with pytest.raises(kubernetes_validate.ValidationError, match="'replica' was unexpected"):
        kubernetes_validate.validate(misspelt, K8S_VERSIONS[-1], strict=True)


def test_the_http_service_listens_where_its_probe_and_service_look():
    deployment = ops_api()
    [service] = [doc for doc in manifests() if doc["kind"] == "Service"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["ops", "api", "--host", "0.0.0.0", "--port", "8090"]
    assert container["ports"] == [{"name": "http", "containerPort": 8090, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_pods_run_as_non_root_and_take_secrets_only_from_kubernetes_secrets():
    for spec in pod_specs():
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
        for container in spec["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert {"secretRef": {"name": SECRET}} in container["envFrom"]
            assert all("value" not in var for var in container.get("env", [])), "a literal value in a manifest"
    deployment = values()["dagster-user-deployments"]["deployments"][0]
    assert deployment["envSecrets"] == [{"name": SECRET}]
    assert values()["runLauncher"]["config"]["k8sRunLauncher"]["envSecrets"] == [{"name": SECRET}]
    assert not any(var["name"] in ("OPS_DATABASE_URL", "OPS_WAREHOUSE_URL") for var in deployment["env"])


def test_the_kubernetes_parts_of_the_helm_values_are_valid():
    """The chart copies these into its pod specs as they are: checked in a Pod of their own."""
    code = values()["dagster-user-deployments"]["deployments"][0]
    run = values()["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]
    webserver = values()["dagsterWebserver"]
    pods = [({**code["podSecurityContext"]}, {"securityContext": code["securityContext"], "resources": code["resources"]}),
            (run["podSpecConfig"]["securityContext"], run["containerConfig"]),
            ({}, {"resources": webserver["resources"]})]
    for pod_security, container in pods:
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "values"},
               "spec": {"securityContext": pod_security, "containers": [{"name": "c", "image": "i", **container}]}}
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(pod, version, strict=True)


def test_the_dockerfile_lints_clean_and_runs_as_a_non_root_user():
    result = subprocess.run([HADOLINT, "--no-color", str(DEPLOY / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ").splitlines()  # one line per instruction
    final = lines[max(i for i, line in enumerate(lines) if line.startswith("FROM ")):]
    assert "USER 10001:10001" in final
    assert not [line for line in lines if line.split(" ")[0] in ("ENV", "ARG") and any(
        word in line.upper() for word in ("PASSWORD", "SECRET", "TOKEN", "_URL"))]
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    assert [line for line in ignored if line and not line.startswith("#")][:2] == ["*", "!pyproject.toml"]  # an
    # allowlist: .env, .ops, .venv never enter the build


def test_the_linter_finds_what_it_should(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install -y curl\n")
    result = subprocess.run([HADOLINT, "--no-color", str(bad)], capture_output=True, text=True)
    assert result.returncode != 0 and "DL3007" in result.stdout  # the `latest` tag


@pytest.fixture
def instance_dir(pg_server, tmp_path, monkeypatch):
    """(a DAGSTER_HOME, a fresh database for Dagster's storage on the test's Postgres)."""
    url = pg_server.create(f"dagster_deploy_{tmp_path.name}"[:60])
    monkeypatch.setenv("DAGSTER_PG_URL", url)
    return tmp_path, make_url(url)


def load(home: Path, config: dict):
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return dg.DagsterInstance.from_config(str(home))


def test_dagster_yaml_loads_on_postgres_with_op_pools(instance_dir):
    """The instance of `ops up` and of Celery workers (tests/test_celery.py runs steps on it)."""
    home, _ = instance_dir
    with load(home, yaml.safe_load((ROOT / "dagster.yaml").read_text())) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert instance.get_concurrency_config().pool_config.pool_granularity.value == "op"
        assert instance.run_monitoring_enabled and instance.run_retries_enabled


def chart_instance(chart: dict, url, kubeconfig: Path) -> dict:
    """The dagster.yaml the chart's instance ConfigMap (templates/configmap-instance.yaml) makes of the values we
    set, with two changes to load outside a cluster: Postgres is the test's, the kubeconfig a local file."""
    postgres = {"postgres_db": {"username": url.username, "password": {"env": "DAGSTER_PG_PASSWORD"},
                                "hostname": url.host, "db_name": url.database, "port": url.port,
                                "params": chart["postgresql"]["postgresqlParams"]}}
    launcher = chart["runLauncher"]["config"]["k8sRunLauncher"]
    daemon, concurrency = chart["dagsterDaemon"], chart["concurrency"]
    monitoring, retries = daemon["runMonitoring"], daemon["runRetries"]
    storage = {kind: {"module": f"dagster_postgres.{module}", "class": name, "config": postgres} for kind, module, name in (
        ("run_storage", "run_storage", "PostgresRunStorage"), ("event_log_storage", "event_log", "PostgresEventLogStorage"),
        ("schedule_storage", "schedule_storage", "PostgresScheduleStorage"))}
    return {
        **storage,
        "run_launcher": {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": {
            "load_incluster_config": False, "kubeconfig_file": str(kubeconfig), "job_namespace": "ops",
            "image_pull_policy": launcher["imagePullPolicy"], "service_account_name": "dagster",
            "dagster_home": {"env": "DAGSTER_HOME"}, "instance_config_map": {"env": "DAGSTER_K8S_INSTANCE_CONFIG_MAP"},
            "postgres_password_secret": {"env": "DAGSTER_K8S_PG_PASSWORD_SECRET"},
            "env_config_maps": [{"env": "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP"}],
            "env_secrets": [secret["name"] for secret in launcher["envSecrets"]],
            "run_k8s_config": {"pod_spec_config": launcher["runK8sConfig"]["podSpecConfig"],
                               "container_config": launcher["runK8sConfig"]["containerConfig"]}}},
        "run_coordinator": {"module": "dagster.core.run_coordinator", "class": daemon["runCoordinator"]["type"]},
        "run_monitoring": {"enabled": monitoring["enabled"], "start_timeout_seconds": monitoring["startTimeoutSeconds"],
                           "poll_interval_seconds": monitoring["pollIntervalSeconds"],
                           "cancel_timeout_seconds": monitoring["cancelTimeoutSeconds"],
                           "max_runtime_seconds": monitoring["maxRuntimeSeconds"],
                           "free_slots_after_run_end_seconds": monitoring["freeSlotsAfterRunEndSeconds"]},
        "run_retries": {"enabled": retries["enabled"], "max_retries": retries["maxRetries"],
                        "retry_on_asset_or_op_failure": retries["retryOnAssetOrOpFailure"]},
        "concurrency": {"pools": {"default_limit": concurrency["pools"]["defaultLimit"],
                                  "granularity": concurrency["pools"]["granularity"]},
                        "runs": {"max_concurrent_runs": concurrency["runs"]["maxConcurrentRuns"]}},
        "telemetry": {"enabled": chart["telemetry"]["enabled"]},
    }


KUBECONFIG = {"apiVersion": "v1", "kind": "Config", "current-context": "here",
              "clusters": [{"name": "here", "cluster": {"server": "https://127.0.0.1:6443"}}],
              "contexts": [{"name": "here", "context": {"cluster": "here", "user": "me"}}],
              "users": [{"name": "me", "user": {"token": "not-a-secret"}}]}


def test_the_chart_instance_of_our_values_loads_with_the_k8s_run_launcher_and_agrees_with_dagster_yaml(
        instance_dir, monkeypatch):
    home, url = instance_dir
    (home / "kubeconfig").write_text(yaml.safe_dump(KUBECONFIG))
    for var, value in {"DAGSTER_PG_PASSWORD": url.password or "", "DAGSTER_HOME": str(home),
                       "DAGSTER_K8S_INSTANCE_CONFIG_MAP": "dagster-instance",
                       "DAGSTER_K8S_PG_PASSWORD_SECRET": "dagster-postgresql-secret",
                       "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP": "dagster-pipeline-env"}.items():
        monkeypatch.setenv(var, value)
    local = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    with load(home, chart_instance(values(), url, home / "kubeconfig")) as instance:
        launcher = instance.run_launcher
        assert type(launcher).__name__ == "K8sRunLauncher" and launcher.env_secrets == [SECRET]
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.get_concurrency_config().pool_config.pool_granularity.value == "op"
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1  # warehouse, until ops migrate
        # What dagster.yaml decided for one machine holds on Kubernetes too.
        assert instance.get_settings("run_monitoring") == local["run_monitoring"] | {"start_timeout_seconds": 300}
        assert instance.get_settings("run_retries") == local["run_retries"]
        assert instance.run_storage.get_runs() == []  # its tables were made on the real server
