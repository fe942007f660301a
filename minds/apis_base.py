"""The base of every API view under /minds/<mind_id>/: the URL's mind, resolved once.

Handlers read `self.mind` and take only their own path arguments. minds.selectors.mind_get decides whether the key
may use the mind (404 outside its reach, 403 mind_access_denied for a group-only mind). It runs after
authentication, the scope check and the rate limit, so a request without a valid key, scope or budget is refused
before it can learn which minds exist.

The base lives in minds, not config.api, because config.api knows no app but keys and workspaces; knowledge and
conversations sit above minds and inherit it.
"""

from typing import Any

from django.http import HttpRequest, HttpResponseBase
from rest_framework.request import Request

from config.api.views import WorkspaceApiView
from minds.models import Mind
from minds.selectors import mind_get


# No class docstring: drf-spectacular would print an inherited one as every operation's description.
class MindScopedApiView(WorkspaceApiView):
    mind: Mind

    def dispatch(self, request: HttpRequest, *args: Any, mind_id: str, **kwargs: Any) -> HttpResponseBase:
        # Handlers take only their own path arguments: their mind is `self.mind`, looked up once below.
        self.mind_id = mind_id
        return super().dispatch(request, *args, **kwargs)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # A method the view does not serve is answered 405 (OPTIONS: its description) without the mind.
        if request.method != "OPTIONS" and hasattr(self, request.method.lower()):
            self.mind = mind_get(principal=self.principal, mind_id=self.mind_id)
