from django.db import migrations

INDEX = "course_tried_idx"


def create_index(apps, schema_editor):
    # The outcome dashboard's optimizations tried (outcomes.summary.TRIED_SQL) join each
    # accepted decision to its course by id and read the course's start and status: from this
    # index alone, not the course rows with their large evaluation JSON (a scan of those was
    # most of the page). Start and status are carried, not keys: no other query on the start
    # trades its own covering index (course_outcomes_idx) for this one. SQLite (development)
    # cannot INCLUDE and does without.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f'CREATE INDEX "{INDEX}" ON "courses_course" ("id") INCLUDE ("started_on", "status")'
        )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f'DROP INDEX IF EXISTS "{INDEX}"')


class Migration(migrations.Migration):

    dependencies = [
        ("courses", "0010_rems_intranasal_session_fields"),
    ]

    operations = [
        migrations.RunPython(create_index, drop_index),
    ]
