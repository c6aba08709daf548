"""The error deployment raises: every problem found, each with its file and line."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One reason a file cannot be deployed; ``line`` is None when no single line is to blame."""

    file: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        """``file:line: reason``, the form editors and CI logs link to."""
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.reason}"


class DeployError(Exception):
    """Files were refused; nothing was deployed. ``problems`` lists every reason found."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        super().__init__("deploy refused:\n" + "\n".join(str(problem) for problem in self.problems))
