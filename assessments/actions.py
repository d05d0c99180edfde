"""Signing and correcting assessments. Signed entries are never edited in place."""

from django.utils import timezone

from assessments.models import SELF_REPORT_SIGNER, Assessment, Source
from audit.log import audited, record, snapshot
from audit.models import Action
from courses.evaluation import refresh_evaluation


@audited()
def sign_assessment(user, assessment: Assessment) -> Assessment:
    """Save a new assessment as signed by ``user``; the total is computed from the items."""
    assessment.source = Source.CLINICIAN
    assessment.scored_by = user
    return _sign(user, assessment)


@audited()
def sign_self_report(assessment: Assessment) -> Assessment:
    """Save a patient's self-reported entry (SPEC §9): signed by the patient's link, not by a
    clinician, and audited with that actor. It counts like any other entry of its instrument."""
    assessment.source = Source.SELF_REPORT
    assessment.scored_by = None
    return _sign(SELF_REPORT_SIGNER, assessment, summary="self-report through the patient link")


def _sign(signer, assessment: Assessment, summary: str = "") -> Assessment:
    assessment.total = assessment.definition.total(assessment.items)
    assessment.signed_at = timezone.now()
    assessment.save()
    record(signer, Action.SIGN, assessment, patient_id=assessment.course.patient_id,
           after=snapshot(assessment), summary=summary)
    refresh_evaluation(assessment.course)
    return assessment


class AlreadyCorrected(ValueError):
    """Only the latest version of an entry can be corrected."""


@audited()
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
