"""Who an anonymous visitor of a public page is, and whether a request really comes from that visitor's page.

On the mind's own site the visitor is a signed, HttpOnly, SameSite=Lax cookie issued with the page: scripts can't
read it and other sites can't make the browser send it. Inside the widget's iframe on another site, browsers
withhold that cookie (it is a third-party context), so the page falls back to a random id it keeps in its own
localStorage and sends as `X-Minds-Visitor`. The two are kept apart: cookie visitors are stored as `c.<token>`,
and a header id can never contain a dot, so a header can't claim a cookie visitor's conversations.

Forgery: a cookie is ambient authority, so requests identified by it must carry Django's CSRF token as well. A
header id is not ambient (another site can't know it), and those requests are guarded by the custom header, the
JSON body and the Origin check in views.
"""

import re
import secrets
from dataclasses import dataclass

from django.middleware.csrf import CsrfViewMiddleware

COOKIE = "minds_visitor"
SALT = "public.visitor"
MAX_AGE = 365 * 86_400
COOKIE_TOKEN = re.compile(r"^[A-Za-z0-9_-]{24,48}$")
HEADER_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


@dataclass(frozen=True)
class Visitor:
    id: str
    by_cookie: bool


def _cookie_token(request) -> str | None:
    token = request.get_signed_cookie(COOKIE, default=None, salt=SALT, max_age=MAX_AGE)
    return token if token and COOKIE_TOKEN.match(token) else None


def visitor_of(request) -> Visitor | None:
    token = _cookie_token(request)
    if token:
        return Visitor(f"c.{token}", True)
    header = request.headers.get("X-Minds-Visitor", "")
    return Visitor(header, False) if HEADER_ID.match(header) else None


def issue_cookie(request, response) -> None:
    """Gives a visitor without a (valid) cookie a new one; the page response carries it."""
    if _cookie_token(request) is None:
        response.set_signed_cookie(
            COOKIE,
            secrets.token_urlsafe(24),
            salt=SALT,
            max_age=MAX_AGE,
            path="/m/",
            httponly=True,
            samesite="Lax",
            secure=request.is_secure(),
        )


def _view(request):  # a stand-in view for the CSRF check: it is never called
    raise AssertionError


_csrf = CsrfViewMiddleware(lambda request: None)


def forged(request, visitor: Visitor) -> bool:
    """True when a cookie-identified unsafe request lacks a valid CSRF token (or comes from a foreign origin)."""
    if not visitor.by_cookie:
        return False
    return _csrf.process_view(request, _view, (), {}) is not None
