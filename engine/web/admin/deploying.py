"""Validate and deploy from the browser exactly as ``cardflow deploy`` does, and say what happened."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from engine.bootstrap import OPTION_VALIDATORS
from engine.db import unit_of_work
from engine.definitions import DeployError, Problem
from engine.deployment import Source, deploy_sources
from engine.versions import VersionRow
from engine.web.context import services, widgets


@dataclass
class DeployResult:
    """What a Validate or Deploy did: the CLI's lines, or every problem with file and line."""

    check_only: bool
    lines: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing was refused."""
        return not self.problems

    @property
    def changed(self) -> bool:
        """True when a deploy stored at least one new version."""
        return any(line.endswith(" deployed") for line in self.lines)

    def as_json(self) -> dict:
        """The result for the editors' scripts."""
        return {"ok": self.ok, "lines": self.lines, "changed": self.changed,
                "problems": [{"file": p.file, "line": p.line, "reason": p.reason} for p in self.problems]}


def deploy_and_report(sources: Sequence[Source], actor: str, check_only: bool) -> DeployResult:
    """Validate ``sources`` and, unless ``check_only``, deploy them all or nothing."""
    result = DeployResult(check_only)
    try:
        with unit_of_work(services().sessions) as session:
            result.lines = deploy_sources(session, sources, services().registry.names(), OPTION_VALIDATORS,
                                          actor, check_only=check_only, widgets=widgets().names())
    except DeployError as error:
        result.problems = error.problems
    return result


def source_text(kind: str, row: VersionRow) -> str:
    """The text an admin wrote for a version: BPMN XML, form JSON or option script."""
    return {"process": lambda: row.bpmn_xml, "form": lambda: row.body, "option": lambda: row.source}[kind]()
