"""The indexes of the patient search and of the REMS-enrolled patients.

The patient search reads indexes on PostgreSQL: trigrams (pg_trgm) of UPPER() of each
column it searches, which serve its ``UPPER(column) LIKE UPPER('%word%')`` (``icontains``)
for any word of three characters or more. A word matches one of the three columns, so each
word is a BitmapOr of the three indexes and the words a BitmapAnd of those.

tests/test_patients.py checks on PostgreSQL that the search uses them. SQLite (development)
has no trigrams: its search reads the table, as before.

The REMS forms (the day sheet's counts, the queue) start from the enrolled patients, through a
partial index of them: few, or none in most clinics.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations, models

COLUMNS = ("first_name", "last_name", "record_number")


class Trigrams(TrigramExtension):
    """pg_trgm, on PostgreSQL only, both ways (Django's reverse asks any database for
    pg_extension)."""

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for column in COLUMNS:
            # The expression of Django's icontains, UPPER("column"::text), as PostgreSQL
            # stores it whether or not the cast is written.
            schema_editor.execute(
                f'CREATE INDEX "patient_{column}_trgm" ON "patients_patient" '
                f'USING gin (UPPER("{column}"::text) gin_trgm_ops)'
            )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for column in COLUMNS:
            schema_editor.execute(f'DROP INDEX IF EXISTS "patient_{column}_trgm"')


class Migration(migrations.Migration):

    dependencies = [
        ('patients', '0007_rems_enrolment'),
    ]

    operations = [
        Trigrams(),
        migrations.RunPython(create_indexes, drop_indexes),
        migrations.AddIndex(
            model_name='patient',
            index=models.Index(condition=models.Q(('rems_enrolled_on__isnull', False)),
                               fields=['rems_enrolled_on'], name='patient_rems_enrolled_idx'),
        ),
    ]
