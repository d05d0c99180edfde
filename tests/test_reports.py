"""Referring providers read reports for the patients they referred, and nothing else."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Role
from audit.log import record
from audit.models import Action, AuditEvent
from courses.evaluation import refresh_evaluation
from courses.models import FlagDecision
from tests.conftest import audit_statements, sent, with_charts
from tests.factories import (
    AssessmentFactory,
    CourseFactory,
    PatientFactory,
    SessionFactory,
    UserFactory,
    at,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def own(referrer):
    course = CourseFactory(patient=PatientFactory(referring_provider=referrer,
                                                  last_name="Ownpatient"))
    AssessmentFactory(course=course)
    SessionFactory(course=course, dissociation="moderate")
    AssessmentFactory(course=course, items=[3] * 9 + [2],
                      administered_at=at(course.started_on + timedelta(days=3), 12))
    refresh_evaluation(course)
    return course


@pytest.fixture
def other():
    return CourseFactory(patient=PatientFactory(referring_provider=UserFactory(
        role=Role.REFERRING_PROVIDER), last_name="Otherpatient"))


def test_the_list_shows_only_their_own_patients(as_user, referrer, own, other):
    body = as_user(referrer).get(reverse("reports:list")).content.decode()
    assert "Ownpatient" in body and "Otherpatient" not in body


def test_the_report_has_scores_status_sessions_and_flags(as_user, referrer, own, clinician):
    FlagDecision.objects.create(
        course=own, code="TRD_NOT_VERIFIED", decision="declined", reason="records requested",
        flag_message="x", decided_by=clinician, decided_at=own.created_at,
    )
    client = as_user(referrer)
    response = client.get(reverse("reports:patient", args=[own.patient.pk]))
    body = with_charts(client, response)
    assert response.status_code == 200
    assert "36" in body and "29" in body and "19.4 %" in body and "Non-response" in body
    # (a narrow table wraps a dose only between its two parts: the other spaces do not break)
    assert "0.5 mg/kg (40.0 mg)" in body.replace("\u00a0", " ") and "Moderate" in body
    assert "Suggestion:" in body and "records requested" in body
    assert "<svg" in body
    # Read-only: the only form on the page is the logout button.
    assert re.findall(r"<form[^>]*>", body) == [
        f'<form method="post" action="{reverse("logout")}" class="d-inline">'
    ]
    assert "Accept…" not in body and "Log session" not in body


def test_any_other_patient_is_a_404(as_user, referrer, own, other):
    client = as_user(referrer)
    assert client.get(reverse("reports:patient", args=[other.patient.pk])).status_code == 404
    assert client.get(reverse("reports:patient", args=[999999])).status_code == 404


def test_reports_are_not_for_staff_or_strangers(as_user, own, clinician, clinic_admin):
    url = reverse("reports:patient", args=[own.patient.pk])
    for user in (clinician, clinic_admin):
        assert as_user(user).get(url).status_code == 404
        assert as_user(user).get(reverse("reports:list")).status_code == 404
    assert as_user(None).get(url).status_code == 302


def without_csrf(response) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", response.content.decode())


def test_a_course_chart_on_the_report_is_for_the_referrer_of_its_patient(
        as_user, referrer, own, other, clinician, clinic_admin):
    mine, theirs = (reverse("reports:course-chart", args=[course.pk]) for course in (own, other))
    client = as_user(referrer)
    chart = client.get(mine)
    assert chart.status_code == 200 and "<svg" in chart.content.decode()
    assert "no-store" in chart["Cache-Control"]  # patient data: never kept by a browser
    audit = AuditEvent.objects.filter(action=Action.VIEW).latest("id")
    assert (audit.actor, audit.patient_id, audit.summary) == (
        referrer, own.patient_id, f"viewed course {own.pk} chart")
    # Another referrer's course answers as a course that does not exist: no oracle.
    missing = client.get(reverse("reports:course-chart", args=[999999]))
    assert client.get(theirs).status_code == missing.status_code == 404
    assert without_csrf(client.get(theirs)) == without_csrf(missing)
    assert client.post(mine, {}).status_code == 405
    for user in (clinician, clinic_admin):  # theirs is the course page's own chart
        assert as_user(user).get(mine).status_code == 404
    assert as_user(None).get(mine).status_code == 302


def test_reports_are_read_only(as_user, referrer, own):
    client = as_user(referrer)
    for url in (reverse("reports:list"), reverse("reports:patient", args=[own.patient.pk])):
        assert client.post(url, {}).status_code == 405


def test_every_report_view_is_audited(as_user, referrer, own):
    as_user(referrer).get(reverse("reports:patient", args=[own.patient.pk]))
    event = AuditEvent.objects.get(action=Action.VIEW)
    assert (event.actor, event.patient_id, event.summary) == (
        referrer, own.patient.pk, "viewed referral report"
    )


def test_report_queries_do_not_grow_with_sessions(as_user, referrer, own):
    client = as_user(referrer)
    url = reverse("reports:patient", args=[own.patient.pk])

    def count():
        with CaptureQueriesContext(connection) as queries:
            client.get(url)
        return len(sent(queries))

    few = count()
    for day in range(5, 25):
        SessionFactory(course=own, started_at=at(own.started_on + timedelta(days=day)))
    refresh_evaluation(own)
    record(None, Action.CREATE, own, patient_id=own.patient_id)  # as the actions audit
    assert count() == few  # rendered again: the record changed
    # From the cache: session, user, patient with the versions of the record, the audit of
    # the view.
    assert count() == 3 + audit_statements() < few


@pytest.mark.parametrize("pk", ["0", "9" * 30, "-1", "1e3", "%00", "abc", "٣"])
def test_hostile_ids_are_404_never_500(as_user, referrer, pk):
    response = as_user(referrer).get(f"/reports/patients/{pk}/")
    assert response.status_code == 404


def pdf_text(response) -> str:
    from io import BytesIO

    from pypdf import PdfReader

    body = b"".join(response.streaming_content) if response.streaming else response.content
    return "\n".join(page.extract_text() for page in PdfReader(BytesIO(body)).pages)


def test_the_referrer_downloads_the_same_report_as_a_pdf(as_user, referrer, own):
    response = as_user(referrer).get(reverse("reports:patient-pdf", args=[own.patient.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == (
        f'attachment; filename="ketacare-report-{own.patient.record_number}.pdf"'
    )
    assert response["Cache-Control"] == "no-store, private"
    text = pdf_text(response)
    assert own.patient.record_number in text and "Ownpatient" in text
    assert "19.4 %" in text and "Non-response" in text and "Suggestion:" in text
    assert "Moderate" in text  # the sessions table
    assert "Confidential patient information" in text  # letterhead and page footer
    event = AuditEvent.objects.get(action=Action.VIEW)
    assert (event.actor, event.patient_id, event.summary) == (
        referrer, own.patient.pk, "viewed report PDF"
    )


def test_the_pdf_is_only_for_their_own_patients(as_user, referrer, own, other):
    client = as_user(referrer)
    assert client.get(reverse("reports:patient-pdf", args=[other.patient.pk])).status_code == 404
    assert client.get(reverse("reports:record-pdf", args=[own.patient.pk])).status_code == 404
    assert client.post(reverse("reports:patient-pdf", args=[own.patient.pk])).status_code == 405


def test_staff_download_any_patients_report_pdf(as_user, own, other, clinician, clinic_admin):
    for user in (clinician, clinic_admin):
        response = as_user(user).get(reverse("reports:record-pdf", args=[other.patient.pk]))
        assert response.status_code == 200
        assert "Otherpatient" in pdf_text(response)
        # The staff PDF is not the referrer's URL.
        url = reverse("reports:patient-pdf", args=[own.patient.pk])
        assert as_user(user).get(url).status_code == 404
    url = reverse("reports:record-pdf", args=[own.patient.pk])
    assert as_user(None).get(url).status_code == 302


def test_the_print_stylesheet_hides_navigation_and_is_linked_for_print(as_user, referrer, own):
    from django.contrib.staticfiles import finders

    body = as_user(referrer).get(reverse("reports:patient", args=[own.patient.pk])).content.decode()
    assert re.search(r'<link rel="stylesheet" href="[^"]*report-print\.css" media="print">', body)
    from pathlib import Path

    css = Path(finders.find("css/report-print.css")).read_text()
    assert re.search(r"\.d-print-none, nav, form, \.btn[^{]*\{ display: none", css)
    assert "Print or download PDF" in body
    assert 'class="d-flex justify-content-end d-print-none' in body


def test_the_page_lists_the_latest_sessions_and_the_pdf_every_one(as_user, referrer, own):
    from django.template.loader import render_to_string

    from reports.context import LATEST_SESSIONS, report_context

    for day in range(5, 5 + LATEST_SESSIONS + 3):  # 14 sessions in all
        SessionFactory(course=own, started_at=at(own.started_on + timedelta(days=day)),
                       bp_pre_systolic=120 + day, bp_pre_diastolic=80)
    refresh_evaluation(own)
    client = as_user(referrer)
    body = with_charts(client, client.get(reverse("reports:patient", args=[own.patient.pk])))
    table = body[body.index("report-sessions"):]
    table = table[:table.index("</table>")]
    assert table.count("<tr>") == 1 + LATEST_SESSIONS  # the header, then the latest
    last = own.started_on + timedelta(days=4 + LATEST_SESSIONS + 3)
    assert f"{last:%Y-%m-%d}" in table and f"{own.started_on + timedelta(days=1):%Y-%m-%d}" \
        not in table
    assert f"the latest {LATEST_SESSIONS} of 14" in body
    assert "The 4 earlier sessions are in the chart above and listed in the PDF" in body
    assert body.count('<title>20') >= 14  # the chart marks every session
    # The PDF's body lists every session, oldest first.
    pdf = render_to_string("reports/patient_pdf.html", report_context(own.patient))
    rows = re.findall(r"<tr><td class=\"text-nowrap\">(\d{4}-\d\d-\d\d)</td>", pdf)
    assert len(rows) == 14 and rows == sorted(rows)
    assert "earlier session" not in pdf


def test_every_page_of_the_pdf_names_the_patient(as_user, referrer, own):
    # Long enough for several pages: an earlier, ended course (each course starts a page) and
    # 40 sessions in the current one.
    patient = own.patient
    CourseFactory(patient=patient, started_on=own.started_on - timedelta(days=200),
                  phase="ended", ended_on=own.started_on - timedelta(days=150),
                  end_reason="non_response")
    for day in range(5, 45):
        SessionFactory(course=own, started_at=at(own.started_on + timedelta(days=day)))
    refresh_evaluation(own)
    from io import BytesIO

    from pypdf import PdfReader

    response = as_user(referrer).get(reverse("reports:patient-pdf", args=[patient.pk]))
    pages = [page.extract_text() for page in PdfReader(BytesIO(response.content)).pages]
    assert len(pages) >= 3
    for number, text in enumerate(pages, start=1):
        assert (patient.full_name in text and patient.record_number in text
                and f"date of birth {patient.date_of_birth:%Y-%m-%d}" in text), number


def test_the_browsers_print_of_other_pages_has_no_patient_header():
    # The running header is the PDF's (a named page on body.report-pdf): the stylesheet is
    # also every page's print stylesheet, and a page about another patient, or none, must
    # not print one.
    from pathlib import Path

    from django.contrib.staticfiles import finders

    css = Path(finders.find("css/report-print.css")).read_text()
    generic = css[css.index("@page {"):]
    generic = generic[:generic.index("\n}")]
    assert "string(" not in generic
    assert ".report-pdf { page: report;" in css and "@page report {" in css


def test_optimization_attempts_name_accepted_flags_by_their_label(as_user, referrer, own,
                                                                  clinician):
    FlagDecision.objects.create(
        course=own, code="DOSE_ESCALATION", decision="accepted", action="dose_change",
        detail="0.6 mg/kg from the next session", flag_message="x", decided_by=clinician,
        decided_at=own.created_at,
    )
    refresh_evaluation(own)
    client = as_user(referrer)
    body = with_charts(client, client.get(reverse("reports:patient", args=[own.patient.pk])))
    attempts = body[body.index('id="optimizations"'):]
    attempts = attempts[:attempts.index("</ul>")]
    assert "<li>Dose escalation accepted</li>" in attempts
    assert "DOSE_ESCALATION" not in attempts


def test_an_ended_course_reads_its_end_once_and_the_note_as_the_clinicians(as_user, referrer,
                                                                             own):
    own.phase, own.ended_on = "ended", own.started_on + timedelta(days=38)
    own.end_reason, own.end_note = "non_response", "No change after 6 infusions; to TMS."
    own.save(update_fields=["phase", "ended_on", "end_reason", "end_note"])
    refresh_evaluation(own)
    client = as_user(referrer)
    body = with_charts(client, client.get(reverse("reports:patient", args=[own.patient.pk])))
    assert (f'Course from {own.started_on} <small class="text-muted">· ended {own.ended_on} '
            "(Discontinued: non-response)</small>") in body
    assert "Ended," not in body and "Outcome:" not in body
    assert ("<strong>Clinician's note at the end:</strong> No change after 6 infusions; "
            "to TMS.") in body


def test_a_course_under_way_reads_its_phase(as_user, referrer, own):
    body = as_user(referrer).get(reverse("reports:patient", args=[own.patient.pk])) \
        .content.decode()
    assert f'Course from {own.started_on} <small class="text-muted">· Induction</small>' in body


def test_the_list_marks_a_provisional_status(as_user, referrer, own):
    assert own.evaluation["provisional"]  # one session: the trial is not yet adequate
    body = as_user(referrer).get(reverse("reports:list")).content.decode()
    assert 'title="The trial is not yet adequate">Non-response (provisional)</span>' in body


def test_the_list_shows_an_adequate_trials_status_plainly(as_user, referrer, own):
    for day in range(4, 8):
        SessionFactory(course=own, started_at=at(own.started_on + timedelta(days=day)))
    AssessmentFactory(course=own, items=[3] * 9 + [2],
                      administered_at=at(own.started_on + timedelta(days=9), 12))
    refresh_evaluation(own)
    assert not own.evaluation["provisional"]
    body = as_user(referrer).get(reverse("reports:list")).content.decode()
    assert "Non-response</span>" in body and "provisional" not in body


def test_print_gives_the_pdf_which_lists_every_session(as_user, referrer, own):
    body = as_user(referrer).get(reverse("reports:patient", args=[own.patient.pk])) \
        .content.decode()
    pdf = reverse("reports:patient-pdf", args=[own.patient.pk])
    assert re.search(rf'<a [^>]*href="{pdf}" download[^>]*>Print or download PDF</a>', body)
    # No button that prints this page, which lists the latest sessions only.
    assert "data-print" not in body and "js/print.js" not in body and ">Print<" not in body


def test_the_engines_words_for_a_strategy_are_the_pages_label_of_its_flag():
    # The engine writes "<label> accepted" (clinical/), the page names the flag with the
    # flag_label filter: a label given on the page only would make the two disagree.
    from clinical.engine import OPTIMIZATION_STRATEGIES, FlagCode
    from courses.templatetags.clinical import flag_label

    for code in OPTIMIZATION_STRATEGIES:
        assert flag_label(code) == FlagCode(code).label


def test_a_course_with_no_session_yet_has_its_place_on_the_report(as_user, referrer, own):
    """A course just started (no session, no score) beside one under way: both on the page,
    on either database (the embedded one reads the report through the ORM)."""
    own.ended_on, own.end_reason, own.phase = own.started_on + timedelta(days=30), "completed", \
        "ended"
    own.save()
    CourseFactory(patient=own.patient, started_on=own.started_on + timedelta(days=60))
    page = as_user(referrer).get(reverse("reports:patient", args=[own.patient.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert body.count('class="mb-4 report-course"') == 2
    assert "No sessions yet." in body
