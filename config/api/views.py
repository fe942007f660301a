"""The one base class every API view inherits.

It fixes API-key authentication, per-method scopes, rate limiting and workspace scoping, so a view
cannot forget them: a view only declares `required_scopes` and reads `self.workspace`.
"""

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.audit import actor_enter, actor_leave
from accounts.models import Workspace
from apikeys.authentication import ApiKeyAuthentication, ApiKeyPrincipal
from apikeys.permissions import HasRequiredScopes
from config.api.errors import ApplicationError
from config.api.parsers import NUL_IN_URL, url_has_nul
from config.api.throttling import ApiKeyRateThrottle, apply_rate_limit_headers, authentication_failed


class WorkspaceApiView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasRequiredScopes]
    throttle_classes = [ApiKeyRateThrottle]
    # {"GET": "minds:read", "POST": "minds:write"}; "any" means any valid key. Undeclared methods are refused.
    required_scopes: dict[str, str] = {}
    # Extra per-key budgets on top of the general one, e.g. ("search",).
    extra_rate_limits: tuple[str, ...] = ()
    # The request guard leaves a NUL in the URL to `initial`, which refuses it in the surface's own error shape.
    refuses_nul_in_url = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for method in cls.http_method_names:
            if method in {"options", "head"}:
                continue
            if hasattr(cls, method) and method.upper() not in cls.required_scopes:
                raise ImproperlyConfigured(f"{cls.__name__}.{method} has no entry in required_scopes")

    @property
    def principal(self) -> ApiKeyPrincipal:
        return self.request.user

    @property
    def workspace(self) -> Workspace:
        return self.request.user.workspace

    def perform_authentication(self, request: Request) -> None:
        try:
            request.user  # noqa: B018 -- reading it runs the authentication
        except (exceptions.NotAuthenticated, exceptions.AuthenticationFailed):
            authentication_failed(request)  # a 429 instead of the 401 once the address is past its budget
            raise

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        if url_has_nul(request):  # before anything reads the database (authentication included)
            raise ApplicationError(NUL_IN_URL, code="malformed_request")
        super().initial(request, *args, **kwargs)
        # From here on, whatever the services change is recorded in the audit log as done by this key.
        self._actor_token = actor_enter(self.principal.actor)

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        token = getattr(self, "_actor_token", None)
        if token is not None:
            actor_leave(token)
            self._actor_token = None
        response = super().finalize_response(request, response, *args, **kwargs)
        apply_rate_limit_headers(request, response)
        return response


def success(status_code: int = 200, headers: dict[str, str] | None = None, **payload: Any) -> Response:
    return Response({"status": "success", **payload}, status=status_code, headers=headers)
