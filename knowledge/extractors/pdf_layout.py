"""Reading order of a PDF page set in two columns.

pypdf's plain extraction follows the content stream. Most generators draw a column at a time, but some draw in rows
across both columns (left line 1, right line 1, left line 2, …), and then the columns come out interleaved line by
line and every sentence is cut in two. Here a page is read again as positioned fragments (one per text-showing
operator, with its start and end x), a vertical gutter is looked for in the middle of the page, and the text is
emitted as a reader goes: full-width lines (a title, an abstract, a figure caption) where they stand, and between
them the left column top to bottom, then the right one.

Cost: the fragments come from pypdf's layout-mode text state (private modules, hence the guarded import: without
them pages keep the plain order), which parses the page a second time. So the plain pass records, almost for free,
where each text operator starts (`TextStarts`), and only pages with many lines starting mid-page are read again
(`may_have_columns`); a single-column page costs one visitor call per text operator.
"""

import logging
import math
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from pypdf import PageObject
from pypdf.generic import ArrayObject, ContentStream, StreamObject

try:  # pypdf's layout mode: not public API, so its absence only turns column ordering off
    from pypdf._text_extraction._layout_mode._fixed_width_page import (
        recurse_to_target_op,
        set_font_operation,
    )
    from pypdf._text_extraction._layout_mode._text_state_manager import TextStateManager
except ImportError:  # pragma: no cover - depends on the installed pypdf
    recurse_to_target_op = None

logger = logging.getLogger(__name__)

SHOW_TEXT = frozenset({b"Tj", b"TJ", b"'", b'"'})
# The gutter is looked for between 30% and 70% of the text's width: a margin note or an indent is not a column.
GUTTER_BAND = (0.3, 0.7)
MIN_COLUMN_LINES = 3
# Lines crossing the gutter (title, headings, captions) may be this share of the page's fragments at most.
MAX_FULL_WIDTH_SHARE = 0.3
# A column's lines fill most of its width; a table's cells do not (a two-column table is not reordered).
MIN_COLUMN_FILL = 0.5
# A page is read again when this share of its text rows start at one x (±1 pt) in the middle band.
MIN_EDGE_SHARE = 0.2


class TextStarts:
    """A `visitor_operand_after` for the plain pass: the page position where each text-showing operator starts."""

    __slots__ = ("points",)

    def __init__(self) -> None:
        self.points: list[tuple[float, float]] = []

    def __call__(self, operator: bytes, operands, cm: list[float], tm: list[float]) -> None:
        if operator in SHOW_TEXT:
            self.points.append((tm[4] * cm[0] + tm[5] * cm[2] + cm[4], tm[4] * cm[1] + tm[5] * cm[3] + cm[5]))


def may_have_columns(starts: TextStarts, page: PageObject) -> bool:
    """Whether a second column is worth looking for: many lines start at one x in the middle of the page (a
    column's left edge). Words placed one by one (some generators draw each word) start at scattered x's."""
    if recurse_to_target_op is None or len(starts.points) < 2 * MIN_COLUMN_LINES:
        return False
    try:
        left, width = float(page.mediabox.left), float(page.mediabox.width)
    except Exception:  # a damaged box: no reordering
        return False
    low, high = left + GUTTER_BAND[0] * width, left + GUTTER_BAND[1] * width
    edges = Counter(round(x / 2) for x, _ in starts.points if low <= x <= high)
    if not edges:
        return False
    rows = len({round(y) for _, y in starts.points})
    return max(edges.values()) >= max(MIN_COLUMN_LINES, MIN_EDGE_SHARE * rows)


@dataclass(frozen=True, slots=True)
class Fragment:
    text: str
    x0: float
    x1: float
    y: float  # baseline, growing upwards
    size: float


def column_text(page: PageObject) -> str | None:
    """The page's text column by column, or None when it is not set in two columns (or cannot be read so)."""
    try:
        fragments = page_fragments(page)
    except RecursionError:
        return None
    except Exception:  # the plain text stands; this pass only improves its order
        logger.debug("pdf page fragments could not be read", exc_info=True)
        return None
    return ordered_text(fragments)


def page_fragments(page: PageObject) -> list[Fragment]:
    contents = page.get("/Contents")
    contents = contents.get_object() if contents is not None else None
    if not isinstance(contents, (ArrayObject, StreamObject)):
        return []
    fonts = page._layout_mode_fonts()
    operations = iter(ContentStream(contents, page.pdf, "bytes").operations)
    state = TextStateManager()
    shown = []
    # As pypdf's layout mode walks a page, but keeping every text operator apart (layout mode merges those on
    # one baseline, which is exactly what hides a gutter).
    for operands, operator in operations:
        if operator in (b"BT", b"q"):
            _, pieces = recurse_to_target_op(
                operations, state, b"ET" if operator == b"BT" else b"Q", fonts, True
            )
            shown.extend(pieces)
        elif operator == b"Tf":
            set_font_operation(state, fonts, operands)
        else:
            state.set_state_param(operator, operands)
    fragments = []
    for piece in shown:
        if piece.rotated or not piece.font.interpretable or not piece.text.strip():
            continue
        flip = -1.0 if piece.flip_vertical else 1.0
        x0, x1 = sorted((piece.tx, piece.displaced_tx))
        fragments.append(Fragment(piece.text, x0, x1, flip * piece.ty, abs(piece.font_height) or 1.0))
    return fragments


