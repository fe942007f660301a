"""Mind input and output shapes (camelCase on the wire, snake_case in the model)."""

import re

from rest_framework import serializers

from config.api.serializers import StrictSerializer, iso
from minds.models import VOICE_IDS, Mind
from minds.services import MindChanges, mind_public_url

COLOR_RE = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
FONT_RE = re.compile(r"^[A-Za-z0-9 ,'\"-]{1,100}$")


class ThemeSerializer(StrictSerializer):
    primaryColor = serializers.RegexField(COLOR_RE, required=False)
    backgroundColor = serializers.RegexField(COLOR_RE, required=False)
    fontFamily = serializers.RegexField(FONT_RE, required=False)
    mode = serializers.ChoiceField(choices=["light", "dark"], required=False)


class SocialLinksSerializer(StrictSerializer):
    twitter = serializers.URLField(required=False, allow_blank=True, max_length=500)
    linkedin = serializers.URLField(required=False, allow_blank=True, max_length=500)
    youtube = serializers.URLField(required=False, allow_blank=True, max_length=500)
    website = serializers.URLField(required=False, allow_blank=True, max_length=500)
    instagram = serializers.URLField(required=False, allow_blank=True, max_length=500)

    def validate(self, attrs):
        for name, url in attrs.items():
            if url and not url.lower().startswith(("https://", "http://")):
                raise serializers.ValidationError({name: ["Only http(s) links are allowed."]})
        return attrs


# camelCase API field -> model field
FIELD_MAP = {
    "name": "name",
    "slug": "slug",
    "headline": "headline",
    "bio": "bio",
    "avatarUrl": "avatar_url",
    "systemPrompt": "system_prompt",
    "welcomeMessage": "welcome_message",
    "suggestedQuestions": "suggested_questions",
    "expertiseAreas": "expertise_areas",
    "isPublished": "is_published",
    "showSources": "show_sources",
    "collectEmailBeforeChat": "collect_email_before_chat",
    "temperature": "temperature",
    "topP": "top_p",
    "frequencyPenalty": "frequency_penalty",
    "presencePenalty": "presence_penalty",
    "model": "model",
    "language": "language",
    "theme": "theme",
    "socialLinks": "social_links",
    "voiceEnabled": "voice_enabled",
    "voiceId": "voice_id",
    "voiceSpeed": "voice_speed",
    "visibility": "visibility",
    "allowedGroupIds": "allowed_group_ids",
    "allowedOrigins": "allowed_origins",
    "publicMessagesPerMinute": "public_messages_per_minute",
    "publicMessagesPerDay": "public_messages_per_day",
}

# Fields a client may set to null: the value goes back to its default (Trigglio documents theme and socialLinks as
# `object|null`; GET shows an empty bio, avatarUrl, model or language, and an unset sampling parameter, as null).
NULL_RESETS = frozenset(
    {
        "theme",
        "socialLinks",
        "bio",
        "headline",
        "avatarUrl",
        "model",
        "language",
        "topP",
        "frequencyPenalty",
        "presencePenalty",
    }
)

# What GET shows but nobody sets: a PATCH carrying them back (GET → edit → PATCH) has them ignored, not refused.
READ_ONLY_FIELDS = frozenset(
    {
        "id",
        "createdAt",
        "updatedAt",
        "knowledgeSourceCount",
        "conversationCount",
        "recentConversationCount",
        "sourceLimit",
        "sourceStats",
        "publicUrl",
        "usage",
    }
)


