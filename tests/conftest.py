import os

import pytest
from django.test import Client

from config.redis import redis_client
from tests.helpers import KeyedClient, make_key, make_workspace


@pytest.fixture(scope="session", autouse=True)
def _fresh_test_redis():
    """Rate-limit counters and queued tasks of an earlier run must not leak into this one."""
    from django.conf import settings

    # Never flush a database the tests were not given (tests.envplugin sets it before the settings load).
    assert settings.REDIS_URL == os.environ["REDIS_URL"] == settings.CELERY_BROKER_URL, settings.REDIS_URL
    redis_client().flushdb()
    yield


@pytest.fixture
def workspace(db):
    return make_workspace("Acme")


@pytest.fixture
def other_workspace(db):
    return make_workspace("Other Corp")


@pytest.fixture
def api(workspace) -> KeyedClient:
    """A client holding a key with every scope in `workspace`."""
    return KeyedClient(make_key(workspace, scopes="all"))


@pytest.fixture
def other_api(other_workspace) -> KeyedClient:
    return KeyedClient(make_key(other_workspace, scopes="all"))


@pytest.fixture
def anon() -> Client:
    return Client()


from tests.worker import celery_worker  # noqa: E402,F401 - a fixture shared by the end-to-end tests
