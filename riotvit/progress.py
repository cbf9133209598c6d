"""Progress reporting without tying the library to a terminal.

Library functions accept a ``Reporter``; the CLI passes a rich progress bar, tests and
notebooks pass nothing (``NullReporter``).
"""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    """What a long-running library function reports to."""

    def start(self, total: int, description: str, unit: str = "crops", per_item: tuple[float, str] | None = None) -> None: ...

    def advance(self, n: int = 1) -> None: ...

    def log(self, message: str) -> None: ...

    def stop(self) -> None: ...


class NullReporter:
    """A reporter that stays silent but remembers what was logged."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.done = 0

    def start(self, total: int, description: str, unit: str = "crops", per_item: tuple[float, str] | None = None) -> None:
        self.done = 0

    def advance(self, n: int = 1) -> None:
        self.done += n

    def log(self, message: str) -> None:
        self.messages.append(message)

    def stop(self) -> None:
        pass
