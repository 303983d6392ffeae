// A tool call as a card: kind, title, status (pending, running, done, failed), its input, its
// output (text, or a line diff for an edit), the places it touched, and any permission asked.

import { clear, h } from "./dom.js";
import { renderDiff } from "./diff.js";
import { highlight } from "./syntax.js";

export const STATUS_LABELS = {
  pending: "pending", in_progress: "running", completed: "done", failed: "failed",
};
const KIND_ICONS = {
  read: "📄", edit: "✏️", delete: "🗑", move: "↔", search: "🔍", execute: "▶", think: "💭",
  fetch: "🌐", switch_mode: "⇄", other: "🔧",
};

function pretty(value) {
  if (typeof value === "string") return value;
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

export class ToolCard {
  constructor(id, onOpenPath) {
    this.id = id;
    this.onOpenPath = onOpenPath;
    this.fields = {};
    this.kindEl = h("span", { class: "tool-kind", "aria-hidden": "true" });
    this.titleEl = h("span", { class: "tool-title" });
    this.statusEl = h("span", { class: "tool-status", testid: "tool-status" });
    this.head = h("button", { type: "button", class: "tool-head", "aria-expanded": "false" },
      this.kindEl, this.titleEl, this.statusEl);
    this.inputEl = h("div", { class: "tool-section tool-input" });
    this.outputEl = h("div", { class: "tool-section tool-output", testid: "tool-output" });
    this.whereEl = h("div", { class: "tool-section tool-where" });
    this.body = h("div", { class: "tool-body", hidden: true }, this.inputEl, this.outputEl, this.whereEl);
    this.permissionEl = h("div", { class: "tool-permission" });
    this.el = h("div", { class: "tool", testid: "tool-call", dataset: { toolCallId: id } },
      this.head, this.permissionEl, this.body);
    this.head.addEventListener("click", () => this.expand(this.body.hidden));
  }

  expand(open) {
    this.body.hidden = !open;
    this.head.setAttribute("aria-expanded", String(open));
  }

  /** Merge a tool_call / tool_call_update (ACP replaces the fields it carries). */
  update(update) {
    for (const key of ["title", "kind", "status", "rawInput", "rawOutput", "content", "locations"]) {
      if (update[key] !== undefined) this.fields[key] = update[key];
    }
    const { title, kind, status, rawInput, rawOutput, content, locations } = this.fields;
    const state = status || "pending";
    this.el.dataset.status = state;
    this.el.dataset.kind = kind || "other";
    this.kindEl.textContent = KIND_ICONS[kind] || KIND_ICONS.other;
    this.titleEl.textContent = title || "Tool call";
    this.statusEl.textContent = STATUS_LABELS[state] || state;
    this.head.setAttribute("aria-label", `${title || "Tool call"}: ${STATUS_LABELS[state] || state}`);
    if (update.rawInput !== undefined) this.renderInput(rawInput);
    if (update.content !== undefined || update.rawOutput !== undefined) this.renderOutput(content, rawOutput);
    if (update.locations !== undefined) this.renderLocations(locations);
    if ((content || []).some((item) => item.type === "diff")) this.expand(true);
  }

  renderInput(rawInput) {
    clear(this.inputEl);
    if (rawInput === undefined || rawInput === null) return;
    const text = kindCommand(rawInput) ?? pretty(rawInput);
    this.inputEl.append(h("div", { class: "tool-label", text: "Input" }),
      h("pre", { class: "tool-pre" }, highlight(text, kindCommand(rawInput) ? "bash" : "json")));
  }

  renderOutput(content, rawOutput) {
    clear(this.outputEl);
    const parts = [];
    for (const item of content || []) {
      if (item.type === "diff") parts.push(renderDiff(item.path, item.oldText, item.newText));
      else if (item.type === "content" && item.content?.type === "text") {
        parts.push(h("pre", { class: "tool-pre", text: item.content.text }));
      } else if (item.type === "terminal") {
        parts.push(h("pre", { class: "tool-pre", text: `[terminal ${item.terminalId}]` }));
      } else if (item.type === "content") {
        parts.push(h("p", { class: "tool-note", text: `[${item.content?.type || "content"}]` }));
      }
    }
    if (!parts.length && typeof rawOutput === "string" && rawOutput) {
      parts.push(h("pre", { class: "tool-pre", text: rawOutput }));
    }
    if (parts.length) this.outputEl.append(h("div", { class: "tool-label", text: "Output" }), ...parts);
  }

  renderLocations(locations) {
    clear(this.whereEl);
    if (!locations?.length) return;
    this.whereEl.append(h("div", { class: "tool-label", text: "Locations" }), h("ul", { class: "tool-locations" },
      locations.map((loc) => h("li", {}, h("button", {
        type: "button", class: "link", title: "Open in the file pane",
        onclick: () => this.onOpenPath(loc.path),
      }, loc.line ? `${loc.path}:${loc.line}` : loc.path)))));
  }

  /** Show a permission request: one button per option; answer(optionId) sends it. */
  askPermission(options, answer) {
    const testids = {
      allow_once: "permission-allow", allow_always: "permission-allow-always",
      reject_once: "permission-reject", reject_always: "permission-reject-always",
    };
    const buttons = options.map((option) => h("button", {
      type: "button",
      class: option.kind?.startsWith("allow") ? "allow" : "reject",
      testid: testids[option.kind] || `permission-${option.optionId}`,
      onclick: () => { answer(option.optionId); this.settlePermission(`You chose: ${option.name}`); },
    }, option.name));
    const box = h("div", { class: "permission", role: "group", testid: "permission",
      "aria-label": `Permission for ${this.fields.title || "a tool call"}` },
    h("span", { class: "permission-question", text: "Run this tool?" }), h("span", { class: "permission-buttons" }, buttons));
    clear(this.permissionEl).append(box);
    this.expand(true);
    buttons[0]?.focus();
  }

  settlePermission(label) {
    clear(this.permissionEl).append(h("div", { class: "permission settled", text: label }));
  }
}

function kindCommand(rawInput) {
  return rawInput && typeof rawInput === "object" && typeof rawInput.command === "string"
    ? `$ ${rawInput.command}` : null;
}
