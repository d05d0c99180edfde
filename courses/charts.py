"""Server-side SVG of MADRS and PHQ-9 over time: no JavaScript, prints well, no CDN.

Each instrument gets its own panel on its own scale (0–60, 0–27) over a shared time axis, with
gridlines and labelled ticks on both axes, its remission cut-off and half its baseline (the
50 % response line) as dashed lines. Below the panels a strip marks each session with its dose;
a change of route is a dashed line across the whole chart. The same values are given as text
for screen readers: the SVG's title and description, and a visually hidden table after it.
"""

from datetime import date, datetime, timedelta

from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from clinical.instruments import INSTRUMENTS
from clinical.vocab import Route, SessionStatus

WIDTH, PANEL, GAP, LEFT, RIGHT, TOP = 720, 140, 44, 44, 16, 20
STRIP = 58  # the session strip: markers, then their doses written downwards
COLOURS = {"madrs": "#0d6efd", "phq9": "#d63384"}
GRID, AXIS, REMISSION, RESPONSE, ROUTE = "#e5e5e5", "#999", "#198754", "#b35c00", "#6f42c1"
Y_STEP = {"madrs": 10, "phq9": 5}
DAY_STEPS = (1, 2, 7, 14, 28, 56, 91, 182, 364)
MARKERS = {  # a shape per route, so a route change shows even in black and white
    Route.IV: "circle", Route.IM: "square", Route.INTRANASAL: "triangle",
    Route.SUBLINGUAL: "diamond", Route.ORAL: "diamond",
}


def dose_label(session) -> str:
    """A session's dose in its route's own unit, short: "0.5" (mg/kg) or "56" (mg)."""
    dose = session.dose_mg_per_kg if Route(session.route).weight_based else session.dose_mg
    return f"{dose.normalize():f}" if dose is not None else "?"


def dose_words(session) -> str:
    unit = "mg/kg" if Route(session.route).weight_based else "mg"
    return f"{dose_label(session)} {unit}"


def _marker(shape: str, x: float, y: float, colour: str, filled: bool, title: str) -> SafeString:
    paint = format_html('fill="{}" stroke="{}" stroke-width="1.5"', colour if filled else "#fff",
                        colour)
    if shape == "circle":
        return format_html('<circle cx="{}" cy="{}" r="4" {}><title>{}</title></circle>',
                           x, y, paint, title)
    if shape == "square":
        return format_html(
            '<rect x="{}" y="{}" width="8" height="8" {}><title>{}</title></rect>',
            x - 4, y - 4, paint, title,
        )
    corners = {
        "triangle": ((x, y - 5), (x + 5, y + 4), (x - 5, y + 4)),
        "diamond": ((x, y - 5), (x + 5, y), (x, y + 5), (x - 5, y)),
    }[shape]
    return format_html('<polygon points="{}" {}><title>{}</title></polygon>',
                       " ".join(f"{round(px, 1)},{round(py, 1)}" for px, py in corners),
                       paint, title)


def _day_ticks(first: date, last: date) -> list[date]:
    days = (last - first).days
    step = next((s for s in DAY_STEPS if days / s <= 7), DAY_STEPS[-1])
    return [first + timedelta(days=n) for n in range(0, days + 1, step)]


