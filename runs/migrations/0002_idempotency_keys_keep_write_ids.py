"""Idempotency keys keep the ids of the writes they recorded, not the answer's body: the view
rebuilds the answer (202 bodies are the ids; a sync answer is the objects as committed)."""

from django.db import migrations, models


def ids_of(response):
    if isinstance(response, dict):
        if isinstance(response.get("runs"), list):
            return [run["id"] for run in response["runs"] if isinstance(run, dict) and "id" in run]
        if "id" in response:
            return [response["id"]]
    return []


def forward(apps, schema_editor):
    IdempotencyKey = apps.get_model("runs", "IdempotencyKey")
    for key in IdempotencyKey.objects.all().iterator():
        key.write_ids = ids_of(key.response)
        key.created = None if key.status_code == 202 else key.status_code == 201
        key.save(update_fields=["write_ids", "created"])


class Migration(migrations.Migration):
    dependencies = [("runs", "0001_initial")]

    operations = [
        migrations.AddField("idempotencykey", "write_ids", models.JSONField(default=list)),
        migrations.AddField("idempotencykey", "created", models.BooleanField(null=True)),
        migrations.RunPython(forward, migrations.RunPython.noop),
        migrations.RemoveField("idempotencykey", "response"),
        migrations.RemoveField("idempotencykey", "status_code"),
    ]
