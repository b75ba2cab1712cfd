"""Static checks of the deployment files: docker-compose.yml, Dockerfile, .dockerignore and the guide.

No Docker engine is needed: the compose file is parsed with PyYAML and its ${VAR} interpolation is
applied by a small re-implementation of the Compose rules, so the tests see what Compose would hand to
the containers. Nothing here touches Django or a database.
"""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
GUIDE = ROOT / "docs" / "deployment.md"
SETTINGS_FILE = ROOT / "specloop" / "settings.py"

APP_SERVICES = ("migrate", "web", "worker", "gpu-worker")
LONG_RUNNING = ("postgres", "redis", "web", "worker", "gpu-worker")
ALL_SERVICES = ("postgres", "redis", *APP_SERVICES)
TEST_ENV = {"SECRET_KEY": "test-secret-key"}


# --- Compose interpolation (https://docs.docker.com/reference/compose-file/interpolation/) ----------

_NAME = r"[_a-zA-Z][_a-zA-Z0-9]*"


class MissingVariable(Exception):
    pass


def interpolate(text: str, env: dict[str, str]) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$":
            out.append(char)
            i += 1
            continue
        following = text[i + 1 : i + 2]
        if following == "$":
            out.append("$")
            i += 2
        elif following == "{":
            depth, j = 0, i + 1
            while j < len(text):
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            else:
                raise ValueError(f"unclosed interpolation in {text!r}")
            out.append(_expand(text[i + 2 : j], env))
            i = j + 1
        elif match := re.match(_NAME, text[i + 1 :]):
            out.append(env.get(match.group(), ""))
            i += 1 + match.end()
        else:
            out.append("$")
            i += 1
    return "".join(out)


def _expand(expression: str, env: dict[str, str]) -> str:
    match = re.fullmatch(rf"({_NAME})(?:(:?[-?+])(.*))?", expression, re.S)
    if not match:
        raise ValueError(f"Compose cannot interpolate ${{{expression}}}")
    name, operator, argument = match.groups()
    value = env.get(name)
    if operator is None:
        return value or ""
    is_set = value is not None and (value != "" or not operator.startswith(":"))
    if operator.endswith("-"):
        return value if is_set else interpolate(argument, env)
    if operator.endswith("?"):
        if not is_set:
            raise MissingVariable(interpolate(argument, env))
        return value
    return interpolate(argument, env) if is_set else ""


def _interpolate_tree(node, env):
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _interpolate_tree(value, env) for key, value in node.items()}
    return node


def load_compose(env: dict[str, str] | None = None) -> dict:
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    return _interpolate_tree(raw, TEST_ENV if env is None else env)


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def command_args(service: dict) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]


def option(args: list[str], *names: str) -> str | None:
    for index, arg in enumerate(args):
        for name in names:
            if arg == name and index + 1 < len(args):
                return args[index + 1]
            if name.startswith("--") and arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def healthcheck_text(service: dict) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(str(part) for part in test)


def depends_on(service: dict) -> dict[str, str]:
    deps = service.get("depends_on", {})
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def settings_literal(name: str):
    """A top-level literal assignment in specloop/settings.py, read without importing Django."""
    tree = ast.parse(SETTINGS_FILE.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} is not assigned a literal in specloop/settings.py")


# --- Compose: structure -----------------------------------------------------------------------------


def test_compose_file_parses_as_a_compose_spec_file_without_a_version_key():
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(raw, dict)
    assert "version" not in raw
    assert "x-app" in raw, "the shared app settings live under an x-app anchor"


def test_compose_defines_every_service(services):
    assert set(ALL_SERVICES) <= set(services)


def test_app_services_share_one_image_and_environment_from_the_x_app_anchor(compose, services):
    anchor = compose["x-app"]
    for name in APP_SERVICES:
        env = environment(services[name])
        for key, value in environment(anchor).items():
            assert env.get(key) == value, f"{name} differs from x-app on {key}"
    for name in ("migrate", "web", "worker"):
        assert services[name]["image"] == anchor["image"]


def test_secret_key_is_required_and_compose_refuses_to_start_without_it():
    with pytest.raises(MissingVariable, match="set SECRET_KEY in .env"):
        load_compose(env={})
    with pytest.raises(MissingVariable):
        load_compose(env={"SECRET_KEY": ""})
    assert environment(load_compose()["services"]["web"])["SECRET_KEY"] == "test-secret-key"


