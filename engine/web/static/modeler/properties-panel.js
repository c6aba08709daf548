// The modeler's properties panel: what the engine reads from the selected element (name, a
// service task's operator and parameters, a user task's forms, a flow's condition), edited
// through bpmn-js modeling commands so every change is undoable and lands in the exported XML.
// Plain DOM code: bpmn-js-properties-panel would need a bundler (docs/ARCHITECTURE.md).
"use strict";

window.CardflowPropertiesPanel = (() => {
  const FORM_FIELDS = [
    {property: "formJsonSchemaFilename", label: "Form schema", suffix: ".schema.json"},
    {property: "formUiSchemaFilename", label: "UI schema", suffix: ".uischema.json"},
  ];
  const TYPE_LABELS = {
    "bpmn:Process": "Process", "bpmn:UserTask": "User task", "bpmn:ServiceTask": "Service task",
    "bpmn:ScriptTask": "Script task", "bpmn:Task": "Task", "bpmn:ExclusiveGateway": "Exclusive gateway",
    "bpmn:ParallelGateway": "Parallel gateway", "bpmn:InclusiveGateway": "Inclusive gateway",
    "bpmn:SequenceFlow": "Sequence flow", "bpmn:StartEvent": "Start event", "bpmn:EndEvent": "End event",
  };
  const CONDITIONAL_SOURCES = ["bpmn:ExclusiveGateway", "bpmn:InclusiveGateway"];

  /** A new DOM element with properties (className, textContent, ...) and children. */
  function make(tag, props = {}, children = []) {
    const node = Object.assign(document.createElement(tag), props);
    node.append(...children);
    return node;
  }

  /** A labelled field; `control` gets an id so the label names it for screen readers and tests. */
  function field(label, control, key) {
    control.id = `prop-${key}`;
    control.dataset.key = key;
    return make("div", {className: "field"}, [make("label", {htmlFor: control.id, textContent: label}), control]);
  }

  /** A <select> of `values` (plus `current` if it is not among them) with an empty first choice. */
  function choice(values, current, empty, missing) {
    const select = make("select");
    select.append(make("option", {value: "", textContent: empty}));
    const all = current && !values.includes(current) ? [current, ...values] : values;
    for (const value of all) {
      const text = values.includes(value) ? value : `${value} (${missing})`;
      select.append(make("option", {value, textContent: text, selected: value === current}));
    }
    return select;
  }

  /** The first extension element of `type` on a business object, or undefined. */
  function extension(bo, type) {
    return (bo.extensionElements?.values || []).find((value) => value.$instanceOf(type));
  }

  class PropertiesPanel {
    /** Show the properties of the selected element of `modeler` in `root`. */
    constructor(modeler, root, {operators, forms}) {
      this.root = root;
      this.operators = operators;
      this.forms = forms;
      this.modeling = modeler.get("modeling");
      this.moddle = modeler.get("moddle");
      this.registry = modeler.get("elementRegistry");
      this.canvas = modeler.get("canvas");
      this.element = null;
      this.pending = null;
      const events = modeler.get("eventBus");
      events.on("selection.changed", ({newSelection}) => {
        this.element = newSelection.length === 1 ? newSelection[0] : null;
        this.schedule();
      });
      // Undo, redo and edits on the canvas change what the panel shows.
      events.on("elements.changed", () => this.schedule());
      events.on("import.done", () => this.schedule());
    }

    /** Render once the current event is over: a field left with Tab has handed the focus on by then. */
    schedule() {
      if (this.pending === null) {
        this.pending = window.setTimeout(() => {
          this.pending = null;
          this.render();
        }, 0);
      }
    }

    /** Draw the panel again for the current element, keeping the focus on the same field. */
    render() {
      if (this.element && !this.registry.get(this.element.id)) {
        this.element = null;
      }
      const element = this.element || this.canvas.getRootElement();
      if (!element || !element.businessObject) {
        return;
      }
      const focused = this.root.contains(document.activeElement) ? document.activeElement.dataset.key : null;
      const bo = element.businessObject;
      const sections = [
        make("h2", {textContent: TYPE_LABELS[bo.$type] || bo.$type.replace("bpmn:", "")}),
        field("Id", make("input", {type: "text", value: bo.id || "", readOnly: true}), "id"),
        this.text(element, "Name", bo.name, "name", (value) => this.modeling.updateProperties(element, {name: value || undefined})),
      ];
      if (bo.$instanceOf("bpmn:ServiceTask")) {
        sections.push(...this.serviceTask(element));
      } else if (bo.$instanceOf("bpmn:UserTask")) {
        sections.push(...this.userTask(element));
      } else if (CONDITIONAL_SOURCES.some((type) => bo.$instanceOf(type))) {
        for (const flow of element.outgoing) {
          const target = flow.target.businessObject;
          sections.push(this.condition(flow, `Condition to ${target.name || target.id} (${flow.id})`));
        }
      } else if (bo.$instanceOf("bpmn:SequenceFlow") && CONDITIONAL_SOURCES.some((t) => bo.sourceRef?.$instanceOf(t))) {
        sections.push(this.condition(element, "Condition"));
      }
      if (!this.element) {
        sections.push(make("p", {className: "help", textContent: "Select an element to see and edit its properties."}));
      }
      this.root.replaceChildren(...sections);
      const again = focused && this.root.querySelector(`[data-key="${CSS.escape(focused)}"]`);
      if (again) {
        again.focus();
      }
    }

    /** A text field that calls `save(value)` when the admin leaves it or presses Enter. */
    text(element, label, value, key, save, multiline = false) {
      const input = multiline ? make("textarea", {rows: 2, value: value || ""}) : make("input", {type: "text", value: value || ""});
      input.addEventListener("change", () => save(input.value.trim()));
      return field(label, input, `${key}-${element.id}`);
    }

    /** A flow's condition expression (Python, as the engine evaluates it). */
    condition(flow, label) {
      const expression = flow.businessObject.conditionExpression;
      return this.text(flow, label, expression?.body, "condition", (body) => {
        if (!body) {
          this.modeling.updateProperties(flow, {conditionExpression: undefined});
        } else if (expression) {
          this.modeling.updateModdleProperties(flow, expression, {body});
        } else {
          this.modeling.updateProperties(flow, {conditionExpression: this.moddle.create("bpmn:FormalExpression", {body})});
        }
      }, true);
    }

    /** The operator of a service task, its result variable and its parameters. */
    serviceTask(element) {
      const operator = extension(element.businessObject, "spiffworkflow:ServiceTaskOperator");
      const select = choice(this.operators, operator?.id, "Choose an operator", "not published");
      select.addEventListener("change", () => {
        if (operator) {
          this.modeling.updateModdleProperties(element, operator, {id: select.value || undefined});
        } else {
          this.addExtension(element, this.moddle.create("spiffworkflow:ServiceTaskOperator", {id: select.value}));
        }
      });
      const parts = [field("Operator", select, `operator-${element.id}`)];
      if (!operator) {
        return parts;
      }
      parts.push(this.text(element, "Result variable", operator.resultVariable, "result",
        (value) => this.modeling.updateModdleProperties(element, operator, {resultVariable: value || undefined})));
      parts.push(this.parameters(element, operator));
      return parts;
    }

    /** The parameters of a service task's operator: id, type and value (a Python expression) each. */
    parameters(element, operator) {
      const list = operator.parameters;
      const rows = (list?.parameters || []).map((parameter, index) => {
        const inputs = [["id", "id"], ["type", "type"], ["value", "value (Python)"]].map(([name, hint]) => {
          const input = make("input", {type: "text", value: parameter[name] || "", placeholder: hint,
                                       className: `parameter-${name}`});
          input.dataset.key = `param-${element.id}-${index}-${name}`;
          input.setAttribute("aria-label", `Parameter ${index + 1} ${name}`);
          input.addEventListener("change", () => this.modeling.updateModdleProperties(element, parameter, {[name]: input.value.trim()}));
          return input;
        });
        const remove = make("button", {type: "button", className: "secondary", textContent: "Remove"});
        remove.setAttribute("aria-label", `Remove parameter ${index + 1}`);
        remove.addEventListener("click", () => this.modeling.updateModdleProperties(element, list, {
          parameters: list.parameters.filter((other) => other !== parameter),
        }));
        return make("li", {className: "parameter"}, [...inputs, remove]);
      });
      const add = make("button", {type: "button", className: "secondary", textContent: "Add parameter"});
      add.addEventListener("click", () => {
        const parameter = this.moddle.create("spiffworkflow:Parameter", {id: "", type: "str", value: ""});
        if (list) {
          parameter.$parent = list;
          this.modeling.updateModdleProperties(element, list, {parameters: [...list.parameters, parameter]});
        } else {
          const created = this.moddle.create("spiffworkflow:Parameters", {parameters: [parameter]});
          parameter.$parent = created;
          created.$parent = operator;
          this.modeling.updateModdleProperties(element, operator, {parameters: created});
        }
      });
      return make("fieldset", {className: "parameters"}, [
        make("legend", {textContent: "Parameters"}), make("ol", {}, rows), add,
      ]);
    }

    /** The form schema and UI schema a user task shows, chosen among the deployed forms. */
    userTask(element) {
      return FORM_FIELDS.map(({property, label, suffix}) => {
        const current = this.formProperty(element, property)?.value;
        const select = choice(this.forms.filter((name) => name.endsWith(suffix)), current, "(none)", "not deployed");
        select.addEventListener("change", () => this.setFormProperty(element, property, select.value));
        return field(label, select, `${property}-${element.id}`);
      });
    }

    /** The spiffworkflow:property named `name` of a user task, or undefined. */
    formProperty(element, name) {
      const properties = extension(element.businessObject, "spiffworkflow:Properties");
      return properties?.properties.find((property) => property.name === name);
    }

    /** Set (or, with an empty value, remove) a spiffworkflow:property of a user task: one command. */
    setFormProperty(element, name, value) {
      const properties = extension(element.businessObject, "spiffworkflow:Properties");
      const existing = this.formProperty(element, name);
      if (existing && value) {
        this.modeling.updateModdleProperties(element, existing, {value});
      } else if (existing) {
        this.modeling.updateModdleProperties(element, properties, {
          properties: properties.properties.filter((property) => property !== existing),
        });
      } else if (value) {
        const property = this.moddle.create("spiffworkflow:Property", {name, value});
        if (properties) {
          property.$parent = properties;
          this.modeling.updateModdleProperties(element, properties, {properties: [...properties.properties, property]});
        } else {
          const created = this.moddle.create("spiffworkflow:Properties", {properties: [property]});
          property.$parent = created;
          this.addExtension(element, created);
        }
      }
    }

    /** Add an extension element to an element's bpmn:extensionElements (made if missing): one command. */
    addExtension(element, value) {
      const bo = element.businessObject;
      if (bo.extensionElements) {
        value.$parent = bo.extensionElements;
        this.modeling.updateModdleProperties(element, bo.extensionElements, {values: [...bo.extensionElements.values, value]});
      } else {
        const extensionElements = this.moddle.create("bpmn:ExtensionElements", {values: [value]});
        value.$parent = extensionElements;
        extensionElements.$parent = bo;
        this.modeling.updateProperties(element, {extensionElements});
      }
    }
  }

  return PropertiesPanel;
})();
