"""One logging set-up for every command: level, text or JSON lines, where to write, and
secrets redacted from every record.

- :func:`setup_logging` (the ``arbsim`` group's ``--log-level``, ``--log-format``,
  ``--log-file``) installs one handler on the root logger: stderr (resolved at each
  record, so a redirected stderr is followed) or a file.
- :func:`run_log` adds, for the length of a paper / live / record session, a JSON-lines
  file in its run directory (``RUN_DIR/log.jsonl``) at the chosen level or INFO, whichever
  says more, and tags every record with the run id.
- During a session the event loop never waits for a log destination: every handler is
  fed through its own bounded queue by a thread of its own (:class:`_Queued`), so a
  stderr that nobody reads (a full pipe) or a slow disk cannot stall trading; a record
  that finds its queue full is dropped and counted, and the count is logged at the end.
- Every handler carries a :class:`RedactingFilter`: the message, its arguments, the
  extra fields and the traceback of each record are passed through
  :func:`arbsim.core.redact.redact` (registered API keys, secrets, listen keys;
  ``signature=`` and the like) before any formatter sees them.

A JSON line holds ``time`` (ISO-8601 UTC), ``level``, ``component`` (the logger's name),
``message``, ``run_id``, ``venue`` and ``symbol`` when the record is about one, and the
record's own fields (``event``, ``client_order_id``, ``status``...: what the code passed
as ``extra``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import logging.handlers
import queue
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, TextIO

import msgspec

from arbsim.core.redact import redact

__all__ = [
    "LOG_FORMATS",
    "LOG_LEVELS",
    "JsonFormatter",
    "LogFormat",
    "RedactingFilter",
    "TextFormatter",
    "current_run_id",
    "run_log",
    "setup_logging",
]

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")

#: the attributes every LogRecord has; anything else on a record is an event field
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()
    | {"message", "asctime", "run_id", "taskName"}
)

_run_id = ""


def current_run_id() -> str:
    """The id of the session this process is running ('' outside one)."""
    return _run_id


def _clean(value: Any) -> Any:
    """A JSON-able, redacted copy of an event field."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(v) for v in value]
    return redact(str(value))


class RedactingFilter(logging.Filter):
    """Masks secrets in every record that passes (never drops one); stamps the run id.

    The message is formatted here (``msg % args``), redacted and stored back without
    arguments; a traceback is formatted and redacted into ``exc_text``; string-valued
    extra fields are redacted too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "_arbsim_redacted", False):
            try:
                message = record.getMessage()
            except Exception:  # a bad format string: keep what there is, redacted
                message = f"{record.msg!r} % {record.args!r}"
            record.msg = redact(message)
            record.args = None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = redact(record.exc_text)
                record.exc_info = None
            if record.stack_info:
                record.stack_info = redact(record.stack_info)
            for key, value in list(vars(record).items()):
                if key not in _STANDARD and not key.startswith("_"):
                    setattr(record, key, _clean(value))
            record._arbsim_redacted = True
        if not getattr(record, "run_id", ""):
            record.run_id = _run_id
        return True


def _iso(created: float) -> str:
    t = dt.datetime.fromtimestamp(created, dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring for its keys)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname,
            "component": record.name,
            "message": record.getMessage(),
            "run_id": getattr(record, "run_id", "") or _run_id,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = _clean(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exception"] = redact(record.exc_text)
        return msgspec.json.encode(out).decode()


class TextFormatter(logging.Formatter):
    """``time LEVEL component [venue symbol] message`` on one line (tracebacks follow)."""

    def format(self, record: logging.LogRecord) -> str:
        where = " ".join(
            str(v) for v in (getattr(record, "venue", None), getattr(record, "symbol", None)) if v
        )
        line = f"{_iso(record.created)} {record.levelname:<7} {record.name}"
        if where:
            line += f" [{where}]"
        line += f": {record.getMessage()}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + redact(record.exc_text)
        return line


class _Stderr(logging.StreamHandler[TextIO]):
    """A handler writing to whatever ``sys.stderr`` is when a record comes."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def _formatter(fmt: LogFormat) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else TextFormatter()


