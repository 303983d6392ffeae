// The file pane: the workspace tree (kept live by the fs channel's watch), a read-only view
// with highlighting, editing and saving, and new folder / new file / rename / delete.

import { byTestId, clear, h } from "./dom.js";
import { askText, confirmAction } from "./dialog.js";
import { highlight, languageOf } from "./syntax.js";

/** fs events come in bursts (a tool writing many files): list again once they settle. */
const REFRESH_AFTER_MS = 80;

function parentOf(rel) {
  const at = rel.lastIndexOf("/");
  return at === -1 ? "" : rel.slice(0, at);
}

function join(dir, name) {
  return dir ? `${dir}/${name}` : name;
}

export class FilesView {
  constructor(pane, { onStatus }) {
    this.pane = pane;
    this.onStatus = onStatus;
    this.tree = byTestId("file-tree", pane);
    this.viewer = byTestId("file-viewer", pane);
    this.code = byTestId("file-content", pane);
    this.editor = byTestId("file-editor", pane);
    this.pathEl = pane.querySelector(".viewer-path");
    this.link = null;
    this.root = "";
    this.entries = [];
    this.expanded = new Set([""]);
    this.selected = null;
    this.opened = null; // {path, content}
    this.timer = null;
    const on = (id, fn) => byTestId(id, pane).addEventListener("click", () => fn().catch((e) => this.fail(e)));
    on("file-new-folder", () => this.newFolder());
    on("file-new-file", () => this.newFile());
    on("file-rename", () => this.rename());
    on("file-delete", () => this.remove());
    on("file-edit", async () => this.edit());
    on("file-save", () => this.save());
    on("file-cancel-edit", async () => this.stopEditing());
    on("file-close", async () => this.close());
    this.editor.addEventListener("keydown", (event) => {
      if ((event.ctrlKey || event.metaKey) && event.key === "s") {
        event.preventDefault();
        this.save().catch((e) => this.fail(e));
      }
    });
  }

  fail(error) {
    this.onStatus(error.message || String(error), true);
  }

  /** A (re)connected socket: watch the workspace and show it. */
  async start(link, root) {
    this.link = link;
    this.root = root;
    await link.fs("watch", { path: "" });
    await this.refresh();
    if (this.opened && !this.editing) await this.load(this.opened.path);
  }

  get editing() {
    return !this.editor.hidden;
  }

  relative(absolute) {
    if (absolute === this.root) return "";
    return absolute.startsWith(`${this.root}/`) ? absolute.slice(this.root.length + 1) : null;
  }

  onEvent(data) {
    if (data.type === "error") {
      this.onStatus(data.message, true);
      return;
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.refresh().catch((e) => this.fail(e)), REFRESH_AFTER_MS);
    const open = this.opened?.path;
    if (open && !this.editing && (data.paths || []).some((p) => this.relative(p) === open)) {
      this.load(open).catch(() => {});
    }
  }

  async refresh() {
    const listing = await this.link.fs("list", { path: "", recursive: true });
    const entries = listing.entries
      .map((entry) => ({ rel: this.relative(entry.path), name: entry.name, is_dir: entry.is_dir }))
      .filter((entry) => entry.rel);
    // Re-render only when the tree changed, so focus and clicks in flight are kept.
    if (JSON.stringify(entries) === JSON.stringify(this.entries)) return;
    this.entries = entries;
    this.render();
  }

  render() {
    const children = new Map();
    for (const entry of this.entries) {
      const parent = parentOf(entry.rel);
      if (!children.has(parent)) children.set(parent, []);
      children.get(parent).push(entry);
    }
    const branch = (dir) => h("ul", { class: "tree-group", role: dir ? "group" : null },
      (children.get(dir) || [])
        .sort((a, b) => (b.is_dir - a.is_dir) || a.name.localeCompare(b.name))
        .map((entry) => this.item(entry, children.has(entry.rel) ? () => branch(entry.rel) : null)));
    clear(this.tree).append(this.entries.length ? branch("")
      : h("p", { class: "tree-empty", text: "The workspace is empty." }));
  }

  item(entry, inner) {
    const open = this.expanded.has(entry.rel);
    const selected = this.selected === entry.rel;
    const button = h("button", {
      type: "button", class: `entry ${entry.is_dir ? "dir" : "file"}`, title: entry.rel,
      "aria-expanded": entry.is_dir ? String(open) : null,
      "aria-current": selected ? "true" : null,
      onclick: () => this.clicked(entry).catch((e) => this.fail(e)),
    }, h("span", { class: "entry-icon", "aria-hidden": "true", text: entry.is_dir ? (open ? "▾" : "▸") : "·" }),
    h("span", { class: "entry-name", text: entry.name }));
    return h("li", { class: selected ? "selected" : null, testid: "file-entry", dataset: { path: entry.rel } },
      button, entry.is_dir && open && inner ? inner() : null);
  }

