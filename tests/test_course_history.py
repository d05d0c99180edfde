"""The course page shows the latest sessions and scores and a chart of the whole course; every
session and every score is a page away, newest first, 25 a page (STYLE 16)."""

import re
from datetime import date, timedelta

import pytest
from django.urls import reverse

from audit.log import record
from audit.models import Action, AuditEvent
from courses.actions import void_session
from courses.evaluation import refresh_evaluation
from courses.models import AdverseEvent, SessionAmendment
from courses.rows import PAGE_SIZE, RECENT_SCORES, RECENT_SESSIONS
from courses.views import INLINE_CHART_POINTS
from tests.conftest import sent, with_charts
from tests.factories import AssessmentFactory, CourseFactory, SessionFactory, UserFactory, at

pytestmark = pytest.mark.django_db


def long_course(sessions: int, clinician=None):
    """A course with ``sessions`` IV sessions two days apart, each after a MADRS."""
    course = CourseFactory(started_on=date(2025, 1, 1))
    for n in range(1, sessions + 1):
        day = date(2025, 1, 1) + timedelta(days=2 * n)
        SessionFactory(course=course, started_at=at(day, 10), infusion_minutes=n % 60 + 1,
                       **({"clinician": clinician} if clinician else {}))
        AssessmentFactory(course=course, administered_at=at(day, 9), items=[n % 7] * 10)
    refresh_evaluation(course)
    return course


def rows(html: str, table: str) -> list[str]:
    body = html[html.index(f'id="{table}"'):]
    body = body[:body.index("</table>")]
    return re.findall(r"<tr[ >].*?</tr>", body, re.S)[1:]  # after the header


def test_the_course_page_shows_the_latest_sessions_newest_first_and_links_to_all(
        as_user, clinician):
    course = long_course(RECENT_SESSIONS + 5)
    client = as_user(clinician)
    html = with_charts(client, client.get(reverse("courses:detail", args=[course.pk])))
    sessions = rows(html, "sessions")
    assert len(sessions) == RECENT_SESSIONS
    # Numbered by their place in the course, the newest first.
    numbers = [int(re.search(r'">(\d+)</a>', row).group(1)) for row in sessions]
    assert numbers == list(range(RECENT_SESSIONS + 5, 5, -1))
    assert '<span class="text-nowrap">2025-01-31</span> 10:00' in sessions[0]  # 15, on day 30
    assert f"Latest sessions <small class=\"text-muted fw-normal\">{RECENT_SESSIONS} of 15" in html
    assert f'href="{reverse("courses:sessions", args=[course.pk])}" id="all-sessions">All 15 ' \
           "sessions</a>" in html
    # Scores likewise; the chart still draws every session and every score.
    assert len(rows(html, "scores")) == RECENT_SCORES
    assert f'href="{reverse("courses:scores", args=[course.pk])}" id="all-scores">All 15 ' \
           "scores</a>" in html
    assert html.count("<title>2025-") == 15
    assert "MADRS: 15 scores" in html


def test_a_short_course_draws_its_chart_into_the_page(as_user, clinician):
    course = long_course(RECENT_SESSIONS + 5)  # 30 points: sessions and scores
    html = as_user(clinician).get(reverse("courses:detail", args=[course.pk])).content.decode()
    assert "<svg" in html and "data-chart-src" not in html
    assert html.count("<title>2025-") == 15


def test_a_long_courses_chart_comes_after_the_page_and_is_a_view_of_the_record(
        as_user, clinician):
    sessions = INLINE_CHART_POINTS // 2 + 1  # and a score each: past what a page draws
    course = long_course(sessions)
    client = as_user(clinician)
    chart_url = reverse("courses:chart", args=[course.pk])
    html = client.get(reverse("courses:detail", args=[course.pk])).content.decode()
    # The page names where its chart is and draws none: it reads only its latest rows.
    assert f'data-chart-src="{chart_url}"' in html and "<svg" not in html
    assert f'<a href="{reverse("courses:scores", args=[course.pk])}">see every score</a>' \
        in html  # without JavaScript
    chart = client.get(chart_url)
    assert chart.status_code == 200 and "no-store" in chart["Cache-Control"]
    assert chart.content.decode().count("<title>2025-") == sessions  # every session marked
    view = AuditEvent.objects.filter(action=Action.VIEW).latest("id")
    assert (view.actor, view.patient_id, view.summary) == (
        clinician, course.patient_id, f"viewed course {course.pk} chart")
    # A score logged since: the chart draws it (the fragment cache is keyed on the record).
    score = AssessmentFactory(course=course, total=7, items=[1] * 7 + [0] * 3,
                              administered_at=at(date(2025, 3, 1), 9))
    record(clinician, Action.CREATE, score, patient_id=course.patient_id)
    assert "MADRS 7 on 2025-03-01" in client.get(chart_url).content.decode()


def test_a_course_without_scores_says_so_and_fetches_no_chart(as_user, clinician):
    course = CourseFactory()
    SessionFactory(course=course)
    html = as_user(clinician).get(reverse("courses:detail", args=[course.pk])).content.decode()
    assert "No scores yet." in html and "data-chart-src" not in html


def test_a_short_course_shows_every_session_and_no_link(as_user, clinician):
    course = long_course(3)
    html = as_user(clinician).get(reverse("courses:detail", args=[course.pk])).content.decode()
    assert len(rows(html, "sessions")) == 3 and len(rows(html, "scores")) == 3
    assert 'id="all-sessions"' not in html and 'id="all-scores"' not in html


def test_a_row_shows_what_the_session_recorded(as_user, clinician):
    course = CourseFactory()
    signer = UserFactory(first_name="Ada", last_name="Byron", credentials="MD")
    session = SessionFactory(course=course, clinician=signer, bp_pre_systolic=128,
                             bp_pre_diastolic=82, hr_pre=70, spo2_min=95, status="stopped",
                             stop_reason="nausea & <vomiting>", benzodiazepine_24h=True)
    AdverseEvent.objects.create(session=session, description="nausea", severity="mild")
    AdverseEvent.objects.create(session=session, description="headache", severity="moderate")
    SessionAmendment.objects.create(session=session, kind="amendment", field="hr_pre",
                                    label="Heart rate before", before="", after="70",
                                    signed_by=signer, signed_at=session.started_at)
    refresh_evaluation(course)
    html = as_user(clinician).get(reverse("courses:detail", args=[course.pk])).content.decode()
    [row] = rows(html, "sessions")
    assert 'class="table-secondary"' in row
    assert f'href="{reverse("courses:session-detail", args=[session.pk])}"' in row
    assert 'title="Session 1, given by Ada Byron, MD"' in row
    # A narrow table wraps a dose or vitals only where a plain space is (the rest are
    # non-breaking): read as text, they are the same.
    row = row.replace("\u00a0", " ")
    assert "0.5 mg/kg (40.0 mg)" in row and "128/82 · – · –" in row and "70 · – · –" in row
    assert "95 %" in row and "nausea (mild); headache (moderate)" in row and ">yes<" in row
    assert "Stopped early: nausea &amp; &lt;vomiting&gt;" in row
    assert ">amended</span>" in row


def test_every_session_is_a_page_away_newest_first_voided_ones_struck(as_user, clinician):
    course = long_course(PAGE_SIZE + 5)
    first = course.sessions.order_by("started_at").first()
    void_session(clinician, first, read_version=first.version, reason="wrong patient")
    client = as_user(clinician)
    url = reverse("courses:sessions", args=[course.pk])
    html = client.get(url).content.decode()
    page = rows(html, "sessions")
    assert len(page) == PAGE_SIZE
    assert [int(re.search(r'">(\d+)</a>', row).group(1)) for row in page] == list(
        range(PAGE_SIZE + 5, 5, -1))
    assert "Page 1 of 2" in html and 'href="?page=2"' in html
    html = client.get(url, {"page": 2}).content.decode()
    page = rows(html, "sessions")
    assert [int(re.search(r'">(\d+)</a>', row).group(1)) for row in page] == [5, 4, 3, 2, 1]
    assert "session-voided" in page[-1] and ">voided</span>" in page[-1]
    # Out of range or not a number: the nearest page, never an error.
    for value in ("99", "0", "-1", "abc", "1e3", "٣", "9" * 40):
        assert client.get(url, {"page": value}).status_code == 200, value


