"""A course's sessions and scores as its pages show them, read without building model instances.

The course page shows the latest sessions and scores beside a chart of the whole course; the
all-sessions and all-scores pages page through the rest (STYLE 16). Rows are what these pages
spend their time on, so each is read as plain values in one query and formatted here once, in
Python: a ``|date`` filter or a ``{% url %}`` per row costs more than the rest of the page. The
chart reads the whole course as lean points (:class:`SessionPoint`, :class:`ScorePoint`).
"""

from collections.abc import Callable, Iterable
from datetime import datetime

from django.core.paginator import Page, Paginator
from django.db.models import Count, Exists, F, OuterRef, QuerySet, Subquery, Window
from django.db.models.functions import RowNumber
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from accounts.models import User
from assessments.models import SELF_REPORT_SIGNER, Assessment, Source
from clinical.instruments import INSTRUMENTS
from clinical.vocab import Instrument, Intensity, Route, SessionStatus
from courses.models import SessionAmendment, TreatmentSession, dose_display
from courses.templatetags.clinical import vitals
from ketacare.paths import path_maker
from ketacare.prepared import Prepared
from ketacare.rows import escape

RECENT_SESSIONS = 10  # on the course page; the rest on the all-sessions page
RECENT_SCORES = 10
PAGE_SIZE = 25  # the all-sessions and all-scores pages

ROUTES = {route.value: route.label for route in Route}
INTENSITIES = {intensity.value: intensity.label for intensity in Intensity}
STATUSES = {status.value: status.label for status in SessionStatus}
INSTRUMENT_NAMES = {code.value: code.label for code in Instrument}


def local_minute(at: datetime, zone=None) -> str:
    """"2026-02-01 14:05" in the clinic's time zone (as ``|date:"Y-m-d H:i"``); ``zone``: the
    current time zone, looked up once for many rows."""
    return f"{at.astimezone(zone or timezone.get_current_timezone()):%Y-%m-%d %H:%M}"


def signatures() -> Callable[[tuple], str]:
    """A reader of signatures from the joined user's (first, last, username, credentials),
    signed as ``User.signature`` signs, each account built once."""
    seen: dict[tuple, str] = {}

    def signature(names: tuple) -> str:
        if names not in seen:
            first, last, username, credentials = names
            seen[names] = User(first_name=first, last_name=last, username=username,
                               credentials=credentials).signature
        return seen[names]

    return signature


# -- sessions -----------------------------------------------------------------------------------

ROW_FIELDS = (
    "pk", "started_at", "route", "dose_mg_per_kg", "dose_mg", "status", "void", "course",
    "infusion_minutes", "bp_pre_systolic", "bp_pre_diastolic", "bp_peak_systolic",
    "bp_peak_diastolic", "bp_discharge_systolic", "bp_discharge_diastolic", "hr_pre", "hr_peak",
    "hr_discharge", "spo2_min", "dissociation", "benzodiazepine_24h", "stop_reason",
    "clinician__first_name", "clinician__last_name", "clinician__username",
    "clinician__credentials", "amended",
)
SIGNER = slice(ROW_FIELDS.index("clinician__first_name"), ROW_FIELDS.index("amended"))


class SessionPoint:
    """A session as the chart and the plan read it (``void``: its void's id, or None), with
    the columns its table row shows (``values``, in ``ROW_FIELDS`` order) and its adverse
    events, made into a :class:`SessionRow` only when it is shown."""

    __slots__ = ("pk", "started_at", "route", "dose_mg_per_kg", "dose_mg", "status", "void",
                 "course_id", "values", "events")

    def __init__(self, values: tuple):
        (self.pk, self.started_at, self.route, self.dose_mg_per_kg, self.dose_mg, self.status,
         self.void, self.course_id) = values[:8]
        self.values, self.events = values, []


def session_points(sessions: QuerySet) -> list[SessionPoint]:
    """Every session of ``sessions``, voided ones too, oldest first, with its clinician,
    adverse events and whether it was amended: one query, a line per adverse event (one with
    None for a session without any)."""
    return _session_points(_session_lines(sessions))


