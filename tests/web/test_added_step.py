"""An admin adds a user task to the BPMN (a supervisor approval); the console shows it with no code change."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from engine.config import Settings
from tests.conftest import make_settings
from tests.web.console_steps import card_states, issue, title

REPO = Path(__file__).resolve().parents[2]
APPROVAL = """
    <bpmn:userTask id="Activity_Approve" name="Supervisor approval">
      <bpmn:extensionElements>
        <spiffworkflow:properties>
          <spiffworkflow:property name="formJsonSchemaFilename" value="supervisor_approval.schema.json" />
          <spiffworkflow:property name="formUiSchemaFilename" value="supervisor_approval.uischema.json" />
        </spiffworkflow:properties>
      </bpmn:extensionElements>
      <bpmn:incoming>Flow_Next</bpmn:incoming>
      <bpmn:outgoing>Flow_ApproveToDecision</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:exclusiveGateway id="Gateway_Approved" name="Approved?">
      <bpmn:incoming>Flow_ApproveToDecision</bpmn:incoming>
      <bpmn:outgoing>Flow_Approved</bpmn:outgoing>
      <bpmn:outgoing>Flow_NotApproved</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="Flow_ApproveToDecision" sourceRef="Activity_Approve"
                       targetRef="Gateway_Approved" />
    <bpmn:sequenceFlow id="Flow_Approved" name="Approve" sourceRef="Gateway_Approved"
                       targetRef="Activity_Produce">
      <bpmn:conditionExpression
          xsi:type="bpmn:tFormalExpression">action == "approve"</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="Flow_NotApproved" name="Cancel" sourceRef="Gateway_Approved"
                       targetRef="Gateway_CancelBeforeProduction">
      <bpmn:conditionExpression
          xsi:type="bpmn:tFormalExpression">action == "cancel"</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
  </bpmn:process>"""
APPROVAL_DI = """
      <bpmndi:BPMNShape id="Activity_Approve_di" bpmnElement="Activity_Approve">
        <dc:Bounds x="1160" y="440" width="100" height="80" />
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="Gateway_Approved_di" bpmnElement="Gateway_Approved" isMarkerVisible="true">
        <dc:Bounds x="1315" y="455" width="50" height="50" />
      </bpmndi:BPMNShape>
      <bpmndi:BPMNEdge id="Flow_ApproveToDecision_di" bpmnElement="Flow_ApproveToDecision">
        <di:waypoint x="1260" y="480" />
        <di:waypoint x="1315" y="480" />
      </bpmndi:BPMNEdge>
      <bpmndi:BPMNEdge id="Flow_Approved_di" bpmnElement="Flow_Approved">
        <di:waypoint x="1340" y="455" />
        <di:waypoint x="1340" y="240" />
      </bpmndi:BPMNEdge>
      <bpmndi:BPMNEdge id="Flow_NotApproved_di" bpmnElement="Flow_NotApproved">
        <di:waypoint x="1315" y="490" />
        <di:waypoint x="1210" y="365" />
      </bpmndi:BPMNEdge>
    </bpmndi:BPMNPlane>"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A project copy whose process has a supervisor approval between Selected cards and production."""
    source = tmp_path / "source"
    for folder in ("processes", "forms", "options"):
        shutil.copytree(REPO / folder, source / folder)
    bpmn = source / "processes" / "TempCardsBoProcIssueMultiple.bpmn"
    text = bpmn.read_text()
    for old, new in (
        ('sourceRef="Gateway_NextOrCancel" targetRef="Activity_Produce"',
         'sourceRef="Gateway_NextOrCancel" targetRef="Activity_Approve"'),
        ("<bpmn:incoming>Flow_Next</bpmn:incoming>", "<bpmn:incoming>Flow_Approved</bpmn:incoming>"),
        ("\n  </bpmn:process>", APPROVAL),
        ("\n    </bpmndi:BPMNPlane>", APPROVAL_DI),
    ):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    bpmn.write_text(text)
    return replace(make_settings(tmp_path / "instance"), source_path=source)


def test_the_added_approval_step_is_shown_and_checked(login, services, requested_cards):
    op = login()
    instance_id = op.start()
    issue(op, instance_id, [10, 11])
    assert op.submit(instance_id, {"action": "next"}).status_code == 303
    approval = op.order_page(instance_id)
    assert title(approval) == "Supervisor approval"
    assert "<textarea" in approval and ">Approve</button>" in approval and ">Cancel</button>" in approval

    too_long = op.submit(instance_id, {"action": "approve", "comment": "x" * 501})
    assert too_long.status_code == 400 and "Comment can have at most 500 characters." in too_long.text
    assert title(op.order_page(instance_id)) == "Supervisor approval"

    assert op.submit(instance_id, {"action": "approve", "comment": "fine by me"}).status_code == 303
    assert title(op.order_page(instance_id)) == "Review production"
    assert services.runtime.ready_task(instance_id).data["comment"] == "fine by me"


def test_cancel_at_the_added_step_releases_the_cards(login, services, requested_cards):
    op = login()
    instance_id = op.start()
    issue(op, instance_id, [10, 11])
    op.submit(instance_id, {"action": "next"})
    assert op.submit(instance_id, {"action": "cancel", "comment": "x" * 600}).status_code == 303
    assert title(op.order_page(instance_id)) == "Order cancelled"
    assert set(card_states(services).values()) == {"requested"}
