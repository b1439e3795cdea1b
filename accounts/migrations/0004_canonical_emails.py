"""Store every account's email in its canonical form (accounts.emails).

Addresses that share a canonical form are two accounts for one mailbox: they are listed
and left untouched, never merged, for an operator to resolve. So are addresses with no
canonical form (a non-ASCII local part).
"""

from __future__ import annotations

import sys
from collections import defaultdict

from django.db import migrations

from accounts.emails import canonical_email_or_none


def canonicalise_emails(apps, schema_editor) -> None:
    User = apps.get_model("accounts", "User")
    by_canonical: dict[str, list[tuple[object, str]]] = defaultdict(list)
    for pk, email in User.objects.values_list("pk", "email"):
        canonical = canonical_email_or_none(email)
        if canonical is None:
            sys.stdout.write(f"\n  accounts: {email!r} has no canonical form; left as is.")
            continue
        by_canonical[canonical].append((pk, email))
    for canonical, rows in by_canonical.items():
        if len(rows) > 1:
            spellings = ", ".join(repr(email) for _, email in rows)
            sys.stdout.write(
                f"\n  accounts: {spellings} are one address ({canonical}); "
                "all left untouched, not merged: resolve them in the admin."
            )
            continue
        pk, email = rows[0]
        if email != canonical:
            User.objects.filter(pk=pk).update(email=canonical)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_usersession"),
    ]

    operations = [
        migrations.RunPython(canonicalise_emails, migrations.RunPython.noop, elidable=True),
    ]