# The page value, the page the Paginator chooses, the queries: one for a page that is there;
# for one that is not, the first page read in vain, or an empty page and how many there are.
@pytest.mark.parametrize("value, number, queries", [
    ("", 1, 1), ("1", 1, 1), ("2", 2, 1), ("3", 3, 1), ("٢", 2, 1), ("abc", 1, 1),
    ("1e3", 1, 1), ("0", 3, 2), ("-1", 3, 2), ("9" * 20, 3, 2), ("99", 3, 3),
])
def test_a_page_is_the_one_the_paginator_chooses_read_in_one_query(value, number, queries):
    """session_page and score_page read the rows of the page Django's Paginator picks for any
    ``page`` value (the nearest when out of range), as a Paginator over the ORM's rows would."""
    from django.core.paginator import Paginator
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from courses.rows import score_page, session_page

    course = long_course(2 * PAGE_SIZE + 3)
    session = course.sessions.order_by("started_at").first()
    AdverseEvent.objects.create(session=session, description="nausea", severity="mild")
    AdverseEvent.objects.create(session=session, description="headache", severity="moderate")
    sessions = list(course.sessions.order_by("-started_at", "-id").values_list("pk", flat=True))
    scores = list(course.assessments.order_by("-administered_at", "-id")
                  .values_list("pk", flat=True))
    with CaptureQueriesContext(connection) as captured:
        page, shown = session_page(course, value)
    expected = Paginator(sessions, PAGE_SIZE).get_page(value)
    assert (page.number, page.paginator.count, page.paginator.num_pages) == (
        number, expected.paginator.count, 3)
    assert [row.url.split("/")[-2] for row in shown] == [str(pk) for pk in expected]
    first = len(sessions) - expected.start_index() + 1
    assert [row.number for row in shown] == list(range(first, first - len(expected), -1))
    assert len(sent(captured.captured_queries)) == queries
    if number == 3:
        assert shown[-1].events == "nausea (mild); headache (moderate)"
    page, shown = score_page(course, value)
    expected = Paginator(scores, PAGE_SIZE).get_page(value)
    assert (page.number, page.paginator.count) == (number, len(scores))
    assert [row.url.split("/")[-2] for row in shown] == [str(pk) for pk in expected]


def test_an_empty_course_has_one_empty_page():
    from courses.rows import score_page, session_page

    course = CourseFactory()
    for read in (session_page, score_page):
        page, shown = read(course, "")
        assert (page.number, page.paginator.count, shown) == (1, 0, [])


def test_every_score_is_a_page_away_corrections_beside_what_they_replace(as_user, clinician):
    from assessments.models import Assessment

    course = long_course(PAGE_SIZE + 1)
    original = course.assessments.order_by("administered_at").last()
    Assessment.objects.create(
        course=course, instrument="madrs", administered_at=original.administered_at,
        items=[1] * 10, total=10, scored_by=clinician, signed_at=original.signed_at,
        replaces=original)
    client = as_user(clinician)
    html = client.get(reverse("courses:scores", args=[course.pk])).content.decode()
    page = rows(html, "scores")
    assert len(page) == PAGE_SIZE and "Page 1 of 2" in html
    corrected = next(row for row in page if f"/assessments/{original.pk}/" in row)
    assert "text-decoration-line-through" in corrected and ">corrected</span>" in corrected
    assert any(">correction</span>" in row for row in page)
    assert len(rows(client.get(reverse("courses:scores", args=[course.pk]), {"page": 2})
                    .content.decode(), "scores")) == 2


def test_the_pages_are_audited_as_views_of_the_record(as_user, clinician, clinic_admin):
    course = long_course(2)
    for user in (clinician, clinic_admin):
        client = as_user(user)
        for name, what in (("courses:sessions", "sessions"), ("courses:scores", "scores")):
            assert client.get(reverse(name, args=[course.pk])).status_code == 200
            event = AuditEvent.objects.filter(action=Action.VIEW).latest("id")
            assert (event.actor, event.patient_id, event.summary) == (
                user, course.patient_id, f"viewed {what} of course {course.pk}")


def test_the_pages_are_read_only_and_hidden_from_referrers_and_strangers(as_user, referrer):
    course = long_course(1)
    course.patient.referring_provider = referrer  # even their own patient's
    course.patient.save()
    for name in ("courses:sessions", "courses:scores"):
        url = reverse(name, args=[course.pk])
        response = as_user(None).get(url)
        assert response.status_code == 302 and response.url.startswith(reverse("login"))
        assert as_user(referrer).get(url).status_code == 404
        assert as_user(UserFactory(role="clinician")).post(url).status_code == 405
        assert as_user(UserFactory(role="clinician")).get(
            reverse(name, args=[999999])).status_code == 404