def score_chart(assessments, remission: dict, sessions=(), baselines: dict | None = None,
                chart_id: str = "score-chart") -> SafeString:
    """``assessments``: the current (uncorrected) entries, any order; ``remission``: the
    clinic's cut-off per instrument; ``sessions``: the course's sessions (markers);
    ``baselines``: each instrument's baseline total (the 50 % line); ``chart_id``: unique on
    the page (a report shows one chart per course)."""
    if not assessments:
        return mark_safe("")
    baselines = baselines or {}
    sessions = sorted(sessions, key=lambda s: s.started_at)
    local = timezone.localtime
    times = [a.administered_at for a in assessments] + [s.started_at for s in sessions]
    first_day, last_day = local(min(times)).date(), local(max(times)).date()
    # The axis runs from midnight of the first day to midnight after the last, in local time.
    start = timezone.make_aware(datetime.combine(first_day, datetime.min.time()))
    end = timezone.make_aware(datetime.combine(last_day + timedelta(days=1), datetime.min.time()))
    span = (end - start).total_seconds()
    plot_width = WIDTH - LEFT - RIGHT

    def x(at) -> float:
        return round(LEFT + (at - start).total_seconds() / span * plot_width, 1)

    ticks = _day_ticks(first_day, last_day)
    tick_format = "%d %b %Y" if (last_day - first_day).days > 300 else "%d %b"

    parts, y0, described = [], TOP, []
    for code, definition in INSTRUMENTS.items():
        points = sorted(
            (a for a in assessments if a.instrument == code), key=lambda a: a.administered_at
        )
        if not points:
            continue
        top_score = definition.total_max

        def y(score, y0=y0, top_score=top_score) -> float:
            return round(y0 + PANEL - score / top_score * PANEL, 1)

        colour = COLOURS.get(code, "#333")
        grid = [format_html(
            '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}"/>'
            '<text x="{}" y="{}" font-size="10" text-anchor="end">{}</text>',
            LEFT, y(score), WIDTH - RIGHT, y(score), GRID, LEFT - 4, y(score) + 3, score,
        ) for score in range(0, top_score + 1, Y_STEP.get(code, 5))]
        grid += [format_html(
            '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}"/>'
            '<text x="{}" y="{}" font-size="10" text-anchor="middle">{}</text>',
            x(timezone.make_aware(datetime.combine(day, datetime.min.time()))), y0,
            x(timezone.make_aware(datetime.combine(day, datetime.min.time()))), y0 + PANEL, GRID,
            x(timezone.make_aware(datetime.combine(day, datetime.min.time()))), y0 + PANEL + 13,
            day.strftime(tick_format),
        ) for day in ticks]
        lines = []
        cutoff = remission[code]
        lines.append(format_html(
            '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-dasharray="5 3"/>'
            '<text x="{}" y="{}" font-size="10" fill="{}">remission ≤ {}</text>',
            LEFT, y(cutoff), WIDTH - RIGHT, y(cutoff), REMISSION,
            LEFT + 4, y(cutoff) + 11, REMISSION, cutoff,
        ))
        baseline = baselines.get(code)
        if baseline:
            half = baseline / 2
            lines.append(format_html(
                '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-dasharray="2 3"/>'
                '<text x="{}" y="{}" font-size="10" fill="{}">'
                'response: 50 % of baseline {} = {}</text>',
                LEFT, y(half), WIDTH - RIGHT, y(half), RESPONSE,
                LEFT + 4, y(half) - 3, RESPONSE, baseline, f"{half:g}",
            ))
        path = " ".join(f"{x(a.administered_at)},{y(a.total)}" for a in points)
        # A self-report (SPEC §9) is a hollow dot: the patient's own answer, between visits.
        # A self-report (SPEC §9) is a hollow dot: the patient's own answer, between visits.
        dots = format_html_join(
            "", '<circle cx="{}" cy="{}" r="{}" fill="{}" stroke="{}" stroke-width="2"{}>'
            '<title>{} {} on {}{}</title></circle>',
            ((x(a.administered_at), y(a.total), 4 if own else 3.5, "#fff" if own else colour,
              colour, mark_safe(' class="self-report"') if own else "", definition.name,
              a.total, local(a.administered_at).strftime("%Y-%m-%d"),
              " (self-report)" if own else "")
             for a in points for own in [getattr(a, "is_self_report", False)]),
        )
        own = sum(1 for a in points if getattr(a, "is_self_report", False))
        if own:
            parts.append(format_html(
                '<circle cx="{}" cy="{}" r="4" fill="#fff" stroke="#555" stroke-width="2"/>'
                '<text x="{}" y="{}" font-size="10" text-anchor="end">self-report</text>',
                WIDTH - RIGHT - 4, y0 - 10, WIDTH - RIGHT - 12, y0 - 6,
            ))
        parts.append(format_html(
            '<g class="panel"><text x="{}" y="{}" font-size="12" font-weight="bold" fill="{}">'
            '{} <tspan font-weight="normal" fill="#555">(0–{})</tspan></text>{}'
            '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}"/>'
            '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}"/>{}'
            '<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>{}</g>',
            LEFT, y0 - 6, colour, definition.name, top_score, mark_safe("".join(grid)),
            LEFT, y0, LEFT, y0 + PANEL, AXIS,
            LEFT, y0 + PANEL, WIDTH - RIGHT, y0 + PANEL, AXIS, mark_safe("".join(lines)),
            path, colour, dots,
        ))
        latest = points[-1]
        described.append(
            f"{definition.name}: {len(points)} score{'s' if len(points) != 1 else ''}, "
            f"latest {latest.total} on {local(latest.administered_at):%Y-%m-%d}"
            + (f", baseline {baseline}" if baseline else "")
            + f"; remission at or below {cutoff}."
            + (f" {own} of them self-reported by the patient." if own else "")
        )
        y0 += PANEL + GAP

    strip_top = y0 - GAP + 36
    height = strip_top + (STRIP if sessions else 0)
    if sessions:
        parts.append(_session_strip(sessions, x, strip_top, TOP))
        routes = []
        for s in sessions:
            if not routes or routes[-1] != s.route:
                routes.append(s.route)
        described.append(
            f"{len(sessions)} session{'s' if len(sessions) != 1 else ''}; route"
            f"{'s' if len(routes) > 1 else ''} "
            + " then ".join(Route(r).label for r in routes) + "."
        )
    svg = format_html(
        '<svg class="score-chart" role="img" viewBox="0 0 {} {}" '
        'xmlns="http://www.w3.org/2000/svg" aria-labelledby="{}-title {}-desc">'
        '<title id="{}-title">MADRS and PHQ-9 over time, with each session’s dose</title>'
        '<desc id="{}-desc">{}</desc>{}</svg>',
        WIDTH, height, chart_id, chart_id, chart_id, chart_id, " ".join(described),
        mark_safe("".join(parts)),
    )
    table = render_to_string("courses/_chart_values.html", {
        "chart_id": chart_id,
        "assessments": sorted(assessments, key=lambda a: a.administered_at),
        "sessions": [(s, dose_words(s)) for s in sessions],
        "baselines": {INSTRUMENTS[code].name: total for code, total in baselines.items()
                      if total is not None and code in INSTRUMENTS},
    })
    return format_html("{}{}", svg, mark_safe(table))


