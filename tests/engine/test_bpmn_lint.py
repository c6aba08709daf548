"""The modelling rules deploy enforces, on the real process and on small broken diagrams."""

from __future__ import annotations

from pathlib import Path

from engine.bpmn_lint import LintIssue, lint
from engine.spiff import parse_xml

HEADER = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" '
    'xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" '
    'xmlns:di="http://www.omg.org/spec/DD/20100524/DI" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'id="Defs" targetNamespace="http://bpmn.io/schema/bpmn">\n'
)
LINEAR = {"nodes": [("startEvent", "Start", "Start"), ("task", "Work", "Work"), ("endEvent", "End", "End")],
          "flows": [("F1", "Start", "Work"), ("F2", "Work", "End")]}


def diagram(nodes, flows, *, skip_di=(), gateway_default=None) -> bytes:
    """A one-process BPMN document; flows are (id, source, target[, name[, condition]]).

    Every element gets a shape or edge unless its id is in ``skip_di``.
    """
    lines = [HEADER, '<bpmn:process id="P" name="P" isExecutable="true">']
    for tag, node_id, name in nodes:
        name_attr = f' name="{name}"' if name else ""
        default = f' default="{gateway_default}"' if gateway_default and tag.endswith("Gateway") else ""
        lines.append(f'<bpmn:{tag} id="{node_id}"{name_attr}{default} />')
    for flow_id, source, target, *rest in flows:
        name_attr = f' name="{rest[0]}"' if rest and rest[0] else ""
        ends = f'sourceRef="{source}" targetRef="{target}"'
        lines.append(f'<bpmn:sequenceFlow id="{flow_id}"{name_attr} {ends}>')
        if len(rest) > 1:
            lines.append(f'<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{rest[1]}'
                         "</bpmn:conditionExpression>")
        lines.append("</bpmn:sequenceFlow>")
    lines.append('</bpmn:process><bpmndi:BPMNDiagram id="D"><bpmndi:BPMNPlane id="PL" bpmnElement="P">')
    for index, (_, node_id, _) in enumerate(nodes):
        if node_id not in skip_di:
            lines.append(f'<bpmndi:BPMNShape id="{node_id}_di" bpmnElement="{node_id}">'
                         f'<dc:Bounds x="{index * 150}" y="0" width="100" height="80" /></bpmndi:BPMNShape>')
    for flow_id, *_ in flows:
        if flow_id not in skip_di:
            lines.append(f'<bpmndi:BPMNEdge id="{flow_id}_di" bpmnElement="{flow_id}">'
                         '<di:waypoint x="0" y="0" /><di:waypoint x="10" y="0" /></bpmndi:BPMNEdge>')
    lines.append("</bpmndi:BPMNPlane></bpmndi:BPMNDiagram></bpmn:definitions>")
    return "\n".join(lines).encode()


def issues_of(document: bytes) -> list[LintIssue]:
    """Lint a document given as bytes."""
    return lint(parse_xml(document))


def reasons_for(document: bytes, element_id: str) -> list[str]:
    """The reasons reported for one element."""
    return [issue.reason for issue in issues_of(document) if issue.element_id == element_id]


def test_the_shipped_process_lints_clean(real_bpmn: Path):
    assert lint(parse_xml(real_bpmn.read_bytes())) == []


def test_a_minimal_correct_process_lints_clean():
    assert issues_of(diagram(**LINEAR)) == []


def test_an_unnamed_task_is_reported_with_its_line():
    document = diagram(LINEAR["nodes"][:1] + [("task", "Work", "")] + LINEAR["nodes"][2:], LINEAR["flows"])
    [issue] = issues_of(document)
    assert issue.element_id == "Work" and "no name" in issue.reason
    assert 'id="Work"' in document.decode().splitlines()[issue.line - 1]


def test_a_task_with_two_outgoing_flows_is_an_implicit_split():
    nodes = LINEAR["nodes"] + [("endEvent", "End2", "Other end")]
    flows = LINEAR["flows"] + [("F3", "Work", "End2")]
    assert any("implicit split" in reason for reason in reasons_for(diagram(nodes, flows), "Work"))


def test_a_task_with_two_incoming_flows_is_an_implicit_join():
    nodes = LINEAR["nodes"] + [("startEvent", "Start2", "Other start")]
    flows = LINEAR["flows"] + [("F3", "Start2", "Work")]
    assert any("implicit join" in reason for reason in reasons_for(diagram(nodes, flows), "Work"))


def split(flows_out, default=None) -> bytes:
    """Start -> exclusive gateway -> two end events, with the given outgoing flows."""
    nodes = [("startEvent", "Start", "Start"), ("exclusiveGateway", "Gw", "Which?"),
             ("endEvent", "EndA", "A"), ("endEvent", "EndB", "B")]
    return diagram(nodes, [("F0", "Start", "Gw"), *flows_out], gateway_default=default)


def test_conditioned_named_gateway_flows_are_clean():
    assert issues_of(split([("FA", "Gw", "EndA", "A", "x == 1"), ("FB", "Gw", "EndB", "B", "x != 1")])) == []


def test_a_gateway_flow_without_condition_is_reported():
    document = split([("FA", "Gw", "EndA", "A", "x == 1"), ("FB", "Gw", "EndB", "B")])
    assert any("no condition" in reason for reason in reasons_for(document, "FB"))


def test_the_default_flow_needs_no_condition():
    document = split([("FA", "Gw", "EndA", "A", "x == 1"), ("FB", "Gw", "EndB", "B")], default="FB")
    assert issues_of(document) == []


def test_an_unnamed_flow_leaving_a_splitting_gateway_is_reported():
    document = split([("FA", "Gw", "EndA", "", "x == 1"), ("FB", "Gw", "EndB", "B", "x != 1")])
    assert any("no name" in reason for reason in reasons_for(document, "FA"))


def test_a_gateway_that_joins_and_splits_is_reported():
    nodes = [("startEvent", "S1", "S1"), ("startEvent", "S2", "S2"), ("exclusiveGateway", "Gw", "Mixed"),
             ("endEvent", "EndA", "A"), ("endEvent", "EndB", "B")]
    flows = [("F1", "S1", "Gw"), ("F2", "S2", "Gw"),
             ("FA", "Gw", "EndA", "A", "x == 1"), ("FB", "Gw", "EndB", "B", "x != 1")]
    assert any("joins and splits" in reason for reason in reasons_for(diagram(nodes, flows), "Gw"))


def test_a_flow_node_without_shape_is_reported():
    assert any("no diagram shape" in r for r in reasons_for(diagram(**LINEAR, skip_di={"Work"}), "Work"))


def test_a_sequence_flow_without_edge_is_reported():
    assert any("no diagram edge" in r for r in reasons_for(diagram(**LINEAR, skip_di={"F2"}), "F2"))


def test_a_process_without_start_or_end_event_is_reported():
    document = diagram([("task", "Work", "Work")], [])
    assert sorted(reasons_for(document, "P")) == ["no end event", "no start event"]
