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
      const m = /language-([\w+-]+)/.exec(code.className);
      const name = m ? m[1].toLowerCase() : null;
      const lang = name ? ALIASES[name] || name : null;
      code.dataset.highlighted = "pending";
      highlighter(lang)
        .then((h) => {
          if (!code.isConnected) return;
          const text = code.textContent;
          const result = lang && registered.has(lang) ? h.highlight(text, { language: lang, ignoreIllegals: true }) : null;
          if (result) {
            // highlight.js escapes the text it wraps in its spans.
            code.innerHTML = result.value;
            code.classList.add("hljs");
          }
          code.dataset.highlighted = "yes";
        })
        .catch(() => {
          code.dataset.highlighted = "no";
        });
    }
  }
}
