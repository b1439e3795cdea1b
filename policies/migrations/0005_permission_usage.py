# Permission usage (#16 item 3): when each principal was last allowed and denied each action.

import uuid

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("organizations", "0001_initial"),
        ("policies", "0004_policy_versions"),
    ]

    operations = [
        migrations.CreateModel(
            name="PermissionUsage",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                (
                    "principal_type",
                    models.CharField(
                        choices=[("user", "User"), ("application", "Application")], max_length=16
                    ),
                ),
                ("principal_id", models.UUIDField()),
                ("action", models.CharField(max_length=128)),
                (
                    "project_id",
                    models.UUIDField(default=uuid.UUID("00000000-0000-0000-0000-000000000000")),
                ),
                ("last_allowed_at", models.DateTimeField(blank=True, null=True)),
                ("last_denied_at", models.DateTimeField(blank=True, null=True)),
                (
                    "organization",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="organizations.organization",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=(
                            "organization",
                            "principal_type",
                            "principal_id",
                            "action",
                            "project_id",
                        ),
                        name="policies_usage_unique",
                    )
                ],
            },
        ),
    ]
