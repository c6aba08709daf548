"""Modelling rules a deployable BPMN file must follow, after bpmnlint's recommended set.

SpiffWorkflow runs diagrams that a modeler shows badly or that hide their logic (implicit
splits and joins, unnamed steps, flows without diagram shapes). Deploy refuses them, so every
process opens clean in bpmn.io / Camunda Modeler and reads the same there as it runs here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from lxml import etree

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
DI = "http://www.omg.org/spec/DD/20100524/DI"
NS = {"bpmn": BPMN, "bpmndi": BPMNDI, "dc": DC, "di": DI}

EVENTS = {"startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent"}
ACTIVITIES = {
    "task", "userTask", "serviceTask", "scriptTask", "manualTask", "businessRuleTask", "sendTask",
    "receiveTask", "callActivity", "subProcess", "transaction", "adHocSubProcess",
}
GATEWAYS = {"exclusiveGateway", "inclusiveGateway", "parallelGateway", "eventBasedGateway", "complexGateway"}
# Only these gateways choose by condition; a parallel or event-based split needs none.
CONDITIONAL_GATEWAYS = {"exclusiveGateway", "inclusiveGateway", "complexGateway"}
CONTAINERS = {"process", "subProcess", "transaction", "adHocSubProcess"}


@dataclass(frozen=True)
class LintIssue:
    """One broken rule: where (source line, element id) and what is wrong."""

    line: int | None
    element_id: str
    reason: str


def _local(element: etree._Element) -> str:
    """The BPMN tag name without namespace, or '' for anything outside the BPMN namespace.

    Comments and processing instructions (modelers write them) have no tag name: ''.
    """
    if not isinstance(element.tag, str):
        return ""
    qname = etree.QName(element)
    return qname.localname if qname.namespace == BPMN else ""


def lint(tree: etree._ElementTree | etree._Element) -> list[LintIssue]:
    """All rule violations in a BPMN document, in document order per rule."""
    root = tree.getroot() if isinstance(tree, etree._ElementTree) else tree
    issues: list[LintIssue] = []
    for container in root.iter(*(f"{{{BPMN}}}{tag}" for tag in CONTAINERS)):
        issues += _lint_container(container)
    issues += _lint_diagram(root)
    return issues


def _lint_container(container: etree._Element) -> list[LintIssue]:
    """Rules about one process or sub-process: its own nodes and flows, not nested ones."""
    nodes = [child for child in container if _local(child) in EVENTS | ACTIVITIES | GATEWAYS]
    flows = [child for child in container if _local(child) == "sequenceFlow"]
    incoming: dict[str, list[etree._Element]] = defaultdict(list)
    outgoing: dict[str, list[etree._Element]] = defaultdict(list)
    for flow in flows:
        outgoing[flow.get("sourceRef", "")].append(flow)
        incoming[flow.get("targetRef", "")].append(flow)

    issues = _lint_start_end(container, nodes)
    for node in nodes:
        node_id, kind = node.get("id", ""), _local(node)
        ins, outs = incoming[node_id], outgoing[node_id]
        if kind != "boundaryEvent" and not (node.get("name") or "").strip():
            issues.append(_issue(node, "element has no name (label)"))
        if kind in GATEWAYS:
            issues += _lint_gateway(node, ins, outs)
            continue
        if len(outs) > 1:
            issues.append(_issue(node, "implicit split: more than one outgoing flow; use a gateway"))
        if len(ins) > 1:
            issues.append(_issue(node, "implicit join: more than one incoming flow; "
                                       "merge them with a converging exclusive gateway"))
    return issues


def _lint_start_end(container: etree._Element, nodes: list[etree._Element]) -> list[LintIssue]:
    """A process (or sub-process) needs a start event and an end event."""
    kinds = {_local(node) for node in nodes}
    if _local(container) == "adHocSubProcess":  # ad-hoc activities start and end on their own
        return []
    issues = []
    if "startEvent" not in kinds:
        issues.append(_issue(container, "no start event"))
    if "endEvent" not in kinds:
        issues.append(_issue(container, "no end event"))
    return issues


def _lint_gateway(
    gateway: etree._Element, ins: list[etree._Element], outs: list[etree._Element]
) -> list[LintIssue]:
    """A gateway either joins or splits; a split names its flows and guards them with conditions."""
    issues = []
    if len(ins) > 1 and len(outs) > 1:
        issues.append(_issue(gateway, "gateway both joins and splits; use two gateways"))
    if len(outs) < 2:
        return issues
    default = gateway.get("default")
    for flow in outs:
        if not (flow.get("name") or "").strip():
            issues.append(_issue(flow, "flow leaving a splitting gateway has no name (label)"))
        if _local(gateway) not in CONDITIONAL_GATEWAYS or flow.get("id") == default:
            continue
        condition = flow.find("bpmn:conditionExpression", NS)
        if condition is None or not (condition.text or "").strip():
            issues.append(_issue(flow, "flow leaving a splitting gateway has no condition "
                                       "(add a conditionExpression or make it the default flow)"))
    return issues


def _lint_diagram(root: etree._Element) -> list[LintIssue]:
    """Every flow node needs a shape with bounds and every sequence flow an edge with waypoints."""
    shapes = {
        shape.get("bpmnElement")
        for shape in root.iterfind(".//bpmndi:BPMNShape", NS)
        if shape.find("dc:Bounds", NS) is not None
    }
    edges = {
        edge.get("bpmnElement")
        for edge in root.iterfind(".//bpmndi:BPMNEdge", NS)
        if len(edge.findall("di:waypoint", NS)) >= 2
    }
    issues = []
    for element in root.iter(f"{{{BPMN}}}*"):
        kind = _local(element)
        if kind in EVENTS | ACTIVITIES | GATEWAYS and element.get("id") not in shapes:
            issues.append(_issue(element, "no diagram shape (BPMNShape with dc:Bounds)"))
        elif kind == "sequenceFlow" and element.get("id") not in edges:
            issues.append(_issue(element, "no diagram edge (BPMNEdge with two or more di:waypoint)"))
    return issues


def _issue(element: etree._Element, reason: str) -> LintIssue:
    """An issue located at ``element``."""
    return LintIssue(element.sourceline, element.get("id", ""), reason)
