"""Small charts as inline SVG, drawn on the server (the admin needs no JavaScript chart library).

Every text that reaches the SVG (labels, legends, tooltips) goes through `escape`, and numbers are formatted from
ints and floats, so nothing a visitor typed can become markup.
"""

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 720, 180
LEFT, RIGHT, TOP, BOTTOM = 36, 8, 10, 22
COLORS = ("#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2", "#64748b")


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _frame(title: str, body: list[str], legend: list[tuple[str, str]]) -> SafeString:
    keys = "".join(
        f'<rect x="{LEFT + 120 * i}" y="{HEIGHT + 6}" width="10" height="10" fill="{color}"/>'
        f'<text x="{LEFT + 120 * i + 14}" y="{HEIGHT + 15}" font-size="11">{escape(name)}</text>'
        for i, (name, color) in enumerate(legend)
    )
    height = HEIGHT + (22 if legend else 0)
    # Safe: built from escaped texts and formatted numbers only.
    return mark_safe(
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" class="insights-chart" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>{''.join(body)}{keys}</svg>"
    )


def _axes(labels: list[str], top: float) -> list[str]:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = [
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" stroke="#94a3b8"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 8}" font-size="10" text-anchor="end">{_num(top)}</text>',
        f'<text x="{LEFT - 4}" y="{TOP + plot_h}" font-size="10" text-anchor="end">0</text>',
    ]
    if labels:
        step = max(1, len(labels) // 6)
        slot = plot_w / len(labels)
        for i in range(0, len(labels), step):
            x = LEFT + slot * (i + 0.5)
            parts.append(
                f'<text x="{_num(x)}" y="{HEIGHT - 6}" font-size="10" text-anchor="middle">'
                f"{escape(labels[i])}</text>"
            )
    return parts


def stacked_bars(title: str, labels: list[str], series: dict[str, list[int]]) -> SafeString:
    """One bar per label, stacked by series (e.g. days by channel); a series with no value is left out."""
    series = {name: values for name, values in series.items() if any(values)}
    totals = [sum(values[i] for values in series.values()) for i in range(len(labels))]
    top = max(totals, default=0) or 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(labels), 1)
    bar = max(slot * 0.8, 1)
    body = _axes(labels, top)
    legend = list(zip(series, COLORS, strict=False))
    colors = dict(legend)
    for i, label in enumerate(labels):
        base = TOP + plot_h
        for name, values in series.items():
            if not values[i]:
                continue
            h = plot_h * values[i] / top
            base -= h
            body.append(
                f'<rect x="{_num(LEFT + slot * i + (slot - bar) / 2)}" y="{_num(base)}" width="{_num(bar)}" '
                f'height="{_num(h)}" fill="{colors.get(name, COLORS[-1])}">'
                f"<title>{escape(label)} · {escape(name)}: {values[i]}</title></rect>"
            )
    return _frame(title, body, legend)


def line(title: str, labels: list[str], values: list[int], name: str) -> SafeString:
    top = max(values, default=0) or 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(labels), 1)
    points = [(LEFT + slot * (i + 0.5), TOP + plot_h - plot_h * v / top) for i, v in enumerate(values)]
    body = _axes(labels, top)
    if points:
        path = " ".join(f"{_num(x)},{_num(y)}" for x, y in points)
        body.append(f'<polyline points="{path}" fill="none" stroke="{COLORS[0]}" stroke-width="2"/>')
        body += [
            f'<circle cx="{_num(x)}" cy="{_num(y)}" r="2.5" fill="{COLORS[0]}">'
            f"<title>{escape(label)} · {escape(name)}: {v}</title></circle>"
            for (x, y), label, v in zip(points, labels, values, strict=True)
        ]
    return _frame(title, body, [(name, COLORS[0])])


def horizontal_bars(title: str, rows: list[tuple[str, int]]) -> SafeString:
    """One bar per (label, value), e.g. answered / not found / failed, or thumbs up / down."""
    top = max((value for _, value in rows), default=0) or 1
    row_h, label_w = 24, 160
    height = TOP + row_h * len(rows)
    body = []
    for i, ((label, value), color) in enumerate(zip(rows, COLORS, strict=False)):
        y = TOP + row_h * i
        w = (WIDTH - label_w - 60) * value / top
        body.append(
            f'<text x="{label_w - 6}" y="{y + 15}" font-size="12" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y + 4}" width="{_num(w)}" height="14" fill="{color}">'
            f"<title>{escape(label)}: {value}</title></rect>"
            f'<text x="{_num(label_w + w + 6)}" y="{y + 15}" font-size="12">{value}</text>'
        )
    # Safe: built from escaped texts and formatted numbers only.
    return mark_safe(
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {WIDTH} {height + 4}" '
        f'width="{WIDTH}" height="{height + 4}" class="insights-chart" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )
