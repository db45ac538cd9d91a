from django.db import migrations, models


class Migration(migrations.Migration):
    """When a user last forced a refresh of the account (one per CONNECTORS_FORCED_REFRESH_INTERVAL_SECONDS)."""

    dependencies = [
        ('connectors', '0008_provider_mixup_metadata'),
    ]

    operations = [
        migrations.AddField(
            model_name='connectedaccount',
            name='forced_refresh_at',
            field=models.DateTimeField(blank=True, help_text='last refresh a user asked for', null=True),
        ),
    ]
