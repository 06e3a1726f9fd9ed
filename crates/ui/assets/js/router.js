// Client-side routing over the History API: the server serves index.html
// for every page path, and links within the console change the page
// without a reload.
import { useEffect, useState } from "./lib.js";

const listeners = new Set();
// Bumped on every navigation, so a link to the page already shown (New
// chat) starts it afresh.
let generation = 0;

/** Goes to `to` (a path with an optional query) inside the console. */
export function navigate(to, { replace = false } = {}) {
  generation += 1;
  if (to !== location.pathname + location.search + location.hash) {
    history[replace ? "replaceState" : "pushState"](null, "", to);
  }
  for (const f of listeners) f();
}

/** The current path and query, re-rendering when they change. */
export function useLocation() {
  const read = () => ({ path: location.pathname, search: new URLSearchParams(location.search), generation });
  const [loc, setLoc] = useState(read);
  useEffect(() => {
    const update = () => setLoc(read());
    // Back and forward start a page afresh only when the page changes.
    let last = location.pathname + location.search;
    const pop = () => {
      const now = location.pathname + location.search;
      if (now !== last) generation += 1;
      last = now;
      update();
    };
    const track = () => {
      last = location.pathname + location.search;
    };
    listeners.add(track);
    listeners.add(update);
    addEventListener("popstate", pop);
    return () => {
      listeners.delete(update);
      listeners.delete(track);
      removeEventListener("popstate", pop);
    };
  }, []);
  return loc;
}

// Same-origin links to console pages change the page in place; API links
// (downloads, exports) and anything opened elsewhere keep the browser's way.
document.addEventListener("click", (e) => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = e.target.closest && e.target.closest("a[href]");
  if (!a || a.target || a.hasAttribute("download")) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/v1/") || url.pathname.startsWith("/assets/")) return;
  // In-page links (the skip link): focus the target, without touching the
  // history (a history entry would come back as a page change).
  if (url.hash && url.pathname === location.pathname && url.search === location.search) {
    const target = document.getElementById(decodeURIComponent(url.hash.slice(1)));
    if (target) {
      e.preventDefault();
      target.focus();
      target.scrollIntoView({ block: "start" });
    }
    return;
  }
  e.preventDefault();
  navigate(url.pathname + url.search);
});
