"""The API keys list reads a page of an organization's newest keys from an index."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("organizations", "0005_principal_tags"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="apikey",
            index=models.Index(fields=["organization", "-created_at"], name="org_apikey_created"),
        ),
    ]
