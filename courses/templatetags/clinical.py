from django import template

from clinical.engine import FlagCode
from clinical.sources import readable
from clinical.vocab import Instrument, Status, Trajectory

register = template.Library()

STATUS_CLASSES = {
    Status.REMISSION: "text-bg-success",
    Status.RESPONSE: "text-bg-success",
    Status.PARTIAL_RESPONSE: "text-bg-warning",
    Status.NON_RESPONSE: "text-bg-danger",
    Status.INSUFFICIENT_DATA: "text-bg-secondary",
}
FLAG_LABELS = {
    FlagCode.BP_ELEVATED: "BP elevated",
    FlagCode.TRD_NOT_VERIFIED: "TRD not verified",
    FlagCode.MAOI_WASHOUT: "MAOI washout",
    FlagCode.NO_SIGNAL_AFTER_4: "No signal after 4 sessions",
}
SEVERITY_CLASSES = {"critical": "danger", "warning": "warning", "info": "info"}


@register.filter
def status_label(value: str) -> str:
    return Status(value).label if value else ""


@register.filter
def status_class(value: str) -> str:
    return STATUS_CLASSES.get(value, "text-bg-secondary")


@register.filter
def trajectory_label(value: str) -> str:
    return Trajectory(value).label if value else ""


@register.filter
def instrument_label(value: str) -> str:
    return Instrument(value).label


@register.filter
def flag_label(code: str) -> str:
    try:
        flag = FlagCode(code)
    except ValueError:
        return code
    return FLAG_LABELS.get(flag, flag.label)


@register.filter
def severity_class(severity: str) -> str:
    return SEVERITY_CLASSES.get(severity, "secondary")


@register.filter
def vitals(session, kind: str) -> str:
    """A session's readings of one kind at its three moments, "before · peak · discharge":
    ``bp`` (mmHg) or ``hr`` (beats a minute); a reading not taken is "–"."""
    moments = ("pre", "peak", "discharge")
    if kind == "bp":
        readings = [
            (getattr(session, f"bp_{m}_systolic"), getattr(session, f"bp_{m}_diastolic"))
            for m in moments
        ]
        words = [f"{s}/{d}" if s is not None and d is not None else "–" for s, d in readings]
    else:
        words = [str(v) if (v := getattr(session, f"hr_{m}")) is not None else "–"
                 for m in moments]
    return "" if set(words) == {"–"} else " · ".join(words)


@register.filter
def source_label(source: str) -> str:
    """A flag's source by document title and section, never a file number."""
    return readable(source) if source else ""
