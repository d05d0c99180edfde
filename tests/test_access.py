"""The permission matrix: every URL of the clinical record, for every role (STYLE 11).

- anonymous: redirected to the login page;
- referring provider: 404 everywhere: the clinical screens do not exist for them;
- clinic admin: may read (200), may not change (403);
- clinician: may read and change.
"""

import pytest
from django.urls import reverse

from accounts.models import Role
from selfreport.models import Plan as SelfReportPlan
from selfreport.models import Schedule
from tests.factories import (
    AppointmentFactory,
    AssessmentFactory,
    CourseFactory,
    IntranasalSessionFactory,
    MedicationFactory,
    SessionFactory,
    UserFactory,
    WeightFactory,
)

pytestmark = pytest.mark.django_db

# (url name, which object's pk it takes, writes?)
URLS = [
    ("patients:list", None, False),
    ("patients:new", None, True),
    ("patients:detail", "patient", False),
    ("patients:edit", "patient", True),
    ("patients:weight-new", "patient", True),
    ("patients:trial-new", "patient", True),
    ("patients:medication-new", "patient", True),
    ("patients:medication-stop", "medication", True),
    ("courses:new", "patient", True),
    ("courses:detail", "course", False),
    ("courses:sessions", "course", False),
    ("courses:scores", "course", False),
    ("courses:chart", "course", False),
    ("courses:phase", "course", True),
    ("courses:end", "course", True),
    ("courses:session-new", "course", True),
    ("courses:session-detail", "session", False),
    ("courses:session-amend", "session", True),
    ("courses:session-discharge", "session", True),
    ("courses:session-void", "session", True),
    ("assessments:detail", "assessment", False),
    ("assessments:correct", "assessment", True),
    ("selfreport:plan-new", "course", True),
    ("clinic:day", None, False),
    ("clinic:unbooked", None, False),
    ("clinic:undecided", None, False),
    ("clinic:plan", "course", True),
    ("clinic:appointment-new", "course", True),
    ("clinic:appointment-move", "appointment", True),
    ("clinic:appointment-cancel", "appointment", True),
    ("rems:queue", None, False),
    ("rems:form", "rems_session", False),
    ("rems:pdf", "rems_session", False),
]
POST_ONLY = [
    ("patients:medication-classify", "medication"),
    ("selfreport:plan-stop", "self_report_plan"),
    ("selfreport:plan-send-again", "self_report_plan"),
    ("rems:submit", "rems_session"),
    ("rems:undo", "rems_session"),
]


@pytest.fixture
def objects():
    course = CourseFactory()
    WeightFactory(patient=course.patient)
    return {
        "patient": course.patient,
        "course": course,
        "medication": MedicationFactory(patient=course.patient),
        "session": SessionFactory(course=course),
        "assessment": AssessmentFactory(course=course),
        "self_report_plan": SelfReportPlan.objects.create(
            course=course, schedule=Schedule.WEEKLY, created_by=course.created_by
        ),
        "appointment": AppointmentFactory(course=course),
        "rems_session": _rems_session(course),
    }


def _rems_session(course):
    course.patient.rems_enrolled_on = course.started_on
    course.patient.save(update_fields=["rems_enrolled_on"])
    return IntranasalSessionFactory(course=course)


def url_for(name, target, objects):
    return reverse(name, kwargs={"pk": objects[target].pk} if target else None)


def all_urls(objects):
    urls = [(url_for(name, target, objects), target, writes) for name, target, writes in URLS]
    urls.append(
        (reverse("assessments:new", args=[objects["course"].pk, "madrs"]), "course", True)
    )
    urls.append((reverse("rems:print") + f"?form={objects['rems_session'].pk}", "rems_session",
                 False))
    return urls


def test_it_sends_anonymous_visitors_to_login(client, objects):
    for url, _, _ in all_urls(objects):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.url.startswith(reverse("login")), url


def test_it_hides_every_record_from_referring_providers(as_user, objects):
    referrer = UserFactory(role=Role.REFERRING_PROVIDER)
    objects["patient"].referring_provider = referrer  # even their own patient
    objects["patient"].save()
    client = as_user(referrer)
    for url, _, _ in all_urls(objects):
        assert client.get(url).status_code == 404, url
        assert client.post(url, {}).status_code == 404, url


def test_it_lets_clinic_admins_read_but_not_change(as_user, objects):
    client = as_user(UserFactory(role=Role.CLINIC_ADMIN))
    for url, _, writes in all_urls(objects):
        assert client.get(url).status_code == (403 if writes else 200), url
        if writes:
            assert client.post(url, {}).status_code == 403, url


def test_it_lets_clinicians_open_every_page(as_user, objects):
    client = as_user(UserFactory(role=Role.CLINICIAN))
    for url, _, _ in all_urls(objects):
        assert client.get(url).status_code == 200, url


@pytest.mark.parametrize("name,target", POST_ONLY)
def test_post_only_urls_refuse_get_and_wrong_roles(as_user, objects, name, target):
    url = url_for(name, target, objects)
    assert as_user(UserFactory(role=Role.CLINICIAN)).get(url).status_code == 405
    assert as_user(UserFactory(role=Role.CLINIC_ADMIN)).post(url, {}).status_code == 403
    assert as_user(UserFactory(role=Role.REFERRING_PROVIDER)).post(url, {}).status_code == 404
    assert as_user(None).post(url, {}).status_code == 302