def ordered_text(fragments: list[Fragment]) -> str | None:
    gutter = _gutter(fragments)
    if gutter is None:
        return None
    full = [f for f in fragments if f.x0 < gutter < f.x1]
    left = [f for f in fragments if f.x1 <= gutter]
    right = [f for f in fragments if f.x0 >= gutter]
    if not _looks_like_columns(_lines(left), _lines(right), gutter, len(full), len(fragments)):
        return None
    full_lines = _lines(full)
    # Full-width lines cut the page into bands; each band is read left column first.
    blocks: list[list[str]] = []
    above = math.inf
    for line in [*full_lines, None]:
        below = _baseline(line) if line is not None else -math.inf
        for column in (left, right):
            band = [f for f in column if below < f.y < above]
            if band:
                blocks.append(_line_texts(_lines(band)))
        if line is not None:
            blocks.append([_join(line)])
            above = below
    return "\n\n".join("\n".join(block) for block in blocks if block)


def _gutter(fragments: list[Fragment]) -> float | None:
    """The x, in the middle band, that the fewest fragments cross (the centre of the widest such run)."""
    if len(fragments) < 2 * MIN_COLUMN_LINES:
        return None
    left, right = min(f.x0 for f in fragments), max(f.x1 for f in fragments)
    width = right - left
    if width <= 0:
        return None
    low = left + GUTTER_BAND[0] * width
    steps = int(width * (GUTTER_BAND[1] - GUTTER_BAND[0])) + 1
    # Coverage per 1-pt step as a difference array: linear in fragments + steps.
    change = [0] * (steps + 1)
    for fragment in fragments:
        first = max(0, math.floor(fragment.x0 - low) + 1)
        last = min(steps - 1, math.ceil(fragment.x1 - low) - 1)
        if first <= last:
            change[first] += 1
            change[last + 1] -= 1
    coverage, running = [], 0
    for step in range(steps):
        running += change[step]
        coverage.append(running)
    fewest = min(coverage)
    best_start, best_length, start = 0, 0, None
    for step, count in enumerate([*coverage, math.inf]):
        if count == fewest and start is None:
            start = step
        elif count != fewest and start is not None:
            if step - start > best_length:
                best_start, best_length = start, step - start
            start = None
    sizes = statistics.median(f.size for f in fragments)
    if best_length < max(3.0, 0.5 * sizes):
        return None
    return low + best_start + best_length / 2


def _looks_like_columns(left: list, right: list, gutter: float, full_count: int, total: int) -> bool:
    if len(left) < MIN_COLUMN_LINES or len(right) < MIN_COLUMN_LINES:
        return False
    if full_count > MAX_FULL_WIDTH_SHARE * total:
        return False
    # Each side's lines, measured against the room that side has up to the gutter: text fills it, table cells don't.
    page_left = min(f.x0 for line in left for f in line)
    page_right = max(f.x1 for line in right for f in line)
    for lines, room in ((left, gutter - page_left), (right, page_right - gutter)):
        widths = [max(f.x1 for f in line) - min(f.x0 for f in line) for line in lines]
        if room <= 0 or statistics.median(widths) < MIN_COLUMN_FILL * room:
            return False
    # The columns stand side by side: their heights overlap for most of the shorter one.
    top = min(_baseline(left[0]), _baseline(right[0]))
    bottom = max(_baseline(left[-1]), _baseline(right[-1]))
    shorter = min(_baseline(left[0]) - _baseline(left[-1]), _baseline(right[0]) - _baseline(right[-1]))
    return shorter > 0 and top - bottom >= 0.5 * shorter


def _lines(fragments: Iterable[Fragment]) -> list[list[Fragment]]:
    """Fragments grouped into lines (top first), each line left to right. A line's baseline is that of its largest
    text, so a raised or lowered small piece (the 1 and 4 of a fraction, a footnote mark) stays in its line."""
    lines: list[list[Fragment]] = []
    for fragment in sorted(fragments, key=lambda f: (-f.y, f.x0)):
        if lines:
            anchor = _anchor(lines[-1])
            if abs(anchor.y - fragment.y) <= 0.5 * max(anchor.size, fragment.size):
                lines[-1].append(fragment)
                continue
        lines.append([fragment])
    return [sorted(line, key=lambda f: f.x0) for line in lines]


def _anchor(line: list[Fragment]) -> Fragment:
    return max(line, key=lambda f: f.size)


def _baseline(line: list[Fragment]) -> float:
    return _anchor(line).y


def _join(line: list[Fragment]) -> str:
    text = line[0].text
    for previous, fragment in zip(line, line[1:], strict=False):
        gap = fragment.x0 - previous.x1
        if gap > 0.15 * fragment.size and not text.endswith(" ") and not fragment.text.startswith(" "):
            text += " "
        text += fragment.text
    return text.strip()


def _line_texts(lines: list[list[Fragment]]) -> list[str]:
    """A column's lines, with a blank line where the spacing opens (a new paragraph)."""
    gaps = [_baseline(above) - _baseline(below) for above, below in zip(lines, lines[1:], strict=False)]
    usual = statistics.median(gaps) if gaps else 0.0
    texts = [_join(lines[0])]
    for gap, line in zip(gaps, lines[1:], strict=False):
        if usual > 0 and gap > 1.6 * usual:
            texts.append("")
        texts.append(_join(line))
    return texts
