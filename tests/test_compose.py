"""docker-compose.yml cannot run here (no Docker engine); this keeps it true to the code by reading it."""

import importlib
import re
import shlex
from pathlib import Path

import yaml
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def command_of(name: str) -> list[str]:
    command = SERVICES[name]["command"]
    return shlex.split(command) if isinstance(command, str) else command


def test_every_service_is_there_with_real_images():
    assert {"db", "redis", "web", "worker", "beat"} <= set(SERVICES)
    assert SERVICES["db"]["image"].startswith("pgvector/pgvector:")
    assert SERVICES["redis"]["image"].startswith("redis:")
    for name in ("web", "worker", "beat"):
        assert SERVICES[name]["build"] == "."
        assert set(SERVICES[name]["depends_on"]) == {"db", "redis"}


def test_web_runs_migrations_then_gunicorn_with_real_modules():
    command = " ".join(command_of("web"))
    assert "manage.py migrate" in command and "runserver" not in command
    gunicorn = re.search(r"gunicorn -c (\S+) .* (\S+):(\S+)", command)
    assert gunicorn, command
    config_file, module, attribute = gunicorn.groups()
    assert (ROOT / config_file).exists()
    assert callable(getattr(importlib.import_module(module), attribute))


def test_worker_and_beat_use_the_celery_app_and_real_queues():
    for name in ("worker", "beat"):
        args = command_of(name)
        app = args[args.index("-A") + 1]
        assert importlib.import_module(app).celery_app.main == "minds"
    worker = command_of("worker")
    queues = set(worker[worker.index("-Q") + 1].split(","))
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    assert routed | {"default"} <= queues
    task_names = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    from config.celery import app

    app.loader.import_default_modules()
    assert task_names <= set(app.tasks)


def test_environment_names_settings_that_exist():
    env = SERVICES["web"]["environment"]
    settings_source = (ROOT / "config" / "settings.py").read_text()
    for name in env:
        assert f'"{name}"' in settings_source, f"{name} is not read by config/settings.py"
    assert env["DATABASE_URL"].startswith("postgresql://") and "@db:" in env["DATABASE_URL"]
    assert env["REDIS_URL"].startswith("redis://redis:")


def test_dockerfile_installs_cpu_torch_and_the_project():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "torch==2.13.0" in dockerfile and "pip install ." in dockerfile


def test_compose_passes_the_start_up_checks_with_debug_off():
    # `migrate` runs the system checks: the compose default key is not the refused development key (minds.E001),
    # and nothing marks the containers as a development run.
    env = SERVICES["web"]["environment"]
    assert env["DJANGO_DEBUG"] == "0" and "MINDS_DEV_RUN" not in env
    default_key = re.fullmatch(r"\$\{DJANGO_SECRET_KEY:-(.+)\}", env["DJANGO_SECRET_KEY"]).group(1)
    assert default_key != settings.DEV_SECRET_KEY
    assert env["SECURE_HSTS_SECONDS"] == "${SECURE_HSTS_SECONDS:-0}"  # HSTS off unless asked for
