"""Structured logs: one JSON object a line on stderr, which the server's supervisor re-emits in its own log."""

import json
import sys
import threading
import time
import traceback
from datetime import datetime, timezone

_LEVELS = {"debug": 10, "info": 20, "warn": 30, "error": 40}
_lock = threading.Lock()
_threshold = _LEVELS["info"]


def set_level(level: str) -> None:
    global _threshold
    _threshold = _LEVELS.get(level, _LEVELS["info"])


def log(level: str, msg: str, **fields) -> None:
    if _LEVELS[level] < _threshold:
        return
    record = {"ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "level": level, "msg": msg}
    for key, value in fields.items():
        if isinstance(value, BaseException):
            value = {"name": type(value).__name__, "message": str(value),
                     "stack": "".join(traceback.format_exception(value))[-4000:]}
        record[key] = value
    line = json.dumps(record, default=str)
    with _lock:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def debug(msg: str, **fields) -> None:
    log("debug", msg, **fields)


def info(msg: str, **fields) -> None:
    log("info", msg, **fields)


def warn(msg: str, **fields) -> None:
    log("warn", msg, **fields)


def error(msg: str, **fields) -> None:
    log("error", msg, **fields)


class Timer:
    """Milliseconds since creation."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def ms(self) -> float:
        return (time.perf_counter() - self.start) * 1000
