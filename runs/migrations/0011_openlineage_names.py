"""The OpenLineage intake's names: the models LineageRun and LineageEvent become OpenLineageRun
and OpenLineageEvent, on the same tables, and the write kind "lineage" becomes "openlineage"."""

from django.db import migrations, models


def kind_rename(old: str, new: str):
    def rename(apps, schema_editor):
        Write = apps.get_model("runs", "Write")
        Write.objects.filter(kind=old).update(kind=new)

    return rename


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0010_materialize"),
    ]

    operations = [
        # The tables keep their names: set them explicitly first, so the renames move no table.
        migrations.AlterModelTable(name="lineagerun", table="runs_lineagerun"),
        migrations.AlterModelTable(name="lineageevent", table="runs_lineageevent"),
        migrations.RenameModel(old_name="LineageRun", new_name="OpenLineageRun"),
        migrations.RenameModel(old_name="LineageEvent", new_name="OpenLineageEvent"),
        migrations.AlterField(
            model_name="write",
            name="kind",
            field=models.CharField(
                choices=[("component", "Component"), ("run", "Run"), ("openlineage", "OpenLineage event")],
                max_length=16,
            ),
        ),
        migrations.RunPython(kind_rename("lineage", "openlineage"), kind_rename("openlineage", "lineage")),
    ]
