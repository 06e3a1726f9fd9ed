// Markdown for model output and documents: marked renders, DOMPurify
// sanitizes (model output is hostile: no script, no event handler, no
// javascript: link, no image beacon, no form), highlight.js colours code
// blocks once it is loaded (on the first code block), and every block gets
// a copy button.
import { marked } from "../vendor/marked/marked.esm.js";
import DOMPurify from "../vendor/dompurify/purify.es.mjs";
import { copyText } from "./ui.js";

marked.setOptions({ gfm: true, breaks: true });

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  // Model output may not borrow the console's classes to dress up as its
  // controls: only a code block's language survives.
  if (node.hasAttribute("class")) {
    const lang = (node.getAttribute("class") || "").split(/\s+/).filter((c) => /^language-[\w+-]+$/.test(c));
    if (lang.length) node.setAttribute("class", lang.join(" "));
    else node.removeAttribute("class");
  }
  if (node.tagName === "A") {
    node.setAttribute("rel", "noopener noreferrer nofollow");
    node.setAttribute("target", "_blank");
  }
});

const PURIFY = {
  FORBID_TAGS: ["style", "img", "form", "input", "button", "textarea", "select", "iframe", "svg", "math", "video", "audio", "picture", "source"],
  FORBID_ATTR: ["style", "srcset", "action", "formaction", "id", "name"],
  ALLOW_DATA_ATTR: false,
};

/** Sanitized HTML for a markdown text. */
export function markdownToHtml(text) {
  let raw;
  try {
    raw = marked.parse(String(text), { async: false });
  } catch {
    raw = "";
  }
  return DOMPurify.sanitize(raw, PURIFY);
}

const ALIASES = {
  sh: "bash", shell: "bash", zsh: "bash", console: "bash",
  js: "javascript", jsx: "javascript", mjs: "javascript",
  ts: "typescript", tsx: "typescript",
  py: "python", rs: "rust", golang: "go",
  html: "xml", svg: "xml", yml: "yaml", md: "markdown", "c++": "cpp", h: "c",
};
const KNOWN = new Set(["bash", "c", "cpp", "css", "diff", "go", "java", "javascript", "json", "markdown", "python", "rust", "sql", "typescript", "xml", "yaml"]);

let hljs = null;
const registered = new Set();

async function highlighter(lang) {
  if (!hljs) hljs = (await import("../vendor/highlight/core.min.js")).default;
  if (lang && KNOWN.has(lang) && !registered.has(lang)) {
    const grammar = (await import(`../vendor/highlight/languages/${lang}.min.js`)).default;
    hljs.registerLanguage(lang, grammar);
    registered.add(lang);
  }
  return hljs;
}

function languageOf(code) {
  const m = /language-([\w+-]+)/.exec(code.className);
  const name = m ? m[1].toLowerCase() : null;
  return name ? ALIASES[name] || name : null;
}

// Blocks waiting to be highlighted, done in idle time a few at a time so
// scrolling through a long session keeps its frames.
const queue = [];
const failed = new Set();
let scheduled = false;

function schedule() {
  if (scheduled || queue.length === 0) return;
  scheduled = true;
  if (window.requestIdleCallback) {
    requestIdleCallback(drain, { timeout: 300 });
  } else {
    setTimeout(() => {
      const end = performance.now() + 8;
      drain({ didTimeout: false, timeRemaining: () => Math.max(0, end - performance.now()) });
    }, 16);
  }
}

async function drain(deadline) {
  // Loaded once, before any block is done, outside the time slices; what
  // fails to load is not asked for again (its blocks stay plain).
  const wanted = new Set(queue.map(languageOf).filter((l) => l && KNOWN.has(l) && !registered.has(l) && !failed.has(l)));
  if (!hljs || wanted.size) {
    for (const lang of wanted.size ? [...wanted] : [null]) {
      try {
        await highlighter(lang);
      } catch {
        failed.add(lang);
      }
    }
    if (!hljs) {
      for (const code of queue.splice(0)) code.dataset.highlighted = "no";
      scheduled = false;
      return;
    }
    scheduled = false;
    schedule();
    return;
  }
  // At least one block per call, even when the browser ran out of idle time.
  let first = true;
  while (queue.length && (first || deadline.timeRemaining() > 2)) {
    first = false;
    const code = queue.shift();
    if (!code.isConnected) continue;
    const lang = languageOf(code);
    try {
      if (lang && registered.has(lang)) {
        // highlight.js escapes the text it wraps in its spans.
        code.innerHTML = hljs.highlight(code.textContent, { language: lang, ignoreIllegals: true }).value;
        code.classList.add("hljs");
      }
      code.dataset.highlighted = "yes";
    } catch {
      code.dataset.highlighted = "no";
    }
  }
  scheduled = false;
  schedule();
}

// One observer per scrolling container (the transcript), so "near the
// screen" is measured where the blocks scroll.
const observers = new Map();

function visibility(root) {
  let observer = observers.get(root);
  if (!observer) {
    observer = new IntersectionObserver(
      (entries) => {
        for (const entry of entries) {
          if (!entry.isIntersecting) continue;
          observer.unobserve(entry.target);
          queue.push(entry.target);
        }
        schedule();
      },
      { root, rootMargin: "600px 0px" },
    );
    observers.set(root, observer);
  }
  return observer;
}

/**
 * Adds copy buttons to the code blocks under `root`, and highlighting when
 * `highlight` (left out while an answer streams).
 */
export function enhanceCode(root, highlight) {
  if (!root) return;
  for (const pre of root.querySelectorAll("pre")) {
    const code = pre.querySelector("code");
    if (!code) continue;
    if (!pre.querySelector(".copy-code")) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "copy-code";
      button.textContent = "Copy";
      button.setAttribute("aria-label", "Copy code");
      button.addEventListener("click", async () => {
        const ok = await copyText(code.textContent);
        button.textContent = ok ? "Copied" : "Copy failed";
        setTimeout(() => (button.textContent = "Copy"), 1500);
      });
      pre.appendChild(button);
    }
    if (highlight && !code.dataset.highlighted) {
      const lang = languageOf(code);
      if (!lang || !KNOWN.has(lang)) {
        // Nothing to colour: no need for highlight.js at all.
        code.dataset.highlighted = "no";
        continue;
      }
      code.dataset.highlighted = "pending";
      // Only blocks that come near the screen: a long session would
      // otherwise highlight hundreds of blocks when it opens (the largest
      // cost in the profile of opening 1,000 messages).
      const scroller = pre.closest(".transcript");
      visibility(scroller && scroller.isConnected ? scroller : null).observe(code);
    }
  }
}
