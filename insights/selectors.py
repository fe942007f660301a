"""Reads of a mind's activity for its owner: every query is filtered by the mind's workspace and the mind, and
aggregated in SQL (per-day counts by TruncDate, filtered Counts, the citations' sources through jsonb).

Days are UTC calendar days; a range is `start`..`end` inclusive, i.e. created_at in [start 00:00, end+1 00:00).
An answer is a final assistant message: role `assistant` with no `tool_calls` (the tool-calling steps of a turn and
the tools' results are not answers). Answers are counted on the day they were written, questions on the day they
were asked, conversations on the day they started.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection
from django.db.models import Count, F, Max, Min, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Lower, TruncDate

from conversations.models import Conversation, Message
from insights.clustering import Question, QuestionGroup, group_questions
from knowledge.models import Source
from minds.models import Mind

CHANNELS = tuple(Conversation.Channel.values)
# The not-found questions grouped on a read: the most recent ones, so the read stays fast (about 6 ms a new question
# to embed on a busy 2-core machine; the vectors are cached by text afterwards).
MAX_GROUPED_QUESTIONS = 300
MAX_GROUPS = 30
TOP_SOURCES = 10
VISITORS_SHOWN = 100


@dataclass(frozen=True)
class DateRange:
    start: date
    end: date

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def until(self) -> datetime:
        """Exclusive: midnight after the last day."""
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)

    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]


def _conversations(mind: Mind) -> QuerySet[Conversation]:
    return Conversation.objects.filter(workspace_id=mind.workspace_id, mind=mind)


def _messages(mind: Mind, period: DateRange) -> QuerySet[Message]:
    return Message.objects.filter(
        conversation__workspace_id=mind.workspace_id,
        conversation__mind=mind,
        created_at__gte=period.since,
        created_at__lt=period.until,
    )


def final_answers(mind: Mind, period: DateRange) -> QuerySet[Message]:
    return _messages(mind, period).filter(role=Message.Role.ASSISTANT, tool_calls=[])


def activity_by_day(*, mind: Mind, period: DateRange) -> list[dict]:
    """One row per day of the range, zeros included: conversations started and messages (questions and final
    answers) written, in total and by channel."""
    day = TruncDate("created_at", tzinfo=UTC)
    rows = {d: {channel: {"conversations": 0, "messages": 0} for channel in CHANNELS} for d in period.days()}
    started = (
        _conversations(mind)
        .filter(created_at__gte=period.since, created_at__lt=period.until)
        .annotate(day=day)
        .values("day", "channel")
        .annotate(n=Count("id"))
    )
    for row in started:
        rows[row["day"]][row["channel"]]["conversations"] = row["n"]
    written = (
        _messages(mind, period)
        .filter(Q(role=Message.Role.USER) | Q(role=Message.Role.ASSISTANT, tool_calls=[]))
        .annotate(day=day, channel=F("conversation__channel"))
        .values("day", "channel")
        .annotate(n=Count("id"))
    )
    for row in written:
        rows[row["day"]][row["channel"]]["messages"] = row["n"]
    return [
        {
            "date": d,
            "conversations": sum(c["conversations"] for c in channels.values()),
            "messages": sum(c["messages"] for c in channels.values()),
            "channels": channels,
        }
        for d, channels in rows.items()
    ]


def answer_outcomes(*, mind: Mind, period: DateRange) -> dict:
    """Answers in the range: answered (complete, with citations), not found (complete, citing no passage), failed
    (error or interrupted); thumbs up and down on them and the rate up / (up + down), None without ratings."""
    complete = Q(status=Message.Status.COMPLETE)
    counts = final_answers(mind, period).aggregate(
        total=Count("id"),
        answered=Count("id", filter=complete & ~Q(citations=[])),
        not_found=Count("id", filter=complete & Q(citations=[])),
        up=Count("id", filter=Q(feedback_rating=Message.Rating.UP)),
        down=Count("id", filter=Q(feedback_rating=Message.Rating.DOWN)),
    )
    questions = _messages(mind, period).filter(role=Message.Role.USER).count()
    rated = counts["up"] + counts["down"]
    return {
        "questions": questions,
        "answers": counts["total"],
        "answered": counts["answered"],
        "not_found": counts["not_found"],
        "failed": counts["total"] - counts["answered"] - counts["not_found"],
        "up": counts["up"],
        "down": counts["down"],
        "rated": rated,
        "rate": round(counts["up"] / rated, 4) if rated else None,
    }


def not_found_questions(*, mind: Mind, period: DateRange, limit: int) -> list[Question]:
    """The questions of the range's most recent not-found answers, newest first."""
    # The turn's question (rows older than reply_to have only the turn in common with their answer).
    question = Message.objects.filter(
        conversation=OuterRef("conversation"), turn=OuterRef("turn"), role=Message.Role.USER
    )
    rows = (
        final_answers(mind, period)
        .filter(status=Message.Status.COMPLETE, citations=[])
        .annotate(
            question=Subquery(question.values("content")[:1]),
            asked_at=Subquery(question.values("created_at")[:1]),
        )
        .exclude(question=None)
        .order_by("-created_at", "-id")
        .values_list("question", "asked_at")[:limit]
    )
    return [Question(text=text, asked_at=at) for text, at in rows]


