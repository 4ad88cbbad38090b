"""Typed references to what a change writes.

A `Change` carries one `Target`: everything an executor, a probe or a Pulumi mapping needs to find
and check the resource, as typed fields instead of a free-form dictionary. Each subclass names
itself with a literal `type`, which is how a saved plan says which class to read back; subclasses
register themselves on definition, so a provider package adds its own without touching this
module. The shapes every host-based provider shares (a file on a host, the TLS sockets it serves)
live here.
"""

from __future__ import annotations

import builtins
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

from remediate.errors import RemediateError


class Target(BaseModel):
    """Base of every typed reference; `type` is the discriminator a plan file stores."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    registry: ClassVar[dict[str, builtins.type[Target]]] = {}

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        name = cls.model_fields["type"].default
        if not isinstance(name, str) or not name:
            raise TypeError(f"{cls.__name__} must give `type` a string default")
        Target.registry[name] = cls

    @classmethod
    def parse(cls, raw: Any) -> Target:
        """The registered subclass a plan's `target` names, validated."""
        if isinstance(raw, Target):
            return raw
        if not isinstance(raw, dict):
            raise ValueError("a target must be a mapping with a `type`")
        name = raw.get("type")
        target_class = Target.registry.get(str(name))
        if target_class is None:
            known = ", ".join(sorted(Target.registry))
            raise ValueError(f"unknown target type {name!r} (known: {known})")
        return target_class.model_validate(raw)


class Socket(BaseModel):
    """A TLS socket a host serves, and what verification expects of whoever answers on it first."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str
    port: int
    server_name: str = ""
    http2: bool = False
    ws_paths: tuple[str, ...] = ()
    stream: bool = False
    """A `stream {}` socket: TLS for TCP, so no HTTP/2 or WebSocket to expect there."""
    client_timeout: float | None = None
    """Seconds of silence after which the socket's proxy closes an idle client connection unless
    a WebSocket timeout (HAProxy's `timeout tunnel`) takes over; None when unknown or unlimited.
    Verification keeps a WebSocket idle just past it."""


class HostFile(Target):
    """A config file on a host of an Ansible inventory.

    `path` is the name the config uses (a symbolic link stays the link); `real_path`, when it
    differs, is the file that is really written. `sockets` are the TLS sockets the host serves
    once the change is in, for verification."""

    type: str = "host-file"
    host: str
    path: str
    real_path: str = ""
    sockets: tuple[Socket, ...] = ()


T = TypeVar("T", bound=Target)


def require(target: Target, expected: type[T]) -> T:
    """`target` narrowed to `expected`, or an error naming both (a plan mixing up its targets)."""
    if not isinstance(target, expected):
        raise RemediateError(
            f"expected a {expected.model_fields['type'].default} target, got {target.type}"
        )
    return target


# Addresses a socket listens on that mean "every address of the host".
WILDCARDS = frozenset({"", "*", "0.0.0.0", "[::]", "::"})


def probe_host(target: HostFile, socket: Socket) -> str:
    """Where to reach `socket` of `target`'s host: its own address, or the host itself when it
    listens on every address (an IPv6 address without its brackets)."""
    address = socket.address.strip()
    return target.host if address in WILDCARDS else address.strip("[]")
