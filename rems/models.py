"""A Spravato REMS monitoring form's submission (SPEC §8). The form itself is not stored: it is
filled from the record each time it is read (rems.filling), so it cannot drift from the
session. What only the clinic knows is kept here: that it was submitted, when, and the REMS
confirmation number. Undoing a submission removes the row; the audit trail keeps both."""

from django.conf import settings
from django.db import models

from courses.models import TreatmentSession


class Submission(models.Model):
    session = models.OneToOneField(TreatmentSession, on_delete=models.PROTECT,
                                   related_name="rems_submission")
    submitted_on = models.DateField("submitted on")
    confirmation = models.CharField("REMS confirmation number", max_length=40)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                    related_name="+")
    recorded_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"REMS form of session {self.session_id}: submitted {self.submitted_on}"
