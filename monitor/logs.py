"""One line per event on stderr, logfmt or JSON, with secrets masked as a last line of defence.

Code logs with `event(logger, level, "what happened", key=value, ...)`; the formatter renders the
fields so that `grep target=opod-regenboog/internet` or a JSON pipeline both work.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from collections.abc import Iterable

_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@+,%")


def event(logger: logging.Logger, level: int, msg: str, **fields: object) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, msg, extra={"fields": fields}, stacklevel=2)


def _logfmt_value(value: object) -> str:
    text = (
        value
        if isinstance(value, str)
        else format(value, ".6g")
        if isinstance(value, float)
        else str(value)
    )
    if text and all(c in _SAFE for c in text):
        return text
    return json.dumps(text, ensure_ascii=False)


class _Formatter(logging.Formatter):
    def __init__(self, json_lines: bool) -> None:
        super().__init__()
        self.json_lines = json_lines

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields.update(getattr(record, "fields", {}) or {})
        if record.exc_text:  # already rendered (and masked) by the redactor
            fields["exception"] = record.exc_text
        elif record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        if self.json_lines:
            return json.dumps(fields, ensure_ascii=False, default=str)
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in fields.items())


class _Redactor(logging.Filter):
    """Replaces any known secret in a finished log line: message, fields and exception text (a
    library's exception may quote a community or key, as text, repr or bytes). Code must not log
    secrets in the first place; this is the last line of defence."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: tuple[str, ...] = ()

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        fields = getattr(record, "fields", None)
        if any(s in message for s in self.secrets) or (
            fields and any(s in str(v) for v in fields.values() for s in self.secrets)
        ):
            record.msg, record.args = self.mask(message), ()
            if fields:
                record.fields = {k: self.mask(str(v)) for k, v in fields.items()}
        if record.exc_info or record.exc_text:
            text = record.exc_text or "".join(traceback.format_exception(*record.exc_info))
            record.exc_text, record.exc_info = self.mask(text.rstrip("\n")), None
        return True

    def mask(self, text: str) -> str:
        for secret in self.secrets:  # longest first: a secret containing another is masked whole
            text = text.replace(secret, "*****")
        return text


def spellings(secret: str) -> set[str]:
    """The ways a secret shows up in text: as itself, inside a repr() or ascii() of a str or of
    its UTF-8 bytes, and as hex (pyasn1 prints octet strings that way)."""
    forms = {secret, repr(secret)[1:-1], ascii(secret)[1:-1]}
    try:
        data = secret.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from the environment: no bytes form
        return forms
    return forms | {repr(data)[2:-1], data.hex()}


def exception_outline(exc: BaseException) -> str:
    """A traceback without the exception's message: where it happened and of which type, for
    failures whose message may quote input that no redaction knows yet (a new config's
    secrets)."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    return f"Traceback (most recent call last):\n{frames}{type(exc).__qualname__}"


_redactor = _Redactor()


def setup(level: str = "info", fmt: str = "logfmt", stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_Formatter(json_lines=fmt == "json"))
    handler.addFilter(_redactor)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # pysnmp and asyncio debug chatter is not for operators
    logging.getLogger("pysnmp").setLevel(logging.WARNING)
    logging.getLogger("asyncio").setLevel(logging.WARNING)


def set_secrets(secrets: Iterable[str]) -> None:
    """Called with every loaded config's secrets (only values long enough to be meaningful)."""
    forms = {form for s in set(secrets) if len(s) >= 3 for form in spellings(s)}
    _redactor.secrets = tuple(sorted(forms, key=len, reverse=True))
