"""Trigglio's legacy key check, `GET /api/integrations/webhooks/auth/verify`: the native /api/v1/auth/verify."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from apikeys.apis import AuthVerifyApi, WorkspaceRefSerializer
from config.api.schema import envelope, errors


class IntegrationsAuthVerifyApi(AuthVerifyApi):
    # Its own operation id: the document lists both paths, each with one operation.
    @extend_schema(
        operation_id="trigglio_integrations_auth_verify",
        tags=["Trigglio chatbots"],
        description="The same as GET /api/v1/auth/verify, at the path Trigglio's forms integration uses.",
        responses={
            200: envelope(
                "IntegrationsAuthVerifyResponse",
                workspace=WorkspaceRefSerializer(),
                permissions=serializers.ListField(child=serializers.CharField()),
                keyId=serializers.CharField(),
            ),
            **errors(401, 429),
        },
    )
    def get(self, request):
        return super().get(request)