def _session_lines(sessions: QuerySet, *more: str) -> QuerySet:
    """The lines ``_session_points`` reads (then ``more``): a session's columns and one of its
    adverse events each, oldest first."""
    amended = SessionAmendment.objects.filter(session=OuterRef("pk"))
    return sessions.annotate(amended=Exists(amended)).values_list(
        *ROW_FIELDS, "adverse_events__description", "adverse_events__severity", *more
    ).order_by("started_at", "id", "adverse_events__id")


def _session_points(lines: Iterable[tuple]) -> list[SessionPoint]:
    points: list[SessionPoint] = []
    for values in lines:
        if not points or points[-1].pk != values[0]:
            points.append(SessionPoint(values[:len(ROW_FIELDS)]))
        event = values[len(ROW_FIELDS):len(ROW_FIELDS) + 2]
        if event[0] is not None:
            points[-1].events.append(event)
    return points


class SessionRow:
    """One line of a sessions table, every cell already text (the template escapes it)."""

    def __init__(self, point: SessionPoint, number: int, url: str, signature: str):
        values = _Readings(dict(zip(ROW_FIELDS, point.values, strict=True)))
        self.number, self.url, self.signature = number, url, signature
        self.when = local_minute(point.started_at)
        self.day, self.time = self.when[:10], self.when[11:]
        self.route = ROUTES[point.route]
        # Where a narrow table wraps a dose: between "0.5 mg/kg" and "(40.0 mg)", not inside.
        self.dose = dose_display(point.dose_mg_per_kg, point.dose_mg).replace(" mg", "\u00a0mg")
        self.minutes = values.infusion_minutes or ""
        # A narrow table wraps vitals after a "·", never inside a reading or before its "·".
        self.bp = vitals(values, "bp").replace(" · ", "\u00a0· ")
        self.hr = vitals(values, "hr").replace(" · ", "\u00a0· ")
        self.spo2 = f"{values.spo2_min} %" if values.spo2_min else ""
        self.dissociation = INTENSITIES[values.dissociation]
        self.events = "; ".join(f"{text} ({severity})" for text, severity in point.events) or "—"
        self.benzodiazepine = "yes" if values.benzodiazepine_24h else "no"
        self.stopped = point.status == SessionStatus.STOPPED
        self.status = STATUSES[point.status]
        self.stop_reason = values.stop_reason
        self.voided = point.void is not None
        self.amended = values.amended

    @property
    def html(self) -> SafeString:
        """The row's ``<tr>`` in ``courses/_sessions.html``: written here, each cell escaped,
        because the template's twenty lookups a row cost more than the rest of the page."""
        if self.voided:
            line = ' class="text-decoration-line-through text-muted session-voided"'
            badge = ' <span class="badge text-bg-secondary">voided</span>'
        else:
            line = ' class="table-secondary"' if self.stopped else ""
            badge = (' <span class="badge text-bg-light" title="Amended after it was saved: see '
                     'the session\'s history">amended</span>') if self.amended else ""
        stop_reason = f": {escape(self.stop_reason)}" if self.stop_reason else ""
        return mark_safe(
            f"\n    <tr{line}>\n"
            f'      <td class="text-nowrap"><a href="{escape(self.url)}" title="Session '
            f'{self.number}, given by {escape(self.signature)}">{self.number}</a>{badge}</td>\n'
            f'      <td><span class="text-nowrap">{escape(self.day)}</span> {escape(self.time)}'
            f"</td><td>{escape(self.route)}</td><td>{escape(self.dose)}</td>\n"
            f'      <td class="d-none d-lg-table-cell">{escape(self.minutes)}</td>\n'
            f"      <td>{escape(self.bp)}</td>\n"
            f"      <td>{escape(self.hr)}</td>\n"
            f'      <td class="d-none d-lg-table-cell">{escape(self.spo2)}</td>\n'
            f"      <td>{escape(self.dissociation)}</td>\n"
            f'      <td class="sessions-events">{escape(self.events)}</td>\n'
            f'      <td class="d-none d-lg-table-cell">{escape(self.benzodiazepine)}</td>\n'
            f"      <td>{escape(self.status)}{stop_reason}</td>\n"
            f'      <td class="text-nowrap d-none d-xxl-table-cell">{escape(self.signature)}</td>\n'
            "    </tr>\n  ")


    @property
    def report_html(self) -> SafeString:
        """The row's ``<tr>`` in the report's sessions table (``reports/_report.html``), on
        the page and in the PDF: written here, as :attr:`html`."""
        return mark_safe(
            f'<tr><td class="text-nowrap">{escape(self.day)}</td><td>{escape(self.route)}</td>'
            f"<td>{escape(self.dose)}</td><td>{escape(self.bp)}</td><td>{escape(self.hr)}</td>"
            f"<td>{escape(self.spo2)}</td><td>{escape(self.dissociation)}</td>\n"
            f"      <td>{escape(self.events)}</td><td>{escape(self.status)}</td></tr>\n    ")


