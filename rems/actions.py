"""Recording and undoing a REMS form's submission: atomic, audited against the patient (the
cached pages that show the form change with it)."""

from datetime import date

from django.utils import timezone

from audit.log import audited, record, snapshot
from audit.models import Action
from courses.models import TreatmentSession
from rems.models import Submission

FIELDS = ["session", "submitted_on", "confirmation", "recorded_by", "recorded_at"]


class AlreadySubmitted(ValueError):
    """The form was marked submitted meanwhile (another clinician, a resent form)."""


@audited()
def record_submission(user, session: TreatmentSession, submitted_on: date,
                      confirmation: str) -> Submission:
    TreatmentSession.objects.select_for_update().get(pk=session.pk)
    if Submission.objects.filter(session=session).exists():
        raise AlreadySubmitted
    submission = Submission.objects.create(
        session=session, submitted_on=submitted_on, confirmation=confirmation,
        recorded_by=user, recorded_at=timezone.now(),
    )
    record(user, Action.CREATE, submission, patient_id=session.course.patient_id,
           after=snapshot(submission, FIELDS), summary="REMS form marked submitted")
    return submission


@audited()
def undo_submission(user, submission: Submission, reason: str) -> None:
    session = TreatmentSession.objects.select_for_update().select_related("course").get(
        pk=submission.session_id)
    before = snapshot(submission, FIELDS)
    record(user, Action.CANCEL, submission, patient_id=session.course.patient_id,
           before=before, after={"reason": reason}, summary="REMS submission undone")
    submission.delete()
