"""PostgreSQL keeps the rate counters out of its write-ahead log (an UNLOGGED table):
each count is a commit, and a logged commit waits for the log to reach the disk. Counts
are worthless after a crash (the table is emptied then), so nothing is lost that matters.
Other databases are left as they are."""

from django.db import migrations


def _set_logged(logged: bool):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            mode = "LOGGED" if logged else "UNLOGGED"
            schema_editor.execute(f"ALTER TABLE iamportal_ratecounter SET {mode}")

    return run


class Migration(migrations.Migration):
    dependencies = [("iamportal", "0001_initial")]

    operations = [migrations.RunPython(_set_logged(False), _set_logged(True))]