# The rows as courses/_sessions.html, _scores.html and reports/_report.html wrote them before
# SessionRow.html, .report_html and ScoreRow.html did: the same markup, character for character.
SESSION_ROW = """
    <tr{% if s.voided %} class="text-decoration-line-through text-muted session-voided"{% elif s.stopped %} class="table-secondary"{% endif %}>
      <td class="text-nowrap"><a href="{{ s.url }}" title="Session {{ s.number }}, given by {{ s.signature }}">{{ s.number }}</a>{% if s.voided %} <span class="badge text-bg-secondary">voided</span>{% elif s.amended %} <span class="badge text-bg-light" title="Amended after it was saved: see the session's history">amended</span>{% endif %}</td>
      <td><span class="text-nowrap">{{ s.day }}</span> {{ s.time }}</td><td>{{ s.route }}</td><td>{{ s.dose }}</td>
      <td class="d-none d-lg-table-cell">{{ s.minutes }}</td>
      <td>{{ s.bp }}</td>
      <td>{{ s.hr }}</td>
      <td class="d-none d-lg-table-cell">{{ s.spo2 }}</td>
      <td>{{ s.dissociation }}</td>
      <td class="sessions-events">{{ s.events }}</td>
      <td class="d-none d-lg-table-cell">{{ s.benzodiazepine }}</td>
      <td>{{ s.status }}{% if s.stop_reason %}: {{ s.stop_reason }}{% endif %}</td>
      <td class="text-nowrap d-none d-xxl-table-cell">{{ s.signature }}</td>
    </tr>
  """  # noqa: E501
REPORT_ROW = """<tr><td class="text-nowrap">{{ s.day }}</td><td>{{ s.route }}</td><td>{{ s.dose }}</td><td>{{ s.bp }}</td><td>{{ s.hr }}</td><td>{{ s.spo2 }}</td><td>{{ s.dissociation }}</td>
      <td>{{ s.events }}</td><td>{{ s.status }}</td></tr>
    """  # noqa: E501 (reports/_report.html's row)
SCORE_ROW = """
    <tr{% if a.corrected %} class="text-decoration-line-through text-muted"{% endif %}>
      <td class="text-nowrap"><a href="{{ a.url }}">{{ a.when }}</a></td>
      <td>{{ a.instrument }}</td><td>{{ a.total }}</td><td>{{ a.band }}</td>
      <td class="text-nowrap">{{ a.signer }}{% if a.is_self_report %} <span class="badge text-bg-info">self-report</span>{% endif %}{% if a.correction %} <span class="badge text-bg-secondary">correction</span>{% endif %}{% if a.corrected %} <span class="badge text-bg-light">corrected</span>{% endif %}</td>
    </tr>
  """  # noqa: E501


def test_rows_written_in_python_are_the_templates_markup(clinician):
    from django.template import Context, Template

    from assessments.models import Assessment, Source
    from courses.rows import score_page, session_page

    course = CourseFactory()
    signer = UserFactory(first_name="Ada <b>", last_name="O'Byron & Co", credentials='"MD"')
    stopped = SessionFactory(course=course, clinician=signer, bp_pre_systolic=128,
                             bp_pre_diastolic=82, hr_pre=70, spo2_min=95, status="stopped",
                             stop_reason="nausea & <vomiting> \"it's\"", benzodiazepine_24h=True,
                             infusion_minutes=None, started_at=at(date(2026, 1, 2), 9))
    AdverseEvent.objects.create(session=stopped, description="<nausea> & 'x'", severity="mild")
    AdverseEvent.objects.create(session=stopped, description="headache", severity="moderate")
    amended = SessionFactory(course=course, started_at=at(date(2026, 1, 4), 9))
    SessionAmendment.objects.create(session=amended, kind="amendment", field="hr_pre",
                                    label="Heart rate before", before="", after="70",
                                    signed_by=signer, signed_at=amended.started_at)
    voided = SessionFactory(course=course, started_at=at(date(2026, 1, 6), 9))
    void_session(clinician, voided, read_version=voided.version, reason="wrong patient")
    SessionFactory(course=course, started_at=at(date(2026, 1, 8), 9), infusion_minutes=1000)
    original = AssessmentFactory(course=course, administered_at=at(date(2026, 1, 2), 8),
                                 scored_by=signer)
    Assessment.objects.create(
        course=course, instrument="madrs", administered_at=original.administered_at,
        items=[1] * 10, total=10, scored_by=signer, signed_at=original.signed_at,
        replaces=original)
    AssessmentFactory(course=course, administered_at=at(date(2026, 1, 5), 8), scored_by=None,
                      source=Source.SELF_REPORT, instrument="phq9", items=[1] * 9)
    _, sessions = session_page(course, "")
    _, scores = score_page(course, "")
    assert len(sessions) == 4 and len(scores) == 3
    assert [(s.voided, s.amended, s.stopped) for s in sessions] == [
        (False, False, False), (True, False, False), (False, True, False), (False, False, True)]
    assert [(a.is_self_report, a.correction, a.corrected) for a in scores] == [
        (True, False, False), (False, True, False), (False, False, True)]
    for row in sessions:
        assert row.html == Template(SESSION_ROW).render(Context({"s": row}))
        assert row.report_html == Template(REPORT_ROW).render(Context({"s": row}))
    for row in scores:
        assert row.html == Template(SCORE_ROW).render(Context({"a": row}))
