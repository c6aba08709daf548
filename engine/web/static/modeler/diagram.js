// A stored process version drawn read-only with bpmn-js's navigated viewer (pan and zoom).
// The page gives the XML in a JSON block (#diagram-data); window.BpmnJS is the viewer bundle.
"use strict";

document.addEventListener("DOMContentLoaded", async () => {
  const status = document.getElementById("diagram-status");
  const canvas = document.getElementById("diagram-canvas");
  const data = JSON.parse(document.getElementById("diagram-data").textContent);
  const viewer = new window.BpmnJS({container: canvas});
  try {
    const {warnings} = await viewer.importXML(data.xml);
    const view = viewer.get("canvas");
    view.zoom("fit-viewport");
    // A margin, so shapes at the edge are not cut by the frame.
    const {inner, scale} = view.viewbox();
    const margin = 20 / scale;
    view.viewbox({x: inner.x - margin, y: inner.y - margin, width: inner.width + 2 * margin,
                  height: inner.height + 2 * margin});
    status.textContent = warnings.length
      ? `Drawn, with ${warnings.length} part(s) the viewer does not understand: ${warnings.map((w) => w.message).join("; ")}`
      : "";
    canvas.dataset.state = "ready";
  } catch (error) {
    status.textContent = `The diagram cannot be drawn: ${error.message}`;
    canvas.dataset.state = "failed";
  }
});
