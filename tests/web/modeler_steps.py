"""Steps an admin takes in the bpmn-js modeler (/admin/processes/<id>/modeler), with the mouse.

The page is read like a screen: where a shape or a flow is drawn comes from the SVG bpmn-js
draws; every change goes through the palette, the canvas, the context pad and the properties
panel, as an admin would make it.
"""

from __future__ import annotations

from playwright.sync_api import Page, expect

# The shape labelled ``name`` and the flows that end on it, in page pixels. Task labels are split
# into one <tspan> per line, so names are compared without white space.
_LOCATE = """
([name]) => {
  const squash = (text) => text.replace(/\\s+/g, "");
  // External labels (of events, gateways) are shapes of their own, with ids ending in _label.
  const shapes = [...document.querySelectorAll(
    "#modeler-canvas .djs-shape:not([data-element-id$='_label'])")];
  const shape = shapes.find((node) => {
    const label = node.querySelector(".djs-visual text.djs-label");
    return label && squash(label.textContent) === squash(name);
  });
  if (!shape) {
    return null;
  }
  const box = shape.querySelector(".djs-hit").getBoundingClientRect();
  const toPage = (path, point) => {
    const {x, y} = new DOMPoint(point.x, point.y).matrixTransform(path.getScreenCTM());
    return {x, y};
  };
  // The middle of the straight run a flow ends with (it may bend before): dropping there splits it.
  const lastRunMiddle = (path, length) => {
    const end = path.getPointAtLength(length);
    const back = path.getPointAtLength(Math.max(0, length - 5));
    const norm = Math.hypot(end.x - back.x, end.y - back.y) || 1;
    const [dx, dy] = [(end.x - back.x) / norm, (end.y - back.y) / norm];
    let run = 5;
    while (run + 5 <= length) {
      const point = path.getPointAtLength(length - run - 5);
      if (Math.abs((point.x - end.x) * dy - (point.y - end.y) * dx) > 1) {
        break;
      }
      run += 5;
    }
    return path.getPointAtLength(length - run / 2);
  };
  const incoming = [];
  for (const connection of document.querySelectorAll("#modeler-canvas .djs-connection")) {
    const path = connection.querySelector(".djs-visual > path");
    const length = path.getTotalLength();
    const end = toPage(path, path.getPointAtLength(length));
    if (end.x >= box.left - 2 && end.x <= box.right + 2 && end.y >= box.top - 2 && end.y <= box.bottom + 2) {
      incoming.push({id: connection.dataset.elementId, ...toPage(path, lastRunMiddle(path, length))});
    }
  }
  return {id: shape.dataset.elementId, left: box.left, top: box.top, width: box.width, height: box.height,
          scale: shape.querySelector(".djs-hit").getScreenCTM().a, incoming};
}
"""


def _locate(page: Page, name: str) -> dict:
    """Where the shape named ``name`` and its incoming flows are drawn (page pixels)."""
    found = page.evaluate(_LOCATE, [name])
    assert found, f"no shape named {name!r} in the modeler"
    return found


def _drag(page: Page, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Press the mouse at ``start``, move in small steps to ``end`` and release, as a hand does."""
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] + 5, start[1], steps=2)
    page.mouse.move(*end, steps=15)
    page.mouse.up()


def make_room_before(page: Page, task_name: str, diagram_units: float = 160) -> None:
    """With the space tool, push everything from the task named ``task_name`` rightwards."""
    task = _locate(page, task_name)
    page.locator(".djs-palette .entry.bpmn-icon-space-tool").click()
    x = task["left"] - 6 * task["scale"]
    y = task["top"] + task["height"] + 40 * task["scale"]
    _drag(page, (x, y), (x + diagram_units * task["scale"], y))


def insert_task_before(page: Page, before_task_name: str, name: str, task_type: str) -> None:
    """Insert a task of ``task_type`` ("User task", "Service task") named ``name`` on the flow
    into ``before_task_name``; it stays selected, its properties in the panel.

    Makes room with the space tool, drags a task from the palette onto the incoming flow (bpmn-js
    splits it), types the name and changes the type with the context pad's "Change element" menu.
    """
    make_room_before(page, before_task_name)
    incoming = _locate(page, before_task_name)["incoming"]
    assert len(incoming) == 1, f"{before_task_name!r} should have one incoming flow, has {incoming}"
    flow = incoming[0]
    palette_task = page.locator(".djs-palette .entry.bpmn-icon-task")
    box = palette_task.bounding_box()
    _drag(page, (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2), (flow["x"], flow["y"]))
    # bpmn-js opens the new task's label for typing; Enter ends it.
    expect(page.locator(".djs-direct-editing-parent")).to_be_visible()
    page.keyboard.type(name)
    page.keyboard.press("Enter")
    panel = page.locator("#modeler-properties")
    expect(panel.locator("h2")).to_have_text("Task")
    page.locator(".djs-context-pad .entry[data-action='replace']").click()
    page.locator(".djs-popup").get_by_text(task_type, exact=True).click()
    expect(panel.locator("h2")).to_have_text(task_type)
    expect(panel.get_by_label("Name")).to_have_value(name)


def insert_user_task_before(page: Page, before_task_name: str, name: str, schema: str,
                            ui_schema: str) -> None:
    """Insert a user task named ``name`` on the flow into ``before_task_name``, with these forms
    picked in the properties panel (see ``insert_task_before``)."""
    insert_task_before(page, before_task_name, name, "User task")
    panel = page.locator("#modeler-properties")
    panel.get_by_label("Form schema").select_option(schema)
    expect(panel.get_by_label("Form schema")).to_have_value(schema)
    panel.get_by_label("UI schema").select_option(ui_schema)
    expect(panel.get_by_label("UI schema")).to_have_value(ui_schema)
