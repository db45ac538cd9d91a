"""Admin-managed schedules (django-celery-beat) for the lifecycle jobs that exist so far."""

from django.db import migrations

SCHEDULES = [
    # (name, task, crontab minute, hour)
    ("Expire unused dynamically registered OAuth clients", "oauth.expire_unused_clients", "17", "3"),
]


def create(apps, schema_editor):
    if schema_editor.connection.schema_name != "public":
        return
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, minute, hour in SCHEDULES:
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute, hour=hour, day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
        )
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "crontab": crontab})


def remove(apps, schema_editor):
    if schema_editor.connection.schema_name != "public":
        return
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[s[0] for s in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, remove)]
