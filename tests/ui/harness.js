// The browser tests' harness: a real OffGrid release server on a free
// loopback port with a temporary home and the real default models, and
// Debian's Chromium driven by playwright-core (no browser is downloaded).
// Also axe-core checks and screenshots at desktop and phone widths.
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, existsSync, openSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir, homedir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const require = createRequire(import.meta.url);

/** Where screenshots go (named in the README). */
export const SCREENSHOTS = resolve(here, "screenshots");

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 360, height: 740 };

function binary() {
  if (process.env.OFFGRID_BIN) return process.env.OFFGRID_BIN;
  const target = process.env.CARGO_TARGET_DIR || join(root, "target");
  return join(target, "release", "offgrid");
}

function modelsDir() {
  if (process.env.OFFGRID_MODELS_DIR) return process.env.OFFGRID_MODELS_DIR;
  return join(process.env.OFFGRID_HOME || join(homedir(), ".offgrid-llm"), "models");
}

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/**
 * Starts `offgrid serve` with a fresh home. `env` adds settings
 * (`OFFGRID_MULTI_USER: "true"`, …). Resolves to {base, home, stop()}.
 */
export async function startServer(env = {}) {
  const bin = binary();
  if (!existsSync(bin)) throw new Error(`${bin} is missing: cargo build --release --bin offgrid`);
  const models = modelsDir();
  if (!existsSync(join(models, "smollm2-135m-instruct"))) throw new Error(`${models} has no default models: cargo xtask models`);
  const home = mkdtempSync(join(tmpdir(), "offgrid-ui-"));
  symlinkSync(models, join(home, "models"));
  const port = await freePort();
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("OFFGRID_")));
  const log = openSync(join(home, "server.log"), "a");
  const child = spawn(bin, ["serve", "--port", String(port)], {
    env: { ...clean, OFFGRID_HOME: home, OFFGRID_BCRYPT_COST: "4", RUST_LOG: "warn", ...env },
    stdio: ["ignore", log, log],
  });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited: ${readFileSync(join(home, "server.log"), "utf8")}`);
    try {
      const res = await fetch(`${base}/health`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error("the server did not start");
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    base,
    home,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", r)));
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** Debian's Chromium, headless, without its calls home. */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * A page at `viewport`; page errors and console errors are collected in
 * `page.problems`, error answers (status, method, path) in
 * `page.failures`, and alert() messages in `page.dialogs`.
 */
export async function openPage(browser, viewport = DESKTOP, colorScheme = "light") {
  const context = await browser.newContext({ viewport, colorScheme });
  const page = await context.newPage();
  page.problems = [];
  page.dialogs = [];
  page.on("pageerror", (e) => page.problems.push(`pageerror: ${e.message}`));
  page.failures = [];
  // Content-Security-Policy violations, with the script that caused each
  // (read with cspViolations()).
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener("securitypolicyviolation", (e) =>
      window.__csp.push({ directive: e.violatedDirective, source: e.sourceFile, sample: e.sample }),
    );
  });
  page.on("console", (m) => {
    // Error answers are recorded with their address below, and CSP
    // violations by the listener above.
    const text = m.text();
    if (m.type() === "error" && !text.startsWith("Failed to load resource") && !text.includes("violates the following Content Security Policy")) {
      page.problems.push(`console: ${text}`);
    }
  });
  page.on("response", (r) => {
    if (r.status() >= 400) page.failures.push(`${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}`);
  });
  page.on("dialog", async (d) => {
    page.dialogs.push(d.message());
    await d.dismiss();
  });
  return page;
}

const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

/**
 * Runs axe-core on the page (through the DevTools protocol, which the
 * page's CSP does not govern) and returns the serious and critical
 * violations, as readable lines.
 */
export async function axeViolations(page) {
  const result = await page.evaluate(`(() => { ${axeSource}; return axe.run(document, { resultTypes: ["violations"] }); })()`);
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")}`);
}

/** Saves a full-page screenshot as screenshots/{name}.png. */
export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** JSON over the API from the test itself (not the browser). */
export async function api(base, method, path, { token, body } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  return { status: res.status, data, headers: res.headers };
}

/** Polls `check` until it returns a truthy value (or fails after `ms`). */
export async function eventually(check, ms = 30_000, what = "condition") {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${last}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The CSP violations the page reported so far. */
export function cspViolations(page) {
  return page.evaluate(() => window.__csp || []);
}
