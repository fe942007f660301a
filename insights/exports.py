"""The visitors' CSV, safe to open in a spreadsheet.

A cell that starts with `=`, `+`, `-`, `@` (or a tab or carriage return, which some spreadsheets skip before
reading a formula) is prefixed with a single quote, so a visitor who typed `=HYPERLINK(...)` as their email cannot
make the owner's spreadsheet run a formula (OWASP's CSV injection advice). Quoting and line breaks are the csv
module's (RFC 4180, CRLF line ends).
"""

import csv
import io
import re
from collections.abc import Iterable

from config.api.serializers import iso

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
HEADER = ["email", "first_seen_at", "last_seen_at", "conversations"]


def safe_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def visitors_csv(rows: Iterable[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    for row in rows:
        writer.writerow(
            [
                safe_cell(row["email"]),
                safe_cell(iso(row["first_seen"])),
                safe_cell(iso(row["last_seen"])),
                safe_cell(row["conversations"]),
            ]
        )
    return out.getvalue()


def visitors_filename(mind_slug: str, period) -> str:
    """ASCII letters, digits, `-` and `_` only: nothing to quote or encode in Content-Disposition."""
    slug = re.sub(r"[^A-Za-z0-9_-]", "", mind_slug)[:60]
    span = f"{period.start.isoformat()}_{period.end.isoformat()}" if period else "all"
    return f"{slug or 'mind'}-visitors-{span}.csv"
