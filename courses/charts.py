"""Server-side SVG of MADRS and PHQ-9 over time: no JavaScript, prints well, no CDN.

Each instrument gets its own panel on its own scale (0–60, 0–27) over a shared time axis, with
gridlines and labelled ticks on both axes, its remission cut-off and half its baseline (the
50 % response line) as dashed lines. Below the panels a strip marks each session with its dose;
a change of route is a dashed line across the whole chart. The same values are given as text
for screen readers: the SVG's title and description, and a visually hidden table after it.
"""

from datetime import date, datetime, timedelta

from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from clinical.instruments import INSTRUMENTS
from clinical.vocab import Route, SessionStatus

WIDTH, PANEL, GAP, LEFT, RIGHT, TOP = 720, 140, 44, 44, 16, 20
# More points than this in a panel, or sessions on the strip, and a dot or marker each would
# overlap its neighbours (under about 6 px apart on average): see score_chart, _session_strip.
CROWDED_POINTS = (WIDTH - LEFT - RIGHT) // 6
CROWDED_MARKS = (WIDTH - LEFT - RIGHT) // 8
STRIP = 58  # the session strip: markers, then their doses written downwards
COLOURS = {"madrs": "#0d6efd", "phq9": "#d63384"}
GRID, AXIS, REMISSION, RESPONSE, ROUTE = "#e5e5e5", "#999", "#198754", "#b35c00", "#6f42c1"
Y_STEP = {"madrs": 10, "phq9": 5}
DAY_STEPS = (1, 2, 7, 14, 28, 56, 91, 182, 364)
MARKERS = {  # a shape per route, so a route change shows even in black and white
    Route.IV: "circle", Route.IM: "square", Route.INTRANASAL: "triangle",
    Route.SUBLINGUAL: "diamond", Route.ORAL: "diamond",
}


WEIGHT_BASED = {route.value: route.weight_based for route in Route}  # a lookup per session


def dose_label(session) -> str:
    """A session's dose in its route's own unit, short: "0.5" (mg/kg) or "56" (mg)."""
    dose = session.dose_mg_per_kg if WEIGHT_BASED[session.route] else session.dose_mg
    return f"{dose.normalize():f}" if dose is not None else "?"


def dose_words(session) -> str:
    unit = "mg/kg" if WEIGHT_BASED[session.route] else "mg"
    return f"{dose_label(session)} {unit}"


def _minute(local: datetime) -> str:
    """"2026-02-01 14:05": as ``f"{local:%Y-%m-%d %H:%M}"``, at a third of strftime's cost
    (a 200-session course writes 600 of them)."""
    return local.isoformat(" ", "minutes")[:16]


def _marker(shape: str, x: float, y: float, colour: str, filled: bool, title: str) -> str:
    """A session's marker; ``title`` is already escaped."""
    paint = f'fill="{colour if filled else "#fff"}" stroke="{colour}" stroke-width="1.5"'
    if shape == "circle":
        return f'<circle cx="{x}" cy="{y}" r="4" {paint}><title>{title}</title></circle>'
    if shape == "square":
        return (f'<rect x="{x - 4}" y="{y - 4}" width="8" height="8" {paint}>'
                f'<title>{title}</title></rect>')
    corners = {
        "triangle": ((x, y - 5), (x + 5, y + 4), (x - 5, y + 4)),
        "diamond": ((x, y - 5), (x + 5, y), (x, y + 5), (x - 5, y)),
    }[shape]
    points = " ".join(f"{round(px, 1)},{round(py, 1)}" for px, py in corners)
    return f'<polygon points="{points}" {paint}><title>{title}</title></polygon>'


def _anchor(x: float) -> str:
    """A tick label centred on its tick, but kept inside the chart at either end."""
    if x > WIDTH - RIGHT - 24:
        return "end"
    return "start" if x < LEFT + 24 else "middle"


def _day_ticks(first: date, last: date) -> list[date]:
    days = (last - first).days
    step = next((s for s in DAY_STEPS if days / s <= 7), DAY_STEPS[-1])
    return [first + timedelta(days=n) for n in range(0, days + 1, step)]


# Labels as the chart writes them, escaped once (the vocabulary's own words: nothing typed).
ROUTE_LABELS = {route.value: str(escape(route.label)) for route in Route}
INSTRUMENT_NAMES = {code.value: str(escape(definition.name))
                    for code, definition in INSTRUMENTS.items()}


