"""The audit report, its CSV export and ``verify_audit`` (HIPAA 164.312(b), ONC 170.315(d)(2-3)).

Time is frozen at noon on 2026-03-10 in the clinic's time zone (America/New_York, which moves to
daylight time on 2026-03-08). Test events are written through ``record()`` at chosen times, so
the hash chain stays intact; the admin's own LOGIN row and the report's VIEW row are written at
"now", outside the periods most tests ask for.
"""

import csv
import io
import json
import re
from datetime import date, datetime

import pytest
from django.core.management import CommandError, ManagementUtility, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.log import record, verify_chain
from audit.models import Action, AuditEvent
from tests.conftest import audit_statements, sent
from tests.factories import PatientFactory, UserFactory

pytestmark = pytest.mark.django_db

URL_NAMES = ["audit:report", "audit:export"]
PERIOD = {"start": "2026-03-01", "end": "2026-03-02"}
CSV_HEADER = [
    "id", "at", "actor", "action", "object_type", "object_id", "patient_id", "summary",
    "before", "after", "hash", "prev_hash",
]


def local(day: date, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """A moment on ``day`` in the clinic's time zone."""
    return timezone.make_aware(datetime(day.year, day.month, day.day, hour, minute, second))



@pytest.fixture
def now(time_machine):
    moment = local(date(2026, 3, 10), 12)
    time_machine.move_to(moment, tick=False)
    return moment


@pytest.fixture
def log_at(time_machine, now):
    """``log_at(when, actor, action, ...)`` writes an audit row as though at ``when``."""

    def write(when: datetime, actor, action=Action.VIEW, **kwargs) -> AuditEvent:
        time_machine.move_to(when, tick=False)
        try:
            return record(actor, action, object_type=kwargs.pop("object_type", "tests.Thing"),
                          **kwargs)
        finally:
            time_machine.move_to(now, tick=False)

    return write


@pytest.fixture
def admin(as_user, clinic_admin, now):
    """The test client, logged in as the clinic admin (which writes a LOGIN row at now)."""
    return as_user(clinic_admin)


def ids(response) -> list[int]:
    return [event.pk for event in response.context["page"]]


def csv_rows(response) -> list[list[str]]:
    assert response.streaming
    content = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(content)))


# Permission matrix

@pytest.mark.parametrize("url_name", URL_NAMES)
def test_anonymous_is_sent_to_log_in(client, url_name):
    response = client.get(reverse(url_name))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login") + "?next=")


@pytest.mark.parametrize("url_name", URL_NAMES)
@pytest.mark.parametrize(("role", "status"), [("clinician", 403), ("referrer", 404)])
def test_it_is_forbidden_to_everyone_but_clinic_admins(request, as_user, url_name, role, status):
    user = request.getfixturevalue(role)
    response = as_user(user).get(reverse(url_name))
    assert response.status_code == status
    assert not AuditEvent.objects.filter(object_type="audit.AuditEvent").exists()


@pytest.mark.parametrize("url_name", URL_NAMES)
def test_clinic_admins_may_read_it(admin, url_name):
    response = admin.get(reverse(url_name))
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0, no-cache, no-store")


@pytest.mark.parametrize("url_name", URL_NAMES)
def test_it_only_answers_get(admin, url_name):
    assert admin.post(reverse(url_name)).status_code == 405


def test_the_nav_link_is_shown_to_clinic_admins_only(as_user, clinician, clinic_admin):
    link = f'href="{reverse("audit:report")}"'
    assert link in as_user(clinic_admin).get(reverse("patients:list")).content.decode()
    assert link not in as_user(clinician).get(reverse("patients:list")).content.decode()


# The period

def test_the_period_is_whole_days_in_the_clinic_time_zone(admin, log_at, clinician):
    # 2026-03-08 is the day the clinic's clocks go forward; the period still ends at midnight.
    before = log_at(local(date(2026, 3, 6), 23, 59, 59), clinician)
    first = log_at(local(date(2026, 3, 7)), clinician)
    last = log_at(local(date(2026, 3, 8), 23, 59, 59), clinician)
    after = log_at(local(date(2026, 3, 9)), clinician)
    response = admin.get(reverse("audit:report"),
                         {"start": "2026-03-07", "end": "2026-03-08", "sort": "at"})
    assert ids(response) == [first.pk, last.pk]
    assert before.pk not in ids(response) and after.pk not in ids(response)


