"""Replace backup codes stored in clear by their keyed digest (accounts.tokens).

Irreversible: the codes cannot be recovered from their digests.
"""

from __future__ import annotations

from django.db import migrations

from accounts.tokens import backup_code_digest


def hash_backup_codes(apps, schema_editor) -> None:
    StaticToken = apps.get_model("otp_static", "StaticToken")
    for token in StaticToken.objects.all().iterator():
        # Stored as generated: lower-case, no separators, as accounts.mfa types them.
        token.token = backup_code_digest(token.token.lower())
        token.save(update_fields=["token"])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_canonical_emails"),
        ("otp_static", "0003_add_timestamps"),
    ]

    operations = [
        migrations.RunPython(hash_backup_codes, migrations.RunPython.noop),
    ]
