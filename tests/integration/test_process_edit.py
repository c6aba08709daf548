"""An admin inserts a supervisor approval step into the BPMN: deploy and run it, no code change."""

from __future__ import annotations

import shutil

from lxml import etree

from engine import bootstrap
from tests.integration.flow import PROCESS, add_cards, card_states, select_and_issue, settle, start, submit

NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
      "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
      "dc": "http://www.omg.org/spec/DD/20100524/DC", "di": "http://www.omg.org/spec/DD/20100524/DI",
      "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core"}


def _q(prefix: str, name: str) -> str:
    return f"{{{NS[prefix]}}}{name}"


def insert_approval(bpmn: bytes) -> bytes:
    """Route the "Next" flow through a new user task "Supervisor approval" before production."""
    root = etree.fromstring(bpmn)
    process = root.find("bpmn:process", NS)
    next_flow = process.find("bpmn:sequenceFlow[@id='Flow_Next']", NS)
    next_flow.set("targetRef", "Activity_SupervisorApproval")
    produce = process.find("bpmn:serviceTask[@id='Activity_Produce']", NS)
    produce.find("bpmn:incoming", NS).text = "Flow_ApprovalToProduce"

    task = etree.SubElement(process, _q("bpmn", "userTask"), id="Activity_SupervisorApproval",
                            name="Supervisor approval")
    properties = etree.SubElement(etree.SubElement(task, _q("bpmn", "extensionElements")),
                                  _q("spiffworkflow", "properties"))
    for name, value in (("formJsonSchemaFilename", "supervisor_approval.schema.json"),
                        ("formUiSchemaFilename", "supervisor_approval.uischema.json")):
        etree.SubElement(properties, _q("spiffworkflow", "property"), name=name, value=value)
    etree.SubElement(task, _q("bpmn", "incoming")).text = "Flow_Next"
    etree.SubElement(task, _q("bpmn", "outgoing")).text = "Flow_ApprovalToProduce"
    etree.SubElement(process, _q("bpmn", "sequenceFlow"), id="Flow_ApprovalToProduce",
                     sourceRef="Activity_SupervisorApproval", targetRef="Activity_Produce")

    plane = root.find("bpmndi:BPMNDiagram/bpmndi:BPMNPlane", NS)
    shape = etree.SubElement(plane, _q("bpmndi", "BPMNShape"), id="Activity_SupervisorApproval_di",
                             bpmnElement="Activity_SupervisorApproval")
    etree.SubElement(shape, _q("dc", "Bounds"), x="1290", y="20", width="100", height="80")
    edge = etree.SubElement(plane, _q("bpmndi", "BPMNEdge"), id="Flow_ApprovalToProduce_di",
                            bpmnElement="Flow_ApprovalToProduce")
    etree.SubElement(edge, _q("di", "waypoint"), x="1340", y="100")
    etree.SubElement(edge, _q("di", "waypoint"), x="1340", y="160")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def test_inserted_approval_step_runs_without_code_change(services, tmp_path):
    source = tmp_path / "source"
    for folder in ("processes", "forms", "options"):
        shutil.copytree(services.settings.source_path / folder, source / folder)
    add_cards(services, 4)
    # An order started on version 1 keeps version 1 after the new version is deployed.
    old_instance, old_task = start(services)

    bpmn = source / "processes" / f"{PROCESS}.bpmn"
    bpmn.write_bytes(insert_approval(bpmn.read_bytes()))
    services.settings.source_path = source
    assert f"{PROCESS} v2 deployed" in bootstrap.deploy(services, "admin")

    instance_id, task = start(services)
    task = select_and_issue(services, instance_id, task, [1, 2])
    task = submit(services, instance_id, task, {"action": "next"})
    assert (task.bpmn_id, task.title) == ("Activity_SupervisorApproval", "Supervisor approval")
    assert "approve" in task.ui_text
    assert card_states(services)["TC-000001"] == "requested"  # nothing produced before approval
    task = submit(services, instance_id, task, {"action": "approve", "comment": "ok"})
    assert task.bpmn_id == "Activity_Review"
    assert card_states(services)["TC-000001"] == "unassigned"
    assert services.runtime.view(instance_id).process_version == 2

    task = select_and_issue(services, old_instance, old_task, [3])
    task = submit(services, old_instance, task, {"action": "next"})
    assert task.bpmn_id == "Activity_Review"
    assert services.runtime.view(old_instance).process_version == 1
    assert settle(services, old_instance).bpmn_id == "Activity_Review"
