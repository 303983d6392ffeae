// The session list: the tenant's saved sessions from REST, newest first, with titles.

import { clear, h } from "./dom.js";

function when(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const sameDay = date.toDateString() === new Date().toDateString();
  return sameDay ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : date.toLocaleDateString([], { month: "short", day: "numeric" });
}

export class SessionList {
  constructor(list, { onOpen }) {
    this.list = list;
    this.onOpen = onOpen;
    this.metas = [];
    this.current = null;
  }

  show(metas) {
    this.metas = metas;
    this.render();
  }

  select(id) {
    this.current = id;
    for (const item of this.list.children) {
      const selected = item.dataset.sessionId === id;
      item.classList.toggle("current", selected);
      item.firstElementChild?.setAttribute("aria-current", selected ? "true" : "false");
    }
  }

  meta(id) {
    return this.metas.find((meta) => meta.id === id);
  }

  /** A title (or a new session) the server announced: show it first, without a round trip. */
  touch(id, title, updatedAt) {
    const meta = this.meta(id) || { id, created_at: updatedAt, updated_at: updatedAt };
    if (title) meta.title = title;
    if (updatedAt) meta.updated_at = updatedAt;
    this.metas = [meta, ...this.metas.filter((m) => m.id !== id)];
    this.render();
  }

  render() {
    clear(this.list);
    if (!this.metas.length) {
      this.list.append(h("li", { class: "session-none", text: "No sessions yet." }));
      return;
    }
    for (const meta of this.metas) {
      const title = meta.title || "Untitled session";
      this.list.append(h("li", { class: "session-item", dataset: { sessionId: meta.id } },
        h("button", { type: "button", class: "session-open", title, onclick: () => this.onOpen(meta.id) },
          h("span", { class: "session-title", text: title }),
          h("span", { class: "session-meta", text: [when(meta.updated_at), meta.model].filter(Boolean).join(" · ") }))));
    }
    this.select(this.current);
  }
}
