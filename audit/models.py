from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class Action(models.TextChoices):
    CREATE = "create", "Created"
    UPDATE = "update", "Updated"
    SIGN = "sign", "Signed"
    CORRECT = "correct", "Corrected"
    PHASE_CHANGE = "phase_change", "Phase changed"
    END = "end", "Ended"
    STOP = "stop", "Stopped"
    VIEW = "view", "Viewed"
    DECIDE = "decide", "Decided"
    LOGIN = "login", "Logged in"
    LOGOUT = "logout", "Logged out"
    LOGIN_FAILED = "login_failed", "Login failed"
    PASSWORD_CHANGE = "password_change", "Password changed"
    PASSWORD_RESET = "password_reset", "Password reset"
    TWO_FACTOR_RESET = "two_factor_reset", "Two-factor reset"
    ROLE_CHANGE = "role_change", "Role changed"
    DEACTIVATE = "deactivate", "Deactivated"
    REACTIVATE = "reactivate", "Reactivated"
    LINK = "link", "Linked"
    UNLINK = "unlink", "Unlinked"
    EXPORT = "export", "Exported"
    DOWNLOAD = "download", "Downloaded"
    AMEND = "amend", "Amended"
    VOID = "void", "Voided"
    SEND = "send", "Sent"
    SEND_FAILED = "send_failed", "Sending failed"
    CANCEL = "cancel", "Cancelled"
    FLAG = "flag", "Flagged for review"


class AppendOnlyError(Exception):
    """Raised when code tries to change or remove an audit record."""

    def __init__(self, what: str):
        super().__init__(
            f"The audit trail is append-only: {what} is refused. Audit records are only ever "
            "added, through audit.log.record()."
        )


class AuditEventQuerySet(models.QuerySet):
    """The ORM cannot change or remove audit rows (HIPAA 164.312(b), ONC 170.315(d)(2)).

    This guards the application, not the database: someone with database access can still
    alter rows, which is what the hash chain and ``manage.py verify_audit`` detect.
    """

    def update(self, **kwargs):
        raise AppendOnlyError("updating audit records")

    update.alters_data = True

    def delete(self):
        raise AppendOnlyError("deleting audit records")

    delete.alters_data = True

    def _raw_delete(self, using):
        # The deletion collector's fast path, private but reachable; refused as well. (Deleting
        # a user never reaches here: the actor foreign key is PROTECT.)
        raise AppendOnlyError("deleting audit records")


class AuditEvent(models.Model):
    """One audited event: who, when, what, and the record before and after.

    Rows are only ever inserted (by :func:`audit.log.record`), each chained by hash to the one
    before it so that an altered or missing row can be detected. The ORM refuses to update or
    delete them (see :class:`AuditEventQuerySet`).
    """

    at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+",
    )
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=20, choices=Action.choices, db_index=True)
    object_type = models.CharField(max_length=50)
    object_id = models.CharField(max_length=40, blank=True)
    patient_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    summary = models.CharField(max_length=255, blank=True)
    before = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [
            # The last change that is not a view, to anything or to one patient's record:
            # ketacare.fragments.data_version() and with_record_versions().
            models.Index(fields=["id"], name="audit_change_id",
                         condition=~models.Q(action="view")),
            models.Index(fields=["patient_id", "id"], name="audit_patient_change_id",
                         condition=~models.Q(action="view")),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_name} {self.action} {self.object_type}"

    def save(self, **kwargs) -> None:
        """Insert only: a saved row is never written again."""
        if not self._state.adding or kwargs.get("force_update") or kwargs.get("update_fields"):
            raise AppendOnlyError("saving changes to an existing audit record")
        # Always an INSERT: a new instance given an existing id must fail, not overwrite it.
        super().save(**{**kwargs, "force_insert": True})

    def delete(self, using=None, keep_parents=False):
        raise AppendOnlyError("deleting an audit record")

    def changes(self) -> list[tuple[str, object, object]]:
        """(field, before, after) for each field the event changed, in field order.

        A creation lists every field with ``None`` before; a view or login lists nothing.
        """
        before, after = self.before or {}, self.after or {}
        names = list(before) + [name for name in after if name not in before]
        return [
            (name, before.get(name), after.get(name))
            for name in names
            if before.get(name) != after.get(name)
        ]


class ChainHead(models.Model):
    """The single row that serializes audit writers: locked while the next hash is computed."""

    last_hash = models.CharField(max_length=64)
    last_id = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"audit chain head at record {self.last_id}"
