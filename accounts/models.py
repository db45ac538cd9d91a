from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.utils import timezone


class UserDeletionRefused(Exception):
    """Users are never deleted: tenant schemas point at them without database-level foreign keys
    (``tenants.user_references``), so nothing would follow a delete. Deactivate instead
    (``tenants.services.deactivate_user``: every membership ended, tokens revoked)."""


class UserQuerySet(models.QuerySet["User"]):
    def delete(self):
        raise UserDeletionRefused("users are deactivated, never deleted")


class UserManager(BaseUserManager.from_queryset(UserQuerySet)):  # type: ignore[misc]
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: object) -> User:
        if not email:
            raise ValueError("email is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: object) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A platform user (public schema). Access to a tenant comes only from an active Membership."""

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="Can open the platform admin (superusers only).")
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"

    def __str__(self) -> str:
        return self.email

    def delete(self, *args, **kwargs):
        raise UserDeletionRefused("users are deactivated, never deleted")

    # Not a column: the time lives in ``UserLogin``. A property rather than ``last_login = None`` so
    # that what reads it keeps working (password-reset tokens hash it, so a login still invalidates
    # them; DOT's ID-token ``auth_time``). Either one also keeps django.contrib.auth from connecting
    # ``update_last_login``, which it does only when ``last_login`` is a model field.
    @property
    def last_login(self) -> datetime | None:
        try:
            return self.login.last_login
        except ObjectDoesNotExist:
            return None


class UserLogin(models.Model):
    """When a user last signed in, on any login page: a narrow table written at every login
    (``accounts.services.record_login``), so that logins never write ``accounts_user``, which is to
    become a Citus reference table copied to every node (docs/scaling.md). This one stays a local
    table of the coordinator, and no tenant table refers to it. No foreign-key constraint either: it
    would put triggers on the user table and make this a Citus local table; users are never deleted."""

    user = models.OneToOneField(
        User, on_delete=models.CASCADE, primary_key=True, db_constraint=False, related_name="login"
    )
    last_login = models.DateTimeField()

    def __str__(self) -> str:
        return f"user {self.user_id}: {self.last_login:%Y-%m-%d %H:%M:%S %Z}"
