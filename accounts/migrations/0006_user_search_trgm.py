"""Trigram indexes for the users list's search (`icontains` on email and full name, which
Django writes `UPPER(col::text) LIKE UPPER('%term%')`): without them every search scans
every account, twice (the count and the page).

PostgreSQL only, and only where pg_trgm can be enabled (it is a trusted extension from
PostgreSQL 13: the database's owner may create it); elsewhere search stays a scan, which
is correct, only slower. No model state: SQLite has no such index.
"""

from django.db import DatabaseError, migrations, transaction

INDEXES = {
    "accounts_user_email_trgm": "email",
    "accounts_user_full_name_trgm": "full_name",
}


def _trigrams_available(schema_editor) -> bool:
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        if cursor.fetchone():
            return True
        try:
            with transaction.atomic(using=connection.alias):
                cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        except DatabaseError:
            return False
    return True


def create(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql" or not _trigrams_available(schema_editor):
        return
    for name, column in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON accounts_user "
            f"USING gin ((UPPER({column}::text)) gin_trgm_ops)"
        )


def drop(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_hash_backup_codes"),
    ]

    operations = [migrations.RunPython(create, drop)]