def test_it_answers_404_for_ids_that_do_not_exist(as_user, objects):
    client = as_user(UserFactory(role=Role.CLINICIAN))
    for name, target, _ in URLS:
        if target:
            assert client.get(reverse(name, kwargs={"pk": 999999})).status_code == 404, name
    assert client.get(
        reverse("assessments:new", args=[objects["course"].pk, "hamd"])
    ).status_code == 404


@pytest.mark.parametrize("name", ["selfreport:thanks", "selfreport:thanks-help"])
def test_the_patients_pages_need_no_login_for_anyone(as_user, name):
    """A patient's self-report pages (selfreport.views.PUBLIC_PREFIX) open for everyone, show
    nothing of any record, and their links (tests/test_selfreport.py) work without a login."""
    for role in (None, Role.REFERRING_PROVIDER, Role.CLINIC_ADMIN, Role.CLINICIAN):
        client = as_user(role and UserFactory(role=role))
        assert client.get(reverse(name)).status_code == 200, role
    assert as_user(None).get(reverse("selfreport:answer", args=["x" * 43])).status_code == 404


def test_home_sends_each_role_to_its_place(as_user, objects):
    # Clinicians start at the day sheet; clinic admins keep the patient list.
    assert as_user(UserFactory(role=Role.CLINICIAN)).get("/").url == reverse("clinic:day")
    assert as_user(UserFactory(role=Role.CLINIC_ADMIN)).get("/").url == reverse("patients:list")
    response = as_user(UserFactory(role=Role.REFERRING_PROVIDER)).get("/")
    assert response.url == reverse("reports:list")


def test_clinic_settings_are_for_clinic_admins_only(as_user):
    url = reverse("clinic:settings")
    assert as_user(None).get(url).status_code == 302
    assert as_user(UserFactory(role=Role.REFERRING_PROVIDER)).get(url).status_code == 404
    assert as_user(UserFactory(role=Role.REFERRING_PROVIDER)).post(url, {}).status_code == 404
    assert as_user(UserFactory(role=Role.CLINICIAN)).get(url).status_code == 403
    assert as_user(UserFactory(role=Role.CLINICIAN)).post(url, {}).status_code == 403
    assert as_user(UserFactory(role=Role.CLINIC_ADMIN)).get(url).status_code == 200


# Pages with no patient data that every logged-in role reads, referring providers included:
# they read reports whose flags cite the rules and their sources.
EVERY_ROLE = ["guidance:rules", "guidance:sources"]


@pytest.mark.parametrize("name", EVERY_ROLE)
def test_every_role_reads_the_rules_and_their_sources(client, as_user, name):
    url = reverse(name)
    response = client.get(url)
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    for role in (Role.REFERRING_PROVIDER, Role.CLINIC_ADMIN, Role.CLINICIAN):
        client = as_user(UserFactory(role=role))
        assert client.get(url).status_code == 200, (url, role)
        assert client.post(url, {}).status_code == 405, (url, role)


def test_rems_export_is_for_clinic_admins_only(as_user):
    url = reverse("rems:export")
    assert as_user(None).get(url).status_code == 302
    assert as_user(UserFactory(role=Role.REFERRING_PROVIDER)).get(url).status_code == 404
    assert as_user(UserFactory(role=Role.CLINICIAN)).get(url).status_code == 403
    assert as_user(UserFactory(role=Role.CLINIC_ADMIN)).get(url).status_code == 200
    assert as_user(UserFactory(role=Role.CLINIC_ADMIN)).post(url, {}).status_code == 405


def test_rems_forms_exist_only_for_enrolled_patients_intranasal_sessions(as_user, objects):
    client = as_user(UserFactory(role=Role.CLINICIAN))
    assert client.get(reverse("rems:form", args=[objects["session"].pk])).status_code == 404
    patient = objects["patient"]
    patient.rems_enrolled_on = None
    patient.save()
    assert client.get(
        reverse("rems:form", args=[objects["rems_session"].pk])).status_code == 404


def test_the_course_comes_with_its_patient_and_plan_in_one_query(django_assert_num_queries):
    """get_course_for_user reads the course as .get() did (compiled once: ketacare.prepared):
    its patient and its plan, or that it has none, without another query; no such id, however
    large, is a 404."""
    from datetime import date

    from django.http import Http404

    from accounts.access import get_course_for_user
    from clinic.models import Plan, Schedule

    clinician = UserFactory(role=Role.CLINICIAN)
    planned, bare = CourseFactory(), CourseFactory()
    plan = Plan.objects.create(course=planned, route="iv", dose_mg_per_kg="0.5",
                               schedule=Schedule.KETAMINE_INDUCTION, steps=[],
                               starts_on=date(2026, 1, 1), set_by=clinician,
                               set_at=planned.created_at)
    for course in (planned, bare):
        with django_assert_num_queries(1):
            found = get_course_for_user(clinician, course.pk)
            assert (found, found.patient, found.started_on) == (
                course, course.patient, course.started_on)
            assert found.patient.last_name == course.patient.last_name
            if course is planned:
                assert found.plan == plan and found.plan.steps == []
            else:
                with pytest.raises(Plan.DoesNotExist):
                    found.plan  # noqa: B018
    for pk in (999999, 0, 2**63, 10**40):
        with pytest.raises(Http404):
            get_course_for_user(clinician, pk)
