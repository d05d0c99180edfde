"""The course page's chart (ticks, gridlines, the 50 % and remission lines, session markers with
their doses, route changes, values as text) and its full-width sessions table with vitals."""

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from clinical.vocab import Route
from courses.charts import score_chart
from courses.evaluation import refresh_evaluation
from courses.models import Decision, FlagDecision
from tests.factories import AssessmentFactory, CourseFactory, SessionFactory, UserFactory, at

pytestmark = pytest.mark.django_db


def _course_with_a_route_switch():
    course = CourseFactory(started_on=date(2026, 2, 1))
    AssessmentFactory(course=course, administered_at=at(date(2026, 2, 1), 8),
                      items=[4, 4, 4, 4, 3, 4, 3, 4, 3, 3])  # 36
    for n in range(6):
        SessionFactory(course=course, started_at=at(date(2026, 2, 2) + timedelta(days=2 * n)),
                       bp_pre_systolic=128, bp_pre_diastolic=82, bp_peak_systolic=150,
                       bp_peak_diastolic=95, hr_pre=72, hr_peak=90, spo2_min=96)
    for n in range(2):
        SessionFactory(course=course, started_at=at(date(2026, 2, 16) + timedelta(days=3 * n)),
                       route=Route.INTRANASAL, dose_mg_per_kg=None,
                       dose_mg=Decimal("56") if n == 0 else Decimal("84"))
    AssessmentFactory(course=course, administered_at=at(date(2026, 2, 20), 8),
                      items=[2, 2, 2, 2, 2, 2, 2, 2, 2, 2])  # 20
    refresh_evaluation(course)
    return course


def test_the_chart_has_ticks_lines_session_doses_route_changes_and_values_as_text():
    course = _course_with_a_route_switch()
    sessions = list(course.sessions.all())
    chart = str(score_chart(list(course.assessments.all()), {"madrs": 10, "phq9": 4},
                            sessions=sessions, baselines={"madrs": 36, "phq9": None},
                            chart_id="c1"))
    # Labelled y ticks every 10 on MADRS, and dated x ticks (more than the first and last day).
    for tick in ("0", "10", "20", "30", "40", "50", "60"):
        assert re.search(rf'text-anchor="end">{tick}</text>', chart)
    assert len(re.findall(r">\d\d (Feb|Mar)</text>", chart)) >= 3
    assert "remission ≤ 10" in chart
    assert "response: 50 % of baseline 36 = 18" in chart
    # A marker per session with its dose; the switch to intranasal is drawn and named.
    assert chart.count("<title>2026-02-") == 8
    assert ">0.5</text>" in chart and ">56</text>" in chart and ">84</text>" in chart
    assert "→ Intranasal esketamine" in chart
    # For screen readers: the SVG names its title and description, and a table holds the values.
    assert 'aria-labelledby="c1-title c1-desc"' in chart
    assert "MADRS: 2 scores, latest 20 on 2026-02-20, baseline 36" in chart
    assert '<div class="visually-hidden"><table id="c1-values">' in chart
    assert "Session, Intranasal esketamine</td><td>84 mg</td>" in chart


def test_a_long_course_chart_draws_its_line_not_a_band_of_dots():
    """Past CROWDED_POINTS scores (or CROWDED_MARKS sessions) the dots would merge: the line
    carries the scores, with a dot for the first and the latest and every self-report; each
    session is a tick; every value is still in the table for screen readers."""
    from types import SimpleNamespace as Point

    from courses.charts import CROWDED_MARKS, CROWDED_POINTS, LEFT, RIGHT, WIDTH, _anchor

    start = at(date(2024, 1, 1))
    n = max(CROWDED_POINTS, CROWDED_MARKS) + 20
    scores = [Point(administered_at=start + timedelta(days=3 * i), instrument="madrs",
                    total=30 - i % 7, is_self_report=(i == 50)) for i in range(n)]
    sessions = [Point(started_at=start + timedelta(days=3 * i, hours=1), route="iv",
                      dose_mg_per_kg=Decimal("0.5"), dose_mg=Decimal("40.0"), status="completed")
                for i in range(n)]
    chart = str(score_chart(scores, {"madrs": 10, "phq9": 4}, sessions=sessions,
                            baselines={"madrs": 30}, chart_id="long"))
    dots = re.findall(r"<circle [^>]*><title>MADRS (\d+) on ([\d-]+)", chart)
    assert [day for _, day in dots] == [
        f"{start.date():%Y-%m-%d}", f"{(start + timedelta(days=150)).date():%Y-%m-%d}",
        f"{(start + timedelta(days=3 * (n - 1))).date():%Y-%m-%d}"]  # first, self-report, latest
    assert 'class="self-report"' in chart
    assert chart.count("<title>20") == 0  # no session marker (their titles start with the day)
    assert len(re.findall(r'<line x1="[\d.]+" y1="[\d.]+" x2="[\d.]+" y2="[\d.]+" '
                          r'stroke="#333"/>', chart)) >= n - 1  # a tick per session
    # Every value for screen readers, and the line through every score.
    assert chart.count("<tr><td>") == 2 * n
    assert len(re.search(r'<polyline points="([^"]+)"', chart).group(1).split()) == n
    # Dates under the axis are kept inside the chart: the first one starts at the axis, and
    # one at the right end would end there.
    assert re.search(r'text-anchor="start">01 Jan 2024</text>', chart)
    assert [_anchor(x) for x in (LEFT, WIDTH / 2, WIDTH - RIGHT)] == ["start", "middle", "end"]


def test_the_course_page_shows_vitals_and_folds_decided_flags(as_user, clinician):
    course = _course_with_a_route_switch()
    flag = course.evaluation["flags"][0]
    FlagDecision.objects.create(
        course=course, code=flag["code"], decision=Decision.DECLINED, reason="seen",
        flag_message=flag["message"], decided_by=UserFactory(), decided_at=at(date(2026, 2, 21)),
    )
    html = as_user(clinician).get(reverse("courses:detail", args=[course.pk])).content.decode()
    # A narrow table wraps vitals only after a "·" (a non-breaking space before it).
    assert "128/82\u00a0· 150/95\u00a0· –" in html
    assert "72\u00a0· 90\u00a0· –" in html and "96 %" in html
    decided = html[html.index('<details class="decided-flags"'):html.index("</details>")]
    assert "1 decided flag " in decided and f'data-flag="{flag["code"]}"' in decided


def test_a_suggested_dose_is_said_once(as_user, clinician):
    """The suggestion names its dose ("Increase to 0.6 mg/kg (ladder …)"): not again after it."""
    course = CourseFactory(started_on=date(2026, 2, 1))
    AssessmentFactory(course=course, administered_at=at(date(2026, 2, 1), 8),
                      items=[4, 4, 4, 4, 3, 4, 3, 4, 3, 3])  # 36
    for n in range(6):
        SessionFactory(course=course, started_at=at(date(2026, 2, 2) + timedelta(days=2 * n)))
    AssessmentFactory(course=course, administered_at=at(date(2026, 2, 13), 8),
                      items=[4, 4, 3, 4, 3, 4, 3, 3, 3, 3])  # 34: no response
    evaluation = refresh_evaluation(course)
    assert "DOSE_ESCALATION" in [flag["code"] for flag in evaluation["flags"]]
    body = as_user(clinician).get(reverse("courses:detail", args=[course.pk])).content.decode()
    flag = body[body.index('data-flag="DOSE_ESCALATION"'):]
    flag = flag[:flag.index("data-source")]
    assert "Increase to 0.6 mg/kg" in flag and flag.count("0.6 mg/kg") == 1
