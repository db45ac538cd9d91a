# SpareSchema moved to the pgtenancy app (pgtenancy.0001_initial): its table stays, only Django's model
# state leaves the tenants app.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0002_spareschema"),
        ("pgtenancy", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="SpareSchema")]),
    ]