def _origin(value: str) -> str:
    if not re.match(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?$", value):
        raise serializers.ValidationError(f"{value!r} is not an origin like https://example.com.")
    return value.lower()


class MindInputSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100, min_length=1)
    slug = serializers.CharField(max_length=120, required=False)
    headline = serializers.CharField(max_length=200, required=False, allow_blank=True, allow_null=True)
    bio = serializers.CharField(max_length=5000, required=False, allow_blank=True, allow_null=True)
    avatarUrl = serializers.URLField(max_length=2000, required=False, allow_blank=True, allow_null=True)
    systemPrompt = serializers.CharField(max_length=20000, required=False, allow_blank=True)
    welcomeMessage = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    suggestedQuestions = serializers.ListField(
        child=serializers.CharField(max_length=300, min_length=1), max_length=4, required=False
    )
    expertiseAreas = serializers.ListField(
        child=serializers.CharField(max_length=100, min_length=1), max_length=10, required=False
    )
    isPublished = serializers.BooleanField(required=False)
    showSources = serializers.BooleanField(required=False)
    collectEmailBeforeChat = serializers.BooleanField(required=False)
    temperature = serializers.FloatField(min_value=0, max_value=2, required=False)
    topP = serializers.FloatField(min_value=0, max_value=1, required=False, allow_null=True)
    frequencyPenalty = serializers.FloatField(min_value=-2, max_value=2, required=False, allow_null=True)
    presencePenalty = serializers.FloatField(min_value=-2, max_value=2, required=False, allow_null=True)
    model = serializers.CharField(max_length=100, required=False, allow_blank=True, allow_null=True)
    language = serializers.RegexField(
        r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?$", required=False, allow_blank=True, allow_null=True
    )
    theme = ThemeSerializer(required=False, allow_null=True)
    socialLinks = SocialLinksSerializer(required=False, allow_null=True)
    voiceEnabled = serializers.BooleanField(required=False)
    voiceId = serializers.ChoiceField(choices=VOICE_IDS, required=False)
    voiceSpeed = serializers.FloatField(min_value=0.25, max_value=4, required=False)
    visibility = serializers.ChoiceField(choices=Mind.Visibility.values, required=False)
    allowedGroupIds = serializers.ListField(
        child=serializers.CharField(max_length=40), max_length=50, required=False
    )
    allowedOrigins = serializers.ListField(
        child=serializers.CharField(max_length=300), max_length=20, required=False
    )
    publicMessagesPerMinute = serializers.IntegerField(min_value=1, max_value=1000, required=False)
    publicMessagesPerDay = serializers.IntegerField(min_value=1, max_value=100000, required=False)

    def validate_avatarUrl(self, value: str) -> str:
        if value and not value.lower().startswith(("https://", "http://")):
            raise serializers.ValidationError("Only http(s) image URLs are allowed.")
        return value

    def validate_allowedOrigins(self, value: list[str]) -> list[str]:
        return [_origin(origin) for origin in value]


def mind_changes(validated: dict) -> MindChanges:
    """Validated camelCase input as the changes the services take; a null is a reset to the default."""
    return MindChanges(
        **{
            FIELD_MAP[key]: (dict(value) if isinstance(value, dict) else value)
            for key, value in validated.items()
            if value is not None
        },
        cleared=frozenset(FIELD_MAP[key] for key, value in validated.items() if value is None),
    )


def mind_collection_ids(mind: Mind) -> list[str]:
    # Through the reverse relation knowledge declares on Mind: minds never imports knowledge.
    return [collection.id for collection in mind.collections.all()]


