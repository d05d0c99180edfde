"""One CSV row per course, for audits, payers and outcome reviews.

Rows are written a batch of courses at a time (keyset pagination on the id, a fixed number of
queries per batch), so memory stays flat whether the export holds ten courses or ten thousand.
Patient names are left out: the record number identifies the course to the clinic, and an
export that travels to a payer carries no more than it needs (HIPAA minimum necessary).
"""

import csv
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from decimal import Decimal
from typing import IO

from django.db.models import Count, Exists, Max, Min, OuterRef, QuerySet
from django.utils import timezone

from clinical.vocab import Instrument, Route, SessionStatus
from courses.models import Course, FlagDecision, TreatmentSession
from ketacare.spreadsheet import spreadsheet_safe

BATCH = 500
INSTRUMENT_CODES = [str(code) for code in Instrument]

HEADER = [
    "record_number", "course_id", "started_on", "ended_on", "end_reason", "phase",
    "first_session", "last_session", "sessions_completed", "routes",
    # Each highest dose in its routes' own unit, with the route it was given by: mg/kg for IV
    # and IM, mg for intranasal, sublingual and oral (an IV dose's mg depends on the weight).
    "highest_dose_mg_per_kg", "highest_dose_mg_per_kg_route",
    "highest_dose_mg", "highest_dose_mg_route",
    *(f"{code}_{part}" for code in INSTRUMENT_CODES
      for part in ("baseline", "current", "reduction_pct", "status")),
    "status", "provisional", "flags", "decisions", "evaluated_at",
]


def select_courses(*, started_from: date | None = None, started_to: date | None = None,
                   statuses: Iterable[str] = (), routes: Iterable[str] = ()) -> QuerySet:
    """Courses started in the period, with any of ``statuses`` (overall, as last evaluated)
    and a completed session by any of ``routes``; an empty filter admits everything."""
    courses = Course.objects.all()
    if started_from:
        courses = courses.filter(started_on__gte=started_from)
    if started_to:
        courses = courses.filter(started_on__lte=started_to)
    if statuses := list(statuses):
        courses = courses.filter(status__in=statuses)
    if routes := list(routes):
        courses = courses.filter(Exists(TreatmentSession.objects.current().filter(
            course=OuterRef("pk"), status=SessionStatus.COMPLETED, route__in=routes,
        )))
    return courses


def _batches(courses: QuerySet) -> Iterator[list[Course]]:
    last = None
    page = courses.select_related("patient").only(
        "id", "started_on", "ended_on", "end_reason", "phase", "evaluation", "evaluated_at",
        "patient__record_number",
    ).order_by("pk")
    while True:
        batch = list((page.filter(pk__gt=last) if last else page)[:BATCH])
        if not batch:
            return
        yield batch
        last = batch[-1].pk


def _session_facts(ids: list[int]) -> tuple[dict, dict]:
    completed = TreatmentSession.objects.current().filter(course_id__in=ids,
                                                          status=SessionStatus.COMPLETED)
    totals = {
        row["course_id"]: row
        for row in completed.values("course_id").annotate(
            n=Count("id"), first=Min("started_at"), last=Max("started_at"),
        )
    }
    routes = defaultdict(list)
    per_route = completed.values_list("course_id", "route").annotate(
        mg_per_kg=Max("dose_mg_per_kg"), mg=Max("dose_mg"),
    ).order_by("course_id", "route")
    for course_id, route, mg_per_kg, mg in per_route:
        routes[course_id].append(route)
        # The highest of each unit and the route it came from (a tie: the first by name).
        unit, dose = ("mg_per_kg", mg_per_kg) if Route(route).weight_based else ("mg", mg)
        best = totals[course_id].get(unit)
        if dose is not None and (best is None or Decimal(dose) > Decimal(best)):
            totals[course_id][unit], totals[course_id][f"{unit}_route"] = dose, route
    return totals, routes


def _decisions(ids: list[int]) -> dict[int, list[str]]:
    found = defaultdict(list)
    rows = FlagDecision.objects.filter(course_id__in=ids).order_by("course_id", "decided_at")
    for course_id, code, decision, action, at in rows.values_list(
        "course_id", "code", "decision", "action", "decided_at"
    ):
        what = f"{decision} ({action})" if action else decision
        found[course_id].append(f"{timezone.localdate(at)} {code} {what}")
    return found


def _day(moment) -> str:
    return timezone.localdate(moment).isoformat() if moment else ""


def _text(value) -> str:
    return "" if value is None else str(value)


def _number(value) -> str:
    """A dose as the same text on every database: 0.5, 0.75, 40 (no trailing zeros)."""
    return "" if value is None else format(Decimal(value).normalize(), "f")


def _row(course: Course, sessions: dict, routes: list[str], decisions: list[str]) -> list:
    evaluation = course.evaluation or {}
    instruments = evaluation.get("instruments", {})
    per_instrument = []
    for code in INSTRUMENT_CODES:
        result = instruments.get(code, {})
        per_instrument += [_text(result.get("baseline")), _text(result.get("current")),
                           _text(result.get("percent_reduction")), result.get("status", "")]
    return [
        spreadsheet_safe(course.patient.record_number), course.pk,
        course.started_on.isoformat(), _text(course.ended_on), course.end_reason, course.phase,
        _day(sessions.get("first")), _day(sessions.get("last")), sessions.get("n", 0),
        ";".join(routes),
        _number(sessions.get("mg_per_kg")), sessions.get("mg_per_kg_route", ""),
        _number(sessions.get("mg")), sessions.get("mg_route", ""),
        *per_instrument,
        evaluation.get("status", ""),
        {True: "yes", False: "no"}.get(evaluation.get("provisional"), ""),
        ";".join(flag["code"] for flag in evaluation.get("flags", [])),
        ";".join(decisions),
        timezone.localtime(course.evaluated_at).isoformat() if course.evaluated_at else "",
    ]


def summary_rows(courses: QuerySet) -> Iterator[tuple[Course, list]]:
    """(course, row) for each course, in id order, a batch at a time."""
    for batch in _batches(courses):
        ids = [course.pk for course in batch]
        totals, routes = _session_facts(ids)
        decisions = _decisions(ids)
        for course in batch:
            yield course, _row(course, totals.get(course.pk, {}), routes[course.pk],
                               decisions[course.pk])


def write_csv(courses: QuerySet, fileobj: IO[str],
              progress: Callable[[int], None] | None = None) -> int:
    """Write the summaries of ``courses`` to ``fileobj``; returns the number of rows.
    ``progress(rows_so_far)`` is called after each batch."""
    writer = csv.writer(fileobj)
    writer.writerow(HEADER)
    count = 0
    for count, (_course, row) in enumerate(summary_rows(courses), start=1):
        writer.writerow(row)
        if progress and count % BATCH == 0:
            progress(count)
    if progress:
        progress(count)
    return count
