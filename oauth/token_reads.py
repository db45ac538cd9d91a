"""The token endpoint's first statement: the client read together with what the request presents (the
code's grant and its user, or the live refresh token with its access token, its user, the start of its
family and the family's step-up challenge), as SQL prepared on the connection (``pgtenancy.prepared``).

Every exchange and refresh runs one of these. Through the ORM, compiling the joined, annotated query
cost more Python than the rest of the validation, and PostgreSQL planned it anew each time; the rows
are turned into DOT's model instances as the ORM would (each field's ``from_db_value``, then
``Model.from_db``), so the validator works on the same objects. Each statement sits beside the
queryset it mirrors (its rule); ``tests/test_statements.py`` runs both on the same rows.
"""

from __future__ import annotations

import functools
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Model, OuterRef, QuerySet, Subquery
from oauth2_provider.models import AccessToken, Application, Grant, RefreshToken

from oauth.models import StepUpChallenge
from pgtenancy.prepared import TenantStatement, fetch_prepared


@functools.cache
def _shape(model: type[Model]) -> tuple[list[str], list[list[tuple[Any, Any]]], int]:
    """The attnames of ``model``'s concrete fields, each field's converters (backend's, then the
    field's ``from_db_value``) with the column expression they expect, and the field count."""
    fields = model._meta.concrete_fields
    converters = []
    for field in fields:
        column = field.get_col(model._meta.db_table)
        converters.append(
            [(c, column) for c in connection.ops.get_db_converters(column) + field.get_db_converters(connection)]
        )
    return [f.attname for f in fields], converters, len(fields)


def _columns(model: type[Model], alias: str) -> str:
    return ", ".join(f"{alias}.{connection.ops.quote_name(f.column)}" for f in model._meta.concrete_fields)


def _instance(model: type[Model], row: tuple, start: int) -> tuple[Model | None, int]:
    """The instance of ``model`` whose columns start at ``row[start]`` (None when its primary key is
    NULL: an outer join that found nothing), and where the next model's columns start."""
    names, converters, count = _shape(model)
    values = list(row[start : start + count])
    end = start + count
    if values[0] is None:
        return None, end
    for i, field_converters in enumerate(converters):
        for converter, column in field_converters:
            values[i] = converter(values[i], column, connection)
    return model.from_db(connection.alias, names, values), end


@functools.cache
def _grant_sql() -> TenantStatement:
    user = get_user_model()
    return TenantStatement(
        f"SELECT {_columns(Grant, 'g')}, {_columns(Application, 'a')}, {_columns(user, 'u')} "  # noqa: S608
        f"FROM {{tenant}}.{Grant._meta.db_table} g "
        f"JOIN {{tenant}}.{Application._meta.db_table} a ON a.id = g.application_id "
        f"JOIN public.{user._meta.db_table} u ON u.id = g.user_id WHERE g.code = %s AND a.client_id = %s"
    )


def grant_with_client_rule(code: str, client_id: str) -> QuerySet[Grant]:
    return Grant.objects.filter(code=code, application__client_id=client_id).select_related("application", "user")


def grant_with_client(code: str, client_id: str) -> Grant | None:
    """The grant of ``code`` if it belongs to the client ``client_id``, with its application and its
    user loaded (``grant.application``, ``grant.user``)."""
    rows = fetch_prepared(_grant_sql(), [code, client_id])
    if not rows:
        return None
    grant, at = _instance(Grant, rows[0], 0)
    application, at = _instance(Application, rows[0], at)
    user, _ = _instance(get_user_model(), rows[0], at)
    grant.application, grant.user = application, user
    return grant


@functools.cache
def _refresh_sql() -> TenantStatement:
    user = get_user_model()
    refresh, challenge = RefreshToken._meta.db_table, StepUpChallenge._meta.db_table
    return TenantStatement(
        f"SELECT {_columns(RefreshToken, 'r')}, {_columns(AccessToken, 't')}, {_columns(user, 'u')}, "  # noqa: S608
        f"{_columns(Application, 'a')}, "
        f"(SELECT f.created FROM {{tenant}}.{refresh} f WHERE f.token_family = r.token_family "
        "ORDER BY f.created LIMIT 1), "
        f"(SELECT s.scope FROM {{tenant}}.{challenge} s WHERE s.token_family = r.token_family "
        "AND s.challenged_at > %s LIMIT 1) "
        f"FROM {{tenant}}.{refresh} r JOIN {{tenant}}.{Application._meta.db_table} a ON a.id = r.application_id "
        f"JOIN public.{user._meta.db_table} u ON u.id = r.user_id "
        f"LEFT JOIN {{tenant}}.{AccessToken._meta.db_table} t ON t.id = r.access_token_id "
        "WHERE r.token_checksum = %s AND r.revoked IS NULL AND a.client_id = %s"
    )


def live_refresh_tokens(checksum: str, challenged_since) -> QuerySet[RefreshToken]:
    """The rule of ``live_refresh_token_with_client``, whatever the client (the validator reads a token
    not found with its client through it): the unrevoked refresh token of ``checksum`` with its access
    token and its user, annotated with ``family_started`` (the first ``created`` of its family) and
    ``challenged_scope`` (the family's step-up challenge since ``challenged_since``, or None)."""
    family = RefreshToken.objects.filter(token_family=OuterRef("token_family"))
    challenge = StepUpChallenge.objects.filter(
        token_family=OuterRef("token_family"), challenged_at__gt=challenged_since
    )
    return (
        RefreshToken.objects.filter(token_checksum=checksum, revoked__isnull=True)
        .select_related("access_token", "user")
        .annotate(
            family_started=Subquery(family.order_by("created").values("created")[:1]),
            challenged_scope=Subquery(challenge.values("scope")[:1]),
        )
    )


def live_refresh_token_with_client(checksum: str, client_id: str, challenged_since) -> RefreshToken | None:
    """``live_refresh_tokens`` of the client ``client_id`` (its application loaded too), in one prepared
    statement."""
    rows = fetch_prepared(_refresh_sql(), [challenged_since, checksum, client_id])
    if not rows:
        return None
    row = rows[0]
    rt, at = _instance(RefreshToken, row, 0)
    access, at = _instance(AccessToken, row, at)
    user, at = _instance(get_user_model(), row, at)
    application, at = _instance(Application, row, at)
    rt.access_token, rt.user, rt.application = access, user, application
    rt.family_started, rt.challenged_scope = row[at], row[at + 1]
    return rt
