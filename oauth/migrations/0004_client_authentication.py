# CIMD clients' private_key_jwt authentication: the profile keeps the declared method and keys;
# accepted assertion jtis and token families issued after an assertion (oauth.client_assertion)

import django.db.models.deletion
from django.db import migrations, models
from oauth2_provider.settings import oauth2_settings


class Migration(migrations.Migration):
    dependencies = [
        ("platform_oauth", "0003_refresh_successor_stepup_code_challenge"),
        migrations.swappable_dependency(oauth2_settings.APPLICATION_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="clientprofile",
            name="token_endpoint_auth_method",
            field=models.CharField(
                blank=True,
                choices=[
                    ("", "as django-oauth-toolkit decides (a client secret, or none for a public client)"),
                    ("private_key_jwt", "private_key_jwt (RFC 7523 client assertion signed with the client's key)"),
                ],
                default="",
                max_length=32,
            ),
        ),
        migrations.AddField(
            model_name="clientprofile", name="signing_alg", field=models.CharField(blank=True, max_length=8)
        ),
        migrations.AddField(model_name="clientprofile", name="jwks", field=models.JSONField(blank=True, null=True)),
        migrations.AddField(
            model_name="clientprofile", name="jwks_uri", field=models.URLField(blank=True, max_length=2000)
        ),
        migrations.AddField(
            model_name="clientprofile", name="jwks_expires_at", field=models.DateTimeField(blank=True, null=True)
        ),
        migrations.AddField(
            model_name="clientprofile", name="jwks_fetched_at", field=models.DateTimeField(blank=True, null=True)
        ),
        migrations.CreateModel(
            name="ClientAssertionJti",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("jti_hash", models.CharField(max_length=64)),
                ("expires_at", models.DateTimeField(db_index=True)),
                (
                    "application",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to=oauth2_settings.APPLICATION_MODEL,
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("application", "jti_hash"), name="unique_assertion_jti")
                ]
            },
        ),
        migrations.CreateModel(
            name="AssertedTokenFamily",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("token_family", models.UUIDField(unique=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "application",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to=oauth2_settings.APPLICATION_MODEL,
                    ),
                ),
            ],
        ),
    ]