def not_found_groups(*, mind: Mind, period: DateRange, not_found: int) -> dict:
    questions = not_found_questions(mind=mind, period=period, limit=MAX_GROUPED_QUESTIONS)
    groups: list[QuestionGroup] = group_questions(questions)
    return {
        "questions": not_found,
        "grouped": len(questions),
        "group_count": len(groups),
        "groups": groups[:MAX_GROUPS],
    }


def top_sources(*, mind: Mind, period: DateRange, limit: int = TOP_SOURCES) -> list[dict]:
    """The sources the range's answers cited most: answers citing each (an answer counts a source once) and
    citation markers; the name and type are the source's current ones, or the citation's for a deleted source."""
    answers_sql, params = (
        final_answers(mind, period).order_by().values("id", "citations").query.sql_with_params()
    )
    sql = f"""
        SELECT cited.item ->> 'sourceId' AS source_id,
               COUNT(DISTINCT answers.id) AS answers,
               COUNT(*) AS citations,
               MAX(cited.item ->> 'sourceName') AS name,
               MAX(cited.item ->> 'sourceType') AS type
        FROM ({answers_sql}) AS answers
        CROSS JOIN LATERAL jsonb_array_elements(
            CASE WHEN jsonb_typeof(answers.citations) = 'array' THEN answers.citations ELSE '[]'::jsonb END
        ) AS cited(item)
        WHERE jsonb_typeof(cited.item) = 'object' AND COALESCE(cited.item ->> 'sourceId', '') <> ''
        GROUP BY 1
        ORDER BY answers DESC, citations DESC, source_id
        LIMIT %s
    """  # the inner query is Django's own, its parameters passed separately
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, limit])
        rows = cursor.fetchall()
    current = {
        source.id: source
        for source in Source.objects.filter(workspace_id=mind.workspace_id, id__in=[row[0] for row in rows])
    }
    out = []
    for source_id, answers, citations, name, kind in rows:
        source = current.get(source_id)
        out.append(
            {
                "source_id": source_id,
                "name": source.name if source else (name or ""),
                "type": source.type if source else (kind or ""),
                "answers": answers,
                "citations": citations,
                "deleted": source is None,
            }
        )
    return out


def visitors(*, mind: Mind, period: DateRange | None) -> QuerySet:
    """Distinct visitor emails (case-insensitive) of the mind's conversations started in the range (all time with
    None): first seen (the first conversation's start), last seen (the latest conversation activity) and the
    number of conversations; most recently seen first."""
    conversations = _conversations(mind).exclude(visitor_email="")
    if period is not None:
        conversations = conversations.filter(created_at__gte=period.since, created_at__lt=period.until)
    return (
        conversations.annotate(email=Lower("visitor_email"))
        .values("email")
        .annotate(first_seen=Min("created_at"), last_seen=Max("updated_at"), conversations=Count("id"))
        .order_by("-last_seen", "email")
    )


def mind_insights(*, mind: Mind, period: DateRange) -> dict:
    outcomes = answer_outcomes(mind=mind, period=period)
    days = activity_by_day(mind=mind, period=period)
    emails = visitors(mind=mind, period=period)
    return {
        "period": period,
        "days": days,
        "totals": {
            "conversations": sum(d["conversations"] for d in days),
            "messages": sum(d["messages"] for d in days),
            "questions": outcomes["questions"],
            "answers": outcomes["answers"],
            "visitors": emails.count(),
        },
        "outcomes": outcomes,
        "not_found": not_found_groups(mind=mind, period=period, not_found=outcomes["not_found"]),
        "top_sources": top_sources(mind=mind, period=period),
        "visitors": list(emails[:VISITORS_SHOWN]),
    }
