"""Tenant rows point at platform users without database-level foreign keys (tenants.user_references):
the sweep treats rows of a user that no longer exists as the foreign key would have, and a user
cannot be deleted."""

from __future__ import annotations

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from tests.factories import application

GONE = 2_000_000_001  # a user id public.accounts_user does not have


@pytest.mark.django_db
def test_the_sweep_deletes_or_empties_rows_of_a_user_that_no_longer_exists():
    from accounts.models import User
    from mcp_tools.models import ToolPolicyChange
    from oauth.models import ConsentGrant
    from tenants.user_references import sweep_orphans

    member = User.objects.get(email="member@acme.test")
    assert not User.objects.filter(pk=GONE).exists()
    with schema_context("acme"):
        app = application("orphans")
        kept = ConsentGrant.objects.create(user=member, application=app, scope="crm.read")
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO platform_oauth_consentgrant (user_id, application_id, scope, updated_at) "
                "VALUES (%s, %s, 'crm.read', now()) RETURNING id",
                [GONE, app.pk],
            )
            (orphan_consent,) = cursor.fetchone()
            cursor.execute(
                "INSERT INTO mcp_tools_toolpolicychange (tool_name, changed_by_id, changed_at, after) "
                "VALUES ('crm_get_contact', %s, now(), '{}') RETURNING id",
                [GONE],
            )
            (orphan_change,) = cursor.fetchone()
            orphan_app = application("orphan-owned").pk
            cursor.execute("UPDATE oauth2_provider_application SET user_id = %s WHERE id = %s", [GONE, orphan_app])

        counts = sweep_orphans()

        assert counts == {
            "oauth2_provider.application.user_deleted": 1,
            "platform_oauth.consentgrant.user_deleted": 1,
            "mcp_tools.toolpolicychange.changed_by_emptied": 1,
        }
        assert list(ConsentGrant.objects.filter(pk__in=[kept.pk, orphan_consent])) == [kept]
        assert ToolPolicyChange.objects.get(pk=orphan_change).changed_by_id is None
        assert not app._meta.model.objects.filter(pk=orphan_app).exists()
        assert app._meta.model.objects.filter(pk=app.pk).exists()
        assert sweep_orphans() == {}  # nothing left the second time


@pytest.mark.django_db
def test_a_user_is_never_deleted():
    from accounts.models import User, UserDeletionRefused

    member = User.objects.get(email="member@acme.test")
    with pytest.raises(UserDeletionRefused):
        member.delete()
    with pytest.raises(UserDeletionRefused):
        User.objects.filter(pk=member.pk).delete()
    assert User.objects.filter(pk=member.pk).exists()


def test_every_tenant_reference_to_the_user_is_known_to_the_sweep():
    """The sweep finds the columns through the models: each is a tenant table's column."""
    from tenants.user_references import user_reference_fields

    found = {(model._meta.db_table, field.column) for model, field in user_reference_fields()}
    assert {
        ("django_admin_log", "user_id"),
        ("oauth2_provider_accesstoken", "user_id"),
        ("oauth2_provider_refreshtoken", "user_id"),
        ("platform_oauth_consentgrant", "user_id"),
        ("connectors_connectedaccount", "user_id"),
        ("identity_identitylink", "user_id"),
        ("mcp_tools_toolpolicychange", "changed_by_id"),
    } <= found
    assert not any(table.startswith(("tenants_", "accounts_")) for table, _ in found)  # public tables


@pytest.mark.django_db
def test_the_sweep_is_a_daily_job_in_every_tenant():
    from django_celery_beat.models import PeriodicTask

    from jobs.models import JobRun
    from oauth.tasks import SWEEP_USER_REFERENCES, sweep_user_references_in_tenant

    assert PeriodicTask.objects.get(task="oauth.sweep_user_references").crontab is not None
    with schema_context("acme"):
        app = application("orphan job")
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO platform_oauth_consentgrant (user_id, application_id, scope, updated_at) "
                "VALUES (%s, %s, 'crm.read', now())",
                [GONE, app.pk],
            )

    counts = sweep_user_references_in_tenant("acme")

    assert counts == {"platform_oauth.consentgrant.user_deleted": 1}
    assert JobRun.objects.get(job=SWEEP_USER_REFERENCES, tenant_slug="acme").counts == counts