def score_chart(assessments, remission: dict, sessions=(), baselines: dict | None = None,
                chart_id: str = "score-chart") -> SafeString:
    """``assessments``: the current (uncorrected) entries, any order; ``remission``: the
    clinic's cut-off per instrument; ``sessions``: the course's sessions (markers);
    ``baselines``: each instrument's baseline total (the 50 % line); ``chart_id``: unique on
    the page (a report shows one chart per course).

    Assessments need ``administered_at``, ``instrument``, ``total`` (and ``is_self_report``),
    sessions ``started_at``, ``route``, ``dose_mg_per_kg``, ``dose_mg`` and ``status``: model
    instances or the lean points of :mod:`courses.rows`. One pass over each, and the markup
    is written as plain strings of numbers, dates and the vocabulary's labels: a course of
    200 sessions draws in a few milliseconds."""
    if not assessments:
        return mark_safe("")
    baselines = baselines or {}
    chart_id = str(escape(chart_id))
    zone = timezone.get_current_timezone()  # once: each lookup goes through a context var
    scores = sorted(assessments, key=_administered_at)
    marks = [_Mark(s, zone) for s in sorted(sessions, key=_started)]
    first_day = min([scores[0].administered_at.astimezone(zone),
                     *[mark.local for mark in marks[:1]]]).date()
    last_day = max([scores[-1].administered_at.astimezone(zone),
                    *[mark.local for mark in marks[-1:]]]).date()
    # The axis runs from midnight of the first day to midnight after the last, in local time.
    start = timezone.make_aware(datetime.combine(first_day, datetime.min.time()))
    end = timezone.make_aware(datetime.combine(last_day + timedelta(days=1), datetime.min.time()))
    scale = (WIDTH - LEFT - RIGHT) / (end - start).total_seconds()
    start_seconds = start.timestamp()

    def x(at) -> float:
        # A time's place: the seconds since the axis starts (from POSIX seconds, exact for
        # whole seconds and cheaper than a difference of datetimes, hundreds of times a chart).
        return round(LEFT + (at.timestamp() - start_seconds) * scale, 1)

    # The day ticks by the clock on the wall (a difference of times in one zone), as the axis.
    ticks = [(round(LEFT + (midnight - start).total_seconds() * scale, 1), day)
             for day in _day_ticks(first_day, last_day)
             for midnight in [timezone.make_aware(datetime.combine(day, datetime.min.time()))]]
    tick_format = "%d %b %Y" if (last_day - first_day).days > 300 else "%d %b"

    by_instrument: dict[str, list] = {}
    # Each instant's place and local minute once: a visit's MADRS and PHQ-9 usually share it.
    placed: dict[datetime, tuple[float, str]] = {}
    for a in scores:
        at = a.administered_at
        place = placed.get(at)
        if place is None:
            place = placed[at] = (x(at), _minute(at.astimezone(zone)))
        points = by_instrument.get(a.instrument)
        if points is None:
            points = by_instrument[a.instrument] = []
        points.append((place[0], a, place[1]))
    for mark in marks:
        mark.x = x(mark.at)

    parts, y0, described = [], TOP, []
    for code, definition in INSTRUMENTS.items():
        points = by_instrument.get(code)
        if not points:
            continue
        top_score = definition.total_max
        name = INSTRUMENT_NAMES[code]

        def y(score, y0=y0, top_score=top_score) -> float:
            return round(y0 + PANEL - score / top_score * PANEL, 1)

        heights = [y(score) for score in range(top_score + 1)]  # a total's, looked up

        colour = COLOURS.get(code, "#333")
        grid = [
            f'<line x1="{LEFT}" y1="{y(score)}" x2="{WIDTH - RIGHT}" y2="{y(score)}" '
            f'stroke="{GRID}"/><text x="{LEFT - 4}" y="{y(score) + 3}" font-size="10" '
            f'text-anchor="end">{score}</text>'
            for score in range(0, top_score + 1, Y_STEP.get(code, 5))
        ]
        grid += [
            f'<line x1="{tx}" y1="{y0}" x2="{tx}" y2="{y0 + PANEL}" stroke="{GRID}"/>'
            f'<text x="{tx}" y="{y0 + PANEL + 13}" font-size="10" text-anchor="{_anchor(tx)}">'
            f'{day.strftime(tick_format)}</text>'
            for tx, day in ticks
        ]
        cutoff = remission[code]
        lines = [
            f'<line x1="{LEFT}" y1="{y(cutoff)}" x2="{WIDTH - RIGHT}" y2="{y(cutoff)}" '
            f'stroke="{REMISSION}" stroke-dasharray="5 3"/><text x="{LEFT + 4}" '
            f'y="{y(cutoff) + 11}" font-size="10" fill="{REMISSION}">remission ≤ {cutoff}</text>'
        ]
        baseline = baselines.get(code)
        if baseline:
            half = baseline / 2
            lines.append(
                f'<line x1="{LEFT}" y1="{y(half)}" x2="{WIDTH - RIGHT}" y2="{y(half)}" '
                f'stroke="{RESPONSE}" stroke-dasharray="2 3"/><text x="{LEFT + 4}" '
                f'y="{y(half) - 3}" font-size="10" fill="{RESPONSE}">'
                f'response: 50 % of baseline {baseline} = {half:g}</text>'
            )
        path, dots, own = [], [], 0
        # Crowded (a long course): dots closer than a few pixels merge into a band that hides
        # the line and whose tooltips no pointer can reach. The line then carries the scores,
        # with a dot for the first and the latest; self-reports stay marked. Every value is
        # still in the table for screen readers and on the course's scores page.
        crowded = len(points) > CROWDED_POINTS
        last = len(points) - 1
        for n, (px, a, when) in enumerate(points):
            py = heights[a.total] if 0 <= a.total <= top_score else y(a.total)
            path.append(f"{px},{py}")
            self_report = getattr(a, "is_self_report", False)
            if crowded and not self_report and 0 < n < last:
                continue
            # A self-report (SPEC §9) is a hollow dot: the patient's own answer, between visits.
            if self_report:
                own += 1
                dots.append(
                    f'<circle cx="{px}" cy="{py}" r="4" fill="#fff" stroke="{colour}" '
                    f'stroke-width="2" class="self-report"><title>{name} {a.total} on '
                    f'{when[:10]} (self-report)</title></circle>')
            else:
                dots.append(
                    f'<circle cx="{px}" cy="{py}" r="3.5" fill="{colour}" stroke="{colour}" '
                    f'stroke-width="2"><title>{name} {a.total} on {when[:10]}</title>'
                    f'</circle>')
        if own:
            parts.append(
                f'<circle cx="{WIDTH - RIGHT - 4}" cy="{y0 - 10}" r="4" fill="#fff" '
                f'stroke="#555" stroke-width="2"/><text x="{WIDTH - RIGHT - 12}" y="{y0 - 6}" '
                f'font-size="10" text-anchor="end">self-report</text>')
        parts.append(
            f'<g class="panel"><text x="{LEFT}" y="{y0 - 6}" font-size="12" font-weight="bold" '
            f'fill="{colour}">{name} <tspan font-weight="normal" fill="#555">(0–{top_score})'
            f'</tspan></text>{"".join(grid)}'
            f'<line x1="{LEFT}" y1="{y0}" x2="{LEFT}" y2="{y0 + PANEL}" stroke="{AXIS}"/>'
            f'<line x1="{LEFT}" y1="{y0 + PANEL}" x2="{WIDTH - RIGHT}" y2="{y0 + PANEL}" '
            f'stroke="{AXIS}"/>{"".join(lines)}'
            f'<polyline points="{" ".join(path)}" fill="none" stroke="{colour}" '
            f'stroke-width="2"/>{"".join(dots)}</g>'
        )
        _, latest, latest_when = points[-1]
        described.append(
            f"{name}: {len(points)} score{'s' if len(points) != 1 else ''}, "
            f"latest {latest.total} on {latest_when[:10]}"
            + (f", baseline {baseline}" if baseline else "")
            + f"; remission at or below {cutoff}."
            + (f" {own} of them self-reported by the patient." if own else "")
        )
        y0 += PANEL + GAP

    strip_top = y0 - GAP + 36
    height = strip_top + (STRIP if marks else 0)
    if marks:
        parts.append(_session_strip(marks, strip_top, TOP))
        routes = []
        for mark in marks:
            if not routes or routes[-1] != mark.route:
                routes.append(mark.route)
        described.append(
            f"{len(marks)} session{'s' if len(marks) != 1 else ''}; route"
            f"{'s' if len(routes) > 1 else ''} "
            + " then ".join(ROUTE_LABELS[r] for r in routes) + "."
        )
    svg = (
        f'<svg class="score-chart" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'xmlns="http://www.w3.org/2000/svg" aria-labelledby="{chart_id}-title {chart_id}-desc">'
        f'<title id="{chart_id}-title">MADRS and PHQ-9 over time, with each session’s dose'
        f'</title><desc id="{chart_id}-desc">{" ".join(described)}</desc>{"".join(parts)}</svg>'
    )
    return mark_safe(svg + _values_table(chart_id, by_instrument, marks, baselines))


