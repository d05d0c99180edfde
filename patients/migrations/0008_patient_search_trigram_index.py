"""The patient search reads indexes on PostgreSQL: trigrams (pg_trgm) of UPPER() of each
column it searches, which serve its ``UPPER(column) LIKE UPPER('%word%')`` (``icontains``)
for any word of three characters or more. A word matches one of the three columns, so each
word is a BitmapOr of the three indexes and the words a BitmapAnd of those.

tests/test_patients.py checks on PostgreSQL that the search uses them. SQLite (development)
has no trigrams: its search reads the table, as before.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

COLUMNS = ("first_name", "last_name", "record_number")


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
        TrigramExtension(),  # does nothing on another database
        migrations.RunPython(create_indexes, drop_indexes),
    ]