  async clicked(entry) {
    this.selected = entry.rel;
    if (entry.is_dir) {
      if (this.expanded.has(entry.rel)) this.expanded.delete(entry.rel);
      else this.expanded.add(entry.rel);
      this.render();
      this.tree.querySelector(`li[data-path="${CSS.escape(entry.rel)}"] > button`)?.focus();
    } else {
      await this.open(entry.rel);
    }
  }

  /** Open a file by its path relative to the root (or absolute, inside it). */
  async open(path) {
    const rel = path.startsWith("/") ? this.relative(path) : path;
    if (rel === null) throw new Error(`${path} is outside the workspace`);
    if (this.editing && this.dirty() && !(await confirmAction("Discard your changes?",
      `${this.opened.path} has unsaved changes.`, "Discard"))) return;
    for (let dir = parentOf(rel); dir; dir = parentOf(dir)) this.expanded.add(dir);
    this.selected = rel;
    this.render();
    this.stopEditing();
    await this.load(rel);
  }

  async load(rel) {
    const file = await this.link.fs("read", { path: rel });
    this.opened = { path: rel, content: file.content };
    this.viewer.hidden = false;
    this.pathEl.textContent = rel;
    clear(this.code).append(...highlight(file.content, languageOf(rel)));
  }

  dirty() {
    return this.opened && this.editor.value !== this.opened.content;
  }

  edit() {
    if (!this.opened) return;
    this.editor.value = this.opened.content;
    this.setEditing(true);
    this.editor.focus();
  }

  stopEditing() {
    this.setEditing(false);
  }

  setEditing(on) {
    this.editor.hidden = !on;
    this.code.hidden = on;
    byTestId("file-edit", this.pane).hidden = on;
    byTestId("file-save", this.pane).hidden = !on;
    byTestId("file-cancel-edit", this.pane).hidden = !on;
  }

  async save() {
    if (!this.opened || !this.editing) return;
    const content = this.editor.value;
    await this.link.fs("write", { path: this.opened.path, content });
    this.opened.content = content;
    this.setEditing(false);
    clear(this.code).append(...highlight(content, languageOf(this.opened.path)));
    this.onStatus(`Saved ${this.opened.path}`);
  }

  close() {
    this.stopEditing();
    this.opened = null;
    this.viewer.hidden = true;
  }

  /** The folder new things go in: the selected folder, the selected file's, or the root. */
  targetDir() {
    const entry = this.entries.find((e) => e.rel === this.selected);
    if (!entry) return "";
    return entry.is_dir ? entry.rel : parentOf(entry.rel);
  }

  async newFolder() {
    const dir = this.targetDir();
    const name = await askText(dir ? `New folder in ${dir}` : "New folder", "", "Create");
    if (!name) return;
    await this.link.fs("mkdir", { path: join(dir, name) });
    this.expanded.add(dir);
    this.selected = join(dir, name);
    await this.refresh();
    this.onStatus(`Created ${join(dir, name)}`);
  }

  async newFile() {
    const dir = this.targetDir();
    const name = await askText(dir ? `New file in ${dir}` : "New file", "", "Create");
    if (!name) return;
    await this.link.fs("write", { path: join(dir, name), content: "" });
    await this.refresh();
    await this.open(join(dir, name));
    this.edit();
  }

  async rename() {
    const from = this.selected;
    if (!from) return this.onStatus("Select a file or folder to rename first.", true);
    const name = await askText(`Rename ${from}`, from.split("/").pop(), "Rename");
    if (!name || name === from.split("/").pop()) return;
    const to = join(parentOf(from), name);
    await this.link.fs("rename", { from, to });
    this.selected = to;
    if (this.opened?.path === from) {
      this.opened.path = to;
      this.pathEl.textContent = to;
    }
    await this.refresh();
    this.onStatus(`Renamed ${from} to ${to}`);
  }

  async remove() {
    const path = this.selected;
    if (!path) return this.onStatus("Select a file or folder to delete first.", true);
    const entry = this.entries.find((e) => e.rel === path);
    const sure = await confirmAction(`Delete ${path}?`,
      entry?.is_dir ? "The folder and everything in it will be deleted." : "The file will be deleted.", "Delete");
    if (!sure) return;
    await this.link.fs("delete", { path });
    if (this.opened && (this.opened.path === path || this.opened.path.startsWith(`${path}/`))) this.close();
    this.selected = null;
    await this.refresh();
    this.onStatus(`Deleted ${path}`);
  }
}
