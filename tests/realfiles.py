"""Real files for the ingestion tests.

Small files written by others are committed under tests/fixtures/ (its README gives each one's source and
licence). Files whose only public samples carry a share-alike or non-commercial licence are written here instead,
with the tools people make such files with: ReportLab lays out the PDF, pypdf encrypts it, and the HTML page,
the Markdown and the mojibake text are built as a web page, an article and a bad copy-paste would be.
"""

import io
import random
from functools import cache
from pathlib import Path

from pypdf import PdfReader, PdfWriter

FIXTURES = Path(__file__).resolve().parent / "fixtures"

LOREM = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore "
    "magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris nisi aliquip ex ea commodo "
    "consequat duis aute irure in reprehenderit voluptate velit esse cillum fugiat nulla pariatur excepteur sint "
    "occaecat cupidatat non proident sunt culpa qui officia deserunt mollit anim id est laborum"
).split()


def fixture(relative: str) -> Path:
    """A committed fixture; a missing one is a broken checkout, so it fails loudly instead of skipping."""
    path = FIXTURES / relative
    assert path.is_file(), f"{path} is missing: it is committed under tests/fixtures/"
    return path


def lorem_paragraph(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choice(LOREM) for _ in range(words))
    return "Lorem " + text + "."


@cache
def two_column_pdf() -> bytes:
    """Three A4 pages of two justified columns each; the left column of every page starts with a marker word
    (`Alpha1`, `Alpha2`, …) and the right one with `Beta1`, … so reading order can be checked."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import BaseDocTemplate, Frame, FrameBreak, PageBreak, PageTemplate, Paragraph

    rng = random.Random(297)
    style = getSampleStyleSheet()["BodyText"]
    style.alignment = 4  # justified, as two-column print usually is
    width, height = A4
    gap, margin = 1 * cm, 2 * cm
    column = (width - 2 * margin - gap) / 2
    frames = [
        Frame(margin, margin, column, height - 2 * margin, id="left"),
        Frame(margin + column + gap, margin, column, height - 2 * margin, id="right"),
    ]
    story = []
    for page in range(1, 4):
        for side, label in (("left", "Alpha"), ("right", "Beta")):
            story.append(Paragraph(f"{label}{page} {lorem_paragraph(rng, 60)}", style))
            story.extend(Paragraph(lorem_paragraph(rng, 70), style) for _ in range(3))
            story.append(FrameBreak() if side == "left" else PageBreak())
    story.pop()  # no blank fourth page
    out = io.BytesIO()
    document = BaseDocTemplate(out, pagesize=A4, title="Two columns of lorem ipsum", author="Minds tests")
    document.addPageTemplates([PageTemplate(id="two-columns", frames=frames)])
    document.build(story)
    return out.getvalue()


@cache
def password_pdf(user_password: str = "openpassword") -> bytes:
    """The two-column PDF that needs `user_password` to open (RC4-128: pypdf needs no extra package for it)."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(two_column_pdf())))
    writer.encrypt(user_password=user_password, owner_password="owner-secret")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


DUCK_PARAGRAPHS = [
    "Duck is the common name for many species of waterfowl in the family Anatidae, which also includes swans "
    "and geese. Ducks are mostly aquatic birds, smaller than swans and geese, and live in both fresh water and "
    "sea water.",
    "Most ducks have a wide, flat bill adapted to dredging, and webbed feet that make them strong swimmers. "
    "Diving ducks and sea ducks forage deep underwater, while dabbling ducks feed at the surface or tip up to "
    "reach plants and small animals just below it.",
    "The feathers of ducks are waterproofed by oil spread from a gland near the tail. Many species moult all "
    "their flight feathers at once after breeding and cannot fly for several weeks, so they gather on large "
    "lakes where predators are few.",
    "Male ducks of many species are brightly coloured during the breeding season, while females are mottled "
    "brown, which hides them on the nest. The female alone usually incubates the eggs, and the ducklings leave "
    "the nest within a day of hatching.",
    "People have kept ducks for meat, eggs and down for thousands of years. Almost all domestic breeds descend "
    "from the mallard, apart from the Muscovy duck, which was domesticated separately in the Americas.",
]


