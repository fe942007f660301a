"""Documents the API-key authentication in the OpenAPI document: Bearer or X-API-KEY, either one.

drf-spectacular's default for a scheme with two names is one requirement object naming both, which OpenAPI reads
as "both headers together". The server accepts either header alone, so each operation lists two alternative
requirements instead.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "apikeys.authentication.ApiKeyAuthentication"
    name = ["bearerAuth", "apiKeyHeader"]

    def get_security_requirement(self, auto_schema):
        return [{name: []} for name in self.name]

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