def test_a_one_day_period_includes_the_end_date(admin, log_at, clinician):
    late = log_at(local(date(2026, 3, 2), 23, 59, 59), clinician)
    log_at(local(date(2026, 3, 3)), clinician)
    response = admin.get(reverse("audit:report"), {"start": "2026-03-02", "end": "2026-03-02"})
    assert ids(response) == [late.pk]


def test_it_shows_the_last_seven_days_by_default(admin, log_at, clinician, clinic_admin):
    log_at(local(date(2026, 3, 3), 23, 59, 59), clinician)
    oldest = log_at(local(date(2026, 3, 4)), clinician)
    response = admin.get(reverse("audit:report"))
    login, report = AuditEvent.objects.filter(actor=clinic_admin).order_by("id")
    assert ids(response) == [report.pk, login.pk, oldest.pk]
    assert response.context["form"].cleaned_data["start"] == date(2026, 3, 4)
    assert response.context["form"].cleaned_data["end"] == date(2026, 3, 10)


@pytest.mark.parametrize(
    "params,start,end",
    [
        ({"start": "2026-02-01"}, date(2026, 2, 1), date(2026, 3, 10)),
        ({"end": "2026-02-10"}, date(2026, 2, 4), date(2026, 2, 10)),
    ],
)
def test_one_date_given_the_other_defaults(admin, params, start, end):
    data = admin.get(reverse("audit:report"), params).context["form"].cleaned_data
    assert (data["start"], data["end"]) == (start, end)


# Filters

@pytest.fixture
def three_events(log_at):
    """Three events on 2026-03-01 that differ in every sortable column."""
    alice, bob, carol = (UserFactory(username=name) for name in ("alice", "bob", "carol"))
    p1, p2 = PatientFactory(record_number="MRN-1"), PatientFactory(record_number="MRN-2")
    day = date(2026, 3, 1)
    return [
        log_at(local(day, 9), bob, Action.UPDATE, patient_id=p1.pk,
               before={"dose_mg": "40.0"}, after={"dose_mg": "50.0"}),
        log_at(local(day, 10), carol, Action.CREATE),
        log_at(local(day, 11), alice, Action.VIEW, patient_id=p2.pk),
    ]


def test_it_filters_by_user_name_contains(admin, three_events):
    response = admin.get(reverse("audit:report"), {**PERIOD, "user": "LIC"})
    assert ids(response) == [three_events[2].pk]


def test_it_filters_by_patient_id(admin, three_events):
    response = admin.get(reverse("audit:report"),
                         {**PERIOD, "patient": three_events[0].patient_id})
    assert ids(response) == [three_events[0].pk]


def test_it_filters_by_patient_record_number(admin, three_events):
    response = admin.get(reverse("audit:report"), {**PERIOD, "patient": " mrn-2 "})
    assert ids(response) == [three_events[2].pk]


def test_it_filters_by_action(admin, three_events):
    response = admin.get(reverse("audit:report"), {**PERIOD, "action": "create"})
    assert ids(response) == [three_events[1].pk]
    assert "Created" in response.content.decode()


def test_filters_combine(admin, three_events):
    params = {**PERIOD, "user": "a", "action": "view"}  # alice and carol; alice viewed
    assert ids(admin.get(reverse("audit:report"), params)) == [three_events[2].pk]


@pytest.mark.parametrize(
    "sort,order",
    [
        ("at", [0, 1, 2]), ("-at", [2, 1, 0]),
        ("actor", [2, 0, 1]), ("-actor", [1, 0, 2]),  # alice, bob, carol
        ("action", [1, 0, 2]), ("-action", [2, 0, 1]),  # create, update, view
        ("patient", [0, 2, 1]), ("-patient", [2, 0, 1]),  # no patient comes last either way
    ],
)
def test_it_sorts_by_each_column_both_ways(admin, three_events, sort, order):
    response = admin.get(reverse("audit:report"), {**PERIOD, "sort": sort})
    assert ids(response) == [three_events[n].pk for n in order]
    assert response.context["sort"] == sort


def test_a_sort_link_reverses_the_current_sort(admin, three_events):
    content = admin.get(reverse("audit:report"), {**PERIOD, "sort": "actor"}).content.decode()
    assert "sort=-actor" in content and 'aria-sort="ascending"' in content


