// An order's process drawn read-only with bpmn-js's navigated viewer (pan and zoom), the path the
// order took marked on it: completed elements, the current step (or where it stopped on an error),
// and where it was cancelled. The page gives the XML and the bpmn ids in #diagram-data.
"use strict";

const MARKERS = {completed: "path-completed", cancelled: "path-cancelled"};
// Below LEAST_SCALE task names cannot be read: a narrow screen then shows the step in focus at
// READABLE_SCALE instead of the whole diagram, and the auditor pans for the rest.
const LEAST_SCALE = 0.4;
const READABLE_SCALE = 0.6;

function markPath(viewer, data) {
  const canvas = viewer.get("canvas");
  const registry = viewer.get("elementRegistry");
  const names = [];
  const mark = (ids, marker) => ids.forEach((id) => {
    const element = registry.get(id);
    if (element) {
      canvas.addMarker(id, marker);
      names.push(element.businessObject.name || id);
    }
  });
  mark(data.completed, MARKERS.completed);
  mark(data.cancelled, MARKERS.cancelled);
  const before = names.length;
  mark(data.current, data.stopped ? "path-stopped" : "path-current");
  return names.slice(before);
}

// The frame takes the diagram's proportions (within bounds), so a wide process is not drawn tiny
// in a tall, mostly empty frame.
function fit(viewer, container) {
  const view = viewer.get("canvas");
  const drawn = view.viewbox().inner;
  if (drawn.width > 0) {
    const height = drawn.height * (container.clientWidth - 40) / drawn.width + 70;
    const least = container.clientWidth < 600 ? 320 : 220;
    container.style.height = `${Math.round(Math.min(Math.max(height, least), 560))}px`;
    view.resized();
  }
  view.zoom("fit-viewport");
  // A margin, so shapes at the edge are not cut by the frame, and room below for the bpmn.io logo.
  const {inner, scale} = view.viewbox();
  const margin = 20 / scale;
  view.viewbox({x: inner.x - margin, y: inner.y - margin, width: inner.width + 2 * margin,
                height: inner.height + 2 * margin + 30 / scale});
}

// Centre ``element`` at a readable zoom when the whole diagram is drawn too small to read.
function focus(viewer, element) {
  const view = viewer.get("canvas");
  if (!element || view.viewbox().scale >= LEAST_SCALE) {
    return;
  }
  view.zoom(READABLE_SCALE);
  const {width, height} = view.viewbox();
  view.viewbox({x: element.x + element.width / 2 - width / 2, y: element.y + element.height / 2 - height / 2,
                width, height});
}

document.addEventListener("DOMContentLoaded", async () => {
  const status = document.getElementById("diagram-status");
  const container = document.getElementById("diagram-canvas");
  const data = JSON.parse(document.getElementById("diagram-data").textContent);
  const viewer = new window.BpmnJS({container});
  try {
    const {warnings} = await viewer.importXML(data.xml);
    const current = markPath(viewer, data);
    fit(viewer, container);
    const registry = viewer.get("elementRegistry");
    const inFocus = [...data.current, ...data.cancelled, ...data.completed.slice(-1)];
    focus(viewer, inFocus.map((id) => registry.get(id)).find(Boolean));
    const where = current.length
      ? `${data.stopped ? "Stopped on an error at" : "Now at"}: ${current.join(", ")}.`
      : "";
    status.textContent = warnings.length
      ? `${where} Drawn with ${warnings.length} part(s) the viewer does not understand.`.trim()
      : where;
    container.dataset.state = "ready";
  } catch (error) {
    status.textContent = `The diagram cannot be drawn: ${error.message}`;
    container.dataset.state = "failed";
  }
});
