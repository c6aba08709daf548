"""The service registry: the published set of handlers that BPMN service tasks bind to by name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ServiceContext:
    """What a handler may know of the instance that calls it (plain values only)."""

    instance_id: str
    process_id: str
    process_version: int
    user: str
    # {"TempCardsScriptOptions": {"version": 3, "values": {...}}}: the snapshot the instance took.
    options: Mapping[str, Any] = field(default_factory=dict)


Handler = Callable[[dict[str, Any], ServiceContext], dict[str, Any]]


class UnknownService(LookupError):
    """A service task names an operator that is not published."""


class ServiceRegistry:
    """Maps operator names to handlers ``handler(params, context) -> dict``."""

    def __init__(self, handlers: Mapping[str, Handler] | None = None):
        self._handlers: dict[str, Handler] = dict(handlers or {})

    def register(self, name: str, handler: Handler) -> None:
        """Publish a handler under ``name``."""
        self._handlers[name] = handler

    def names(self) -> set[str]:
        """The published operator names; deploy refuses a process that uses any other."""
        return set(self._handlers)

    def call(self, name: str, params: dict[str, Any], context: ServiceContext) -> dict[str, Any]:
        """Run the handler for ``name``."""
        try:
            handler = self._handlers[name]
        except KeyError:
            raise UnknownService(f"No service handler named {name!r} is published") from None
        return handler(params, context)