def _level(name: str) -> int:
    level = logging.getLevelName(name.upper())
    if not isinstance(level, int):
        raise ValueError(f"unknown log level {name!r}; one of {', '.join(LOG_LEVELS)}")
    return level


class _State:
    handler: logging.Handler | None = None
    level = logging.INFO


def setup_logging(level: str = "info", fmt: LogFormat = "text", file: Path | None = None) -> None:
    """The process's logging: ``level`` and above, as ``fmt``, to ``file`` or stderr.
    Calling it again replaces what an earlier call installed (and nothing else)."""
    lvl = _level(level)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(file, encoding="utf-8")
    else:
        handler = _Stderr()
    handler.setLevel(lvl)
    handler.setFormatter(_formatter(fmt))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    if _State.handler is not None:
        root.removeHandler(_State.handler)
        _State.handler.close()
    root.addHandler(handler)
    root.setLevel(lvl)
    _State.handler = handler
    _State.level = lvl
    # the operations server's own access log says nothing an operator needs
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


#: records a session's log destination may lag behind before new ones are dropped
QUEUE_RECORDS = 20_000


class _Queued(logging.handlers.QueueHandler):
    """Hands records to one target handler's thread; never blocks the caller."""

    def __init__(self, target: logging.Handler) -> None:
        self.records: queue.Queue[logging.LogRecord | None] = queue.Queue(QUEUE_RECORDS)
        super().__init__(self.records)
        self.setLevel(target.level)
        self.target = target
        self.dropped = 0
        self.listener = logging.handlers.QueueListener(
            self.records, target, respect_handler_level=True
        )
        self.listener.start()

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        # the message is fixed now (its arguments may change later); the record stays
        # in this process, so the traceback and the event's fields travel as they are
        out = logging.makeLogRecord(record.__dict__)
        out.msg = record.getMessage()
        out.args = None
        if not getattr(out, "run_id", ""):
            out.run_id = _run_id
        return out

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.records.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def finish(self, timeout_s: float = 5.0) -> bool:
        """Let the thread write what is queued, for at most ``timeout_s`` (a
        destination that never takes them again does not hold the process); True when
        it did."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.records.put_nowait(None)  # the listener's end mark
                break
            except queue.Full:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.01)
        thread = self.listener._thread
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                return False
            self.listener._thread = None
        return True


@contextlib.contextmanager
def run_log(path: Path, run_id: str) -> Iterator[logging.Handler]:
    """For the length of a session: every record at the chosen level or INFO, whichever
    says more, also goes to ``path`` as JSON lines, and records carry ``run_id``."""
    global _run_id
    level = min(_State.level, logging.INFO)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(level)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    old_level, old_id = root.level, _run_id
    process = _State.handler if _State.handler in root.handlers else None
    if process is not None:
        root.removeHandler(process)
    queued = [_Queued(h) for h in (process, handler) if h is not None]
    for q in queued:
        root.addHandler(q)
    if root.getEffectiveLevel() > level:
        root.setLevel(level)
    _run_id = run_id
    try:
        yield handler
    finally:
        for q in queued:
            root.removeHandler(q)
        done = [q.finish() for q in queued]
        if process is not None:
            root.addHandler(process)
        for q, finished in zip(queued, done, strict=True):
            if q.dropped and finished:
                q.target.handle(
                    logging.makeLogRecord(
                        {
                            "name": __name__,
                            "levelno": logging.WARNING,
                            "levelname": "WARNING",
                            "msg": f"{q.dropped} log records were dropped: this log's "
                            "destination did not keep up (is stderr read?)",
                            "run_id": run_id,
                        }
                    )
                )
        _run_id = old_id
        root.removeHandler(handler)
        handler.close()
        root.setLevel(old_level)
