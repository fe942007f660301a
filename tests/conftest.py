import os

import pytest
from django.test import Client

from config.redis import redis_client
from tests.fakellm import FakeLLM
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
def llm(settings):
    """Points the chat at a FakeLLM (the real `openai` client over a socket): `llm(script=[…])` or `llm(answer)`;
    every fake started is stopped after the test."""
    fakes = []

    def start(*args, **kwargs) -> FakeLLM:
        fake = FakeLLM(*args, **kwargs).__enter__()
        fakes.append(fake)
        settings.OPENAI_BASE_URL = fake.base_url
        settings.OPENAI_API_KEY = "test"
        return fake

    yield start
    for fake in fakes:
        fake.__exit__(None, None, None)


@pytest.fixture
def anon() -> Client:
    return Client()


from tests.worker import celery_worker  # noqa: E402,F401 - a fixture shared by the end-to-end tests
