"""Owner insights: the time of `GET /api/v1/minds/{id}/insights` over a mind with N conversations (2,000 by
default) spread over the last 30 days, in this process through Django's test client (key authentication, the SQL
aggregates, the grouping of the not-found questions by the local model, the serialization).

Seeded: 1–3 turns a conversation on six channels, a quarter of the answers citing nothing (their questions drawn
from a few hundred distinct texts on a few dozen topics), the others citing 1–3 of 20 sources, thumbs on a fifth,
visitor emails on a third. Reported: the first request (its not-found questions embedded, at most
insights.selectors.MAX_GROUPED_QUESTIONS) and the median and max of the next ones (the vectors cached by text), and
the visitors' CSV. Prints only; it writes nothing under docs/.

Usage: .venv/bin/python bench/insights.py [--conversations 2000] [--repeat 5]
"""

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from common import git_revision, machine, use_bench_database

TOPICS = [
    "opening hours", "delivery to Canada", "gift cards", "the premium plan", "student discounts", "parking",
    "refunds", "the warranty", "crypto payments", "a phone number", "the office address", "job openings",
    "the API rate limit", "dark mode", "an Android app", "two-factor login", "exporting my data", "team plans",
    "the holiday schedule", "bulk orders", "wheelchair access", "pets", "the newsletter", "a free trial",
    "invoices", "the carbon footprint", "spare parts", "installation", "the return label", "partnerships",
]  # fmt: skip
FORMS = [
    "Do you have {}?", "What about {}?", "Can you tell me about {}?", "Where can I find information on {}?",
    "Is there anything on {}?", "I have a question about {}.", "How does {} work?", "Any news on {}?",
]  # fmt: skip
CHANNELS = ["api", "openai", "public", "widget", "agent", "openindex"]


def seed(mind, sources, conversations: int, rng: random.Random) -> int:
    from conversations.models import Conversation, Message

    # Spread over past days: the rows keep the creation times given here.
    for model in (Conversation, Message):
        model._meta.get_field("created_at").auto_now_add = False
    Conversation._meta.get_field("updated_at").auto_now = False
    now = datetime.now(UTC)
    convs, messages = [], []
    for n in range(conversations):
        started = now - timedelta(days=rng.uniform(0, 29.5))
        email = f"visitor{rng.randrange(conversations // 2)}@example.com" if rng.random() < 0.33 else ""
        conv = Conversation(
            workspace_id=mind.workspace_id,
            mind=mind,
            channel=rng.choice(CHANNELS),
            visitor_email=email,
            created_at=started,
            updated_at=started + timedelta(minutes=5),
        )
        convs.append(conv)
        for turn in range(1, rng.randint(1, 3) + 1):
            at = started + timedelta(minutes=turn)
            not_found = rng.random() < 0.25
            question = rng.choice(FORMS).format(rng.choice(TOPICS)) if not_found else f"Question {n}.{turn}?"
            asked = Message(conversation=conv, role="user", turn=turn, content=question, created_at=at)
            cited = [] if not_found else rng.sample(sources, rng.randint(1, 3))
            messages += [
                asked,
                Message(
                    conversation=conv,
                    role="assistant",
                    turn=turn,
                    reply_to=asked,
                    content="An answer.",
                    citations=[
                        {"index": i + 1, "sourceId": s.id, "sourceName": s.name, "sourceType": s.type}
                        for i, s in enumerate(cited)
                    ],
                    feedback_rating=rng.choice(["up", "up", "down"]) if rng.random() < 0.2 else "",
                    created_at=at + timedelta(seconds=3),
                ),
            ]
    Conversation.objects.bulk_create(convs, batch_size=1000)
    Message.objects.bulk_create(messages, batch_size=2000)
    return len(messages)


def timed(call) -> tuple[float, object]:
    started = time.perf_counter()
    result = call()
    return (time.perf_counter() - started) * 1000, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    use_bench_database("minds_bench_insights")
    from django.test import Client

    from accounts.models import Workspace
    from apikeys.services import api_key_create, parse_scopes
    from insights import clustering, selectors
    from knowledge.models import Source
    from minds.models import Mind

    rng = random.Random(15)
    Workspace.objects.filter(name="Insights bench").delete()
    workspace = Workspace.objects.create(name="Insights bench")
    mind = Mind.objects.create(workspace=workspace, name="Shop", slug="shop")
    sources = [
        Source.objects.create(workspace=workspace, mind=mind, type="text", name=f"Source {i}", content="x")
        for i in range(20)
    ]
    seeding, count = timed(lambda: seed(mind, sources, args.conversations, rng))
    key = api_key_create(
        workspace=workspace, name="bench", scopes=parse_scopes(["conversations:read"])
    ).plaintext
    client = Client(headers={"Authorization": f"Bearer {key}"})
    url = f"/api/v1/minds/{mind.id}/insights"
    clustering._local_embedder().embed_documents(["warm up"])  # the model's load is not the endpoint's
    cold, response = timed(lambda: client.get(url))
    assert response.status_code == 200, response.content[:300]
    body = response.json()["insights"]
    warm = []
    for _ in range(args.repeat):
        ms, response = timed(lambda: client.get(url))
        assert response.status_code == 200
        warm.append(ms)
    csv_ms, csv_response = timed(lambda: client.get(f"{url}/visitors.csv"))
    assert csv_response.status_code == 200
    period = selectors.DateRange(*(datetime.fromisoformat(body[k]).date() for k in ("from", "to")))
    sql_ms, _ = timed(lambda: [
        selectors.activity_by_day(mind=mind, period=period),
        selectors.answer_outcomes(mind=mind, period=period),
        selectors.top_sources(mind=mind, period=period),
        list(selectors.visitors(mind=mind, period=period)[:100]),
    ])  # fmt: skip
    found = body["notFound"]
    print(f"# Insights endpoint, {args.conversations} conversations ({git_revision()}, {machine()})")
    print(f"seeded {args.conversations} conversations and {count} messages in {seeding / 1000:.1f} s")
    print(
        f"totals: {body['totals']}; answers {body['answers']}; not found {found['questions']} "
        f"({found['grouped']} grouped into {found['groupCount']} groups); "
        f"top group {found['groups'][0]['count'] if found['groups'] else 0} askings"
    )
    print(f"GET insights, first (questions embedded): {cold:.0f} ms")
    print(
        f"GET insights, next {args.repeat} (vectors cached): median {statistics.median(warm):.0f} ms, max {max(warm):.0f} ms"
    )
    print(f"  of which the SQL aggregates: {sql_ms:.0f} ms")
    print(
        f"GET visitors.csv ({len(csv_response.content.splitlines()) - 1} visitors, all time): {csv_ms:.0f} ms"
    )


if __name__ == "__main__":
    main()
