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


# WCAG 2.x: normal text needs a contrast ratio of 4.5:1 against what is behind it (AA), controls and focus rings 3:1.
AA_TEXT = 4.5
BLACK, WHITE = "#000000", "#ffffff"


def _rgb(color: str) -> tuple[int, int, int]:
    value = color.lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{max(0, min(255, round(c))):02x}" for c in rgb)


def luminance(color: str) -> float:
    """WCAG relative luminance of a hex colour (0 black … 1 white)."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in _rgb(color))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """The WCAG contrast ratio of two hex colours, 1 … 21."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_on(background: str) -> str:
    """Black or white, whichever reads better on `background` (one of them always reaches 4.5:1)."""
    return BLACK if contrast(BLACK, background) >= contrast(WHITE, background) else WHITE


def mix(color: str, other: str, amount: float) -> str:
    """`color` moved `amount` (0 … 1) of the way towards `other`."""
    a, b = _rgb(color), _rgb(other)
    return _hex(tuple(x + (y - x) * amount for x, y in zip(a, b, strict=True)))


def readable(color: str, *backgrounds: str, target: float = AA_TEXT) -> str:
    """`color` itself when it reaches `target` against every one of `backgrounds`, else the closest shade of it that
    does: darkened where text is dark (light backgrounds), lightened where it is light (at worst black or white)."""
    if all(contrast(color, b) >= target for b in backgrounds):
        return color
    towards = text_on(backgrounds[0])
    for step in range(1, 21):
        shade = mix(color, towards, step / 20)
        if all(contrast(shade, b) >= target for b in backgrounds):
            return shade
    return towards


def card_on(background: str) -> str:
    """The answers' surface: a shade off the background. Towards the text colour when the background contrasts
    with it plenty; away from it on a mid-tone background, where the text would otherwise fall below AA."""
    ink = text_on(background)
    if contrast(ink, background) >= 7:
        return mix(background, ink, 0.05 if ink == BLACK else 0.08)
    return mix(background, WHITE if ink == BLACK else BLACK, 0.15)


@dataclass
class Theme:
    """The owner's colours and the ones derived from them so that every text on the page reaches WCAG AA:
    `on_primary` is the text on primary surfaces (the visitor's bubbles, buttons), `accent` the primary as used for
    text and links on the background, `fg`/`muted` the text colours, `card` the answers' surface."""

    primary: str
    background: str
    font: str
    mode: str
    on_primary: str = WHITE
    accent: str = ""
    fg: str = ""
    muted: str = ""
    card: str = ""
    border: str = ""
    danger: str = ""

    def css_variables(self) -> str:
        """The `:root` declarations for the page's <style> (every value a checked hex colour or font)."""
        values = {
            "primary": self.primary,
            "on-primary": self.on_primary,
            "accent": self.accent,
            "bg": self.background,
            "fg": self.fg,
            "muted": self.muted,
            "card": self.card,
            "border": self.border,
            "danger": self.danger,
            "font": self.font,
        }
        return "".join(f"--{name}:{value};" for name, value in values.items())


def theme_of(mind: Mind) -> Theme:
    theme = mind.theme if isinstance(mind.theme, dict) else {}
    mode = theme.get("mode") if theme.get("mode") in ("light", "dark") else "light"
    font = theme.get("fontFamily")
    background_default = "#0f172a" if mode == "dark" else "#ffffff"
    primary = safe_color(theme.get("primaryColor"), "#4f46e5")
    background = safe_color(theme.get("backgroundColor"), background_default)
    # The text colours follow the background the owner chose, whatever the mode says.
    light = text_on(background) == BLACK
    card = card_on(background)
    fg = readable("#0f172a" if light else "#e2e8f0", background, card)
    return Theme(
        primary=primary,
        background=background,
        font=font if isinstance(font, str) and FONT.match(font) else DEFAULT_FONT,
        mode=mode,
        on_primary=text_on(primary),
        # Links and chips sit on the background and on the answers' cards: readable on both.
        accent=readable(primary, background, card),
        fg=fg,
        muted=readable("#475569" if light else "#94a3b8", background, card),
        card=card,
        border=mix(background, BLACK if light else WHITE, 0.22 if light else 0.25),
        danger=readable("#b91c1c" if light else "#f87171", background, card),
    )


def voice_available(mind: Mind) -> bool:
    """The play control exists only when the mind wants a voice and a speech endpoint is configured."""
    return bool(
        mind.voice_enabled and settings.TTS_ENABLED and (settings.OPENAI_API_KEY or settings.OPENAI_BASE_URL)
    )


def _plain(text: str) -> str:
    return " ".join((text or "").split())


def page_title(mind: Mind) -> str:
    """`Name · headline`, kept under the ~60 characters search results show."""
    title = mind.name if not mind.headline else f"{mind.name} · {_plain(mind.headline)}"
    return title if len(title) <= 60 else title[:59].rstrip() + "…"


def page_description(mind: Mind) -> str:
    """One or two sentences for search results and link previews: the headline and the start of the bio."""
    parts = [_plain(mind.headline), _plain(mind.bio)]
    text = (
        " — ".join(p for p in parts if p) or f"Chat with {mind.name}, an AI persona grounded in its sources."
    )
    return text if len(text) <= 200 else text[:199].rstrip() + "…"


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
        "title": page_title(mind),
        "description": page_description(mind),
        # Short enough to show whole in one line at 360 px, in the widget and on a phone.
        "placeholder": "Ask a question…" if embed or len(mind.name) > 18 else f"Ask {mind.name}…",
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
