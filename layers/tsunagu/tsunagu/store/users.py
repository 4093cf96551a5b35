"""The user pool as tsunagu.commands.users sees it: Cognito's admin API on the stack's pool. A
user's role is the one Tsunagu group it is in (admin, marketer, sales, viewer)."""

from __future__ import annotations

from typing import Any

from tsunagu.commands.access import Role
from tsunagu.commands.users import User

ROLE_GROUPS = tuple(role.value for role in Role)


class CognitoDirectory:
    def __init__(self, client: Any, pool_id: str) -> None:
        self._client = client
        self._pool = pool_id

    def users(self) -> list[User]:
        members = {
            user["Username"]: Role(group)
            for group in ROLE_GROUPS
            for page in self._client.get_paginator("list_users_in_group").paginate(
                UserPoolId=self._pool, GroupName=group
            )
            for user in page["Users"]
        }
        return [
            _user(found, members.get(found["Username"]))
            for page in self._client.get_paginator("list_users").paginate(UserPoolId=self._pool)
            for found in page["Users"]
        ]

    def user(self, email: str) -> User | None:
        try:
            found = self._client.admin_get_user(UserPoolId=self._pool, Username=email)
        except self._client.exceptions.UserNotFoundException:
            return None
        # AdminGetUser lists the user's second factors (ListUsers does not); none: no list
        two_step = "SOFTWARE_TOKEN_MFA" in (found.get("UserMFASettingList") or [])
        return _user(found, self._role(found["Username"]), two_step=two_step)

    def invite(self, email: str, role: Role) -> User:
        created = self._client.admin_create_user(
            UserPoolId=self._pool,
            Username=email,
            UserAttributes=[
                {"Name": "email", "Value": email},
                {"Name": "email_verified", "Value": "true"},
            ],
            DesiredDeliveryMediums=["EMAIL"],
        )["User"]
        self._client.admin_add_user_to_group(
            UserPoolId=self._pool, Username=email, GroupName=role.value
        )
        return _user(created, role)

    def set_role(self, email: str, role: Role) -> None:
        """Out of the groups above ``role``, into its own, then out of those below: a call
        failing part-way leaves the user with the lesser of the two roles or the new one, never
        with more than either. A demoted user is signed out everywhere: their session cannot
        renew its token, so the old role ends with the ID token's quarter-hour. A promoted one
        keeps their session: its next renewal carries the new role."""
        was = self._role(email)
        rank = ROLE_GROUPS.index(role.value)
        for group in ROLE_GROUPS[:rank]:
            self._client.admin_remove_user_from_group(
                UserPoolId=self._pool, Username=email, GroupName=group
            )
        self._client.admin_add_user_to_group(
            UserPoolId=self._pool, Username=email, GroupName=role.value
        )
        for group in ROLE_GROUPS[rank + 1 :]:
            self._client.admin_remove_user_from_group(
                UserPoolId=self._pool, Username=email, GroupName=group
            )
        if was is not None and ROLE_GROUPS.index(was.value) < rank:
            self._client.admin_user_global_sign_out(UserPoolId=self._pool, Username=email)

    def set_enabled(self, email: str, enabled: bool) -> None:
        if enabled:
            self._client.admin_enable_user(UserPoolId=self._pool, Username=email)
            return
        self._client.admin_disable_user(UserPoolId=self._pool, Username=email)
        self._client.admin_user_global_sign_out(UserPoolId=self._pool, Username=email)

    def turn_off_two_step(self, email: str) -> None:
        """The authenticator app off as a second factor (Tsunagu offers no other: no SMS)."""
        self._client.admin_set_user_mfa_preference(
            UserPoolId=self._pool,
            Username=email,
            SoftwareTokenMfaSettings={"Enabled": False, "PreferredMfa": False},
        )

    def _role(self, username: str) -> Role | None:
        groups = self._client.admin_list_groups_for_user(UserPoolId=self._pool, Username=username)
        names = {group["GroupName"] for group in groups["Groups"]}
        # The most powerful first, as the pool's precedence orders the groups.
        return next((Role(name) for name in ROLE_GROUPS if name in names), None)


def _user(found: dict[str, Any], role: Role | None, two_step: bool | None = None) -> User:
    attributes = found.get("Attributes") or found.get("UserAttributes") or []
    email = next((a["Value"] for a in attributes if a["Name"] == "email"), found["Username"])
    created = found.get("UserCreateDate")
    sub = next((a["Value"] for a in attributes if a["Name"] == "sub"), None)
    return User(
        email=email,
        role=role,
        enabled=bool(found.get("Enabled", True)),
        status=str(found.get("UserStatus", "")),
        created_at=created.isoformat() if created is not None else None,
        sub=sub,
        two_step=two_step,
    )
