// The UI's view library: Preact with htm templates (no build step), and
// the hooks every page uses.
import { h, render, Fragment } from "../vendor/preact/preact.mjs";
import htm from "../vendor/htm/htm.mjs";

export { render, Fragment };
export {
  useState,
  useEffect,
  useRef,
  useCallback,
  useMemo,
  useLayoutEffect,
  useContext,
} from "../vendor/preact/hooks.mjs";
export { createContext, cloneElement } from "../vendor/preact/preact.mjs";

/** Tagged templates for Preact elements: html`<p>${text}</p>`. */
export const html = htm.bind(h);
