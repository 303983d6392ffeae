// Small modal questions on the page's one <dialog>: a name to type, or a yes/no. Native
// <dialog> gives focus trapping and Esc for free.

import { byTestId } from "./dom.js";

function open({ title, message, value, confirmLabel, danger }) {
  const dialog = document.getElementById("dialog");
  const input = byTestId("dialog-input", dialog);
  const ok = byTestId("dialog-ok", dialog);
  document.getElementById("dialog-title").textContent = title;
  document.getElementById("dialog-message").textContent = message || "";
  input.hidden = value === undefined;
  input.value = value ?? "";
  ok.textContent = confirmLabel;
  ok.classList.toggle("danger", Boolean(danger));
  return new Promise((resolve) => {
    const done = () => {
      dialog.removeEventListener("close", done);
      if (dialog.returnValue !== "ok") resolve(null);
      else resolve(value === undefined ? true : input.value.trim() || null);
    };
    dialog.addEventListener("close", done);
    dialog.returnValue = "";
    dialog.showModal();
    if (value !== undefined) {
      input.focus();
      input.select();
    } else ok.focus();
  });
}

/** The text the user typed, or null when cancelled or empty. */
export function askText(title, value = "", confirmLabel = "OK") {
  return open({ title, value, confirmLabel });
}

/** True when the user confirmed. */
export async function confirmAction(title, message, confirmLabel) {
  return (await open({ title, message, confirmLabel, danger: true })) === true;
}
