"""Production server settings, shared by `make dev` and docker-compose."""

import os

workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads so a streaming chat response does not hold a whole worker process.
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "8"))
timeout = 120
keepalive = 5
accesslog = "-"
errorlog = "-"


def on_starting(server):
    """Django's system checks (the development secret key refusal among them, config/checks.py) before any worker
    starts: `manage.py migrate` runs them, but a gunicorn started on its own would not."""
    import django
    from django.core.management import call_command

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    call_command("check")
