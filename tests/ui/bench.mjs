// `cargo xtask bench ui`: how fast the console is in Debian's Chromium on
// loopback, against peers measured in the same run.
//
// 1. Load: navigation start to an enabled message box (interactive), with
//    the bytes transferred, cold (new context) and warm (revalidated with
//    ETags); peer: the same navigation to /health (server round trip and
//    browser start-up alone).
// 2. A session of 1,000 messages (markdown and code): time to open it,
//    then frame times while it scrolls from top to bottom; peer: the same
//    texts as plain paragraphs in a page with no framework, markdown or
//    highlighting, scrolled the same way in the same browser.
//
// Prints a JSON report on stdout.
import { startServer, launch, api } from "./harness.js";

const RUNS = Number(process.env.BENCH_RUNS || 15);

function stats(values) {
  const v = [...values].sort((a, b) => a - b);
  const at = (q) => v[Math.min(v.length - 1, Math.floor(q * v.length))];
  return { n: v.length, p50: at(0.5), p95: at(0.95), max: v[v.length - 1] };
}

async function timeInteractive(browser, url, ready) {
  const context = await browser.newContext();
  const page = await context.newPage();
  let bytes = 0;
  page.on("response", async (r) => {
    const length = Number((await r.allHeaders())["content-length"] || 0);
    bytes += length;
  });
  const start = Date.now();
  await page.goto(url);
  await ready(page);
  const cold = Date.now() - start;
  const again = Date.now();
  await page.reload();
  await ready(page);
  const warm = Date.now() - again;
  await context.close();
  return { cold, warm, bytes };
}

/** Scrolls `selector` top to bottom in steps, one per frame; frame times. */
async function scrollFrames(page, selector) {
  return page.evaluate(async (sel) => {
    const el = sel ? document.querySelector(sel) : document.scrollingElement;
    el.scrollTop = 0;
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    const frames = [];
    let last = performance.now();
    const step = Math.max(200, Math.ceil(el.scrollHeight / 400));
    while (el.scrollTop + el.clientHeight < el.scrollHeight - 1) {
      el.scrollTop += step;
      await new Promise((r) => requestAnimationFrame(r));
      const now = performance.now();
      frames.push(now - last);
      last = now;
    }
    return frames;
  }, selector);
}

const MESSAGE = (i) =>
  i % 2 === 0
    ? `Question ${i}: how do I read a file line by line in Rust, and what about errors?`
    : `Answer ${i}: use **BufReader**:\n\n\`\`\`rust\nuse std::io::{BufRead, BufReader};\nlet file = std::fs::File::open("notes.txt")?;\nfor line in BufReader::new(file).lines() {\n    println!("{}", line?);\n}\n\`\`\`\n\n- errors propagate with \`?\`\n- each line is a \`String\``;

const server = await startServer();
const browser = await launch();
try {
  const load = [];
  const health = [];
  for (let i = 0; i < RUNS; i += 1) {
    load.push(await timeInteractive(browser, `${server.base}/`, (p) => p.getByRole("textbox", { name: "Message" }).waitFor()));
    health.push(await timeInteractive(browser, `${server.base}/health`, (p) => p.waitForLoadState("load")));
  }

  const session = (await api(server.base, "POST", "/v1/sessions", { body: { title: "A thousand messages" } })).data;
  for (let i = 0; i < 1000; i += 1) {
    await api(server.base, "POST", `/v1/sessions/${session.id}/messages`, { body: { role: i % 2 ? "assistant" : "user", content: MESSAGE(i) } });
  }
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const renderRuns = [];
  let consoleFrames = [];
  for (let i = 0; i < 3; i += 1) {
    const start = Date.now();
    await page.goto(`${server.base}/chat/${session.id}`);
    await page.getByRole("article", { name: "Answer" }).nth(499).waitFor({ state: "attached" });
    renderRuns.push(Date.now() - start);
    consoleFrames = consoleFrames.concat(await scrollFrames(page, ".transcript"));
  }
  // Peer: the same 1,000 texts as plain paragraphs in a page with no
  // framework, markdown or highlighting, scrolled the same way.
  await page.goto(`${server.base}/health`);
  await page.evaluate((texts) => {
    document.body.innerHTML = "";
    const box = document.createElement("div");
    box.style.cssText = "height:800px;overflow-y:auto;font:15px system-ui;white-space:pre-wrap";
    box.id = "plain";
    for (const t of texts) {
      const p = document.createElement("p");
      p.textContent = t;
      box.appendChild(p);
    }
    document.body.appendChild(box);
  }, Array.from({ length: 1000 }, (_, i) => MESSAGE(i)));
  let plainFrames = [];
  for (let i = 0; i < 3; i += 1) plainFrames = plainFrames.concat(await scrollFrames(page, "#plain"));
  await context.close();

  const loadCold = stats(load.map((l) => l.cold));
  const loadWarm = stats(load.map((l) => l.warm));
  const healthCold = stats(health.map((l) => l.cold));
  const frames = stats(consoleFrames);
  const plain = stats(plainFrames);
  const report = {
    runs: RUNS,
    first_load_ms: { cold: loadCold, warm: loadWarm, bytes_on_the_wire_cold: stats(load.map((l) => l.bytes)).p50 },
    peer_health_page_ms: healthCold,
    ratio_cold_load_p50_to_health_p50: +(loadCold.p50 / healthCold.p50).toFixed(2),
    transcript_1000: {
      open_ms: stats(renderRuns),
      scroll_frame_ms: frames,
      peer_plain_paragraphs_scroll_frame_ms: plain,
      ratio_frame_p95_to_plain_p95: +(frames.p95 / plain.p95).toFixed(2),
    },
  };
  console.log(JSON.stringify(report, null, 2));
} finally {
  await browser.close();
  await server.stop();
}
