// The modeler page: bpmn-js's modeler with the spiffworkflow extensions typed (so the engine's
// operators and forms survive a save), the properties panel, and Validate / Deploy / Download.
// The page gives its data in a JSON block (#modeler-data); window.BpmnJS is the modeler bundle.
"use strict";

document.addEventListener("DOMContentLoaded", async () => {
  const data = JSON.parse(document.getElementById("modeler-data").textContent);
  const status = document.getElementById("modeler-status");
  const problems = document.getElementById("modeler-problems");
  const exported = document.getElementById("modeler-export");
  const canvasNode = document.getElementById("modeler-canvas");
  const buttons = ["validate", "deploy", "download"].map((name) => document.getElementById(`modeler-${name}`));
  const token = document.querySelector('meta[name="csrf-token"]').content;
  let modeler = null;

  /** Say what happened in the status area, and list problems (empty list: none). */
  function report(message, items = []) {
    status.textContent = message;
    problems.replaceChildren(...items.map(problemItem));
    problems.hidden = items.length === 0;
  }

  /** One problem as a list item; a reason that starts with an element's id selects it on click. */
  function problemItem({line, reason}) {
    const text = line ? `Line ${line}: ${reason}` : reason;
    const element = modeler && modeler.get("elementRegistry").get(reason.split(":")[0].trim());
    if (!element) {
      return Object.assign(document.createElement("li"), {textContent: text});
    }
    const button = Object.assign(document.createElement("button"), {type: "button", className: "problem", textContent: text});
    button.addEventListener("click", () => {
      modeler.get("selection").select(element);
      modeler.get("canvas").scrollToElement(element);
    });
    const item = document.createElement("li");
    item.append(button);
    return item;
  }

  /** The diagram as BPMN XML, also left in #modeler-export (what was last sent or saved). */
  async function exportXml() {
    const {xml} = await modeler.saveXML({format: true});
    exported.value = xml;
    return xml;
  }

  /** Post the exported XML to the check or deploy endpoint and show its answer. */
  async function send(url, doing) {
    buttons.forEach((button) => { button.disabled = true; });
    report(doing);
    try {
      const body = new FormData();
      body.append("bpmn", await exportXml());
      body.append("process_id", data.processId);
      const response = await fetch(url, {
        method: "POST", body, credentials: "same-origin",
        headers: {"X-CSRFToken": token, Accept: "application/json"},
      });
      const type = response.headers.get("Content-Type") || "";
      if (!type.includes("application/json")) {
        report(`The server refused the request (HTTP ${response.status}); reload the page and try again.`);
        return;
      }
      const answer = await response.json();
      report(answer.message, answer.problems || []);
    } catch (error) {
      report(`The server could not be reached: ${error.message}. Nothing was changed.`);
    } finally {
      buttons.forEach((button) => { button.disabled = false; });
    }
  }

  /** Save the exported XML as a file named after the process. */
  async function download() {
    const url = URL.createObjectURL(new Blob([await exportXml()], {type: "application/xml"}));
    const link = Object.assign(document.createElement("a"), {href: url, download: `${data.processId}.bpmn`});
    document.body.append(link);
    link.click();
    link.remove();
    URL.revokeObjectURL(url);
  }

  /** Show the whole diagram, clear of the palette that floats over the canvas's left edge. */
  function fitBesidePalette(canvas) {
    canvas.zoom("fit-viewport");
    const {inner, scale} = canvas.viewbox();
    const palette = canvasNode.querySelector(".djs-palette");
    const covered = palette ? palette.getBoundingClientRect().right - canvasNode.getBoundingClientRect().left : 0;
    const room = (covered + 20) / scale;
    canvas.viewbox({x: inner.x - room, y: inner.y - 20 / scale, width: inner.width + room + 20 / scale,
                    height: inner.height + 40 / scale});
  }

  try {
    const descriptor = await (await fetch(data.moddleUrl, {credentials: "same-origin"})).json();
    modeler = new window.BpmnJS({container: canvasNode, moddleExtensions: {spiffworkflow: descriptor}});
    new window.CardflowPropertiesPanel(modeler, document.getElementById("modeler-properties"), data);
    const {warnings} = await modeler.importXML(data.xml);
    fitBesidePalette(modeler.get("canvas"));
    // A part the modeler does not understand would be dropped on save: say so before any edit.
    report(warnings.length ? "Some parts of this process are not understood by the modeler and would be lost on save."
      : "", warnings.map((warning) => ({line: null, reason: warning.message})));
    canvasNode.dataset.state = "ready";
  } catch (error) {
    report(`The modeler cannot open this process: ${error.message}`);
    canvasNode.dataset.state = "failed";
    return;
  }
  const [validate, deploy, save] = buttons;
  validate.addEventListener("click", () => send(data.checkUrl, "Validating..."));
  deploy.addEventListener("click", () => send(data.deployUrl, "Deploying..."));
  save.addEventListener("click", download);
  buttons.forEach((button) => { button.disabled = false; });
});
