from django.db import migrations, models
from django.db.models import Count, OuterRef, Subquery

# How many events of each OpenLineage run came after its end, counted once here from the
# events recorded so far; from now on the commit keeps it.


def count_events_after_end(apps, schema_editor):
    LineageRun = apps.get_model("runs", "LineageRun")
    LineageEvent = apps.get_model("runs", "LineageEvent")
    after_end = LineageEvent.objects.filter(outcome="after end")
    counts = (
        after_end.filter(run_uuid=OuterRef("run_uuid"))
        .order_by()
        .values("run_uuid")
        .annotate(n=Count("id"))
        .values("n")
    )
    LineageRun.objects.filter(run_uuid__in=after_end.values("run_uuid")).update(
        events_after_end=Subquery(counts[:1])
    )


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0008_lineagerun_sql"),
    ]

    operations = [
        migrations.AddField(
            model_name="lineagerun",
            name="events_after_end",
            field=models.IntegerField(default=0),
        ),
        migrations.RunPython(count_events_after_end, migrations.RunPython.noop),
    ]
