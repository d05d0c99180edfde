"""MADRS and PHQ-9 entered item by item: totals, bands, validation, sign and correct."""

import pytest
from django.urls import reverse

from assessments.models import Assessment
from audit.models import Action, AuditEvent
from clinical.instruments import MADRS, PHQ9
from tests.factories import AssessmentFactory, CourseFactory

pytestmark = pytest.mark.django_db


def item_data(scores, **extra):
    data = {f"item_{n}": str(s) for n, s in enumerate(scores, 1) if s is not None}
    data.setdefault("administered_at", "2026-02-03T10:00")
    data.update(extra)
    return data


@pytest.mark.parametrize(
    "definition,total,band",
    [
        (MADRS, 0, "normal"), (MADRS, 6, "normal"), (MADRS, 7, "mild"), (MADRS, 19, "mild"),
        (MADRS, 20, "moderate"), (MADRS, 34, "moderate"), (MADRS, 35, "severe"),
        (MADRS, 60, "severe"),
        (PHQ9, 0, "minimal"), (PHQ9, 4, "minimal"), (PHQ9, 5, "mild"), (PHQ9, 9, "mild"),
        (PHQ9, 10, "moderate"), (PHQ9, 14, "moderate"), (PHQ9, 15, "moderately severe"),
        (PHQ9, 19, "moderately severe"), (PHQ9, 20, "severe"), (PHQ9, 27, "severe"),
    ],
)
def test_bands_match_the_spec_at_every_edge(definition, total, band):
    assert definition.band(total) == band


def test_us_core_phq9_example_totals_12_moderate():
    assert PHQ9.total([2, 2, 2, 2, 1, 1, 2, 0, 0]) == 12
    assert PHQ9.band(12) == "moderate"


def test_it_signs_a_madrs_with_the_computed_total(as_user, clinician):
    course = CourseFactory()
    url = reverse("assessments:new", args=[course.pk, "madrs"])
    response = as_user(clinician).post(url, item_data([4, 4, 4, 4, 3, 4, 3, 4, 3, 3]))
    assert response.status_code == 302
    assessment = Assessment.objects.get()
    assert (assessment.total, assessment.band) == (36, "severe")
    assert assessment.items == [4, 4, 4, 4, 3, 4, 3, 4, 3, 3]
    assert assessment.scored_by == clinician and assessment.signed_at is not None
    event = AuditEvent.objects.get(object_type="assessments.Assessment")
    assert (event.action, event.after["total"]) == (Action.SIGN, 36)


def test_it_ignores_a_typed_total(as_user, clinician):
    course = CourseFactory()
    url = reverse("assessments:new", args=[course.pk, "phq9"])
    as_user(clinician).post(url, item_data([1] * 9, total="27"))
    assert Assessment.objects.get().total == 9


@pytest.mark.parametrize(
    "scores,message",
    [
        ([4, 4, 4, None, 3, 4, 3, 4, 3, 3], "Item 4 (Reduced sleep) is required."),
        ([4, 4, 4, 7, 3, 4, 3, 4, 3, 3], "Item 4 (Reduced sleep) must be 0–6."),
        ([4, 4, 4, -1, 3, 4, 3, 4, 3, 3], "Item 4 (Reduced sleep) must be 0–6."),
        ([4, 4, 4, "x", 3, 4, 3, 4, 3, 3], "Item 4 (Reduced sleep) must be 0–6."),
    ],
)
def test_it_names_the_missing_or_out_of_range_item(as_user, clinician, scores, message):
    course = CourseFactory()
    url = reverse("assessments:new", args=[course.pk, "madrs"])
    response = as_user(clinician).post(url, item_data(scores))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Assessment.objects.exists()


def test_phq9_item_range_is_0_to_3(as_user, clinician):
    course = CourseFactory()
    url = reverse("assessments:new", args=[course.pk, "phq9"])
    response = as_user(clinician).post(url, item_data([1, 1, 1, 1, 1, 1, 1, 1, 4]))
    assert "Item 9 (Thoughts that you would be better off dead" in response.content.decode()
    assert not Assessment.objects.exists()


def test_the_form_shows_the_anchor_wording(as_user, clinician):
    course = CourseFactory()
    response = as_user(clinician).get(reverse("assessments:new", args=[course.pk, "madrs"]))
    body = response.content.decode()
    assert "Apparent sadness" in body and "Looks miserable all the time" in body
    phq = as_user(clinician).get(reverse("assessments:new", args=[course.pk, "phq9"]))
    assert "More than half the days" in phq.content.decode()


def test_a_correction_is_a_new_linked_entry_and_both_stay(as_user, clinician):
    original = AssessmentFactory(scored_by=clinician)
    client = as_user(clinician)
    url = reverse("assessments:correct", args=[original.pk])
    corrected = item_data([3, 4, 4, 4, 3, 4, 3, 4, 3, 3], reason="item 1 mis-keyed")
    response = client.post(url, corrected)
    assert response.status_code == 302
    original.refresh_from_db()
    correction = original.corrected_by
    assert (original.total, correction.total) == (36, 35)
    assert correction.replaces == original and correction.course == original.course
    assert list(Assessment.objects.current()) == [correction]
    event = AuditEvent.objects.get(action=Action.CORRECT)
    assert (event.before["total"], event.after["total"]) == (36, 35)
    assert event.summary == "item 1 mis-keyed"
    # the original cannot be corrected twice: the latest version is the one to correct
    again = client.post(url, item_data([0] * 10, reason="again"))
    assert again.status_code == 302
    assert Assessment.objects.count() == 2


def test_a_correction_needs_a_reason(as_user, clinician):
    original = AssessmentFactory()
    url = reverse("assessments:correct", args=[original.pk])
    response = as_user(clinician).post(url, item_data([0] * 10))
    assert "reason" in response.context["form"].errors
    assert Assessment.objects.count() == 1


def test_the_course_page_marks_the_corrected_entry(as_user, clinician):
    original = AssessmentFactory()
    client = as_user(clinician)
    client.post(
        reverse("assessments:correct", args=[original.pk]), item_data([1] * 10, reason="typo")
    )
    body = client.get(reverse("courses:detail", args=[original.course.pk])).content.decode()
    assert "corrected" in body and "correction" in body
