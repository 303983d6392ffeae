// Line diffs of an edit (ACP "diff" content: oldText → newText), drawn with a few lines of
// context around each change, as editors show them.

import { h } from "./dom.js";

/** Cells of the LCS table we are willing to fill; past it, a plain "all old, all new". */
const MAX_CELLS = 2_000_000;
const CONTEXT = 3;

/** [{op: " " | "-" | "+", text}] turning oldText into newText. */
export function lineDiff(oldText, newText) {
  const a = oldText ? oldText.split("\n") : [];
  const b = newText.split("\n");
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) { endA--; endB--; }
  const ops = a.slice(0, start).map((text) => ({ op: " ", text }));
  const midA = a.slice(start, endA);
  const midB = b.slice(start, endB);
  if (midA.length * midB.length > MAX_CELLS) {
    ops.push(...midA.map((text) => ({ op: "-", text })), ...midB.map((text) => ({ op: "+", text })));
  } else {
    ops.push(...middle(midA, midB));
  }
  ops.push(...a.slice(endA).map((text) => ({ op: " ", text })));
  return ops;
}

function middle(a, b) {
  const n = a.length;
  const m = b.length;
  const width = m + 1;
  const lcs = new Uint32Array((n + 1) * width);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * width + j] = a[i] === b[j] ? lcs[(i + 1) * width + j + 1] + 1
        : Math.max(lcs[(i + 1) * width + j], lcs[i * width + j + 1]);
    }
  }
  const ops = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) { ops.push({ op: " ", text: a[i] }); i++; j++; }
    else if (j < m && (i === n || lcs[i * width + j + 1] >= lcs[(i + 1) * width + j])) {
      ops.push({ op: "+", text: b[j++] });
    } else ops.push({ op: "-", text: a[i++] });
  }
  return ops;
}

/** A diff as a <pre>: changed lines, CONTEXT lines around them, the rest folded. */
export function renderDiff(path, oldText, newText) {
  const ops = lineDiff(oldText ?? "", newText ?? "");
  const near = new Uint8Array(ops.length);
  ops.forEach((op, n) => {
    if (op.op === " ") return;
    for (let k = Math.max(0, n - CONTEXT); k <= Math.min(ops.length - 1, n + CONTEXT); k++) near[k] = 1;
  });
  const rows = [];
  let skipped = 0;
  const fold = () => {
    if (skipped) rows.push(h("span", { class: "diff-fold", text: `⋯ ${skipped} unchanged lines\n` }));
    skipped = 0;
  };
  ops.forEach((op, n) => {
    if (!near[n]) { skipped++; return; }
    fold();
    const cls = op.op === "+" ? "diff-add" : op.op === "-" ? "diff-del" : "diff-ctx";
    rows.push(h("span", { class: cls, text: `${op.op} ${op.text}\n` }));
  });
  fold();
  const added = ops.filter((o) => o.op === "+").length;
  const removed = ops.filter((o) => o.op === "-").length;
  return h("div", { class: "diff", testid: "diff" },
    h("div", { class: "diff-head" }, h("span", { class: "diff-path", text: path || "" }),
      h("span", { class: "diff-stat" }, h("span", { class: "diff-plus", text: `+${added}` }), " ",
        h("span", { class: "diff-minus", text: `−${removed}` }))),
    h("pre", {}, rows));
}
