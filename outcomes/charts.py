"""Server-side SVG bar charts for the outcome dashboard: no JavaScript, no style attributes (the
CSP forbids inline style), colours as SVG attributes. Each chart sits beside a table holding the
same numbers, which is its text equivalent.

Built with plain f-strings for speed (the page must cost little more than a bare one): every
text that is not one of our numbers goes through ``escape``.
"""

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from outcomes.summary import Row, TimeToResponse, plain_number

WIDTH, LABEL, BAR_WIDTH, ROW, TOP = 640, 250, 250, 34, 26
RESPONSE, REMISSION, MUTED, DARK, GRID = "#0d6efd", "#198754", "#6c757d", "#212529", "#dee2e6"


def _svg(height: int, label: str, parts: list[str]) -> SafeString:
    return mark_safe(
        f'<svg class="w-100 h-auto" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="{escape(label)}">{"".join(parts)}</svg>'
    )


def _axis(height: int, ticks: list[tuple[float, str]]) -> list[str]:
    """Vertical grid lines at fractions of the bar width, labelled at the top."""
    parts = []
    for share, words in ticks:
        x = plain_number(LABEL + share * BAR_WIDTH)
        parts.append(
            f'<line x1="{x}" y1="{TOP - 4}" x2="{x}" y2="{height - 4}" stroke="{GRID}"/>'
            f'<text x="{x}" y="{TOP - 8}" font-size="10" text-anchor="middle" '
            f'fill="{MUTED}">{escape(words)}</text>'
        )
    return parts


def _label(y: int, text: str) -> str:
    return (f'<text x="{LABEL - 8}" y="{y + 16}" font-size="11" text-anchor="end">'
            f"{escape(text)}</text>")


def rate_chart(rows: list[Row], label: str) -> SafeString:
    """Response (upper bar) and remission (lower bar) rate of each group, out of 100 %."""
    if not rows:
        return mark_safe("")
    height = TOP + ROW * len(rows) + 6
    parts = _axis(height, [(i / 4, f"{i * 25} %") for i in range(5)])
    for i, row in enumerate(rows):
        y = TOP + i * ROW
        parts.append(_label(y, row.label))
        if row.too_few:
            parts.append(
                f'<text x="{LABEL + 4}" y="{y + 16}" font-size="11" fill="{MUTED}">too few to '
                f"compare ({row.evaluable} with a status)</text>"
            )
            continue
        for offset, colour, count, what in (
            (4, RESPONSE, row.responders, "response or remission"),
            (16, REMISSION, row.remitters, "remission"),
        ):
            width = count / row.evaluable * BAR_WIDTH
            parts.append(
                f'<rect x="{LABEL}" y="{y + offset}" width="{plain_number(width)}" height="10" '
                f'fill="{colour}"><title>{escape(row.label)}: {what} {count} of '
                f"{row.evaluable}</title></rect>"
                f'<text x="{plain_number(LABEL + width + 4)}" y="{y + offset + 9}" font-size="10">'
                f"{count} of {row.evaluable}</text>"
            )
    return _svg(height, label, parts)


def time_chart(rows: list[TimeToResponse], label: str) -> SafeString:
    """Days from the first session to response: the interquartile range as a bar, the median as
    a dark tick."""
    shown = [row for row in rows if not row.days.too_few]
    if not shown:
        return mark_safe("")
    longest = max(row.days.q3 for row in shown)
    scale = max(28, -(-int(longest) // 28) * 28)  # ticks on whole weeks
    height = TOP + ROW * len(shown) + 6
    parts = _axis(height, [(i / 4, f"{plain_number(scale * i / 4)} d") for i in range(5)])

    def x(days: float) -> float:
        return LABEL + days / scale * BAR_WIDTH

    for i, row in enumerate(shown):
        y, days, name = TOP + i * ROW, row.days, escape(row.label)
        median, q1, q3 = (plain_number(v) for v in (days.median, days.q1, days.q3))
        left, middle = plain_number(x(days.q1)), plain_number(x(days.median))
        width = plain_number(max(1.0, x(days.q3) - x(days.q1)))
        parts.append(_label(y, row.label))
        parts.append(
            f'<rect x="{left}" y="{y + 6}" width="{width}" height="14" fill="{RESPONSE}" '
            f'fill-opacity="0.35"><title>{name}: days {q1} to {q3}, the middle half of '
            f"{days.n} courses</title></rect>"
            f'<line x1="{middle}" y1="{y + 3}" x2="{middle}" y2="{y + 23}" stroke="{DARK}" '
            f'stroke-width="3"><title>{name}: median {median} days</title></line>'
            f'<text x="{plain_number(x(days.q3) + 6)}" y="{y + 17}" font-size="10">'
            f"median {median} d (n = {days.n})</text>"
        )
    return _svg(height, label, parts)
