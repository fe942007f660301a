from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from accounts.services import workspace_webhook_secret_rotate
from apikeys import selectors, services
from apikeys.models import ALL_SCOPES
from config.api.errors import PermissionDenied
from config.api.schema import COMMON_ERRORS, envelope, errors
from config.api.serializers import StrictSerializer, body
from config.api.views import WorkspaceApiView, success


class WorkspaceRefSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()


class AuthVerifyApi(WorkspaceApiView):
    required_scopes = {"GET": "any"}

    @extend_schema(
        operation_id="auth_verify",
        responses={
            200: envelope(
                "AuthVerifyResponse",
                workspace=WorkspaceRefSerializer(),
                permissions=serializers.ListField(child=serializers.CharField()),
                keyId=serializers.CharField(),
            ),
            **errors(401, 429),
        },
    )
    def get(self, request):
        return success(
            workspace={"id": self.workspace.id, "name": self.workspace.name},
            permissions=sorted(self.principal.scopes, key=ALL_SCOPES.index),
            keyId=self.principal.key_id,
        )


class ApiKeySerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    maskedKey = serializers.CharField(source="masked")
    last4 = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField())
    mindIds = serializers.ListField(source="allowed_mind_ids", child=serializers.CharField())
    expiresAt = serializers.DateTimeField(source="expires_at", allow_null=True)
    lastUsedAt = serializers.DateTimeField(source="last_used_at", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")
    memberId = serializers.CharField(source="member_id")


class ApiKeyCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100, min_length=1)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=[*ALL_SCOPES, "all"]), min_length=1)
    expiresAt = serializers.DateTimeField(required=False, allow_null=True)
    expiresInDays = serializers.IntegerField(required=False, min_value=1, max_value=3650)
    mindIds = serializers.ListField(
        child=serializers.CharField(max_length=40), required=False, max_length=100
    )


class ApiKeyListApi(WorkspaceApiView):
    required_scopes = {"GET": "keys:manage", "POST": "keys:manage"}

    @extend_schema(
        operation_id="api_keys_list",
        responses={
            200: envelope("ApiKeyListResponse", apiKeys=ApiKeySerializer(many=True)),
            **errors(*COMMON_ERRORS),
        },
    )
    def get(self, request):
        return success(
            apiKeys=ApiKeySerializer(
                selectors.api_key_list(workspace=self.workspace, principal=self.principal), many=True
            ).data
        )

    @extend_schema(
        operation_id="api_keys_create",
        request=ApiKeyCreateSerializer,
        responses={
            201: envelope("ApiKeyCreateResponse", apiKey=ApiKeySerializer(), key=serializers.CharField()),
            **errors(*COMMON_ERRORS),
        },
    )
    def post(self, request):
        data = body(ApiKeyCreateSerializer, request)
        created = services.api_key_create(
            workspace=self.workspace,
            name=data["name"],
            scopes=data["scopes"],
            expires_at=data.get("expiresAt"),
            expires_in_days=data.get("expiresInDays"),
            allowed_mind_ids=data.get("mindIds"),
            creator=self.principal,
        )
        # The plaintext is returned here once and never again.
        return success(201, apiKey=ApiKeySerializer(created.api_key).data, key=created.plaintext)


class ApiKeyDetailApi(WorkspaceApiView):
    required_scopes = {"DELETE": "keys:manage"}

    @extend_schema(
        operation_id="api_keys_revoke",
        responses={
            200: envelope(
                "ApiKeyRevokeResponse", revoked=serializers.BooleanField(), id=serializers.CharField()
            ),
            **errors(*COMMON_ERRORS),
        },
    )
    def delete(self, request, key_id: str):
        api_key = services.api_key_revoke(workspace=self.workspace, key_id=key_id, actor=self.principal)
        return success(revoked=True, id=api_key.id)


class WebhookSecretSerializer(serializers.Serializer):
    secret = serializers.CharField(
        help_text="`whsec_` + base64: the key of the Standard Webhooks signatures."
    )


def _whole_workspace_key(principal) -> None:
    # The secret signs the webhooks of every mind, so a key restricted to some minds may not learn or change it.
    if principal.allowed_mind_ids:
        raise PermissionDenied(
            "A key restricted to some minds cannot read or rotate the workspace's webhook secret; "
            "use a key without mindIds."
        )


class WebhookSecretApi(WorkspaceApiView):
    required_scopes = {"GET": "keys:manage"}

    @extend_schema(
        operation_id="webhooks_secret_retrieve",
        description=(
            "The workspace's webhook signing secret: verify `webhook-signature` (Standard Webhooks: HMAC-SHA256 "
            "over `webhook-id.webhook-timestamp.body`) with it. Needs `keys:manage` and a key without `mindIds`."
        ),
        responses={
            200: envelope("WebhookSecretResponse", **WebhookSecretSerializer().get_fields()),
            **errors(*COMMON_ERRORS),
        },
    )
    def get(self, request):
        _whole_workspace_key(self.principal)
        return success(secret=self.workspace.webhook_secret)


class WebhookSecretRotateApi(WorkspaceApiView):
    required_scopes = {"POST": "keys:manage"}

    @extend_schema(
        operation_id="webhooks_secret_rotate",
        description=(
            "Replaces the webhook signing secret and returns the new one. Every delivery attempt from now on, "
            "retries of earlier events included, is signed with it; the old one stops verifying at once. "
            "Recorded in the audit log (entity `workspace`, action `rotate_webhook_secret`), without the secret."
        ),
        request=None,
        responses={
            200: envelope("WebhookSecretRotateResponse", **WebhookSecretSerializer().get_fields()),
            **errors(*COMMON_ERRORS),
        },
    )
    def post(self, request):
        _whole_workspace_key(self.principal)
        return success(secret=workspace_webhook_secret_rotate(workspace=self.workspace))
