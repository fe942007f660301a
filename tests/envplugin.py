"""Test-run environment, set before Django reads its settings.

Loaded with `-p tests.envplugin` (pyproject addopts): a plugin is imported before pytest-django reads the
settings, which a conftest.py is not.

Tests use their own Redis database (TEST_REDIS_URL, default db 15) so they never touch a dev server's
queues or counters, and their own PostgreSQL database (MINDS_TEST_DB, default test_minds). `make test` sets
TEST_REDIS_URL to db 15 of the embedded Redis (scripts/devredis.py) when it is not set; a bare `pytest` falls back
to a Redis on 127.0.0.1:6379.
"""

import os

os.environ["REDIS_URL"] = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.pop("CELERY_BROKER_URL", None)
os.environ.setdefault(
    "MEDIA_ROOT",
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".data", "test-media"),
)
# Chat tests talk to fake LLM servers they start themselves; never a real provider from the developer's shell.
os.environ.pop("OPENAI_API_KEY", None)
os.environ.pop("OPENAI_BASE_URL", None)
# Every test client comes from 127.0.0.1 and Redis is flushed once per run: the suite's many deliberate 401s would
# exhaust the per-address budget of failed authentications. Tests of that budget set it themselves.
os.environ.setdefault("AUTH_FAILURES_PER_MINUTE", "1000000")
os.environ.setdefault("DB_CONN_MAX_AGE", "0")  # live-server threads must not keep the test database open
