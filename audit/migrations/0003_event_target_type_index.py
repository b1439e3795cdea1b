"""The trail filtered by target type alone walks its own (type, time) index."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_chain_result_actor_indexes"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(
                fields=["organization", "target_type", "-occurred_at", "-id"],
                name="audit_org_target_type",
            ),
        ),
    ]
