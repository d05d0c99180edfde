from django.db import migrations, models


def mark_revision_1(apps, schema_editor):
    """Every evaluation stored before this column was computed under rules revision 1: mark it
    so, and `manage.py reevaluate` (or the course page, on read) computes it again. One UPDATE:
    the re-evaluation itself is a query or more per course, too slow for a migration."""
    Course = apps.get_model("courses", "Course")
    Course.objects.filter(evaluation__isnull=False, rules_revision__isnull=True).update(
        rules_revision=1
    )


class Migration(migrations.Migration):

    dependencies = [
        ('courses', '0004_outcome_fields'),
    ]

    operations = [
        migrations.AddField(
            model_name='course',
            name='rules_revision',
            field=models.PositiveSmallIntegerField(blank=True, db_index=True, editable=False, null=True),
        ),
        migrations.RunPython(mark_revision_1, migrations.RunPython.noop),
    ]
