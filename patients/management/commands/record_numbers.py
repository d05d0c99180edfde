"""List the record numbers that break the rule, and let a clinic admin fix one (audited).

    python manage.py record_numbers
    python manage.py record_numbers --fix PATIENT_ID NEW_NUMBER --by ADMIN_USERNAME
"""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Role, User
from audit.log import snapshot
from patients.actions import update_patient
from patients.models import Patient
from patients.record_numbers import RULE, invalid, is_valid


class Command(BaseCommand):
    help = "List record numbers that break the rule (letters, digits, - _ . only, at most 32 " \
           "characters), or fix one: --fix PATIENT_ID NEW_NUMBER --by ADMIN_USERNAME."

    def add_arguments(self, parser):
        parser.add_argument("--fix", nargs=2, metavar=("PATIENT_ID", "NEW_NUMBER"))
        parser.add_argument("--by", metavar="ADMIN_USERNAME",
                            help="the clinic admin making the change (it is audited as theirs)")

    def handle(self, *args, fix=None, by=None, **options):
        if fix is None:
            found = invalid(Patient.objects.all())
            for pk, number in found:
                self.stdout.write(f"patient {pk}: {number!r}")
            self.stdout.write(f"{len(found)} record number(s) break the rule. {RULE}")
            return
        admin = User.objects.filter(username=by or "", role=Role.CLINIC_ADMIN,
                                    is_active=True).first()
        if admin is None:
            raise CommandError("--by must name an active clinic admin: the change is audited "
                               "as theirs.")
        patient_id, number = fix
        whole = patient_id.isascii() and patient_id.isdigit()  # not "²", which int() refuses
        patient = Patient.objects.filter(pk=int(patient_id) if whole else 0).first()
        if patient is None:
            raise CommandError(f"There is no patient {patient_id}.")
        number = number.strip().upper()  # stored upper case, as the patient form does
        if not is_valid(number):
            raise CommandError(RULE)
        if Patient.objects.filter(record_number=number).exclude(pk=patient.pk).exists():
            raise CommandError(f"Another patient already has record number {number}.")
        before = snapshot(patient, ["record_number"])
        patient.record_number = number
        update_patient(admin, patient, before, ["record_number"])
        self.stdout.write(f"patient {patient.pk}: record number is now {number} (audited).")
