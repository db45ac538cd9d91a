from django.db import migrations, models


class Migration(migrations.Migration):
    """What the issuer's discovery document says about the mix-up defence (RFC 9207) and its ID-token keys."""

    dependencies = [
        ('connectors', '0007_provider_deletion_and_retired_grants'),
    ]

    operations = [
        migrations.AddField(
            model_name='provider',
            name='authorization_response_iss_parameter_supported',
            field=models.BooleanField(default=False, help_text='the provider says it sends iss with every authorization response (RFC 9207)'),
        ),
        migrations.AddField(
            model_name='provider',
            name='jwks_uri',
            field=models.URLField(blank=True, help_text='the keys that sign its ID tokens', max_length=500),
        ),
    ]
