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


class AuditEvent(models.Model):
    """One audited event: who, when, what, and the record before and after.

    Rows are only ever inserted (by :func:`audit.log.record`), each chained by hash to the one
    before it so that an altered or missing row can be detected.
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

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_name} {self.action} {self.object_type}"


class ChainHead(models.Model):
    """The single row that serializes audit writers: locked while the next hash is computed."""

    last_hash = models.CharField(max_length=64)
    last_id = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"audit chain head at record {self.last_id}"
