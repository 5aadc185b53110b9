"""Types shared by the client core and every capability: parsed JSON and the logger we call."""

from __future__ import annotations

from typing import Any, Protocol, TypeAlias

#: Parsed JSON from Carol: whatever ``json.loads`` returns. Fields are read through :mod:`.answers`,
#: which checks each shape against ``docs/carol-api-contract.md``.
Json: TypeAlias = Any


class LoggerLike(Protocol):
    """The part of a logger we call (stdlib ``logging.Logger`` and structlog's bound loggers both fit)."""

    def debug(self, msg: str, /, *args: Any) -> object: ...
    def info(self, msg: str, /, *args: Any) -> object: ...
    def warning(self, msg: str, /, *args: Any) -> object: ...
