import django.db.models.deletion
import fernet_fields.fields
from django.db import migrations, models


class Migration(migrations.Migration):
    """Soft-deleted providers (kept until their grants are revoked) and grants no account holds any more,
    with a snapshot of where to revoke them."""

    dependencies = [
        ('connectors', '0006_credential_generation'),
    ]

    operations = [
        migrations.AddField(
            model_name='provider',
            name='deleted_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.CreateModel(
            name='RetiredGrant',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('reason', models.CharField(max_length=32)),
                ('revocation_endpoint', models.URLField(blank=True, max_length=500)),
                ('client_id', models.CharField(max_length=500)),
                ('client_secret', fernet_fields.fields.EncryptedTextField(blank=True, default='')),
                ('token_endpoint_auth_method', models.CharField(max_length=32)),
                ('access_token', fernet_fields.fields.EncryptedTextField(blank=True, default='')),
                ('refresh_token', fernet_fields.fields.EncryptedTextField(blank=True, null=True)),
                ('attempts', models.PositiveIntegerField(default=0)),
                ('next_attempt_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('account', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='connectors.connectedaccount')),
                ('provider', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='connectors.provider')),
            ],
        ),
    ]
