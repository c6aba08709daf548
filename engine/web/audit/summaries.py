"""One readable line for an audit entry's detail, so the trail reads without opening the JSON.

The full detail stays one click away on the page and in the exports; a summary only picks and
words the parts an auditor reads first. An event without its own wording gets ``key: value``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

MAX_VALUE = 80


def _value(value: Any) -> str:
    """A detail value as short text: plain for scalars, compact JSON otherwise, cut when long."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE - 1] + "…"


def _pairs(detail: dict) -> str:
    """Every key of ``detail`` as ``key: value``."""
    return "; ".join(f"{key}: {_value(value)}" for key, value in detail.items()
                     if value not in (None, "", {}))


def _state_change(detail: dict) -> str:
    """A card's state change: from, to, why, under which process version."""
    process = detail.get("process_id")
    version = f" ({process} v{detail.get('process_version')})" if process else ""
    return f"{detail.get('from') or 'new'} → {detail.get('to')}: {detail.get('reason', '')}{version}"


def _task(detail: dict) -> str:
    """A completed user task: its title and the button pressed."""
    title = detail.get("title") or detail.get("task")
    data = detail.get("data") or {}
    choice = f": {data['action']}" if isinstance(data, dict) and "action" in data else ""
    return f"{title}{choice}"


def _instance_started(detail: dict) -> str:
    """A started instance: the process version and the option versions it took."""
    options = ", ".join(f"{name} v{version}" for name, version in (detail.get("options") or {}).items())
    return f"{detail.get('process_id')} v{detail.get('version')}" + (f" with {options}" if options else "")


def _attempt(detail: dict) -> str:
    """A production attempt: its number, and serial, error or spoil reason when there is one."""
    parts = [f"attempt {detail.get('attempt')}"]
    parts += [f"{key} {_value(detail[key])}" for key in ("serial", "error", "reason") if detail.get(key)]
    return ", ".join(parts)


def _certificate(detail: dict) -> str:
    """An issued or revoked certificate: type, serial, and why it was revoked."""
    text = f"{detail.get('type')} serial {detail.get('serial')}"
    return text + (f": {detail['reason']}" if detail.get("reason") else "")


def _deploy(detail: dict) -> str:
    """A deployed version: what, which version, and the start of its content hash."""
    return (f"{detail.get('kind')} {detail.get('name')} v{detail.get('version')} "
            f"(content {str(detail.get('content_hash', ''))[:12]})")


def _version_change(detail: dict) -> str:
    """A rollback: which version now and before, and the content hash it points at."""
    if "to_version" in detail:
        return (f"{detail.get('kind')} {detail.get('name')} v{detail.get('from_version')} → "
                f"v{detail.get('to_version')} (content {str(detail.get('content_hash', ''))[:12]})")
    return _pairs(detail)


SUMMARIES: dict[str, Callable[[dict], str]] = {
    "card state changed": _state_change,
    "task completed": _task,
    "instance started": _instance_started,
    "attempt started": _attempt,
    "attempt produced": _attempt,
    "attempt failed": _attempt,
    "attempt interrupted": _attempt,
    "card spoiled": _attempt,
    "certificate issued": _certificate,
    "certificate revoked": _certificate,
    "deploy": _deploy,
    "rollback": _version_change,
}


def summary(action: str, detail: dict | None) -> str:
    """The entry's detail in one line."""
    detail = detail or {}
    try:
        return SUMMARIES.get(action, _pairs)(detail)
    except (AttributeError, KeyError, TypeError):  # an entry shaped otherwise than usual: show it all
        return _pairs(detail)
