from django.db import migrations, models
from django.db.models import Q

# Components made by OpenLineage jobs whose runs never named a dataset (dbt-ol's job per SQL
# statement, DAG runs) leave the component list (docs/API.md, "What an event becomes"). The
# existing ones are found once here; from now on the commit keeps the column. A job known
# only from JobEvents stays listed: nothing kept says whether it was also registered natively.


def hide_jobs_that_named_no_dataset(apps, schema_editor):
    Component = apps.get_model("components", "Component")
    LineageRun = apps.get_model("runs", "LineageRun")
    Run = apps.get_model("runs", "Run")
    jobs = set(LineageRun.objects.values_list("job", flat=True).distinct())
    named = set(
        LineageRun.objects.filter(~Q(inputs=[]) | ~Q(outputs=[])).values_list("job", flat=True).distinct()
    )
    # A run logged natively to a job's component registers it natively.
    native = set(
        Run.objects.filter(component__name__in=jobs - named, openlineage__isnull=True)
        .values_list("component__name", flat=True)
        .distinct()
    )
    hidden = sorted(jobs - named - native)
    for start in range(0, len(hidden), 1000):
        Component.objects.filter(name__in=hidden[start : start + 1000]).update(listed=False)


class Migration(migrations.Migration):
    dependencies = [
        ("components", "0001_initial"),
        ("runs", "0008_lineagerun_sql"),
    ]

    operations = [
        migrations.AddField(
            model_name="component",
            name="listed",
            field=models.BooleanField(default=True, db_default=True),
        ),
        migrations.RunPython(hide_jobs_that_named_no_dataset, migrations.RunPython.noop),
    ]