def _administered_at(assessment):
    return assessment.administered_at


def _administered(point):
    return point[1].administered_at


def _started(session):
    return session.started_at


class _Mark:
    """A session on the chart: what its marker, its dose label and its line in the values
    table read, each worked out once."""

    __slots__ = ("at", "local", "when", "route", "label", "unit", "stopped", "x")

    def __init__(self, session, zone):
        self.at = session.started_at
        self.local = self.at.astimezone(zone)
        self.when = _minute(self.local)
        self.route = session.route
        self.label = dose_label(session)
        self.unit = "mg/kg" if WEIGHT_BASED[session.route] else "mg"
        self.stopped = session.status == SessionStatus.STOPPED


def _values_table(chart_id: str, by_instrument: dict, marks: list, baselines: dict) -> str:
    """The chart's values as a table for screen readers, hidden from sight."""
    caption = "".join(f"; {INSTRUMENT_NAMES[code]} baseline {total}"
                      for code, total in baselines.items()
                      if total is not None and code in INSTRUMENT_NAMES)
    # Scores in time order (each instrument's are; the merge keeps ties in instrument order).
    scores = sorted((point for points in by_instrument.values() for point in points),
                    key=_administered)
    rows = [f"<tr><td>{when}</td><td>{INSTRUMENT_NAMES[a.instrument]}</td><td>{a.total}</td>"
            "</tr>" for _, a, when in scores]
    rows.append("\n  ")
    rows += [f"<tr><td>{mark.when}</td><td>Session, {ROUTE_LABELS[mark.route]}"
             f"{', stopped early' if mark.stopped else ''}</td>"
             f"<td>{mark.label} {mark.unit}</td></tr>" for mark in marks]
    # Hidden in a div: a table keeps the height of its rows whatever its own height says, and
    # a long course's table stretched the page thousands of pixels below its end.
    return (f'<div class="visually-hidden"><table id="{chart_id}-values">\n'
            f"  <caption>The chart’s values{caption}</caption>\n"
            '  <thead><tr><th scope="col">Date</th><th scope="col">What</th>'
            '<th scope="col">Value</th></tr></thead>\n'
            f'  <tbody>{"".join(rows)}</tbody>\n</table></div>')


