"""The Rules and Sources pages: every logged-in role reads them; they describe every flag and
name every document by its title, never by a file number or the specification."""

import re

import pytest
from django.urls import reverse

from accounts.models import Role
from clinical.engine import FlagCode
from clinical.sources import DOCUMENTS
from guidance.rules import FLAG_GROUPS
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PAGES = ["guidance:rules", "guidance:sources"]


@pytest.mark.parametrize("name", PAGES)
def test_anonymous_visitors_go_to_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize("role", [Role.CLINICIAN, Role.CLINIC_ADMIN, Role.REFERRING_PROVIDER])
def test_every_role_reads_them_and_nothing_is_posted(as_user, name, role):
    client = as_user(UserFactory(role=role))
    assert client.get(reverse(name)).status_code == 200
    assert client.post(reverse(name)).status_code == 405


def test_an_inactive_account_reads_nothing(as_user):
    user = UserFactory(role=Role.REFERRING_PROVIDER)
    client = as_user(user)
    user.is_active = False
    user.save()
    assert client.get(reverse("guidance:rules")).status_code in (302, 404)


def test_every_flag_code_is_described_once():
    described = [rule.code for group in FLAG_GROUPS for rule in group.rules]
    assert sorted(described) == sorted(FlagCode)


def test_the_rules_page_shows_each_flag_with_its_readable_source(as_user):
    body = as_user(UserFactory(role=Role.REFERRING_PROVIDER)).get(
        reverse("guidance:rules")).content.decode()
    for code in FlagCode:
        assert f'data-rule="{code}"' in body
    assert "When Initial Treatment Fails: step 3" in body
    assert "Poorly tolerated dose" in body
    assert "4 or less" in body  # the clinic's PHQ-9 remission setting


def test_the_sources_page_lists_every_document_by_title(as_user):
    body = as_user(UserFactory(role=Role.CLINICIAN)).get(
        reverse("guidance:sources")).content.decode()
    for document in DOCUMENTS:
        assert document.title.replace("'", "&#x27;") in body
        for item in document.takes:
            assert item.replace("'", "&#x27;")[:40] in body


@pytest.mark.parametrize("name", PAGES)
def test_no_page_names_the_specification_or_a_file_number(as_user, name):
    body = as_user(UserFactory(role=Role.CLINICIAN)).get(reverse(name)).content.decode()
    text = re.sub(r"<[^>]+>", " ", body)
    assert "SPEC" not in text and "§" not in text
    assert not re.search(r"\b00[0-4]\b", text)


# -- Readable sources where flags are shown ---------------------------------------------------


@pytest.fixture
def flagged(clinician):
    """A course with a benzodiazepine (source: step 3 and medications to avoid) and no
    baseline score (SCORES_OVERDUE)."""
    from datetime import date

    from courses.evaluation import refresh_evaluation
    from tests.factories import CourseFactory, MedicationFactory, PatientFactory, SessionFactory

    referrer = UserFactory(role=Role.REFERRING_PROVIDER)
    course = CourseFactory(patient=PatientFactory(referring_provider=referrer))
    MedicationFactory(patient=course.patient, name="clonazepam", drug_class="benzodiazepine",
                      started_on=date(2020, 1, 1))
    SessionFactory(course=course)
    refresh_evaluation(course)
    return course, referrer


def _no_file_numbers(text: str) -> None:
    sources = re.findall(r"Source: ([^\n<]*)", text)
    assert sources, "no source shown"
    for source in sources:
        assert not re.search(r"\b00[0-4]\b", source), source


def test_the_course_page_names_sources_by_title_and_shows_scores_overdue(as_user, clinician,
                                                                         flagged):
    course, _ = flagged
    body = as_user(clinician).get(reverse("courses:detail", args=[course.pk])).content.decode()
    assert ("Source: When Initial Treatment Fails: step 3; Treating Treatment-Resistant "
            "Depression: medications to avoid or adjust") in body
    assert 'data-flag="SCORES_OVERDUE"' in body
    assert "Score MADRS or PHQ-9 now: the status and every outcome-based flag depend on it." in body
    assert "Source: When Initial Treatment Fails: documentation requirements" in body
    _no_file_numbers(body)


def test_the_flag_decision_page_names_the_source_by_title(as_user, clinician, flagged):
    course, _ = flagged
    url = reverse("courses:flag-decide", args=[course.pk, "SCORES_OVERDUE"])
    body = as_user(clinician).get(url).content.decode()
    assert "Source: When Initial Treatment Fails: documentation requirements" in body
    _no_file_numbers(body)


def test_the_report_and_its_pdf_name_sources_by_title(as_user, flagged):
    from tests.test_reports import pdf_text

    course, referrer = flagged
    client = as_user(referrer)
    body = client.get(reverse("reports:patient", args=[course.patient.pk])).content.decode()
    assert "Source: When Initial Treatment Fails: step 3" in body
    _no_file_numbers(body)
    text = pdf_text(client.get(reverse("reports:patient-pdf", args=[course.patient.pk])))
    assert "When Initial Treatment Fails" in " ".join(text.split())
    _no_file_numbers(text)


def test_scores_overdue_offers_the_scoring_forms_to_clinicians_only(as_user, clinician, flagged):
    course, _ = flagged
    url = reverse("courses:detail", args=[course.pk])
    madrs = reverse("assessments:new", args=[course.pk, "madrs"])
    assert f'href="{madrs}">Score MADRS' in as_user(clinician).get(url).content.decode()
    admin = as_user(UserFactory(role=Role.CLINIC_ADMIN)).get(url).content.decode()
    assert 'data-flag="SCORES_OVERDUE"' in admin and ">Score MADRS<" not in admin
