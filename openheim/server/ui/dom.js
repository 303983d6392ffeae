// Building DOM nodes without HTML strings: every text goes in through textContent or a Text
// node, so nothing a model or a file says can become markup.

/**
 * Create an element. props: class, text, testid, dataset, on<event> handlers, other attributes.
 * Children may be nodes, strings (as text) or arrays of them; null/false are skipped.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "testid") el.dataset.testid = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function byTestId(id, root = document) {
  return root.querySelector(`[data-testid="${id}"]`);
}

/** Keep a scrolled log pinned to its end while the user has not scrolled away from it. */
export function stickToBottom(el, change) {
  const atEnd = el.scrollHeight - el.scrollTop - el.clientHeight < 48;
  change();
  if (atEnd) el.scrollTop = el.scrollHeight;
}

/** Run fn at most once per animation frame, with the latest arguments. */
export function perFrame(fn) {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      fn();
    });
  };
}
