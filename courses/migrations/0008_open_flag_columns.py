from django.db import migrations, models


def fill_open_flag_columns(apps, schema_editor):
    """Fill the new columns of existing courses from their stored evaluation and decisions,
    computed by the same function refresh_evaluation uses (a query per course)."""
    from courses.evaluation import open_flag_fields

    Course = apps.get_model("courses", "Course")
    FlagDecision = apps.get_model("courses", "FlagDecision")
    for pk, evaluation in Course.objects.values_list("pk", "evaluation").iterator():
        decisions = FlagDecision.objects.filter(course_id=pk).order_by("decided_at", "id")
        fields = open_flag_fields(evaluation, decisions.only("code", "flag_message"))
        if fields["open_flags"]:
            Course.objects.filter(pk=pk).update(**fields)


class Migration(migrations.Migration):

    dependencies = [
        ("courses", "0007_course_optimization_recorded"),
    ]

    operations = [
        migrations.AddField(
            model_name="course",
            name="open_flag_rank",
            field=models.PositiveSmallIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="course",
            name="open_flags",
            field=models.PositiveSmallIntegerField(default=0, editable=False),
        ),
        migrations.AddIndex(
            model_name="course",
            index=models.Index(
                condition=models.Q(("open_flag_rank__isnull", False),
                                   models.Q(("phase", "ended"), _negated=True)),
                fields=["open_flag_rank", "-evaluated_at", "-id", "open_flags"],
                name="course_open_flags_idx",
            ),
        ),
        migrations.RunPython(fill_open_flag_columns, migrations.RunPython.noop),
    ]
