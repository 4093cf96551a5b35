"""The people who sign in, as an admin manages them: list, invite with a role, change a role,
disable and enable, turn off a user's two-step sign-in. Each user's role is its one group in
the user pool (tsunagu.commands.access); every change is in the audit log. An admin cannot take
away their own admin role or disable themselves: the last admin could lock everyone out of the
console that way.

A token keeps the role it was issued with for its quarter-hour, and a disabled user's token keeps
working that long (a disable or a demotion signs the user out everywhere, so no session of theirs
renews its token after that): so each use case here reads the caller in the pool first, and
refuses one who is no longer there as the enabled holder of the role their token claims (else a
removed admin could enable themselves again, take their role back, or disable the admin who
removed them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from tsunagu.clock import Clock
from tsunagu.commands.access import Actor, Role
from tsunagu.commands.audit import AuditLog, recorded
from tsunagu.errors import AlreadyExists, FieldError, Forbidden, NotFound, ValidationFailed
from tsunagu.leads.email import InvalidEmail, normalise_email


@dataclass(frozen=True)
class User:
    email: str
    role: Role | None
    """None: in no group, so refused everywhere until an admin gives a role."""
    enabled: bool
    status: str
    """The pool's word: FORCE_CHANGE_PASSWORD until an invited user first signs in, then
    CONFIRMED."""
    created_at: str | None = None
    sub: str | None = None
    """The pool's id for the user: the ``sub`` claim of both its ID and its access token."""
    two_step: bool | None = None
    """Whether the user signs in with an authenticator app's code besides the password; None
    when the pool did not say (its listing of users does not: only a user read alone has it)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "role": self.role.value if self.role else None,
            "enabled": self.enabled,
            "status": self.status,
            "created_at": self.created_at,
            "two_step": self.two_step,
        }


class Directory(Protocol):
    """The user pool (Cognito in AWS and on the local runtime)."""

    def users(self) -> list[User]: ...

    def user(self, email: str) -> User | None:
        """By e-mail, or by ``sub`` (the pool takes either as the user's name)."""
        ...

    def invite(self, email: str, role: Role) -> User: ...

    def set_role(self, email: str, role: Role) -> None: ...

    def set_enabled(self, email: str, enabled: bool) -> None: ...

    def turn_off_two_step(self, email: str) -> None: ...


@dataclass(frozen=True)
class UserCommands:
    directory: Directory
    audit: AuditLog
    clock: Clock


def listing(ports: UserCommands, actor: Actor) -> list[User]:
    with recorded(ports.audit, ports.clock, actor, "users.list", "users"):
        _still_holding(ports, actor)
    return sorted(ports.directory.users(), key=lambda user: user.email)


def invite(ports: UserCommands, actor: Actor, email: str, role: Role) -> User:
    """A new user with ``role``: the pool mails them a temporary password (valid 7 days)."""
    address = _address(email)
    with recorded(ports.audit, ports.clock, actor, "users.save", f"user:{address}") as log:
        _still_holding(ports, actor)
        if ports.directory.user(address) is not None:
            raise AlreadyExists(f"{address} is a user already: change their role instead")
        user = ports.directory.invite(address, role)
        log.changed({}, {"role": role.value, "enabled": True})
        log.detail = "invited"
    return user


def set_role(ports: UserCommands, actor: Actor, email: str, role: Role) -> User:
    address = _address(email)
    with recorded(ports.audit, ports.clock, actor, "users.save", f"user:{address}") as log:
        _still_holding(ports, actor)
        user = _existing(ports, address)
        if _is_self(actor, user) and role is not Role.ADMIN:
            raise ValidationFailed(
                [FieldError("role", "you cannot take away your own admin role: ask another admin")]
            )
        if role is not Role.ADMIN:
            _leaves_an_admin(ports, user, "role")
        ports.directory.set_role(address, role)
        log.changed({"role": user.role.value if user.role else None}, {"role": role.value})
    return _existing(ports, address)


def set_enabled(ports: UserCommands, actor: Actor, email: str, enabled: bool) -> User:
    """Disable (signs the user out everywhere: their refresh tokens are revoked, so their
    tokens stop working within the quarter-hour an ID token lives) or enable again."""
    address = _address(email)
    with recorded(ports.audit, ports.clock, actor, "users.save", f"user:{address}") as log:
        _still_holding(ports, actor)
        user = _existing(ports, address)
        if _is_self(actor, user) and not enabled:
            raise ValidationFailed([FieldError("enabled", "you cannot disable yourself")])
        if not enabled:
            _leaves_an_admin(ports, user, "enabled")
        ports.directory.set_enabled(address, enabled)
        log.changed({"enabled": user.enabled}, {"enabled": enabled})
    return _existing(ports, address)


def turn_off_two_step(ports: UserCommands, actor: Actor, email: str) -> User:
    """Turn off a user's two-step sign-in - they lost the phone their authenticator app was
    on: they sign in with their password alone until they set an app up again in Settings.
    Their sessions go on (nothing they hold is taken away); done for a user who has it off,
    it changes nothing and is logged as asked."""
    address = _address(email)
    with recorded(ports.audit, ports.clock, actor, "users.save", f"user:{address}") as log:
        _still_holding(ports, actor)
        user = _existing(ports, address)
        ports.directory.turn_off_two_step(address)
        log.changed({"two_step": user.two_step}, {"two_step": False})
        log.detail = "two-step sign-in turned off"
    return _existing(ports, address)


def _still_holding(ports: UserCommands, actor: Actor) -> None:
    """Forbidden unless the caller is, in the pool now, enabled and in the role their token
    says (checked inside ``recorded``, so the refusal is in the log). An operator at the CLI
    holds the stack's own credentials, not a pool user's token: nothing to read for them."""
    if actor.via == "cli":
        return
    found = _caller(ports.directory, actor)
    if found is None:
        raise Forbidden("your user is no longer in the user pool")
    if not found.enabled:
        raise Forbidden("your user has been disabled: ask another admin")
    if found.role is not actor.role:
        now = found.role.value if found.role else "no role"
        raise Forbidden(
            f"your role is {now} now, not the {actor.role or 'none'} your sign-in says: "
            "sign in again"
        )


def _caller(directory: Directory, actor: Actor) -> User | None:
    """The caller by the token's ``sub`` (an access token carries no e-mail), else by the
    verified e-mail the ID token carries."""
    found = directory.user(actor.user_id)
    if found is None and actor.email is not None:
        found = directory.user(actor.email)
    return found


def _address(email: str) -> str:
    """As the pool knows a user: the address, case folded (sign-in ignores case)."""
    try:
        return normalise_email(email).identity_key
    except InvalidEmail as error:
        raise ValidationFailed([FieldError("email", str(error))]) from None


def _existing(ports: UserCommands, address: str) -> User:
    user = ports.directory.user(address)
    if user is None:
        raise NotFound(f"no user {address}")
    return user


def _is_self(actor: Actor, user: User) -> bool:
    """By the pool's id (an access token carries ``sub`` and no e-mail), or the verified
    e-mail an ID token carries."""
    if user.sub is not None and user.sub == actor.user_id:
        return True
    return actor.email is not None and actor.email.casefold() == user.email.casefold()


def _leaves_an_admin(ports: UserCommands, user: User, field: str) -> None:
    """Refused (422) when ``user`` is the last enabled admin and is about to stop being one:
    nobody could manage users from the console any more (the CLI's operator is not in the
    pool, so this is theirs to hit)."""
    if not (user.enabled and user.role is Role.ADMIN):
        return
    others = [
        other
        for other in ports.directory.users()
        if other.enabled and other.role is Role.ADMIN and other.email != user.email
    ]
    if not others:
        raise ValidationFailed(
            [FieldError(field, f"{user.email} is the last enabled admin: make another first")]
        )
