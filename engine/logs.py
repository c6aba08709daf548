"""Log lines for people and for log collectors: plain text on a terminal, one JSON object a line
otherwise (``CARDFLOW_LOG_FORMAT=json``).

A JSON line has ``ts``, ``level``, ``logger`` and ``message``, and the ids a record carries
through ``extra=`` (``order_id``, ``card_id``, ``station``, ``instance_id`` and any other). A
field whose name looks like a secret (pin, puk, password, passphrase, secret, key, token,
credential) is never written, at any depth, and ``name=value`` pairs of such names in the text
are masked: a log collector is not a place for a PIN or a key.
"""

from __future__ import annotations

import json as _json
import logging
import re
import sys
from datetime import UTC, datetime

# The ids an operator follows an order, a card or a station by; always first after the message.
CONTEXT_FIELDS = ("order_id", "card_id", "station", "instance_id")
SECRET_NAME = re.compile(r"pin|puk|pass(word|wd|phrase)?|secret|key|token|credential", re.IGNORECASE)
# "pin=1234", "password: hunter2", "token='abc'" in a message or a traceback.
SECRET_PAIR = re.compile(r"\b(\w*(?:pin|puk|password|passphrase|secret|key|token)\w*)(\s*[=:]\s*)"
                         r"('[^']*'|\"[^\"]*\"|[^\s,;)}\]]+)", re.IGNORECASE)
REDACTED = "[redacted]"
# What every LogRecord has; anything else on a record came through ``extra=``.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_MAX_DEPTH = 6
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def secret_name(name: str) -> bool:
    """Whether a field of this name may hold a secret (and so is never written)."""
    return bool(SECRET_NAME.search(name))


def mask_pairs(text: str) -> str:
    """``pin=1234`` -> ``pin=[redacted]`` for every secret-looking name in free text."""
    return SECRET_PAIR.sub(lambda match: f"{match.group(1)}{match.group(2)}{REDACTED}", text)


def _clean(value: object, depth: int = 0) -> object:
    """A JSON-safe copy of ``value`` without secret-named keys."""
    if depth > _MAX_DEPTH:
        return "..."
    if isinstance(value, dict):
        return {str(key): _clean(item, depth + 1) for key, item in value.items() if not secret_name(str(key))}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(item, depth + 1) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return mask_pairs(str(value))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts, level, logger, message, then the record's ids and extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_pairs(record.getMessage()),
        }
        extras = {key: value for key, value in vars(record).items()
                  if key not in _RECORD_FIELDS and not key.startswith("_")}
        for key in (*CONTEXT_FIELDS, *sorted(set(extras) - set(CONTEXT_FIELDS))):
            if key in extras and not secret_name(key):
                entry[key] = _clean(extras[key])
        if record.exc_info:
            entry["exception"] = mask_pairs(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exception"] = mask_pairs(record.exc_text)
        if record.stack_info:
            entry["stack"] = mask_pairs(self.formatStack(record.stack_info))
        return _json.dumps(entry, ensure_ascii=False, default=str)


class _CardflowHandler(logging.StreamHandler):
    """The handler ``configure_logging`` installs (and replaces when called again)."""


def configure_logging(json: bool = False, level: int = logging.INFO, stream=None) -> logging.Handler:
    """Send the process's logs to stderr (or ``stream``) as JSON lines or as plain text.

    Called once by the serving commands; calling it again replaces its handler, never adds one.
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _CardflowHandler)]:
        root.removeHandler(handler)
    handler = _CardflowHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if json else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def json_wanted(env: dict[str, str]) -> bool:
    """``CARDFLOW_LOG_FORMAT``: ``json`` or ``text`` (the default); anything else is refused."""
    raw = env.get("CARDFLOW_LOG_FORMAT", "").strip().lower() or "text"
    if raw not in ("json", "text"):
        raise ValueError(f"CARDFLOW_LOG_FORMAT must be json or text, not {raw!r}.")
    return raw == "json"