@cache
def article_html() -> bytes:
    """A saved encyclopedia-style page: navigation, a search form, an infobox, a data table, references and a
    footer around the article, the clutter main-content extraction has to drop."""
    paragraphs = "\n".join(
        f"<p>{text}<sup><a href='#ref-{i}'>[{i}]</a></sup></p>" for i, text in enumerate(DUCK_PARAGRAPHS, 1)
    )
    menu = "\n".join(f"<li><a href='/wiki/Section_{i}'>Portal section {i}</a></li>" for i in range(1, 25))
    references = "\n".join(
        f"<li id='ref-{i}'>Field notes on waterfowl, volume {i}, pages {10 * i}-{10 * i + 9}.</li>"
        for i in range(1, 6)
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Duck - Open Field Guide</title>
<meta property="og:title" content="Duck - Open Field Guide">
<meta property="og:site_name" content="Open Field Guide"><meta name="viewport" content="width=device-width"><link rel="stylesheet" href="/static/site.css"></head>
<body>
<a class="skip" href="#content">Jump to content</a>
<header><nav aria-label="Main menu"><ul>{menu}</ul></nav>
<form role="search" action="/search"><input name="q" placeholder="Search the guide"><button>Search</button></form>
</header>
<main id="content"><article>
<h1>Duck</h1>
<table class="infobox"><caption>Duck</caption>
<tr><th>Kingdom</th><td>Animalia</td></tr><tr><th>Class</th><td>Aves</td></tr>
<tr><th>Order</th><td>Anseriformes</td></tr><tr><th>Family</th><td>Anatidae</td></tr></table>
{paragraphs}
<h2>Size of common species</h2>
<table class="data"><thead><tr><th>Species</th><th>Length (cm)</th><th>Weight (g)</th></tr></thead>
<tbody><tr><td>Mallard</td><td>50-65</td><td>1000-1300</td></tr>
<tr><td>Common teal</td><td>34-38</td><td>250-400</td></tr>
<tr><td>Common eider</td><td>50-71</td><td>1200-2800</td></tr></tbody></table>
<h2>References</h2><ol class="references">{references}</ol>
</article></main>
<footer><ul><li><a href="/privacy">Privacy policy</a></li><li><a href="/about">About the guide</a></li>
<li>Text is available under the terms of the guide's licence.</li></ul></footer>
</body></html>""".encode()


@cache
def prose_markdown() -> bytes:
    """Prose Markdown in sections, with `[12]`-style reference markers left over from a web copy."""
    rng = random.Random(12)
    sections = ["History", "Products", "Research", "Corporate affairs"]
    body = [
        "# The Company\n",
        "The Company is a manufacturer of office machines founded early in the last century.[1]\n",
    ]
    for number, section in enumerate(sections, start=2):
        body.append(f"## {section}\n")
        for paragraph in range(3):
            words = " ".join(rng.choice(LOREM) for _ in range(80))
            body.append(f"{section} paragraph {paragraph + 1}: {words}.[{number * 3 + paragraph}]\n")
    return "\n".join(body).encode()


@cache
def mojibake_text() -> bytes:
    """Text pasted from a web page: UTF-8 read as Windows-1252 and saved again as UTF-8 (`cafÃ©`), no-break
    spaces, zero-width spaces, soft hyphens, smart quotes and the odd control character."""
    clean = [
        "The Welsh footballer played as a striker for three clubs in twenty seasons.",
        "He scored twice in the “derby” at the old ground – a match fans still call the best of the decade.",
        "After retiring he became a pundit on café-style talk shows and wrote a memoir, “Twenty Years Up Front”.",
    ]
    lines = []
    for i in range(120):
        line = clean[i % 3]
        if i % 2:
            line = line.encode("utf-8").decode("cp1252", errors="replace")
        lines.append(
            line.replace(" ", "\u00a0", 2).replace("striker", "stri\u00adker").replace("ball", "ball\u200b")
        )
    return ("\r\n".join(lines) + "\x0c\r\n").encode("utf-8")


def tone_wav(seconds: float = 1.0, rate: int = 16000, frames: int | None = None) -> bytes:
    """A mono 16-bit WAV of a 440 Hz tone, written with the stdlib as a recorder would; `frames=0` gives a valid
    header with no samples."""
    import math
    import struct
    import wave

    count = int(seconds * rate) if frames is None else frames
    samples = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(count)
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(samples)
    return buffer.getvalue()


def tone_mp3(seconds: float = 1.0, rate: int = 16000) -> bytes:
    """An MP3 of a 440 Hz tone, encoded by LAME through PyAV (which faster-whisper brings)."""
    import av
    import numpy as np

    count = int(seconds * rate)
    samples = (np.sin(2 * np.pi * 440 * np.arange(count) / rate) * 8000).astype(np.int16).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
    frame.sample_rate = rate
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=rate)
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return buffer.getvalue()


def zeros_behind_id3(size: int) -> bytes:
    """An ID3v2 tag header followed by zeros: the magic bytes of an MP3 and no audio at all."""
    header = b"ID3\x03\x00\x00\x00\x00\x00\x00"
    return header + bytes(size - len(header))
