# Written by hand: makemigrations cannot resolve django-oauth-toolkit's swappable token models
# (OAUTH2_PROVIDER_*_MODEL are DOT settings, not Django settings), as for 0003.

import django.db.models.deletion
from django.db import migrations, models
from oauth2_provider.settings import oauth2_settings


class Migration(migrations.Migration):
    dependencies = [
        ("platform_oauth", "0005_clientblock"),
        ("identity", "0001_initial"),
        migrations.swappable_dependency(oauth2_settings.ACCESS_TOKEN_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="clientprofile",
            name="jwt_bearer_grant",
            field=models.BooleanField(
                default=False,
                help_text="May present ID-JAGs from the tenant's trusted identity providers (JWT bearer grant). "
                "Confidential clients only.",
            ),
        ),
        migrations.CreateModel(
            name="IdJagToken",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("issuer", models.URLField(max_length=500)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "access_token",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="platform_id_jag",
                        to=oauth2_settings.ACCESS_TOKEN_MODEL,
                    ),
                ),
                (
                    "provider",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="identity.identityprovider"
                    ),
                ),
            ],
        ),
    ]