class _Readings:
    """A row's columns as attributes, as ``clinical.vitals`` reads a session."""

    def __init__(self, values: dict):
        self.__dict__.update(values)


def session_rows(points: Iterable[SessionPoint], numbers: Iterable[int]) -> list[SessionRow]:
    """The rows of ``points``, in that order; ``numbers``: each one's place in its course
    (1 is the first session)."""
    url, signature = path_maker("courses:session-detail"), signatures()
    return [SessionRow(point, number, url(point.pk), signature(point.values[SIGNER]))
            for point, number in zip(points, numbers, strict=False)]


# -- scores -------------------------------------------------------------------------------------

class ScorePoint:
    """An assessment as the chart and the scores table read it."""

    __slots__ = ("pk", "course_id", "administered_at", "instrument", "total", "is_self_report",
                 "replaces_id", "scored_by")

    def __init__(self, pk, course_id, administered_at, instrument, total, source, replaces_id,
                 *scored_by):
        self.pk, self.course_id, self.administered_at, self.instrument, self.total = (
            pk, course_id, administered_at, instrument, total)
        self.is_self_report = source == Source.SELF_REPORT
        self.replaces_id, self.scored_by = replaces_id, scored_by


SCORE_FIELDS = ("pk", "course", "administered_at", "instrument", "total", "source", "replaces_id",
                "scored_by__first_name", "scored_by__last_name", "scored_by__username",
                "scored_by__credentials")


def score_points(assessments: QuerySet) -> list[ScorePoint]:
    """Every assessment of ``assessments``, oldest first, with who signed it: one query."""
    return [ScorePoint(*values) for values in
            assessments.order_by("administered_at", "id").values_list(*SCORE_FIELDS)]


class ScoreRow:
    def __init__(self, point: ScorePoint, url: str, signature: str, corrected: bool):
        self.url, self.corrected = url, corrected
        self.when = local_minute(point.administered_at)
        self.instrument = INSTRUMENT_NAMES[point.instrument]
        self.total = point.total
        self.band = INSTRUMENTS[Instrument(point.instrument)].band(point.total)
        self.is_self_report = point.is_self_report
        self.signer = f"{SELF_REPORT_SIGNER} (self-report)" if point.is_self_report else signature
        self.correction = point.replaces_id is not None

    @property
    def html(self) -> SafeString:
        """The row's ``<tr>`` in ``courses/_scores.html`` (as :attr:`SessionRow.html`)."""
        line = ' class="text-decoration-line-through text-muted"' if self.corrected else ""
        badges = "".join(badge for shown, badge in (
            (self.is_self_report, ' <span class="badge text-bg-info">self-report</span>'),
            (self.correction, ' <span class="badge text-bg-secondary">correction</span>'),
            (self.corrected, ' <span class="badge text-bg-light">corrected</span>'),
        ) if shown)
        return mark_safe(
            f"\n    <tr{line}>\n"
            f'      <td class="text-nowrap"><a href="{escape(self.url)}">{escape(self.when)}</a>'
            "</td>\n"
            f"      <td>{escape(self.instrument)}</td><td>{escape(self.total)}</td>"
            f"<td>{escape(self.band)}</td>\n"
            f'      <td class="text-nowrap">{escape(self.signer)}{badges}</td>\n'
            "    </tr>\n  ")


def score_rows(points: Iterable[ScorePoint], replaced: set[int]) -> list[ScoreRow]:
    url, signature = path_maker("assessments:detail"), signatures()
    return [ScoreRow(point, url(point.pk), "" if point.is_self_report else signature(
        point.scored_by), point.pk in replaced) for point in points]


