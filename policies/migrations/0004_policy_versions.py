# Policy versions (#16 item 5): the model, the policy's current number, and version 1 of
# every existing custom or guardrail policy as it stands.

import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def first_versions(apps, schema_editor):
    Policy = apps.get_model("policies", "Policy")
    PolicyVersion = apps.get_model("policies", "PolicyVersion")
    policies = Policy.objects.exclude(kind="managed").prefetch_related(
        "rules__projects", "rules__resources"
    )
    versions = []
    for policy in policies.iterator(chunk_size=500):
        rules = sorted(policy.rules.all(), key=lambda rule: rule.position)
        snapshot = [
            {
                "position": rule.position,
                "effect": rule.effect,
                "actions": list(rule.actions),
                "scope": rule.scope,
                "projects": sorted(str(project.pk) for project in rule.projects.all()),
                "resources": sorted(str(resource.pk) for resource in rule.resources.all()),
                "condition": rule.condition,
            }
            for rule in rules
        ]
        versions.append(
            PolicyVersion(
                policy=policy,
                number=1,
                name=policy.name,
                description=policy.description,
                rules=snapshot,
                change="as it stood when versions began",
            )
        )
    PolicyVersion.objects.bulk_create(versions, batch_size=500)


class Migration(migrations.Migration):
    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("policies", "0003_rule_resources"),
    ]

    operations = [
        migrations.AddField(
            model_name="policy",
            name="version",
            field=models.PositiveIntegerField(default=1),
        ),
        migrations.CreateModel(
            name="PolicyVersion",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("number", models.PositiveIntegerField()),
                ("author_label", models.CharField(blank=True, max_length=255)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("name", models.CharField(max_length=128)),
                ("description", models.TextField(blank=True, max_length=1000)),
                ("rules", models.JSONField(blank=True, default=list)),
                ("change", models.CharField(max_length=255)),
                (
                    "author",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "policy",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="versions",
                        to="policies.policy",
                    ),
                ),
            ],
            options={
                "ordering": ["-number"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("policy", "number"), name="policies_version_number_unique"
                    )
                ],
            },
        ),
        migrations.RunPython(first_versions, migrations.RunPython.noop),
    ]
