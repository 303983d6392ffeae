// The conversation pane: user messages, streamed Markdown answers, dimmed thoughts, tool
// cards, permission requests, plans, and per-turn usage. It renders ACP session/update
// notifications, live or replayed by session/load, the same way.

import { clear, h, perFrame, stickToBottom } from "./dom.js";
import { renderMarkdown } from "./markdown.js";
import { ToolCard } from "./tools.js";

const STOP_NOTES = {
  cancelled: "Stopped.",
  max_tokens: "The reply reached the model's token limit.",
  max_turn_requests: "Stopped after the most steps a turn may take.",
  refusal: "The model refused to answer.",
};
const PLAN_MARKS = { pending: "○", in_progress: "◐", completed: "✓" };

export class ChatView {
  constructor(log, { onOpenPath }) {
    this.log = log;
    this.onOpenPath = onOpenPath;
    this.reset();
  }

  reset() {
    clear(this.log);
    this.turn = null;
    this.tools = new Map();
    this.permissions = new Map();
    this.lastCost = null;
    this.log.append(h("div", { class: "chat-empty", testid: "chat-empty" },
      h("p", { class: "chat-empty-title", text: "What should we work on?" }),
      h("p", { text: "Ask a question or describe a change. Enter sends, Shift+Enter adds a line, Esc stops a running turn." })));
  }

  /** The conversation so far cost this much (from the session list), so the next turn's
   *  cost is the difference. */
  knownCost(amount) {
    this.lastCost = typeof amount === "number" ? amount : null;
  }

  add(parent, node) {
    this.log.querySelector(":scope > .chat-empty")?.remove();
    stickToBottom(this.log, () => parent.append(node));
    return node;
  }

  currentTurn() {
    if (!this.turn) this.turn = this.add(this.log, h("div", { class: "turn" }));
    return this.turn;
  }

  addUser(text) {
    this.turn = null;
    this.add(this.log, h("div", { class: "message user", testid: "message-user" },
      h("div", { class: "bubble", text })));
  }

  /** A live or replayed session/update; the log stays pinned to its end while it grows. */
  apply(update) {
    stickToBottom(this.log, () => this.render(update));
  }

  render(update) {
    switch (update.sessionUpdate) {
      case "user_message_chunk": {
        const last = this.log.lastElementChild;
        const text = update.content?.type === "text" ? update.content.text : `[${update.content?.type}]`;
        if (last?.classList.contains("user")) last.firstChild.append(text);
        else this.addUser(text);
        break;
      }
      case "agent_message_chunk":
        if (update.content?.type === "text") this.agentText(update.content.text);
        break;
      case "agent_thought_chunk":
        if (update.content?.type === "text") this.thought(update.content.text);
        break;
      case "tool_call":
      case "tool_call_update":
        this.toolCard(update.toolCallId, update).update(update);
        break;
      case "plan":
        this.plan(update.entries || []);
        break;
      case "usage_update":
        this.usage(update);
        break;
      default:
        break;
    }
  }

  agentText(text) {
    const turn = this.currentTurn();
    let message = turn.lastElementChild;
    if (!message?.classList.contains("assistant")) {
      message = h("div", { class: "message assistant", testid: "message-assistant" });
      message.markdown = "";
      message.render = perFrame(() => stickToBottom(this.log, () => {
        clear(message).append(renderMarkdown(message.markdown));
      }));
      this.add(turn, message);
    }
    message.markdown += text;
    message.render();
  }

  thought(text) {
    const turn = this.currentTurn();
    let thought = turn.lastElementChild;
    if (!thought?.classList.contains("thought")) {
      thought = h("details", { class: "thought", testid: "thought" },
        h("summary", { text: "Thinking" }), h("div", { class: "thought-body" }));
      this.add(turn, thought);
    }
    stickToBottom(this.log, () => thought.lastElementChild.append(text));
  }

  toolCard(id, fields) {
    let card = this.tools.get(id);
    if (!card) {
      card = new ToolCard(id, this.onOpenPath);
      this.tools.set(id, card);
      card.update({ title: fields?.title, kind: fields?.kind, status: fields?.status || "pending" });
      this.add(this.currentTurn(), card.el);
    }
    return card;
  }

  /** session/request_permission: answer(result) sends the JSON-RPC result. */
  permission(requestId, params, answer) {
    const call = params.toolCall || {};
    const card = this.toolCard(call.toolCallId, call);
    if (call.rawInput !== undefined && card.fields.rawInput === undefined) card.update({ rawInput: call.rawInput });
    stickToBottom(this.log, () => card.askPermission(params.options || [], (optionId) => {
      this.permissions.delete(requestId);
      answer({ outcome: { outcome: "selected", optionId } });
    }));
    this.permissions.set(requestId, card);
  }

  /** The agent gave up on a request ($/cancel_request): its buttons go. */
  cancelRequest(requestId) {
    const card = this.permissions.get(requestId);
    if (!card) return;
    this.permissions.delete(requestId);
    card.settlePermission("No longer needed: the turn was stopped.");
  }

  plan(entries) {
    const turn = this.currentTurn();
    let plan = turn.querySelector(":scope > .plan");
    if (!plan) {
      plan = h("div", { class: "plan", testid: "plan", role: "group", "aria-label": "Plan" },
        h("div", { class: "plan-head", text: "Plan" }), h("ol", { class: "plan-entries" }));
      this.add(turn, plan);
    }
    const list = clear(plan.querySelector("ol"));
    for (const entry of entries) {
      const status = entry.status || "pending";
      list.append(h("li", { class: `plan-entry ${status}`, dataset: { status, priority: entry.priority || "" } },
        h("span", { class: "plan-mark", "aria-hidden": "true", text: PLAN_MARKS[status] || "○" }),
        h("span", { class: "plan-text", text: entry.content || "" }),
        entry.priority ? h("span", { class: `priority ${entry.priority}`, text: entry.priority }) : null,
        h("span", { class: "sr-only", text: ` (${status.replace("_", " ")})` })));
    }
  }

  usage(update) {
    const turn = this.currentTurn();
    let footer = turn.querySelector(":scope > .usage");
    if (!footer) footer = this.add(turn, h("div", { class: "usage", testid: "usage" }));
    const number = new Intl.NumberFormat();
    const parts = [`${number.format(update.used)} / ${number.format(update.size)} tokens in context`];
    const cost = update.cost;
    if (cost && typeof cost.amount === "number") {
      const money = new Intl.NumberFormat(undefined, {
        style: "currency", currency: cost.currency || "USD", maximumFractionDigits: 4,
      });
      if (this.lastCost !== null) parts.push(`${money.format(Math.max(0, cost.amount - this.lastCost))} this turn`);
      parts.push(`${money.format(cost.amount)} in all`);
      this.lastCost = cost.amount;
    }
    footer.textContent = parts.join(" · ");
  }

  endTurn(stopReason) {
    const note = STOP_NOTES[stopReason];
    if (note) this.add(this.currentTurn(), h("div", { class: "note", testid: "stop-note", text: note }));
    this.turn = null;
  }

  error(message) {
    this.add(this.currentTurn(), h("div", { class: "error", role: "alert", testid: "chat-error", text: message }));
    this.turn = null;
  }
}
