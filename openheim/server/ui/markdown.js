// A small Markdown renderer that builds DOM nodes: paragraphs, headings, emphasis, inline and
// fenced code (highlighted), lists, block quotes, rules, links (http/https only) and tables.
// It is safe by construction: text only ever becomes Text nodes, never HTML. Unclosed
// constructs (a reply still streaming) render as what they are so far.

import { h } from "./dom.js";
import { highlight } from "./syntax.js";

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)/;
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const RULE = /^ {0,3}([-*_])(?:\s*\1){2,}\s*$/;
const QUOTE = /^ {0,3}> ?/;
const ITEM = /^( {0,8})([-*+]|\d{1,9}[.)])\s+(.*)$/;
const TABLE_RULE = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;
const ESCAPABLE = /[\\`*_{}[\]()#+\-.!|~<>]/;

/** Markdown text → a DocumentFragment. */
export function renderMarkdown(text) {
  const fragment = document.createDocumentFragment();
  for (const node of blocks(text.replace(/\r\n?/g, "\n").split("\n"))) fragment.append(node);
  return fragment;
}

function isBlockStart(line) {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) ||
    ITEM.test(line);
}

function blocks(lines) {
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    let m;
    if (!line.trim()) {
      i++;
    } else if ((m = FENCE.exec(line))) {
      const [, fence, lang] = m;
      const body = [];
      i++;
      while (i < lines.length && !lines[i].trim().startsWith(fence)) body.push(lines[i++]);
      i++; // the closing fence (or past the end while streaming)
      out.push(codeBlock(body.join("\n"), lang));
    } else if ((m = HEADING.exec(line))) {
      out.push(h(`h${m[1].length}`, {}, inline(m[2])));
      i++;
    } else if (RULE.test(line)) {
      out.push(h("hr"));
      i++;
    } else if (QUOTE.test(line)) {
      const body = [];
      while (i < lines.length && QUOTE.test(lines[i])) body.push(lines[i++].replace(QUOTE, ""));
      out.push(h("blockquote", {}, blocks(body)));
    } else if (ITEM.test(line)) {
      const [node, next] = list(lines, i);
      out.push(node);
      i = next;
    } else if (line.includes("|") && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1]) &&
      lines[i + 1].includes("-")) {
      const [node, next] = table(lines, i);
      out.push(node);
      i = next;
    } else {
      const body = [];
      while (i < lines.length && lines[i].trim() && (body.length === 0 || !isBlockStart(lines[i]))) {
        body.push(lines[i++]);
      }
      out.push(h("p", {}, inline(body.join("\n"))));
    }
  }
  return out;
}

function codeBlock(code, lang) {
  const copy = h("button", { type: "button", class: "copy", "aria-label": "Copy code", text: "Copy" });
  copy.addEventListener("click", () => {
    navigator.clipboard?.writeText(code).then(() => { copy.textContent = "Copied"; }, () => {});
  });
  return h("div", { class: "codeblock" },
    h("div", { class: "codeblock-head" }, h("span", { text: lang || "text" }), copy),
    h("pre", {}, h("code", { class: lang ? `lang-${lang}` : null }, highlight(code, lang))));
}

function list(lines, start) {
  const first = ITEM.exec(lines[start]);
  const ordered = /\d/.test(first[2]);
  const indent = first[1].length;
  const el = h(ordered ? "ol" : "ul");
  if (ordered && parseInt(first[2], 10) !== 1) el.setAttribute("start", parseInt(first[2], 10));
  let i = start;
  while (i < lines.length) {
    const m = ITEM.exec(lines[i]);
    if (!m || m[1].length !== indent || /\d/.test(m[2]) !== ordered) break;
    const body = [m[3]];
    i++;
    while (i < lines.length) {
      const line = lines[i];
      const item = ITEM.exec(line);
      if (item && item[1].length <= indent) break;
      if (!line.trim()) {
        const next = lines[i + 1] ?? "";
        if (next.startsWith(" ".repeat(indent + 2)) && next.trim()) { body.push(""); i++; continue; }
        break;
      }
      if (!item && !line.startsWith(" ") && isBlockStart(line)) break;
      body.push(line.replace(new RegExp(`^ {0,${indent + 4}}`), ""));
      i++;
    }
    const task = /^\[([ xX])\]\s+/.exec(body[0]);
    const li = h("li");
    if (task) {
      body[0] = body[0].slice(task[0].length);
      li.classList.add("task");
      li.append(h("span", { class: "check", "aria-hidden": "true", text: task[1] === " " ? "☐" : "☑" }));
    }
    const inner = body.length === 1 ? [inline(body[0])] : blocks(body);
    li.append(...inner.flat());
    el.append(li);
    while (i < lines.length && !lines[i].trim() && ITEM.test(lines[i + 1] ?? "") &&
      ITEM.exec(lines[i + 1])[1].length === indent) i++;
  }
  return [el, i];
}

function cells(line) {
  return line.trim().replace(/^\|/, "").replace(/\|$/, "").split(/(?<!\\)\|/).map((c) => c.trim());
}

function table(lines, start) {
  const head = cells(lines[start]);
  const aligns = cells(lines[start + 1]).map((c) =>
    c.startsWith(":") && c.endsWith(":") ? "center" : c.endsWith(":") ? "right" : null);
  const row = (values, tag) => h("tr", {}, head.map((_, n) =>
    h(tag, { class: aligns[n] ? `align-${aligns[n]}` : null }, inline(values[n] ?? ""))));
  const body = [];
  let i = start + 2;
  while (i < lines.length && lines[i].includes("|") && lines[i].trim()) body.push(row(cells(lines[i++]), "td"));
  return [h("div", { class: "table-wrap" },
    h("table", {}, h("thead", {}, row(head, "th")), h("tbody", {}, body))), i];
}

/** Only http and https links become links; anything else stays text. */
export function safeUrl(raw) {
  try {
    const url = new URL(raw.trim());
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

function link(label, href) {
  const url = safeUrl(href);
  if (!url) return h("span", {}, label);
  return h("a", { href: url, target: "_blank", rel: "noopener noreferrer nofollow" }, label);
}

function closing(src, delim, from) {
  let at = src.indexOf(delim, from);
  while (at !== -1) {
    const doubled = delim.length === 1 && (src[at + 1] === delim || src[at - 1] === delim);
    // An underscore closes only at a word's end (snake_case and __dunder__ names stay text).
    const inWord = delim[0] === "_" && /\w/.test(src[at + delim.length] ?? "");
    if (!/\s/.test(src[at - 1]) && !doubled && !inWord) return at;
    at = src.indexOf(delim, at + (doubled ? 2 : 1));
  }
  return -1;
}

function matchingBracket(src, open) {
  let depth = 0;
  for (let i = open; i < src.length; i++) {
    if (src[i] === "\\") i++;
    else if (src[i] === "[") depth++;
    else if (src[i] === "]" && --depth === 0) return i;
  }
  return -1;
}

/** Inline Markdown → an array of nodes. */
export function inline(src) {
  const out = [];
  let text = "";
  const flush = () => { if (text) { out.push(document.createTextNode(text)); text = ""; } };
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (c === "\\" && ESCAPABLE.test(src[i + 1] ?? "")) { text += src[i + 1]; i += 2; continue; }
    if (c === "\n" || (c === "\\" && src[i + 1] === "\n")) {
      flush(); out.push(h("br")); i += c === "\n" ? 1 : 2; continue;
    }
    if (c === "`") {
      let n = 1;
      while (src[i + n] === "`") n++;
      const ticks = "`".repeat(n);
      const end = src.indexOf(ticks, i + n);
      if (end === -1) { text += ticks; i += n; continue; }
      flush();
      out.push(h("code", { text: src.slice(i + n, end).replace(/^ (.+) $/, "$1") }));
      i = end + n;
      continue;
    }
    if (c === "*" || c === "_" || (c === "~" && src[i + 1] === "~")) {
      const delim = src[i + 1] === c ? c + c : c;
      const after = src[i + delim.length];
      const wordInside = c === "_" && /\w/.test(src[i - 1] ?? "");
      const end = after && !/\s/.test(after) && !wordInside ? closing(src, delim, i + delim.length) : -1;
      if (end > i + delim.length) {
        flush();
        const tag = c === "~" ? "del" : delim.length === 2 ? "strong" : "em";
        out.push(h(tag, {}, inline(src.slice(i + delim.length, end))));
        i = end + delim.length;
        continue;
      }
      text += delim; i += delim.length; continue;
    }
    if (c === "[" || (c === "!" && src[i + 1] === "[")) {
      const open = c === "!" ? i + 1 : i;
      const close = matchingBracket(src, open);
      if (close !== -1 && src[close + 1] === "(") {
        const end = src.indexOf(")", close + 2);
        if (end !== -1) {
          flush();
          const href = src.slice(close + 2, end).trim().split(/\s+/)[0].replace(/^<|>$/g, "");
          out.push(link(inline(src.slice(open + 1, close)), href));
          i = end + 1;
          continue;
        }
      }
    }
    if (c === "h" && /^https?:\/\//.test(src.slice(i, i + 8)) && !/\w/.test(src[i - 1] ?? "")) {
      let url = /^https?:\/\/[^\s<>"'`]+/.exec(src.slice(i))[0];
      url = url.replace(/[.,;:!?'"\]]+$/, "");
      if (url.endsWith(")") && !url.includes("(")) url = url.slice(0, -1);
      flush();
      out.push(link(url, url));
      i += url.length;
      continue;
    }
    text += c;
    i++;
  }
  flush();
  return out;
}
