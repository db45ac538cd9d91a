from __future__ import annotations

from datetime import datetime

from accounts.models import UserLogin


def record_login(*, user_id: int, at: datetime) -> None:
    """One upsert (``INSERT … ON CONFLICT (user_id) DO UPDATE``) into ``public.accounts_userlogin``;
    the user row is not touched."""
    UserLogin.objects.bulk_create(
        [UserLogin(user_id=user_id, last_login=at)],
        update_conflicts=True,
        unique_fields=["user"],
        update_fields=["last_login"],
    )
