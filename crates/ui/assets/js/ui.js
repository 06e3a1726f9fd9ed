// Small shared pieces: dialogs (native <dialog>: modal, focus kept inside,
// Escape closes, focus returns to the opener), error notes, copy buttons,
// paging, and formatting.
import { html, cloneElement, useEffect, useRef, useState, useCallback } from "./lib.js";
import { describe } from "./api.js";

/** Copies text to the clipboard; true when it worked. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Plain HTTP on a LAN address has no clipboard API: the old way.
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand("copy");
    } catch {
      ok = false;
    }
    area.remove();
    return ok;
  }
}

/** A modal dialog. `onClose` runs on Escape, the close button or a cancel. */
export function Dialog({ title, onClose, children, wide }) {
  const ref = useRef(null);
  const titleId = useRef(`dlg-${Math.random().toString(36).slice(2)}`).current;
  // What had focus when the dialog was asked for, read while rendering
  // (effects run after paint, when a key press may have moved it).
  const opener = useRef(document.activeElement).current;
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    // Start at the first field, if the dialog has one (else the browser's
    // choice, the close button).
    const field = d && d.querySelector(".dialog-body input:not([type=hidden]), .dialog-body select, .dialog-body textarea");
    if (field) field.focus();
    return () => {
      if (d && d.open) d.close();
      const back = () => opener && opener.isConnected && opener.focus && opener.focus();
      back();
      // Again after the browser's own focus handling of the closed dialog.
      setTimeout(back, 0);
    };
  }, []);
  const cancel = (e) => {
    e.preventDefault();
    onClose();
  };
  // Tab and Shift+Tab wrap inside the dialog (the rest of the page is
  // inert while it is open).
  const wrap = (e) => {
    if (e.key !== "Tab" || !ref.current) return;
    const items = [...ref.current.querySelectorAll("a[href], button, input, select, textarea, [tabindex]:not([tabindex='-1'])")].filter(
      (el) => !el.disabled && el.getClientRects().length > 0,
    );
    if (items.length === 0) return;
    const first = items[0];
    const last = items[items.length - 1];
    if (e.shiftKey && document.activeElement === first) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && document.activeElement === last) {
      e.preventDefault();
      first.focus();
    }
  };
  return html`<dialog ref=${ref} class=${wide ? "dialog wide" : "dialog"} aria-labelledby=${titleId} onCancel=${cancel} onKeyDown=${wrap}>
    <div class="dialog-head">
      <h2 id=${titleId}>${title}</h2>
      <button type="button" class="icon-button" aria-label="Close" onClick=${onClose}>×</button>
    </div>
    <div class="dialog-body">${children}</div>
  </dialog>`;
}

/** Asks before something that cannot be undone. */
export function Confirm({ title, message, action = "Delete", onConfirm, onClose, children, disabled = false }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const go = async () => {
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
      onClose();
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  return html`<${Dialog} title=${title} onClose=${onClose}>
    <p>${message}</p>
    ${children}
    <${ErrorNote} error=${error} />
    <div class="actions">
      <button type="button" onClick=${onClose}>Cancel</button>
      <button type="button" class="danger" disabled=${busy || disabled} onClick=${go}>${action}</button>
    </div>
  <//>`;
}

/** An error in place, announced to screen readers. */
export function ErrorNote({ error }) {
  if (!error) return null;
  return html`<p class="error-note" role="alert">${typeof error === "string" ? error : describe(error)}</p>`;
}

/** A button copying `text`, saying so when done. */
export function CopyButton({ text, label = "Copy" }) {
  const [state, setState] = useState(label);
  const copy = async () => {
    setState((await copyText(text)) ? "Copied" : "Copy failed");
    setTimeout(() => setState(label), 1500);
  };
  return html`<button type="button" onClick=${copy}>${state}</button>`;
}

/** Loads `load()` when `deps` change: {data, error, loading, reload}. */
export function useLoad(load, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, error: null, loading: false }),
      (error) => live && setState({ data: null, error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

/** A page's heading and its actions. */
export function PageHead({ title, children }) {
  return html`<div class="page-head"><h1>${title}</h1><div class="page-actions">${children}</div></div>`;
}

/** "Newer / Older" paging over `next_cursor` lists. */
export function Pager({ cursors, next, onPage }) {
  if (!next && cursors.length === 0) return null;
  return html`<nav class="pager" aria-label="Pages">
    <button type="button" disabled=${cursors.length === 0} onClick=${() => onPage(-1)}>Previous page</button>
    <button type="button" disabled=${!next} onClick=${() => onPage(1)}>Next page</button>
  </nav>`;
}

/** Cursor paging state: the cursor of the page shown and how to move. */
export function useCursor(reset) {
  const [stack, setStack] = useState([]);
  useEffect(() => setStack([]), reset);
  const cursor = stack.length ? stack[stack.length - 1] : null;
  const move = (dir, next) => setStack((s) => (dir > 0 ? [...s, next] : s.slice(0, -1)));
  return { cursor, stack, move };
}

/** A size in bytes, for people. */
export function bytes(n) {
  if (!Number.isFinite(n)) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i += 1;
  }
  return `${n < 10 && i ? n.toFixed(1) : Math.round(n)} ${units[i]}`;
}

/** A timestamp (RFC 3339 or seconds), in the reader's locale. */
export function when(value) {
  if (value === null || value === undefined || value === "") return "—";
  const d = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

let fieldCount = 0;

/**
 * A field: a label naming its one control, and a hint that describes it
 * (aria-describedby), so the control's name is the label alone.
 */
export function Field({ label, hint, children }) {
  const id = useRef(null);
  if (!id.current) id.current = `field-${++fieldCount}`;
  const control = Array.isArray(children) ? children.find((c) => c && c.type) : children;
  const labelled = control ? cloneElement(control, { id: id.current, "aria-describedby": hint ? `${id.current}-hint` : undefined }) : children;
  return html`<div class="field">
    <label class="label" for=${id.current}>${label}</label>
    ${labelled}
    ${hint ? html`<span class="hint" id=${`${id.current}-hint`}>${hint}</span>` : null}
  </div>`;
}
