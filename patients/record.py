"""What the patient page shows of a patient's record: medications, courses, the open flags'
decisions of the current course, weights (with who recorded them) and prior trials.

Five queries through the ORM, compiled once per process (ketacare.prepared); on PostgreSQL
one statement, each list as JSON (ketacare.jsonrows). Both give the same instances, in the
same order (tests/test_patients.py compares them).
"""

from dataclasses import dataclass
from functools import cache

from django.db import connection

from clinical.vocab import Phase
from courses.models import Course, FlagDecision
from ketacare.jsonrows import columns, loads, reader, signer_columns, with_signer
from ketacare.prepared import Prepared, execute
from patients.models import Medication, PriorTrial, WeightRecord


@dataclass
class PatientRecord:
    medications: list[Medication]  # every one, stopped too, in the list's order
    courses: list[Course]  # newest first
    decisions: list[FlagDecision]  # of the course not ended, oldest first
    weights: list[WeightRecord]  # newest first, with who recorded them
    trials: list[PriorTrial]


def read_patient_record(patient_id: int) -> PatientRecord:
    if connection.vendor == "postgresql":
        return _in_one_statement(patient_id)
    return _through_the_orm(patient_id)


_ORM = {
    "medications": Prepared(lambda patient: Medication.objects.filter(patient_id=patient),
                            patient=int),
    "courses": Prepared(lambda patient: Course.objects.filter(patient_id=patient), patient=int),
    "decisions": Prepared(lambda patient: FlagDecision.objects.filter(
        course__patient_id=patient).exclude(course__phase=Phase.ENDED.value), patient=int),
    "weights": Prepared(lambda patient: WeightRecord.objects.filter(patient_id=patient)
                        .select_related("recorded_by").order_by("-measured_on", "-id"),
                        patient=int),
    "trials": Prepared(lambda patient: PriorTrial.objects.filter(patient_id=patient),
                       patient=int),
}


def _through_the_orm(patient_id: int) -> PatientRecord:
    return PatientRecord(**{name: query.objects(patient=patient_id)
                            for name, query in _ORM.items()})


_SQL = """
SELECT
  (SELECT coalesce(json_agg(json_build_array({medication_columns})
                            ORDER BY lower(m.name), m.started_on, m.id), '[]')
     FROM {medication} m WHERE m.patient_id = %(patient)s)::text,
  (SELECT coalesce(json_agg(json_build_array({course_columns})
                            ORDER BY c.started_on DESC, c.id DESC), '[]')
     FROM {course} c WHERE c.patient_id = %(patient)s)::text,
  (SELECT coalesce(json_agg(json_build_array({decision_columns})
                            ORDER BY d.decided_at, d.id), '[]')
     FROM {decision} d JOIN {course} c ON c.id = d.course_id
    WHERE c.patient_id = %(patient)s AND c.phase <> %(ended)s)::text,
  (SELECT coalesce(json_agg(json_build_array({weight_columns}, {signer})
                            ORDER BY w.measured_on DESC, w.id DESC), '[]')
     FROM {weight} w LEFT JOIN {user} u ON u.id = w.recorded_by_id
    WHERE w.patient_id = %(patient)s)::text,
  (SELECT coalesce(json_agg(json_build_array({trial_columns}) ORDER BY t.id), '[]')
     FROM {trial} t WHERE t.patient_id = %(patient)s)::text
"""


@cache
def _sql() -> str:
    from accounts.models import User

    quote = connection.ops.quote_name
    return _SQL.format(
        medication_columns=columns(Medication, "m"), course_columns=columns(Course, "c"),
        decision_columns=columns(FlagDecision, "d"), weight_columns=columns(WeightRecord, "w"),
        trial_columns=columns(PriorTrial, "t"), signer=signer_columns("u"),
        medication=quote(Medication._meta.db_table), course=quote(Course._meta.db_table),
        decision=quote(FlagDecision._meta.db_table), weight=quote(WeightRecord._meta.db_table),
        trial=quote(PriorTrial._meta.db_table), user=quote(User._meta.db_table),
    )


def _in_one_statement(patient_id: int) -> PatientRecord:
    with connection.cursor() as cursor:
        execute(cursor, _sql(), {"patient": patient_id, "ended": Phase.ENDED.value})
        medications, courses, decisions, weights, trials = cursor.fetchone()

    def made(model, text):
        read = reader(model)
        return [read(values) for values in loads(text)]

    return PatientRecord(
        medications=made(Medication, medications),
        courses=made(Course, courses),
        decisions=made(FlagDecision, decisions),
        weights=with_signer(WeightRecord, "recorded_by", loads(weights)),
        trials=made(PriorTrial, trials),
    )