class MindUpdateSerializer(MindInputSerializer):
    """Partial. What GET shows and nobody sets (READ_ONLY_FIELDS) is ignored, so a mind fetched, edited and sent
    back is accepted. `collectionIds` is changed with `PUT /minds/{id}/collections`: sent back unchanged it is
    ignored, changed it is refused (400) rather than silently dropped. Pass the mind as `context={"mind": …}`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, partial=True, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, dict):
            data = {key: value for key, value in data.items() if key not in READ_ONLY_FIELDS}
            if "collectionIds" in data:
                self._check_collection_ids_unchanged(data.pop("collectionIds"))
        return super().to_internal_value(data)

    def _check_collection_ids_unchanged(self, value) -> None:
        mind = self.context.get("mind")
        current = set(mind_collection_ids(mind)) if mind is not None else set()
        if (
            not isinstance(value, list)
            or not all(isinstance(item, str) for item in value)
            or set(value) != current
        ):
            raise serializers.ValidationError(
                {
                    "collectionIds": [
                        "Attach or detach collections with PUT /api/v1/minds/{id}/collections; "
                        "PATCH accepts only the current list."
                    ]
                }
            )


class MindSerializer(serializers.Serializer):
    """The mind as the API shows it; detail-only counters come from `extra`."""

    id = serializers.CharField()
    name = serializers.CharField()
    slug = serializers.CharField()
    headline = serializers.CharField()
    bio = serializers.CharField(allow_null=True)
    avatarUrl = serializers.CharField(source="avatar_url", allow_null=True)
    systemPrompt = serializers.CharField(source="system_prompt")
    welcomeMessage = serializers.CharField(source="welcome_message")
    suggestedQuestions = serializers.ListField(source="suggested_questions", child=serializers.CharField())
    expertiseAreas = serializers.ListField(source="expertise_areas", child=serializers.CharField())
    isPublished = serializers.BooleanField(source="is_published")
    showSources = serializers.BooleanField(source="show_sources")
    collectEmailBeforeChat = serializers.BooleanField(source="collect_email_before_chat")
    temperature = serializers.FloatField()
    topP = serializers.FloatField(source="top_p", allow_null=True)
    frequencyPenalty = serializers.FloatField(source="frequency_penalty", allow_null=True)
    presencePenalty = serializers.FloatField(source="presence_penalty", allow_null=True)
    model = serializers.CharField(allow_null=True)
    language = serializers.CharField(allow_null=True)
    theme = serializers.DictField()
    socialLinks = serializers.DictField(source="social_links")
    voiceEnabled = serializers.BooleanField(source="voice_enabled")
    voiceId = serializers.CharField(source="voice_id")
    voiceSpeed = serializers.FloatField(source="voice_speed")
    visibility = serializers.CharField()
    allowedGroupIds = serializers.ListField(source="allowed_group_ids", child=serializers.CharField())
    allowedOrigins = serializers.ListField(source="allowed_origins", child=serializers.CharField())
    publicMessagesPerMinute = serializers.IntegerField(source="public_messages_per_minute")
    publicMessagesPerDay = serializers.IntegerField(source="public_messages_per_day")
    collectionIds = serializers.ListField(child=serializers.CharField())
    knowledgeSourceCount = serializers.IntegerField(source="knowledge_source_count", default=0)
    conversationCount = serializers.IntegerField(source="conversation_count", default=0)
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")

    def to_representation(self, instance):
        # Built by hand: DRF's field-by-field rendering cost ~0.4 ms per mind, most of a list request's time.
        return mind_data(instance)


def mind_data(mind: Mind) -> dict:
    """The fields of MindSerializer (which documents them), as plain values."""
    return {
        "id": mind.id,
        "name": mind.name,
        "slug": mind.slug,
        "headline": mind.headline,
        "bio": mind.bio or None,
        "avatarUrl": mind.avatar_url or None,
        "systemPrompt": mind.system_prompt,
        "welcomeMessage": mind.welcome_message,
        "suggestedQuestions": list(mind.suggested_questions),
        "expertiseAreas": list(mind.expertise_areas),
        "isPublished": mind.is_published,
        "showSources": mind.show_sources,
        "collectEmailBeforeChat": mind.collect_email_before_chat,
        "temperature": mind.temperature,
        "topP": mind.top_p,
        "frequencyPenalty": mind.frequency_penalty,
        "presencePenalty": mind.presence_penalty,
        "model": mind.model or None,
        "language": mind.language or None,
        "theme": dict(mind.theme),
        "socialLinks": dict(mind.social_links),
        "voiceEnabled": mind.voice_enabled,
        "voiceId": mind.voice_id,
        "voiceSpeed": mind.voice_speed,
        "visibility": mind.visibility,
        "allowedGroupIds": list(mind.allowed_group_ids),
        "allowedOrigins": list(mind.allowed_origins),
        "publicMessagesPerMinute": mind.public_messages_per_minute,
        "publicMessagesPerDay": mind.public_messages_per_day,
        "collectionIds": mind_collection_ids(mind),
        "knowledgeSourceCount": getattr(mind, "knowledge_source_count", 0),
        "conversationCount": getattr(mind, "conversation_count", 0),
        "createdAt": iso(mind.created_at),
        "updatedAt": iso(mind.updated_at),
    }


class SourceStatsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    ready = serializers.IntegerField()
    pending = serializers.IntegerField()
    processing = serializers.IntegerField()
    transcribing = serializers.IntegerField()
    failed = serializers.IntegerField()


class MindDetailSerializer(MindSerializer):
    recentConversationCount = serializers.IntegerField(source="recent_conversation_count")
    sourceLimit = serializers.IntegerField(source="effective_source_limit")
    sourceStats = SourceStatsSerializer(source="source_stats")
    publicUrl = serializers.CharField(source="public_url", allow_null=True)


def mind_detail_data(mind: Mind, counts: dict) -> dict:
    for name, value in counts.items():
        setattr(mind, name, value)
    return {
        **mind_data(mind),
        "recentConversationCount": counts["recent_conversation_count"],
        "sourceLimit": mind.effective_source_limit,
        "sourceStats": counts["source_stats"],
        "publicUrl": mind_public_url(mind) if mind.is_published else None,
    }
