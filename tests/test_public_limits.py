"""The public chat's budgets (per visitor and per address) count one request at one instant."""

import itertools
from unittest import mock

import pytest

from config.redis import redis_client
from minds.models import Mind
from public.limits import public_message_allowed

pytestmark = pytest.mark.django_db


def test_a_request_at_a_minutes_edge_counts_in_the_same_minute_for_every_budget(workspace):
    mind = Mind.objects.create(
        workspace=workspace, name="Edge", slug="edge-limits", public_messages_per_minute=1
    )
    # Each call to the clock is a little later, the first ones just before a minute ends, the rest just after.
    edge = 1_800_000_000 - 1_800_000_000 % 60 + 60
    clock = itertools.chain([edge - 0.001], itertools.repeat(edge + 0.001))
    with mock.patch("time.time", lambda: next(clock)):
        verdict = public_message_allowed(mind=mind, visitor_id="v-edge", ip="203.0.113.9")
    assert verdict.allowed and verdict.state.reset_at == edge
    # Every budget was counted in the minute that ends at `edge`, the one the headers report, not the next.
    minute = int(edge - 60)
    for budget in ("v:v-edge", "ip:203.0.113.9"):
        assert redis_client().get(f"ratelimit:public:{mind.id}:{budget}:60:{minute}") == b"1", budget
        assert redis_client().get(f"ratelimit:public:{mind.id}:{budget}:60:{int(edge)}") is None, budget
