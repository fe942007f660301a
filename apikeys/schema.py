"""Documents the API-key authentication in the OpenAPI document (Bearer or X-API-KEY)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "apikeys.authentication.ApiKeyAuthentication"
    name = ["bearerKey", "headerKey"]

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "tr_live_ key",
                "description": "`Authorization: Bearer tr_live_…`",
            },
            {
                "type": "apiKey",
                "in": "header",
                "name": "X-API-KEY",
                "description": "The same key in `X-API-KEY`.",
            },
        ]
