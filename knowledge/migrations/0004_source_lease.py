from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0003_collections")]

    operations = [
        migrations.AddField(
            model_name="source",
            name="lease_expires_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="source",
            index=models.Index(fields=["status", "lease_expires_at"], name="source_status_lease"),
        ),
    ]
