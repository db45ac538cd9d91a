"""No database-level foreign key from a tenant schema to the shared user table (``public.accounts_user``),
for the tables the project does not own: django-oauth-toolkit's and the admin's ``LogEntry``
(``tenants.user_references`` says why, and keeps them dropped when those packages migrate again).

Forward: whatever foreign key from these columns to ``public.accounts_user`` the current (tenant)
schema holds is dropped, found in the catalog, whatever its name. Backward: re-added under the names
Django gave them; that fails if a row points at a user that no longer exists (run the
``sweep_user_references`` sweep first). The project's own models say ``db_constraint=False`` (their
``*_user_without_db_constraint`` migrations).
"""

from django.db import migrations

# (table, column, constraint name Django created it under)
THIRD_PARTY = [
    ("django_admin_log", "user_id", "django_admin_log_user_id_c564eba6_fk_accounts_user_id"),
    ("oauth2_provider_accesstoken", "user_id", "oauth2_provider_acce_user_id_6e4c9a65_fk_accounts_"),
    ("oauth2_provider_application", "user_id", "oauth2_provider_appl_user_id_79829054_fk_accounts_"),
    ("oauth2_provider_devicegrant", "user_id", "oauth2_provider_devi_user_id_1cec5156_fk_accounts_"),
    ("oauth2_provider_grant", "user_id", "oauth2_provider_grant_user_id_e8f62af8_fk_accounts_user_id"),
    ("oauth2_provider_idtoken", "user_id", "oauth2_provider_idtoken_user_id_dd512b59_fk_accounts_user_id"),
    ("oauth2_provider_refreshtoken", "user_id", "oauth2_provider_refr_user_id_da837fce_fk_accounts_"),
]

_TABLES = ", ".join(f"'{table}'" for table, _, _ in THIRD_PARTY)
DROP = f"""
DO $$
DECLARE found record;
BEGIN
    FOR found IN
        SELECT c.conrelid::regclass AS tbl, c.conname
          FROM pg_constraint c
         WHERE c.contype = 'f'
           AND c.confrelid = 'public.accounts_user'::regclass
           AND c.conrelid IN (SELECT to_regclass(format('%I.%I', current_schema(), t))
                                FROM unnest(ARRAY[{_TABLES}]) t)
    LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', found.tbl, found.conname);
    END LOOP;
END $$;
"""  # noqa: S608 (table names are the constants above)

READD = [
    f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" FOREIGN KEY ("{column}") '
    f'REFERENCES "accounts_user" ("id") DEFERRABLE INITIALLY DEFERRED;'
    for table, column, name in THIRD_PARTY
]


class Migration(migrations.Migration):
    dependencies = [
        ("platform_oauth", "0007_user_without_db_constraint"),
        ("oauth2_provider", "0022_refreshtoken_token_family_index"),
        ("admin", "0003_logentry_add_action_flag_choices"),
    ]

    operations = [migrations.RunSQL(sql=[DROP], reverse_sql=READD)]
