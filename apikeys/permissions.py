from rest_framework import exceptions
from rest_framework.permissions import BasePermission

from apikeys.errors import InsufficientScope


class HasRequiredScopes(BasePermission):
    """Reads `view.required_scopes[METHOD]`; a method the view does not declare is refused."""

    def has_permission(self, request, view) -> bool:
        method = request.method.upper()
        if method == "OPTIONS":
            return True
        if method == "HEAD":
            method = "GET"
        if not hasattr(view, method.lower()):
            return True  # the view answers 405 itself
        scope = getattr(view, "required_scopes", {}).get(method)
        if scope is None:
            raise exceptions.PermissionDenied("This method is not available.")
        if not request.user.has_scope(scope):
            raise InsufficientScope(scope)
        return True