def test_it_shows_each_column_and_a_compact_change(admin, three_events):
    content = admin.get(reverse("audit:report"), PERIOD).content.decode()
    assert "2026-03-01 09:00:00" in content and ">bob<" in content and "Updated" in content
    assert "tests.Thing" in content
    assert f'href="{reverse("patients:detail", args=[three_events[0].patient_id])}"' in content
    assert "Dose mg: 40.0 → 50.0" in content  # an unknown model: the field's name in words


def test_it_reads_in_plain_words_model_names_field_labels_and_record_numbers(admin, clinician):
    from courses.actions import record_session
    from tests.factories import CourseFactory, SessionFactory

    course = CourseFactory(patient=PatientFactory(record_number="MRN-PLAIN"))
    session = SessionFactory.build(course=course, clinician=clinician, bp_pre_systolic=128,
                                   bp_pre_diastolic=82, started_at=timezone.now())
    record_session(clinician, session, [])
    content = admin.get(reverse("audit:report")).content.decode()
    assert f"Treatment session {session.pk}" in content
    assert ">MRN-PLAIN<" in content
    assert "BP before, systolic: 128" in content and "Route: IV ketamine" in content
    assert "Id:" not in content and "∅" not in content and "more (see the CSV" not in content
    assert "more</summary>" in content  # the rest of a creation's fields fold away


def test_it_pages_by_fifty_keeping_the_filters(admin, log_at, clinician):
    for minute in range(55):
        log_at(local(date(2026, 3, 1), 9, minute), clinician)
    first = admin.get(reverse("audit:report"), {**PERIOD, "sort": "at"})
    assert len(ids(first)) == 50
    assert "?start=2026-03-01&amp;end=2026-03-02&amp;sort=at&amp;page=2" in first.content.decode()
    second = admin.get(reverse("audit:report"), {**PERIOD, "sort": "at", "page": 2})
    assert len(ids(second)) == 5


# Bad parameters: a form error or an empty result, never a server error

@pytest.mark.parametrize(
    "params,field,words",
    [
        ({"start": "notadate"}, "start", "valid date"),
        ({"end": "2026-02-30"}, "end", "valid date"),
        ({"end": "9999-12-31"}, "end", "between 2000-01-01 and 2999-12-31"),
        ({"start": "0001-01-01", "end": "0001-01-02"}, "start", "between 2000-01-01"),
        ({"action": "bogus"}, "action", "not an audited action"),
        ({"patient": "MRN-NOPE"}, "patient", "No patient has the record number"),
        ({"patient": "9" * 20}, "patient", "No patient has the record number"),
        ({"patient": "9" * 21}, "patient", "at most 20 characters"),
        ({"user": "x" * 151}, "user", "at most 150 characters"),
        ({"start": "2026-03-05", "end": "2026-03-01"}, "__all__", "end of the period is before"),
    ],
)
def test_bad_filters_show_a_form_error_and_no_rows(admin, three_events, params, field, words):
    response = admin.get(reverse("audit:report"), params)
    assert response.status_code == 200
    assert words in " ".join(response.context["form"].errors[field])
    assert ids(response) == []


@pytest.mark.parametrize(
    "params", [{"sort": "DROP TABLE"}, {"sort": "hash"}, {"sort": "--at"}, {"page": "abc"}]
)
def test_an_unknown_sort_or_page_falls_back(admin, three_events, params):
    response = admin.get(reverse("audit:report"), {**PERIOD, **params})
    assert response.status_code == 200
    assert response.context["sort"] == "-at"
    assert ids(response) == [event.pk for event in reversed(three_events)]


def test_an_unknown_patient_id_is_an_empty_result(admin, three_events):
    response = admin.get(reverse("audit:report"), {**PERIOD, "patient": "999999"})
    assert response.status_code == 200 and response.context["form"].is_valid()
    assert ids(response) == []


def test_an_export_with_bad_filters_goes_back_to_the_report(admin):
    response = admin.get(reverse("audit:export"), {"start": "notadate", "user": "x"})
    assert response.status_code == 302
    assert response.url == reverse("audit:report") + "?start=notadate&user=x"
    assert not AuditEvent.objects.filter(summary__startswith="exported").exists()


