"""The last-login time moves from ``accounts_user`` to ``accounts_userlogin`` (``accounts.models.UserLogin``):
a login no longer writes the user row. Reversible: the times are copied back before the table goes."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

COPY_OUT = """
    INSERT INTO accounts_userlogin (user_id, last_login)
    SELECT id, last_login FROM accounts_user WHERE last_login IS NOT NULL
"""
COPY_BACK = """
    UPDATE accounts_user u SET last_login = l.last_login FROM accounts_userlogin l WHERE l.user_id = u.id
"""


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="UserLogin",
            fields=[
                (
                    "user",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="login",
                        serialize=False,
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                ("last_login", models.DateTimeField()),
            ],
        ),
        migrations.RunSQL(COPY_OUT, COPY_BACK, elidable=True),
        migrations.RemoveField(
            model_name="user",
            name="last_login",
        ),
    ]
