"""Scanned pages made offline, for the OCR tests and bench/ocr.py.

Known text is typeset with a TrueType font (DejaVu, Debian's fonts-dejavu-core) onto an A4 page at 300 DPI, then
made to look scanned: a grey paper tone, sensor noise, dust, a slight blur and a skew of under a degree. Pillow
saves the images as a PDF with no text layer, as a scanner's "scan to PDF" does.
"""

import random
import re
from collections import Counter
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

DPI = 300
A4_POINTS = (595, 842)
FONT_PATHS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf",
)

# Original text written for these tests: prose with figures, names and punctuation, as a scanned report has.
PAGES = (
    "The committee met on the morning of 14 March to review the harbour survey. Its members agreed that the "
    "northern breakwater had settled by roughly forty centimetres since the last inspection, and that the "
    "cause was most likely the winter storms rather than any fault in the original foundations. A diver's "
    "report, attached as the second appendix, describes three cracks along the seaward face. The engineer "
    "proposed that the cracks be sealed before the autumn, at an estimated cost of 86,000 pounds, and that a "
    "second survey follow in the spring. Mrs Hallam asked whether the fishing fleet would need to move during "
    "the works; she was told that the inner basin would stay open throughout.",
    "Water samples taken from the river mouth showed a modest rise in salinity over the summer months. The "
    "laboratory attributes this to the low rainfall in July and August, and expects the readings to return "
    "to their usual range once the autumn rains begin. Samples from the upper reaches were unchanged. The "
    "report recommends that monitoring continue every fortnight until December, with the results published "
    "on the council noticeboard and in the quarterly bulletin. Questions about the method should be sent to "
    "the laboratory manager, who has offered to explain the figures at the next public meeting in the library.",
    "Attendance at the evening classes grew for the third year running, with 212 adults enrolled across "
    "eleven courses. Bookkeeping and conversational French were the most popular, while the new course on "
    "repairing household electrics filled within a week of being announced. Tutors noted that several "
    "students had travelled from neighbouring villages, and asked whether the bus timetable could be adjusted "
    "so that the last service leaves after the classes end. The secretary agreed to write to the transport "
    "office and to report its answer at the following meeting.",
    "Finally, the treasurer presented the accounts for the year ending in April. Income from rents and "
    "moorings covered the running costs with a small surplus, which the committee voted to place in the "
    "reserve fund for future repairs. The auditors found the records complete and in good order. The chair "
    "thanked the volunteers who had kept the visitor centre open on weekends, and closed the meeting shortly "
    "after nine o'clock. The next meeting will be held on the first Tuesday of the month, in the same room.",
)


def tokens(text: str) -> list[str]:
    """Lower-case words and numbers, punctuation dropped: what a search over the text would match."""
    return re.findall(r"[a-z0-9]+", text.lower().replace(",", ""))


def token_recall(known: str, found: str) -> float:
    """The share of the known text's tokens (with repeats) that the OCR text has."""
    expected, got = Counter(tokens(known)), Counter(tokens(found))
    return sum(min(count, got[token]) for token, count in expected.items()) / sum(expected.values())


def font(size_px: int) -> ImageFont.FreeTypeFont:
    for candidate in FONT_PATHS:
        if Path(candidate).is_file():
            return ImageFont.truetype(candidate, size_px)
    # Pillow's own font scales too (Pillow >= 10.1), for machines without DejaVu.
    return ImageFont.load_default(size_px)


def scanned_page(text: str, *, seed: int, font_points: float = 11, skew_degrees: float = 0.6) -> Image.Image:
    """An A4 greyscale page at 300 DPI with `text` set in paragraphs, as a flatbed scanner would give it."""
    width, height = (round(side * DPI / 72) for side in A4_POINTS)
    size = round(font_points * DPI / 72)
    face = font(size)
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    margin, y = DPI, DPI
    for line in _wrap(text, face, draw, width - 2 * margin):
        draw.text((margin, y), line, font=face, fill=20)
        y += round(size * 1.45)
    rng = random.Random(seed)
    page = page.rotate(skew_degrees, resample=Image.Resampling.BICUBIC, fillcolor=255)
    page = page.filter(ImageFilter.GaussianBlur(0.7))
    # Paper tone and sensor noise: every pixel moves by up to ±12 grey levels around a slightly grey paper.
    noise = Image.frombytes("L", page.size, rng.randbytes(width * height))
    page = ImageChops.add(page.point(lambda v: v * 0.9), noise.point(lambda v: v // 11), offset=4)
    # Dust: one pixel in 256 darkens by 100 grey levels.
    dust = Image.frombytes("L", page.size, rng.randbytes(width * height)).point(
        lambda v: 100 if v == 255 else 0
    )
    return ImageChops.subtract(page, dust)


def _wrap(text: str, face: ImageFont.FreeTypeFont, draw: ImageDraw.ImageDraw, width: int) -> list[str]:
    lines, current = [], ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if current and draw.textlength(candidate, font=face) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines


def write_scanned_pdf(path: Path, texts: list[str] | tuple[str, ...], *, seed: int = 1, **scan) -> Path:
    """A PDF of one scanned page per text, with no text layer; `scan` goes to scanned_page (font size, skew)."""
    images = [scanned_page(text, seed=seed + number, **scan) for number, text in enumerate(texts)]
    images[0].save(path, "PDF", resolution=DPI, save_all=True, append_images=images[1:])
    return path