def test_the_page_has_no_inline_script_or_style(admin, three_events):
    # The Content-Security-Policy forbids both.
    content = admin.get(reverse("audit:report"), PERIOD).content.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)", content)
    assert "style=" not in content and "<style" not in content


# CSV export

def test_the_csv_has_the_filtered_rows_in_order(admin, three_events):
    response = admin.get(reverse("audit:export"), {**PERIOD, "user": "o", "sort": "at"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="audit-2026-03-01-to-2026-03-02.csv"'
    )
    header, *rows = csv_rows(response)
    assert header == CSV_HEADER
    bob, carol = three_events[0], three_events[1]  # "o" matches bob and carol, not alice
    assert [int(row[0]) for row in rows] == [bob.pk, carol.pk]
    assert rows[0] == [
        str(bob.pk), "2026-03-01T09:00:00-05:00", "bob", "update", "tests.Thing", "",
        str(bob.patient_id), "", '{"dose_mg": "40.0"}', '{"dose_mg": "50.0"}', bob.hash,
        bob.prev_hash,
    ]
    assert rows[1][6:10] == ["", "", "", ""]  # no patient, summary, before or after


@pytest.mark.parametrize(
    "params,order",
    [
        ({"sort": "-actor"}, [1, 0, 2]),
        ({"sort": "patient"}, [0, 2, 1]),
        ({"action": "view"}, [2]),
        ({"patient": "MRN-1"}, [0]),
    ],
)
def test_the_csv_applies_the_same_filters_and_sort(admin, three_events, params, order):
    header, *rows = csv_rows(admin.get(reverse("audit:export"), {**PERIOD, **params}))
    assert [int(row[0]) for row in rows] == [three_events[n].pk for n in order]


def test_the_csv_json_columns_read_back(admin, log_at, clinician):
    event = log_at(local(date(2026, 3, 1), 9), clinician, Action.CREATE,
                   after={"weight_kg": "72.5", "note": 'a "quoted", comma'})
    header, row = csv_rows(admin.get(reverse("audit:export"), PERIOD))
    assert json.loads(row[9]) == event.after


def test_the_csv_keeps_a_spreadsheet_from_running_a_typed_username(admin, log_at):
    log_at(local(date(2026, 3, 1), 9), None, Action.LOGIN_FAILED,
           summary='=HYPERLINK("http://evil.example","x")')
    header, row = csv_rows(admin.get(reverse("audit:export"), PERIOD))
    assert row[7] == "'=HYPERLINK(\"http://evil.example\",\"x\")"


# Reading the audit trail is itself audited

def test_the_report_is_audited_with_its_filters(admin, clinic_admin, three_events):
    patient_id = three_events[0].patient_id
    admin.get(reverse("audit:report"), {**PERIOD, "user": "bob", "patient": patient_id})
    rows = AuditEvent.objects.filter(actor=clinic_admin).order_by("id")
    assert [(e.action, e.object_type, e.patient_id, e.summary) for e in rows] == [
        (Action.LOGIN, "accounts.User", None, ""),
        (Action.VIEW, "audit.AuditEvent", patient_id,
         "audit report 2026-03-01 to 2026-03-02, user name contains “bob”, patient MRN-1, "
         "newest first"),
    ]
    assert verify_chain() is None


@pytest.mark.parametrize("typed", ["MRN-2", " mrn-2 ", "id"])
def test_a_patient_filter_names_the_patient_by_record_number(admin, clinic_admin, three_events,
                                                             typed):
    """Typed as a record number or as the patient's id, the page and its audit row name the
    patient as the clinic knows them, never by the internal id."""
    patient_id = three_events[2].patient_id
    response = admin.get(reverse("audit:report"), {
        **PERIOD, "patient": patient_id if typed == "id" else typed, "action": "view",
        "sort": "patient",
    })
    body = response.content.decode()
    assert "1 event from 2026-03-01 to 2026-03-02" in body
    assert "for patient MRN-2 · Viewed." in body
    assert f"for patient {patient_id}" not in body
    event = AuditEvent.objects.filter(actor=clinic_admin).last()
    assert event.summary == ("audit report 2026-03-01 to 2026-03-02, patient MRN-2, "
                             "action “Viewed”, by patient")
    assert "=" not in event.summary


def test_a_patient_id_no_patient_has_says_so(admin, clinic_admin, three_events):
    body = admin.get(reverse("audit:report"), {**PERIOD, "patient": "999999"}).content.decode()
    assert "0 events from 2026-03-01 to 2026-03-02" in body
    assert "for patient id 999999 (no such patient)." in body
    event = AuditEvent.objects.filter(actor=clinic_admin).last()
    assert event.summary == ("audit report 2026-03-01 to 2026-03-02, "
                             "patient id 999999 (no such patient), newest first")


def test_a_report_with_bad_filters_is_audited_too(admin, clinic_admin):
    admin.get(reverse("audit:report"), {"start": "notadate", "action": "bogus"})
    event = AuditEvent.objects.filter(actor=clinic_admin).last()
    assert event.summary == "audit report invalid filters: action, start"


def test_the_export_is_audited_with_its_filters(admin, clinic_admin, three_events):
    response = admin.get(reverse("audit:export"), {**PERIOD, "action": "view", "sort": "at"})
    csv_rows(response)
    rows = AuditEvent.objects.filter(actor=clinic_admin).order_by("id")
    assert [(e.action, e.object_type, e.summary) for e in rows] == [
        (Action.LOGIN, "accounts.User", ""),
        (Action.VIEW, "audit.AuditEvent",
         "exported audit CSV 2026-03-01 to 2026-03-02, action “Viewed”, oldest first"),
    ]


def test_the_report_queries_do_not_grow_with_rows(admin, log_at, clinician):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert admin.get(reverse("audit:report"), PERIOD).status_code == 200
        return len(sent(queries))

    log_at(local(date(2026, 3, 1), 9), clinician)
    few = count()
    for minute in range(30):
        log_at(local(date(2026, 3, 1), 10, minute), clinician)
    # session, user, the audit of the report, event count, page of events
    assert count() == few == 4 + audit_statements()


# manage.py verify_audit

def tamper(sql: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql.format(table=AuditEvent._meta.db_table), params)


@pytest.fixture
def trail(clinician):
    return [record(clinician, Action.VIEW, PatientFactory(), summary=f"view {n}")
            for n in range(3)]


def test_verify_audit_reports_an_intact_trail(trail):
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert out.getvalue().strip() == "Audit trail intact: 3 records"


def test_verify_audit_counts_one_record_and_none(clinician):
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    record(clinician, Action.VIEW, summary="first")
    call_command("verify_audit", stdout=out)
    assert out.getvalue().splitlines() == [
        "Audit trail intact: 0 records", "Audit trail intact: 1 record"
    ]


def test_verify_audit_names_the_altered_record(trail):
    tamper("UPDATE {table} SET summary = %s WHERE id = %s", ["nothing to see", trail[1].pk])
    with pytest.raises(CommandError) as error:
        call_command("verify_audit")
    assert str(error.value) == (
        f"Audit trail NOT intact: audit record {trail[1].pk}: its content does not match its "
        "hash (altered)"
    )


def test_verify_audit_names_the_record_after_a_missing_one(trail):
    tamper("DELETE FROM {table} WHERE id = %s", [trail[1].pk])
    with pytest.raises(CommandError, match=f"audit record {trail[2].pk}: does not follow "
                                           f"record {trail[0].pk}.*removed"):
        call_command("verify_audit")


def test_verify_audit_notices_records_missing_from_the_end(trail):
    tamper("DELETE FROM {table} WHERE id = %s", [trail[2].pk])
    with pytest.raises(CommandError, match=f"chain ends at record {trail[1].pk}.*removed"):
        call_command("verify_audit")


def test_verify_audit_exit_codes(trail, capsys, monkeypatch):
    # From the command line Django closes the connection afterwards; the test still needs it.
    monkeypatch.setattr("django.core.management.base.connections.close_all", lambda: None)
    ManagementUtility(["manage.py", "verify_audit"]).execute()  # exit 0: returns normally
    assert "Audit trail intact: 3 records" in capsys.readouterr().out
    tamper("UPDATE {table} SET summary = %s WHERE id = %s", ["nothing to see", trail[0].pk])
    with pytest.raises(SystemExit) as exit_:
        ManagementUtility(["manage.py", "verify_audit"]).execute()
    assert exit_.value.code == 1
    assert f"audit record {trail[0].pk}" in capsys.readouterr().err
