"""The insights' query parameters and wire shapes."""

from datetime import UTC, date, datetime, timedelta

from rest_framework import serializers

from config.api.serializers import iso
from insights.clustering import SIMILARITY_THRESHOLD
from insights.selectors import CHANNELS, DateRange

DEFAULT_DAYS = 30
MAX_DAYS = 366
# Bounds that keep `to + 1 day` a valid date; no conversation is older than the first.
EARLIEST = date(2000, 1, 1)
LATEST = date(2999, 12, 31)


def today() -> date:
    return datetime.now(UTC).date()


class DateRangeQuerySerializer(serializers.Serializer):
    """`from` and `to`: ISO dates (YYYY-MM-DD), inclusive UTC days; `to` defaults to today, `from` to 29 days
    before `to` (30 days); at most 366 days."""

    # `from` is a Python keyword: the fields are declared in get_fields.
    def get_fields(self):
        def day(help_text: str):
            return serializers.DateField(required=False, input_formats=["iso-8601"], help_text=help_text)

        return {
            "from": day("First day (ISO date, UTC), inclusive. Default: 29 days before `to`."),
            "to": day("Last day (ISO date, UTC), inclusive. Default: today."),
        }

    def validate(self, attrs):
        for name in ("from", "to"):
            if name in attrs and not EARLIEST <= attrs[name] <= LATEST:
                raise serializers.ValidationError(
                    {name: [f"Give a date from {EARLIEST.isoformat()} to {LATEST.isoformat()}."]}
                )
        end = attrs.get("to") or today()
        start = attrs.get("from") or end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            raise serializers.ValidationError({"from": ["`from` is after `to`."]})
        if (end - start).days + 1 > MAX_DAYS:
            raise serializers.ValidationError({"from": [f"The range is longer than {MAX_DAYS} days."]})
        return {"period": DateRange(start, end)}


class VisitorExportQuerySerializer(DateRangeQuerySerializer):
    """Without `from` and `to`, every visitor of all time; with either, the same range as the insights."""

    def get_fields(self):
        fields = super().get_fields()
        fields["from"].help_text = "First day (ISO date, UTC), inclusive. Default: all time (without `to`)."
        fields["to"].help_text = "Last day (ISO date, UTC), inclusive. Default: all time (without `from`)."
        return fields

    def validate(self, attrs):
        if not attrs.get("from") and not attrs.get("to"):
            return {"period": None}
        return super().validate(attrs)


class ChannelCountsSerializer(serializers.Serializer):
    conversations = serializers.IntegerField()
    messages = serializers.IntegerField()


ChannelsSerializer = type(
    "InsightsChannelsSerializer",
    (serializers.Serializer,),
    {channel: ChannelCountsSerializer() for channel in CHANNELS},
)


class DaySerializer(serializers.Serializer):
    date = serializers.DateField()
    conversations = serializers.IntegerField(help_text="Conversations started that day.")
    messages = serializers.IntegerField(help_text="Questions and final answers written that day.")
    channels = ChannelsSerializer()


class TotalsSerializer(serializers.Serializer):
    conversations = serializers.IntegerField()
    messages = serializers.IntegerField()
    questions = serializers.IntegerField()
    answers = serializers.IntegerField()
    visitors = serializers.IntegerField(help_text="Distinct visitor emails of the range's conversations.")


class AnswersSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    answered = serializers.IntegerField(help_text="Complete answers citing at least one passage.")
    notFound = serializers.IntegerField(help_text="Complete answers citing no passage.")
    failed = serializers.IntegerField(help_text="Answers that ended in an error or were interrupted.")


class FeedbackSerializer(serializers.Serializer):
    up = serializers.IntegerField()
    down = serializers.IntegerField()
    rated = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True, help_text="up / (up + down); null without ratings.")


class QuestionGroupSerializer(serializers.Serializer):
    representative = serializers.CharField()
    count = serializers.IntegerField(
        help_text="Askings in the group (the same question asked twice counts 2)."
    )
    examples = serializers.ListField(child=serializers.CharField())
    lastAskedAt = serializers.DateTimeField()


class NotFoundSerializer(serializers.Serializer):
    questions = serializers.IntegerField(help_text="Not-found answers in the range.")
    grouped = serializers.IntegerField(help_text="The most recent ones grouped (at most 300).")
    threshold = serializers.FloatField(help_text="Cosine similarity to join a group.")
    groupCount = serializers.IntegerField(help_text="Groups found; the 30 largest are listed.")
    groups = QuestionGroupSerializer(many=True)


class SourceCountSerializer(serializers.Serializer):
    sourceId = serializers.CharField()
    name = serializers.CharField(allow_blank=True)
    type = serializers.CharField(allow_blank=True)
    answers = serializers.IntegerField(help_text="Answers citing the source.")
    citations = serializers.IntegerField(help_text="Citation markers pointing at it.")
    deleted = serializers.BooleanField(help_text="The source no longer exists (name and type as cited).")


class VisitorSerializer(serializers.Serializer):
    email = serializers.CharField()
    firstSeenAt = serializers.DateTimeField()
    lastSeenAt = serializers.DateTimeField()
    conversations = serializers.IntegerField()


class InsightsSerializer(serializers.Serializer):
    mindId = serializers.CharField()
    # `from` is a keyword: declared below.
    to = serializers.DateField()
    totals = TotalsSerializer()
    days = DaySerializer(many=True)
    answers = AnswersSerializer()
    feedback = FeedbackSerializer()
    notFound = NotFoundSerializer()
    topSources = SourceCountSerializer(many=True)
    visitors = VisitorSerializer(
        many=True, help_text="The 100 most recently seen; all of them in visitors.csv."
    )

    def get_fields(self):
        return {"from": serializers.DateField(), **super().get_fields()}


def visitor_data(row: dict) -> dict:
    return {
        "email": row["email"],
        "firstSeenAt": iso(row["first_seen"]),
        "lastSeenAt": iso(row["last_seen"]),
        "conversations": row["conversations"],
    }


def insights_data(mind_id: str, insights: dict) -> dict:
    period: DateRange = insights["period"]
    outcomes, not_found = insights["outcomes"], insights["not_found"]
    return {
        "mindId": mind_id,
        "from": period.start.isoformat(),
        "to": period.end.isoformat(),
        "totals": insights["totals"],
        "days": [{**day, "date": day["date"].isoformat()} for day in insights["days"]],
        "answers": {
            "total": outcomes["answers"],
            "answered": outcomes["answered"],
            "notFound": outcomes["not_found"],
            "failed": outcomes["failed"],
        },
        "feedback": {key: outcomes[key] for key in ("up", "down", "rated", "rate")},
        "notFound": {
            "questions": not_found["questions"],
            "grouped": not_found["grouped"],
            "threshold": SIMILARITY_THRESHOLD,
            "groupCount": not_found["group_count"],
            "groups": [
                {
                    "representative": group.representative,
                    "count": group.count,
                    "examples": group.examples,
                    "lastAskedAt": iso(group.last_asked_at),
                }
                for group in not_found["groups"]
            ],
        },
        "topSources": [
            {
                "sourceId": row["source_id"],
                "name": row["name"],
                "type": row["type"],
                "answers": row["answers"],
                "citations": row["citations"],
                "deleted": row["deleted"],
            }
            for row in insights["top_sources"]
        ],
        "visitors": [visitor_data(row) for row in insights["visitors"]],
    }
