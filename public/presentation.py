"""What the public page shows of a mind, with everything the owner typed checked again before it is rendered.

Templates autoescape text; this module makes sure values used in CSS and URLs are safe in those contexts too
(colours as hex, a font family from a plain character set, links only http(s)), whatever reached the database.
"""

import re
from dataclasses import dataclass

from django.conf import settings

from minds.models import Mind

HEX = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
FONT = re.compile(r"^[A-Za-z0-9 ,'\"-]{1,100}$")  # no < > ; { }: safe unescaped inside <style>
DEFAULT_FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif'
SOCIAL = ("website", "twitter", "linkedin", "youtube", "instagram")


def safe_color(value, default: str) -> str:
    return value if isinstance(value, str) and HEX.match(value) else default


def safe_url(value) -> str:
    return value if isinstance(value, str) and value.lower().startswith(("https://", "http://")) else ""


def initials(name: str) -> str:
    parts = [p for p in re.split(r"\s+", name.strip()) if p[:1].isalnum()]
    if not parts:
        return "?"
    return (parts[0][0] + (parts[-1][0] if len(parts) > 1 else "")).upper()


@dataclass
class Theme:
    primary: str
    background: str
    font: str
    mode: str


def theme_of(mind: Mind) -> Theme:
    theme = mind.theme if isinstance(mind.theme, dict) else {}
    mode = theme.get("mode") if theme.get("mode") in ("light", "dark") else "light"
    font = theme.get("fontFamily")
    background_default = "#0f172a" if mode == "dark" else "#ffffff"
    return Theme(
        primary=safe_color(theme.get("primaryColor"), "#4f46e5"),
        background=safe_color(theme.get("backgroundColor"), background_default),
        font=font if isinstance(font, str) and FONT.match(font) else DEFAULT_FONT,
        mode=mode,
    )


def voice_available(mind: Mind) -> bool:
    """The play control exists only when the mind wants a voice and a speech endpoint is configured."""
    return bool(
        mind.voice_enabled and settings.TTS_ENABLED and (settings.OPENAI_API_KEY or settings.OPENAI_BASE_URL)
    )


def page_context(mind: Mind, *, embed: bool) -> dict:
    links = mind.social_links if isinstance(mind.social_links, dict) else {}
    return {
        "mind": mind,
        "embed": embed,
        "initials": initials(mind.name),
        "avatar_url": safe_url(mind.avatar_url),
        "theme": theme_of(mind),
        "social_links": [(name, safe_url(links.get(name))) for name in SOCIAL if safe_url(links.get(name))],
        "page_url": f"{settings.PUBLIC_BASE_URL}/m/{mind.slug}",
        "description": (mind.headline or mind.bio or f"Chat with {mind.name}")[:200],
        "config": {
            "slug": mind.slug,
            "name": mind.name,
            "welcome": mind.welcome_message,
            "showSources": mind.show_sources,
            "collectEmail": mind.collect_email_before_chat,
            "voice": voice_available(mind),
            "channel": "widget" if embed else "public",
        },
    }
