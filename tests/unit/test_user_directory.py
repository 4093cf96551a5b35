"""Changing a user's role in the pool: never more than either role on the way, and a demoted
user signed out everywhere."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from tsunagu.commands.access import Role
from tsunagu.store.users import CognitoDirectory


class FailedCall(Exception):
    pass


class Pool:
    """The calls CognitoDirectory makes, on one user's groups; ``fail_at``: the call (by its
    number) that fails."""

    def __init__(self, groups: set[str], fail_at: int | None = None) -> None:
        self.groups = groups
        self.calls: list[str] = []
        self.fail_at = fail_at

    def _call(self, what: str) -> None:
        if self.fail_at is not None and len(self.calls) == self.fail_at:
            raise FailedCall(what)
        self.calls.append(what)

    def admin_list_groups_for_user(self, **_: Any) -> dict[str, Any]:
        return {"Groups": [{"GroupName": g} for g in sorted(self.groups)]}

    def admin_add_user_to_group(self, GroupName: str, **_: Any) -> None:
        self._call(f"+{GroupName}")
        self.groups.add(GroupName)

    def admin_remove_user_from_group(self, GroupName: str, **_: Any) -> None:
        self._call(f"-{GroupName}")
        self.groups.discard(GroupName)

    def admin_user_global_sign_out(self, **_: Any) -> None:
        self._call("sign out")


def role_of(pool: Pool) -> Role | None:
    return next((role for role in Role if role.value in pool.groups), None)


def test_a_demoted_admin_leaves_the_wider_group_first_and_is_signed_out() -> None:
    pool = Pool({"admin"})
    CognitoDirectory(pool, "pool").set_role("ito@example.com", Role.VIEWER)
    assert pool.calls == ["-admin", "-marketer", "-sales", "+viewer", "sign out"]
    assert role_of(pool) is Role.VIEWER


def test_a_promoted_user_joins_first_and_keeps_their_session() -> None:
    pool = Pool({"viewer"})
    CognitoDirectory(pool, "pool").set_role("ito@example.com", Role.MARKETER)
    assert pool.calls == ["-admin", "+marketer", "-sales", "-viewer"]
    assert role_of(pool) is Role.MARKETER


@pytest.mark.parametrize(("old", "new"), [(Role.ADMIN, Role.VIEWER), (Role.VIEWER, Role.ADMIN),
                                          (Role.MARKETER, Role.SALES)])  # fmt: skip
def test_a_change_failing_part_way_never_leaves_more_than_the_new_role(
    old: Role, new: Role
) -> None:
    ranks = list(Role)  # the most powerful first
    for fail_at in range(6):
        pool = Pool({old.value}, fail_at=fail_at)
        with contextlib.suppress(FailedCall):
            CognitoDirectory(pool, "pool").set_role("ito@example.com", new)
        # Either nothing changed (and the admin was told the change failed), or the user has
        # the new role, or less
        left = role_of(pool)
        unchanged = pool.groups == {old.value}
        assert unchanged or left is None or ranks.index(left) >= ranks.index(new), (
            fail_at,
            pool.groups,
        )
