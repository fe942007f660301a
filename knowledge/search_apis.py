from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from config.api.schema import COMMON_ERRORS, envelope, errors
from config.api.serializers import StrictSerializer, body
from config.api.views import success
from knowledge.search import MODES, SearchHit, search_chunks
from minds.apis_base import MindScopedApiView


class SearchInputSerializer(StrictSerializer):
    query = serializers.CharField(min_length=1, max_length=1000)
    limit = serializers.IntegerField(min_value=1, max_value=20, default=5)
    threshold = serializers.FloatField(min_value=0, max_value=1, default=0.3)
    mode = serializers.ChoiceField(choices=MODES, default="hybrid")


class SearchResultSerializer(serializers.Serializer):
    id = serializers.CharField()
    content = serializers.CharField()
    score = serializers.FloatField()
    sourceId = serializers.CharField()
    sourceName = serializers.CharField()
    metadata = serializers.DictField()


def result_data(hit: SearchHit) -> dict:
    chunk = hit.chunk
    return {
        "id": chunk.id,
        "content": chunk.content,
        "score": round(hit.score, 4),
        "sourceId": chunk.source_id,
        "sourceName": chunk.source.name,
        "metadata": {
            "sourceType": chunk.source.type,
            # Set when the passage comes from a collection attached to the mind rather than its own sources.
            "collectionId": chunk.collection_id,
            "page": chunk.page,
            "headingPath": chunk.heading_path or None,
            "startSeconds": chunk.start_seconds,
            "endSeconds": chunk.end_seconds,
            "url": chunk.url or None,
            "vectorScore": round(hit.vector_score, 4),
            "textScore": round(hit.text_score, 4),
        },
    }


class SearchApi(MindScopedApiView):
    required_scopes = {"POST": "knowledge:search"}
    extra_rate_limits = ("search",)

    @extend_schema(
        operation_id="knowledge_search",
        description=(
            "Searches the mind's ready passages. Scores are 0–1 and `threshold` filters on them. `vector`: cosine "
            "similarity. `hybrid` (default): 0.85 × cosine similarity + 0.15 × full-text rank relative to the best "
            "full-text match, over 50 candidates from each side. `smart`: hybrid over the query and LLM rewrites of "
            "it (when an LLM is configured), reranked with 0.8 × similarity + 0.1 × text + 0.1 × query-word coverage. "
            "Rate limited separately (30/min per key by default)."
        ),
        request=SearchInputSerializer,
        responses={
            200: envelope(
                "SearchResponse", results=SearchResultSerializer(many=True), mode=serializers.CharField()
            ),
            **errors(*COMMON_ERRORS),
        },
    )
    def post(self, request):
        data = body(SearchInputSerializer, request)
        hits = search_chunks(
            mind=self.mind,
            query=data["query"],
            limit=data["limit"],
            threshold=data["threshold"],
            mode=data["mode"],
        )
        return success(results=[result_data(h) for h in hits], mode=data["mode"])
