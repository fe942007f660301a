from django.urls import path

from apikeys import apis

urlpatterns = [
    path("auth/verify", apis.AuthVerifyApi.as_view(), name="auth-verify"),
    path("api-keys", apis.ApiKeyListApi.as_view(), name="api-key-list"),
    path("api-keys/<str:key_id>", apis.ApiKeyDetailApi.as_view(), name="api-key-detail"),
    path("webhooks/secret", apis.WebhookSecretApi.as_view(), name="webhook-secret"),
    path("webhooks/secret/rotate", apis.WebhookSecretRotateApi.as_view(), name="webhook-secret-rotate"),
]
