from django.db import migrations, models


class Migration(migrations.Migration):
    """Each credential write carries the account's generation: a refresh stores its answer only if the
    credential still has the generation it read (not replaced by a reconnect, not ended meanwhile)."""

    dependencies = [
        ('connectors', '0005_connectedaccount_next_refresh_at_and_more'),
    ]

    operations = [
        migrations.AddField(
            model_name='connectedaccount',
            name='credential_generation',
            field=models.PositiveBigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='credential',
            name='generation',
            field=models.PositiveBigIntegerField(default=0, help_text="the account's credential_generation"),
        ),
    ]
