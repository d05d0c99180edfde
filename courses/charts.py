"""Server-side SVG of MADRS and PHQ-9 over time: no JavaScript, prints well, no CDN.

Each instrument gets its own panel on its own scale (0–60, 0–27) over a shared time axis, with
its remission cut-off as a dashed line.
"""

from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from clinical.instruments import INSTRUMENTS

WIDTH, PANEL, GAP, LEFT, RIGHT, TOP = 640, 130, 34, 44, 16, 18
COLOURS = {"madrs": "#0d6efd", "phq9": "#d63384"}


def score_chart(assessments, remission: dict) -> SafeString:
    """``assessments``: the current (uncorrected) entries, any order; ``remission``: the
    clinic's cut-off per instrument."""
    if not assessments:
        return mark_safe("")
    times = [a.administered_at for a in assessments]
    start, end = min(times), max(times)
    span = (end - start).total_seconds() or 1.0
    plot_width = WIDTH - LEFT - RIGHT

    def x(at) -> float:
        return round(LEFT + (at - start).total_seconds() / span * plot_width, 1)

    panels, y0 = [], TOP
    for code, definition in INSTRUMENTS.items():
        points = sorted(
            (a for a in assessments if a.instrument == code), key=lambda a: a.administered_at
        )
        if not points:
            continue
        top_score = definition.total_max

        def y(score, y0=y0, top_score=top_score) -> float:
            return round(y0 + PANEL - score / top_score * PANEL, 1)

        cutoff = remission[code]
        colour = COLOURS.get(code, "#333")
        path = " ".join(f"{x(a.administered_at)},{y(a.total)}" for a in points)
        # A self-report (SPEC §9) is a hollow dot: the patient's own answer, between visits.
        dots = format_html_join(
            "", '<circle cx="{}" cy="{}" r="{}" fill="{}" stroke="{}" stroke-width="2"{}>'
            '<title>{} {} on {}{}</title></circle>',
            ((x(a.administered_at), y(a.total), 4 if own else 3.5, "#fff" if own else colour,
              colour, mark_safe(' class="self-report"') if own else "", definition.name,
              a.total, timezone.localtime(a.administered_at).strftime("%Y-%m-%d"),
              " (self-report)" if own else "")
             for a in points for own in [getattr(a, "is_self_report", False)]),
        )
        panels.append(format_html(
            '<g class="panel">'
            '<text x="4" y="{}" font-size="12" font-weight="bold">{}</text>'
            '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#ccc"/>'
            '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#ccc"/>'
            '<text x="{}" y="{}" font-size="10" text-anchor="end">{}</text>'
            '<text x="{}" y="{}" font-size="10" text-anchor="end">0</text>'
            '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#198754" stroke-dasharray="4 3"/>'
            '<text x="{}" y="{}" font-size="10" fill="#198754" text-anchor="end">'
            'remission ≤ {}</text>'
            '<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>{}</g>',
            y0 - 4, definition.name,
            LEFT, y0, LEFT, y0 + PANEL,
            LEFT, y0 + PANEL, WIDTH - RIGHT, y0 + PANEL,
            LEFT - 4, y0 + 10, top_score,
            LEFT - 4, y0 + PANEL,
            LEFT, y(cutoff), WIDTH - RIGHT, y(cutoff),
            WIDTH - RIGHT, y(cutoff) - 3, cutoff,
            path, colour, dots,
        ))
        y0 += PANEL + GAP
    height = y0
    first = timezone.localtime(start).strftime("%Y-%m-%d")
    last = timezone.localtime(end).strftime("%Y-%m-%d")
    legend = ""
    if any(getattr(a, "is_self_report", False) for a in assessments):
        legend = format_html(
            '<circle cx="{}" cy="{}" r="4" fill="#fff" stroke="#555" stroke-width="2"/>'
            '<text x="{}" y="{}" font-size="10">self-report</text>',
            WIDTH // 2 - 30, height - GAP + 10, WIDTH // 2 - 22, height - GAP + 14,
        )
    return format_html(
        '<svg class="score-chart" role="img" viewBox="0 0 {} {}" '
        'xmlns="http://www.w3.org/2000/svg" aria-label="MADRS and PHQ-9 over time">'
        '{}<text x="{}" y="{}" font-size="10">{}</text>'
        '<text x="{}" y="{}" font-size="10" text-anchor="end">{}</text>{}</svg>',
        WIDTH, height, mark_safe("".join(panels)),
        LEFT, height - GAP + 14, first, WIDTH - RIGHT, height - GAP + 14, last, legend,
    )