def test_app_runs_in_production_mode_against_the_compose_postgres_and_redis(services):
    env = environment(services["web"])
    assert env["DEBUG"] == "0"
    assert env["DATABASE_URL"] == "postgres://specloop:specloop@postgres:5432/specloop"
    assert env["REDIS_URL"].startswith("redis://redis:6379/")
    postgres_env = environment(services["postgres"])
    assert {"POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD"} <= set(postgres_env)


def test_database_and_redis_urls_can_point_at_another_host_for_remote_gpu_workers():
    env = environment(
        load_compose(
            env={
                **TEST_ENV,
                "DATABASE_URL": "postgres://u:p@10.0.0.5:5432/specloop",
                "REDIS_URL": "redis://10.0.0.5:6379/0",
            }
        )["services"]["gpu-worker"]
    )
    assert env["DATABASE_URL"] == "postgres://u:p@10.0.0.5:5432/specloop"
    assert env["REDIS_URL"] == "redis://10.0.0.5:6379/0"


def test_postgres_credentials_flow_into_the_database_url():
    env = {**TEST_ENV, "POSTGRES_USER": "alice", "POSTGRES_PASSWORD": "s3cret", "POSTGRES_DB": "loop"}
    services = load_compose(env=env)["services"]
    assert environment(services["web"])["DATABASE_URL"] == "postgres://alice:s3cret@postgres:5432/loop"
    assert environment(services["postgres"])["POSTGRES_PASSWORD"] == "s3cret"


def test_compose_serves_plain_http_so_https_redirect_and_secure_cookies_default_off(services):
    env = environment(services["web"])
    assert env["SECURE_SSL_REDIRECT"] == "0"
    assert env["SESSION_COOKIE_SECURE"] == "0"
    assert env["CSRF_COOKIE_SECURE"] == "0"
    behind_proxy = load_compose(env={**TEST_ENV, "SECURE_SSL_REDIRECT": "1"})
    assert environment(behind_proxy["services"]["web"])["SECURE_SSL_REDIRECT"] == "1"


def test_allowed_hosts_always_include_the_address_the_health_check_uses(services):
    assert "127.0.0.1" in environment(services["web"])["ALLOWED_HOSTS"].split(",")
    custom = load_compose(env={**TEST_ENV, "ALLOWED_HOSTS": "specloop.example.com"})
    hosts = environment(custom["services"]["web"])["ALLOWED_HOSTS"].split(",")
    assert hosts == ["specloop.example.com", "127.0.0.1"]


# --- Compose: commands name real things --------------------------------------------------------------


def test_web_runs_gunicorn_on_the_project_wsgi_application_on_all_interfaces(services):
    args = command_args(services["web"])
    assert args[0] == "gunicorn"
    target = next(arg for arg in args[1:] if ":" in arg and not arg.startswith("-") and "." in arg)
    module, attribute = target.split(":")
    module_file = ROOT / (module.replace(".", "/") + ".py")
    assert module_file.is_file(), f"{module} has no file in the repository"
    assert re.search(rf"^{attribute}\s*=", module_file.read_text(), re.M)
    assert option(args, "--bind", "-b") == "0.0.0.0:8000"


def test_web_publishes_port_8000(services):
    published = [str(port) for port in services["web"]["ports"]]
    assert "8000:8000" in published


def test_workers_run_the_project_celery_app(services):
    for name in ("worker", "gpu-worker"):
        args = command_args(services[name])
        assert args[:4] == ["celery", "-A", "specloop", "worker"], name
    assert (ROOT / "specloop" / "celery.py").is_file()
    assert "Celery(" in (ROOT / "specloop" / "celery.py").read_text()


def test_worker_consumes_the_default_queue_and_gpu_worker_the_gpu_queue(services):
    assert option(command_args(services["worker"]), "-Q", "--queues") == "default"
    assert option(command_args(services["gpu-worker"]), "-Q", "--queues") == "gpu"


def test_worker_queues_match_where_the_settings_route_tasks(services):
    consumed = {
        option(command_args(services[name]), "-Q", "--queues") for name in ("worker", "gpu-worker")
    }
    routed = {settings_literal("CELERY_TASK_DEFAULT_QUEUE")}
    routed |= {route["queue"] for route in settings_literal("CELERY_TASK_ROUTES").values()}
    assert routed <= consumed, f"tasks routed to {routed - consumed} would never run"


