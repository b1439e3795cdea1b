import secrets

from django.db import migrations, models


def give_tokens(apps, schema_editor):
    """Claims made before verification existed get a token and must be verified."""
    ProviderDomain = apps.get_model("federation", "ProviderDomain")
    for claim in ProviderDomain.objects.filter(verification_token=""):
        claim.verification_token = secrets.token_urlsafe(24)
        claim.save(update_fields=["verification_token"])


class Migration(migrations.Migration):
    dependencies = [
        ("federation", "0002_saml"),
    ]

    operations = [
        migrations.AddField(
            model_name="providerdomain",
            name="verification_token",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="providerdomain",
            name="verified_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(give_tokens, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="providerdomain",
            name="domain",
            field=models.CharField(db_index=True, max_length=253),
        ),
        migrations.AddConstraint(
            model_name="providerdomain",
            constraint=models.UniqueConstraint(
                fields=("provider", "domain"), name="federation_domain_per_provider"
            ),
        ),
        migrations.AddConstraint(
            model_name="providerdomain",
            constraint=models.UniqueConstraint(
                condition=models.Q(("verified_at__isnull", False)),
                fields=("domain",),
                name="federation_domain_verified_once",
            ),
        ),
    ]
