"""Signing and correcting assessments. Signed entries are never edited in place."""

from django.db import transaction
from django.utils import timezone

from assessments.models import Assessment
from audit.log import record, snapshot
from audit.models import Action
from courses.evaluation import refresh_evaluation


@transaction.atomic
def sign_assessment(user, assessment: Assessment) -> Assessment:
    """Save a new assessment as signed by ``user``; the total is computed from the items."""
    assessment.total = assessment.definition.total(assessment.items)
    assessment.scored_by = user
    assessment.signed_at = timezone.now()
    assessment.save()
    record(user, Action.SIGN, assessment, patient_id=assessment.course.patient_id,
           after=snapshot(assessment))
    refresh_evaluation(assessment.course)
    return assessment


class AlreadyCorrected(ValueError):
    """Only the latest version of an entry can be corrected."""


@transaction.atomic
def correct_assessment(user, original: Assessment, correction: Assessment, reason: str):
    """Record ``correction`` as a new signed entry that replaces ``original``; both are kept."""
    original = Assessment.objects.select_for_update().get(pk=original.pk)
    if Assessment.objects.filter(replaces=original).exists():
        raise AlreadyCorrected("This entry has already been corrected; correct the latest version.")
    correction.replaces = original
    correction.correction_reason = reason
    correction.course = original.course
    correction.instrument = original.instrument
    correction.total = correction.definition.total(correction.items)
    correction.scored_by = user
    correction.signed_at = timezone.now()
    correction.save()
    record(user, Action.CORRECT, correction, patient_id=original.course.patient_id,
           before=snapshot(original), after=snapshot(correction), summary=reason)
    refresh_evaluation(original.course)
    return correction