def _session_strip(marks: list, top: float, chart_top: float) -> str:
    """A marker per session (shape by route, hollow when stopped) with its dose written below
    it; a dashed line across the chart where the route changes. When markers crowd (under 11 px
    apart), a dose is written only where it changes; when there are more than CROWDED_MARKS, a
    session is a tick, not a marker (the route is named where it changes)."""
    y = top + 8
    out = [
        f'<text x="{LEFT}" y="{y - 8}" font-size="11" font-weight="bold">Sessions and doses'
        f'</text><line x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}" stroke="{AXIS}"/>'
    ]
    crowded = any(b.x - a.x < 11 for a, b in zip(marks, marks[1:], strict=False))
    dense = len(marks) > CROWDED_MARKS
    previous = None
    for mark in marks:
        sx, route_label = mark.x, ROUTE_LABELS[mark.route]
        if previous is not None and previous.route != mark.route:
            out.append(
                f'<line x1="{sx}" y1="{chart_top}" x2="{sx}" y2="{y + 4}" stroke="{ROUTE}" '
                f'stroke-dasharray="6 3"/><text x="{sx + 3}" y="{chart_top + 10}" '
                f'font-size="10" fill="{ROUTE}">→ {route_label}</text>')
        changed = previous is None or (previous.route, previous.label) != (mark.route,
                                                                           mark.label)
        colour = ROUTE if changed and previous else "#333"
        if dense:  # a tick each (grey when stopped early): markers would merge into a bar
            out.append(f'<line x1="{sx}" y1="{y - 5}" x2="{sx}" y2="{y + 5}" '
                       f'stroke="{"#999" if mark.stopped else colour}"/>')
        else:
            title = (f"{mark.when[:10]}: {route_label} {mark.label} {mark.unit}"
                     + (" (stopped early)" if mark.stopped else ""))
            out.append(_marker(MARKERS[mark.route], sx, y, colour, not mark.stopped, title))
        if not crowded or changed:
            out.append(f'<text x="{sx + 3}" y="{y + 10}" font-size="9" text-anchor="end" '
                       f'transform="rotate(-90 {sx + 3} {y + 10})">{mark.label}</text>')
        previous = mark
    units = sorted({mark.unit for mark in marks})
    out.extend(f'<text x="4" y="{y + 16 + 11 * n}" font-size="9" fill="#555">{unit}</text>'
               for n, unit in enumerate(units))
    return "".join(out)
