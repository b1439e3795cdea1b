"""SCIM tokens act in the trail under their own actor type."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0003_event_target_type_index"),
    ]

    operations = [
        migrations.AlterField(
            model_name="auditevent",
            name="actor_type",
            field=models.CharField(
                blank=True,
                choices=[
                    ("user", "User"),
                    ("application", "Application"),
                    ("api_key", "API key"),
                    ("scim_token", "SCIM token"),
                ],
                max_length=16,
            ),
        ),
    ]
