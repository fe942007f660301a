"""Schema-driven fuzzing of the whole API with schemathesis (issue 12, item 2).

Every operation of `/api/v1/openapi.json` (native and every compatibility surface) gets schema-generated requests,
valid and invalid, with a real all-scope key of a workspace that holds one object of every path parameter kind (most
cases name those real objects, the rest the generated ids), so the fuzzing reaches the views' logic and not only
their 404. Checks on every response:
- no 5xx (`not_a_server_error`): a 5xx is a defect to fix, never an exclusion;
- every error under /api/ is JSON (the envelope or the surface's documented error shape), never an HTML page;
- schemathesis' conformance checks: every status code and content type is documented, and every response body
  (errors included) matches its documented schema.

Deterministic: hypothesis is derandomized (a fixed seed per operation) with no example database, and shrinking is
off so a failure is reported as generated. Each case runs in a savepoint rolled back after it, so a generated
DELETE cannot take away the objects the next cases name.
"""

import json
import time
from contextlib import contextmanager

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.test import Client
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import DataGenerationMethod
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.trust.test_tenancy_matrix import World

# The document is OpenAPI 3.1, which schemathesis 3.x supports behind this flag.
schemathesis.experimental.OPEN_API_3_1.enable()

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

MAX_EXAMPLES = 12
# Per operation, so one slow route (a chat) cannot use the whole file's budget.
SECONDS_PER_OPERATION = 6.0


def server_error(response, case) -> None:
    # schemathesis' `not_a_server_error`, without its GraphQL branch and its check context.
    assert response.status_code < 500, f"server error {response.status_code}"


def errors_are_json(response, case) -> None:
    """An error under /api/ is a JSON document, whatever the surface (its envelope or its documented shape)."""
    if response.status_code < 400 or not case.path.startswith("/api/"):
        return
    content_type = response.headers.get("Content-Type", "")
    assert "json" in content_type, f"{response.status_code} error with Content-Type {content_type!r}"
    json.loads(response.get_data())


def conformance(schemathesis_check):
    """One of schemathesis' OpenAPI conformance checks (status code, content type, response schema), which read
    nothing of the check context."""

    def check(response, case) -> None:
        schemathesis_check(None, response, case)

    check.__name__ = schemathesis_check.__name__
    return check


CHECKS = (
    server_error,
    errors_are_json,
    conformance(status_code_conformance),
    conformance(content_type_conformance),
    conformance(response_schema_conformance),
)


@contextmanager
def no_connection_closing():
    """Django's handler closes "old" connections at each request's start and end, which inside the test's
    transaction would drop it; its own test client disconnects the same receiver around each of its requests (and
    connects it again after, hence this around every case rather than once)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def wsgi_app():
    return WSGIHandler()


def fuzz(operation, *, world: World, app, seconds: float, statuses: list[int]) -> list[str]:
    """Run the operation's generated cases; return the problems found (not raised, so every operation runs) and
    add each response's status to `statuses`."""
    problems: list[str] = []
    headers = {"Authorization": f"Bearer {world.owner.key}"}
    deadline = time.monotonic() + seconds
    strategy = st.tuples(
        operation.as_strategy(data_generation_method=DataGenerationMethod.positive)
        | operation.as_strategy(data_generation_method=DataGenerationMethod.negative),
        st.integers(0, 3),
    )

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(drawn):
        case, choice = drawn
        if time.monotonic() > deadline:
            return
        if case.path_parameters and choice:
            # Three cases in four name this world's real objects, so the request gets past the lookup.
            case.path_parameters = {name: world.value(case.path, name) for name in case.path_parameters}
        case.headers = {**(case.headers or {}), **headers}
        case.headers.pop("X-API-KEY", None)
        with no_connection_closing(), transaction.atomic():
            response = case.call_wsgi(app=app)
            transaction.set_rollback(True)
        statuses.append(response.status_code)
        for check in CHECKS:
            try:
                check(response, case)
            except (AssertionError, ValueError) as error:  # a finding to list, so every operation still runs
                body = response.get_data()[:300]
                problems.append(
                    f"{case.method} {case.formatted_path} ({check.__name__}): {response.status_code} "
                    f"{str(error)[:200]} | {body!r} | {case.as_curl_command()[:400]}"
                )

    run()
    return problems


def test_every_operation_survives_schema_fuzzing(wsgi_app, settings):
    # A thousand requests with one key in a minute: the limiter would answer most with 429 and hide the views.
    settings.RATE_LIMIT_PER_MINUTE = settings.SEARCH_RATE_LIMIT_PER_MINUTE = 10**9
    world = World()
    document = json.loads(Client().get("/api/v1/openapi.json").content)
    schema = schemathesis.from_dict(document, app=wsgi_app)
    problems, ran, statuses = [], 0, []
    for result in schema.get_all_operations():
        operation = result.ok()
        problems += fuzz(
            operation, world=world, app=wsgi_app, seconds=SECONDS_PER_OPERATION, statuses=statuses
        )
        ran += 1
    # The walk itself: every operation ran, the key was accepted and real objects were reached, so a quiet run
    # is not one where every request stopped at authentication or at a 404.
    assert ran >= 60, ran
    assert len(statuses) >= ran * 5, len(statuses)
    assert 401 not in statuses, "the all-scope key was refused"
    successes = sum(200 <= status < 300 for status in statuses)
    assert successes >= len(statuses) // 5, (successes, len(statuses))
    print(f"{ran} operations, {len(statuses)} cases, {successes} 2xx")
    unique = sorted(set(problems))
    assert not unique, f"{len(unique)} problems:\n" + "\n".join(unique)
