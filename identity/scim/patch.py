"""The desired state of a SCIM User: from a POST/PUT body, or the current state with a PATCH's
operations applied (RFC 7644 §3.5.2), in the shapes Okta and Entra ID send:
Okta ``{"op": "replace", "value": {"active": false}}``, Entra ``{"op": "Replace", "path": "active",
"value": "False"}`` (a capitalised op, a boolean as a string), ``name.givenName``,
``emails[type eq "work"].value``, ``urn:...:core:2.0:User:userName``.

The platform keeps one address per user, its sign-in email: ``userName``. ``emails`` reflect it; an
email given in ``emails`` (the primary one, else the first) counts as a new ``userName`` only when
the same request does not set ``userName`` itself. Attributes this service does not keep (title,
phone numbers, the enterprise extension...) are accepted and ignored, as IdPs send them by default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from identity.scim.errors import ScimError, invalid_value

PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
CORE_PREFIX = "urn:ietf:params:scim:schemas:core:2.0:user:"
ATTRIBUTE = re.compile(r"^[a-z][a-z0-9_$-]*(\.[a-z][a-z0-9_$-]*)?$", re.IGNORECASE)
EMAIL_VALUE = re.compile(r'^emails(\[(type eq "[a-z]+"|primary eq true)\])?\.value$', re.IGNORECASE)
SIMPLE = {
    "username": "user_name",
    "displayname": "display_name",
    "externalid": "external_id",
    "name.givenname": "given",
    "name.familyname": "family",
    "name.formatted": "formatted",
}


@dataclass(frozen=True)
class State:
    user_name: str
    given: str = ""
    family: str = ""
    formatted: str | None = None
    display_name: str | None = None
    external_id: str = ""
    active: bool = True

    @property
    def full_name(self) -> str:
        if self.formatted:
            return self.formatted
        joined = " ".join(part for part in (self.given, self.family) if part)
        return joined or (self.display_name or "")

    @classmethod
    def of(cls, *, email: str, full_name: str, external_id: str, active: bool) -> State:
        given, _, family = full_name.partition(" ")
        return cls(user_name=email, given=given, family=family, external_id=external_id, active=active)


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise invalid_value("active must be a boolean")


def _string(value: Any, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 255 or "\x00" in value:
        raise invalid_value(f"{name} must be a string of at most 255 characters")
    return value.strip()


def _email_of(emails: Any) -> str | None:
    if not isinstance(emails, list):
        raise invalid_value("emails must be a list")
    values = [e for e in emails if isinstance(e, dict) and isinstance(e.get("value"), str)]
    chosen = next((e for e in values if e.get("primary") in (True, "true", "True")), values[0] if values else None)
    return chosen["value"] if chosen else None


def from_body(body: Any) -> State:
    """POST and PUT: the whole resource."""
    if not isinstance(body, dict):
        raise ScimError(400, "the body must be a JSON object", "invalidSyntax")
    user_name = _string(body.get("userName"), "userName")
    if not user_name:
        raise invalid_value("userName is required")
    name = body.get("name") or {}
    if not isinstance(name, dict):
        raise invalid_value("name must be an object")
    return State(
        user_name=user_name,
        given=_string(name.get("givenName"), "name.givenName"),
        family=_string(name.get("familyName"), "name.familyName"),
        formatted=_string(name.get("formatted"), "name.formatted") or None,
        display_name=_string(body.get("displayName"), "displayName") or None,
        external_id=_string(body.get("externalId"), "externalId"),
        active=boolean(body.get("active", True)),
    )


def _normalized(path: str) -> str:
    lowered = path.strip()
    if lowered.lower().startswith(CORE_PREFIX):
        lowered = lowered[len(CORE_PREFIX) :]
    return lowered


class _Patch:
    def __init__(self, state: State) -> None:
        self.state = state
        self.user_name_set = False
        self.email: str | None = None

    def set(self, path: str, value: Any, *, remove: bool) -> None:
        path = _normalized(path)
        key = path.lower()
        if key.startswith("urn:"):
            return  # an extension schema's attribute (enterprise user...): not kept here
        if EMAIL_VALUE.match(path):
            if not remove:
                self.email = _string(value, "emails.value")
            return
        if key == "emails":
            if not remove:
                self.email = _email_of(value)
            return
        if key == "active":
            if remove:
                raise invalid_value("active cannot be removed")
            self.state = replace(self.state, active=boolean(value))
            return
        if key == "name":
            if remove:
                self.state = replace(self.state, given="", family="", formatted=None)
                return
            if not isinstance(value, dict):
                raise invalid_value("name must be an object")
            for sub, sub_value in value.items():
                self.set(f"name.{sub}", sub_value, remove=False)
            return
        if key in SIMPLE:
            if key == "username":
                if remove:
                    raise invalid_value("userName cannot be removed")
                self.user_name_set = True
            text = "" if remove else _string(value, path)
            field = SIMPLE[key]
            self.state = replace(
                self.state, **{field: text if field not in ("formatted", "display_name") else (text or None)}
            )
            return
        if not ATTRIBUTE.match(path):
            raise ScimError(400, f"unsupported path {path[:100]!r}", "invalidPath")
        # another attribute of the core schema (title, phoneNumbers...): accepted, not kept

    def apply(self, operation: Any) -> None:
        if not isinstance(operation, dict):
            raise ScimError(400, "each operation must be an object", "invalidSyntax")
        op = str(operation.get("op", "")).lower()
        if op not in ("add", "replace", "remove"):
            raise ScimError(400, f"unsupported op {str(operation.get('op'))[:20]!r}", "invalidSyntax")
        path, value = operation.get("path"), operation.get("value")
        if path is None:
            if op == "remove":
                raise ScimError(400, "remove needs a path", "noTarget")
            if not isinstance(value, dict):
                raise invalid_value("an operation without a path needs an object value")
            for name, item in value.items():
                self.set(str(name), item, remove=False)
            return
        if not isinstance(path, str):
            raise ScimError(400, "path must be a string", "invalidPath")
        self.set(path, value, remove=op == "remove")


def apply_patch(state: State, body: Any) -> State:
    if not isinstance(body, dict) or PATCH_SCHEMA not in (body.get("schemas") or []):
        raise ScimError(400, f"a PATCH body is a {PATCH_SCHEMA} message", "invalidSyntax")
    operations = body.get("Operations")
    if not isinstance(operations, list) or not operations:
        raise ScimError(400, "Operations must be a non-empty list", "invalidSyntax")
    patch = _Patch(state)
    for operation in operations:
        patch.apply(operation)
    if patch.email and not patch.user_name_set:
        patch.state = replace(patch.state, user_name=patch.email)
    return patch.state
