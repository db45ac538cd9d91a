"""Every login records its time in ``UserLogin`` (in place of Django's ``update_last_login``, which
wrote the user row and is not connected: ``User.last_login`` is no field)."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.utils import timezone

from accounts import services


@receiver(user_logged_in, dispatch_uid="accounts.record_login")
def record_login(sender, request, user, **kwargs) -> None:
    services.record_login(user_id=user.pk, at=timezone.now())