# -- the all-sessions and all-scores pages --------------------------------------------------------
# Each page is one statement in the common case: the page's rows with how many there are in all,
# compiled once per process (ketacare.prepared). The page is chosen by each row's place in the
# course (ROW_NUMBER), a value of the statement, not by a LIMIT/OFFSET that would change its SQL.
# The Paginator is built on the count alone: a page number out of range or not a number gets the
# page it always got (the nearest), read again.

SESSIONS_NEWEST_FIRST = (F("started_at").desc(), F("id").desc())
SCORES_NEWEST_FIRST = (F("administered_at").desc(), F("id").desc())


def _guess(number: str) -> int:
    """The page ``number`` asks for if it is a plain page number, else 1 (checked after)."""
    try:
        wanted = int(number)
    except ValueError:
        return 1
    return wanted if 1 <= wanted <= 10_000 else 1


def _read_page(query: Prepared, course, number: str, count_all: Callable[[], int]):
    """The Paginator page of ``number`` of ``query``'s rows of ``course`` (each row ending
    with how many there are in all), its rows, and that count. The page asked for is read
    first; when the paginator chooses another (out of range, not a number), that one is read
    again; an empty page is counted with ``count_all()``."""
    def read(page_number: int) -> list:
        return query.rows(course=course.pk, **_page_bounds(page_number))

    guess = _guess(number)
    rows = read(guess)
    count = rows[0][-1] if rows else count_all()
    page = Paginator(range(count), PAGE_SIZE).get_page(number)
    if page.number != guess:
        rows = read(page.number)
    return page, rows, count


def _page_bounds(number: int) -> dict:
    return {"first": (number - 1) * PAGE_SIZE + 1, "last": number * PAGE_SIZE}


def _in_place(queryset: QuerySet, order: tuple, first: int, last: int) -> QuerySet:
    """The rows of ``queryset`` from place ``first`` to ``last`` (1 is the first) in ``order``."""
    return queryset.annotate(place=Window(RowNumber(), order_by=list(order))).filter(
        place__gte=first, place__lte=last)


def _sessions_build(course: int, first: int, last: int) -> QuerySet:
    sessions = TreatmentSession.objects.filter(course_id=course)
    count = sessions.order_by().values("course_id").annotate(n=Count("*")).values("n")
    page = _in_place(sessions, SESSIONS_NEWEST_FIRST, first, last).values("pk")
    return _session_lines(
        TreatmentSession.objects.filter(pk__in=page).annotate(count=Subquery(count)), "count")


SESSION_PAGE = Prepared(_sessions_build, course=int, first=int, last=int)


def session_page(course, number: str) -> tuple[Page, list[SessionRow]]:
    """Page ``number`` of the course's sessions, newest first, voided ones too: one query (one
    or two more for a page that is not there, and how many there are when it is empty)."""
    page, lines, count = _read_page(SESSION_PAGE, course, number, course.sessions.count)
    points = _session_points(lines)[::-1]
    first = count - page.start_index() + 1
    return page, session_rows(points, range(first, 0, -1))


def _scores_build(course: int, first: int, last: int) -> QuerySet:
    # The page's ids first, then only their rows joined and checked for a correction.
    scores = Assessment.objects.filter(course_id=course)
    count = scores.order_by().values("course_id").annotate(n=Count("*")).values("n")
    page = _in_place(scores, SCORES_NEWEST_FIRST, first, last).values("pk")
    corrected = Assessment.objects.filter(replaces=OuterRef("pk"))
    return (Assessment.objects.filter(pk__in=page)
            .annotate(corrected=Exists(corrected), count=Subquery(count))
            .order_by(*SCORES_NEWEST_FIRST)
            .values_list(*SCORE_FIELDS, "corrected", "count"))


SCORE_PAGE = Prepared(_scores_build, course=int, first=int, last=int)


def score_page(course, number: str) -> tuple[Page, list[ScoreRow]]:
    """Page ``number`` of the course's scores, newest first, corrected ones too: one query (one
    or two more for a page that is not there, and how many there are when it is empty)."""
    page, rows, _ = _read_page(SCORE_PAGE, course, number, course.assessments.count)
    points = [(ScorePoint(*values[:-2]), values[-2]) for values in rows]
    return page, score_rows([point for point, _ in points],
                            {point.pk for point, corrected in points if corrected})