def test_gpu_worker_reserves_one_nvidia_gpu_and_runs_one_task_at_a_time(services):
    gpu = services["gpu-worker"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert len(devices) == 1
    device = devices[0]
    assert device["driver"] == "nvidia"
    assert device["capabilities"] == ["gpu"]
    assert device.get("count") in (1, "1", "all")
    args = command_args(gpu)
    assert option(args, "--concurrency", "-c") == "1"
    assert option(args, "--prefetch-multiplier") == "1"


def test_gpu_worker_builds_cuda_torch_under_its_own_image_tag(services):
    gpu, web = services["gpu-worker"], services["web"]
    assert "cu1" in gpu["build"]["args"]["TORCH_INDEX_URL"]
    assert web["build"]["args"]["TORCH_INDEX_URL"].endswith("/whl/cpu")
    assert gpu["image"] != web["image"], "the CUDA build must not overwrite the CPU image"


def test_migrate_runs_once_after_postgres_is_healthy(services):
    migrate = services["migrate"]
    assert command_args(migrate) == ["python", "manage.py", "migrate", "--noinput"]
    assert migrate["restart"] == "no"
    assert depends_on(migrate)["postgres"] == "service_healthy"


def test_web_and_workers_start_only_after_migrations_completed_and_redis_is_healthy(services):
    for name in ("web", "worker", "gpu-worker"):
        deps = depends_on(services[name])
        assert deps["migrate"] == "service_completed_successfully", name
        assert deps["redis"] == "service_healthy", name


def test_long_running_services_restart_unless_stopped(services):
    for name in LONG_RUNNING:
        assert services[name].get("restart") == "unless-stopped", name


# --- Compose: health checks -------------------------------------------------------------------------


def test_every_long_running_service_has_a_healthcheck(services):
    for name in LONG_RUNNING:
        assert services[name].get("healthcheck", {}).get("test"), name


def test_postgres_and_redis_healthchecks_use_their_own_clients(services):
    assert "pg_isready" in healthcheck_text(services["postgres"])
    assert services["postgres"]["image"] == "postgres:15"
    assert "redis-cli ping" in healthcheck_text(services["redis"])
    assert services["redis"]["image"] == "redis:7"


def test_postgres_healthcheck_reads_its_credentials_inside_the_container(services):
    # $$ in the file reaches the container as $, so the shell there expands it.
    text = healthcheck_text(services["postgres"])
    assert re.search(r"-U \$\{?POSTGRES_USER\}?", text), text


def test_web_healthcheck_gets_healthz_with_python_urllib(services):
    test = services["web"]["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1] == "python"
    code = test[test.index("-c") + 1]
    compile(code, "<healthcheck>", "exec")
    assert "urllib.request" in code
    assert "http://127.0.0.1:8000/healthz" in code


def test_worker_healthchecks_ping_their_own_node_with_the_container_hostname(services):
    raw = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    for name in ("worker", "gpu-worker"):
        assert "$$HOSTNAME" in healthcheck_text(raw[name]), "escape $ so the container expands it"
        text = healthcheck_text(services[name])
        assert text.split()[0] == "CMD-SHELL"
        assert "celery -A specloop inspect ping -d celery@$HOSTNAME" in text


# --- Compose: storage -------------------------------------------------------------------------------


def _named_volume_mounts(service: dict) -> dict[str, str]:
    mounts = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume.get("source"), volume["target"]
        mounts[source] = target
    return mounts


def test_media_volume_is_shared_by_web_and_both_workers_at_media_root(compose, services):
    assert "media" in compose["volumes"]
    for name in ("web", "worker", "gpu-worker"):
        mounts = _named_volume_mounts(services[name])
        assert mounts.get("media") == environment(services[name])["MEDIA_ROOT"], name


def test_postgres_keeps_its_data_in_a_named_volume(compose, services):
    mounts = _named_volume_mounts(services["postgres"])
    source = next(src for src, target in mounts.items() if target == "/var/lib/postgresql/data")
    assert source in compose["volumes"]


# --- Dockerfile -------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with comments dropped and continuation lines joined."""
    logical, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    result = []
    for text in logical:
        instruction, _, arguments = text.partition(" ")
        result.append((instruction.upper(), arguments.strip()))
    return result


def _pip_install_steps() -> list[tuple[int, str]]:
    return [
        (index, args)
        for index, (instruction, args) in enumerate(dockerfile_instructions())
        if instruction == "RUN" and "pip install" in args
    ]


def test_dockerfile_builds_on_python_311_slim():
    instructions = dockerfile_instructions()
    assert instructions[0][0] in ("FROM", "ARG")
    assert ("FROM", "python:3.11-slim") in instructions


def test_dockerfile_installs_pinned_torch_before_the_project():
    steps = _pip_install_steps()
    torch_step = next(i for i, args in steps if re.search(r"[\"']?torch==2\.13\.0[\"']?", args))
    project_step = next(i for i, args in steps if re.search(r"pip install (\S+ )*\.(\s|$)", args))
    assert torch_step < project_step
    torch_args = dict(steps)[torch_step]
    assert "--index-url" in torch_args and "TORCH_INDEX_URL" in torch_args


def test_dockerfile_takes_the_torch_index_as_a_build_arg_defaulting_to_cpu():
    args = [arguments for instruction, arguments in dockerfile_instructions() if instruction == "ARG"]
    assert "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in args


def test_dockerfile_collects_static_files_with_a_throwaway_key_that_is_not_kept():
    instructions = dockerfile_instructions()
    collect = [args for instruction, args in instructions if instruction == "RUN" and "collectstatic" in args]
    assert len(collect) == 1
    assert "--noinput" in collect[0]
    assert re.search(r"\bDEBUG=0\b", collect[0]) and re.search(r"\bSECRET_KEY=\S+", collect[0])
    for instruction, args in instructions:
        if instruction in ("ENV", "ARG"):
            assert "SECRET_KEY" not in args, "the build-time key must not stay in the image"


def test_dockerfile_bakes_the_default_models_into_the_directory_compose_mounts(services):
    instructions = dockerfile_instructions()
    env = " ".join(args for instruction, args in instructions if instruction == "ENV")
    models_dir = re.search(r"\bSPECLOOP_MODELS_DIR=(\S+)", env).group(1)
    fetch = next(i for i, (instruction, args) in enumerate(instructions)
                 if instruction == "RUN" and "python manage.py fetch_models" in args)
    project = next(i for i, args in _pip_install_steps() if re.search(r"pip install (\S+ )*\.(\s|$)", args))
    user = max(i for i, (instruction, _) in enumerate(instructions) if instruction == "USER")
    assert project < fetch < user  # after the code is installed, before root is given up
    owned = [args for instruction, args in instructions[fetch:user] if instruction == "RUN" and "chown" in args]
    assert owned and models_dir in owned[0], "the runtime user must own the baked models (workers write there)"
    for name in ("web", "worker", "gpu-worker"):
        assert services[name]["environment"]["SPECLOOP_MODELS_DIR"] == models_dir
        assert any(str(v).endswith(f":{models_dir}") for v in services[name]["volumes"])

def test_dockerfile_runs_as_a_non_root_user():
    users = [args for instruction, args in dockerfile_instructions() if instruction == "USER"]
    assert users, "the image must switch to an unprivileged user"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_dockerfile_default_command_serves_the_wsgi_app():
    commands = [args for instruction, args in dockerfile_instructions() if instruction == "CMD"]
    assert commands and "specloop.wsgi:application" in commands[-1]


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image():
    patterns = {
        line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")
    }
    assert {".env", ".venv", ".git", "var", "media", "staticfiles"} <= patterns


# --- Operator guide ---------------------------------------------------------------------------------


def test_deployment_guide_covers_setup_scaling_logs_and_the_first_admin():
    guide = GUIDE.read_text()
    for needle in (
        "SECRET_KEY",
        "docker compose up -d",
        "gpu-worker",
        "docker compose logs",
        "docker compose run --rm web python manage.py add_user NAME --role admin",
    ):
        assert needle in guide, needle


def test_one_beat_service_schedules_the_lost_worker_check_onto_a_consumed_queue(services):
    beat = services["beat"]
    assert command_args(beat)[:4] == ["celery", "-A", "specloop", "beat"]
    assert beat.get("deploy", {}).get("replicas", 1) == 1
    source = SETTINGS_FILE.read_text()
    node = next(n for n in ast.parse(source).body if isinstance(n, ast.Assign)
                and any(getattr(t, "id", None) == "CELERY_BEAT_SCHEDULE" for t in n.targets))
    assert '"task": "training.tasks.training_jobs_reap_task"' in ast.get_source_segment(source, node)
    assert settings_literal("CELERY_TASK_ROUTES")["training.tasks.training_jobs_reap_task"]["queue"] == "default"
