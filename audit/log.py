"""Writing and verifying the audit trail.

Every action calls :func:`record` inside its own transaction, so the audit row and the change it
describes are saved together or not at all. Each row's hash covers its content and the previous
row's hash; :func:`verify_chain` recomputes them and names the first row that does not fit.
"""

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.utils import timezone

from audit.models import Action, AuditEvent, ChainHead

GENESIS = "0" * 64


def _plain(value):
    """JSON-safe copy of ``value``, exactly as the JSONField will give it back."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def snapshot(instance: models.Model, fields: Iterable[str] | None = None) -> dict:
    """The instance's concrete field values (foreign keys as ids), for before/after."""
    names = fields or [f.name for f in instance._meta.concrete_fields]
    data = {}
    for name in names:
        field = instance._meta.get_field(name)
        data[name] = getattr(instance, field.attname)
    return _plain(data)


def _digest(event: AuditEvent) -> str:
    payload = {
        "at": event.at.astimezone(UTC).isoformat(),
        "actor": event.actor_id,
        "actor_name": event.actor_name,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "patient_id": event.patient_id,
        "summary": event.summary,
        "before": event.before,
        "after": event.after,
        "prev_hash": event.prev_hash,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@transaction.atomic
def record(
    actor,
    action: Action,
    obj: models.Model | None = None,
    *,
    object_type: str = "",
    object_id: str = "",
    patient_id: int | None = None,
    before: dict | None = None,
    after: dict | None = None,
    summary: str = "",
) -> AuditEvent:
    """Append one audit row, chained to the last. Call it inside the action's transaction."""
    head, _ = ChainHead.objects.select_for_update().get_or_create(
        pk=1, defaults={"last_hash": GENESIS}
    )
    user = actor if getattr(actor, "is_authenticated", False) else None
    event = AuditEvent(
        at=timezone.now(),
        actor=user,
        actor_name=user.get_username() if user else (str(actor) if actor else ""),
        action=action,
        object_type=object_type or (obj._meta.label if obj is not None else ""),
        object_id=object_id or (str(obj.pk) if obj is not None else ""),
        patient_id=patient_id,
        summary=summary[:255],
        before=_plain(before) if before is not None else None,
        after=_plain(after) if after is not None else None,
        prev_hash=head.last_hash,
    )
    event.hash = _digest(event)
    event.save()
    head.last_hash, head.last_id = event.hash, event.pk
    head.save(update_fields=["last_hash", "last_id"])
    return event


@dataclass(frozen=True)
class ChainProblem:
    event_id: int | None
    reason: str

    def __str__(self) -> str:
        where = f"audit record {self.event_id}" if self.event_id else "audit trail"
        return f"{where}: {self.reason}"


def verify_chain(batch_size: int = 2000) -> ChainProblem | None:
    """Recompute every hash in order; return the first problem, or None when intact.

    The chain head is read first, so rows written while the check runs (by a live clinic) are
    simply beyond its end and do not look like tampering.
    """
    head = ChainHead.objects.filter(pk=1).first()
    end_id = head.last_id if head else 0
    expected_prev = GENESIS
    last_id = 0
    rows = AuditEvent.objects.filter(id__lte=end_id).order_by("id")
    for event in rows.iterator(chunk_size=batch_size):
        if event.prev_hash != expected_prev:
            return ChainProblem(
                event.pk, f"does not follow record {last_id or 'start'}: a record before it "
                "was removed or altered",
            )
        if _digest(event) != event.hash:
            return ChainProblem(event.pk, "its content does not match its hash (altered)")
        expected_prev, last_id = event.hash, event.pk
    if head and (head.last_id != last_id or head.last_hash != expected_prev):
        return ChainProblem(
            head.last_id or None, f"the chain ends at record {last_id or 'start'} but the last "
            f"record written was {head.last_id}: records at the end were removed",
        )
    return None
