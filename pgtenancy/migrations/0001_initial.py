# The SpareSchema model moved here from the tenants app: its table stays (tenants_spareschema), only
# Django's model state changes hands (tenants.0003_spareschema_moved takes it out of the tenants app).

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("tenants", "0002_spareschema"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="SpareSchema",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID"),
                        ),
                        ("name", models.CharField(max_length=63, unique=True)),
                        ("fingerprint", models.CharField(db_index=True, max_length=32)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                    ],
                    options={"db_table": "tenants_spareschema"},
                ),
            ],
        ),
    ]
