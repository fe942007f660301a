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