def _session_strip(sessions, x, top: float, chart_top: float) -> SafeString:
    """A marker per session (shape by route, hollow when stopped) with its dose written below
    it; a dashed line across the chart where the route changes. When markers crowd (under 11 px
    apart), a dose is written only where it changes."""
    y = top + 8
    out = [format_html(
        '<text x="{}" y="{}" font-size="11" font-weight="bold">Sessions and doses</text>'
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}"/>',
        LEFT, y - 8, LEFT, y, WIDTH - RIGHT, y, AXIS,
    )]
    xs = [x(s.started_at) for s in sessions]
    crowded = any(b - a < 11 for a, b in zip(xs, xs[1:], strict=False))
    previous = None
    for s, sx in zip(sessions, xs, strict=True):
        route = Route(s.route)
        label = dose_label(s)
        if previous is not None and previous.route != s.route:
            out.append(format_html(
                '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-dasharray="6 3"/>'
                '<text x="{}" y="{}" font-size="10" fill="{}">→ {}</text>',
                sx, chart_top, sx, y + 4, ROUTE, sx + 3, chart_top + 10, ROUTE, route.label,
            ))
        changed = previous is None or (previous.route, dose_label(previous)) != (s.route, label)
        title = (f"{local_day(s.started_at)}: {route.label} {dose_words(s)}"
                 + (" (stopped early)" if s.status == SessionStatus.STOPPED else ""))
        out.append(_marker(MARKERS[route], sx, y, ROUTE if changed and previous else "#333",
                           s.status != SessionStatus.STOPPED, title))
        if not crowded or changed:
            out.append(format_html(
                '<text x="{}" y="{}" font-size="9" text-anchor="end" '
                'transform="rotate(-90 {} {})">{}</text>',
                sx + 3, y + 10, sx + 3, y + 10, label,
            ))
        previous = s
    units = sorted({"mg/kg" if Route(s.route).weight_based else "mg" for s in sessions})
    out.extend(format_html('<text x="4" y="{}" font-size="9" fill="#555">{}</text>',
                           y + 16 + 11 * n, unit) for n, unit in enumerate(units))
    return mark_safe("".join(out))


def local_day(at) -> str:
    return timezone.localtime(at).strftime("%Y-%m-%d")
