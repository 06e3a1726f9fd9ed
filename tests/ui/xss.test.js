// Hostile text everywhere the console shows it: a model reply (stored, and
// one streamed live), a session title, a collection and a document name,
// and a document's text carrying script payloads. Nothing runs (no
// dialog, no flag set, no handler or javascript: link in the page), and
// names show as the text they are.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startServer, launch, openPage, api, eventually, cspViolations } from "./harness.js";

const IMG = `<img src=x onerror="window.__xss=1;alert('img')">`;
const PAYLOADS = [
  IMG,
  `<script>window.__xss=2;alert('script')</script>`,
  `[click me](javascript:window.__xss=3)`,
  `<a href="javascript:window.__xss=4">link</a>`,
  `<iframe src="javascript:window.__xss=5"></iframe>`,
  `<svg onload="window.__xss=6"></svg>`,
  `![x](x" onerror="window.__xss=7)`,
  `<details open ontoggle="window.__xss=8">d</details>`,
  `<form action="javascript:window.__xss=9"><button>go</button></form>`,
  "```html\n<img src=x onerror=\"window.__xss=10\">\n```",
].join("\n\n");

async function assertInert(page, where) {
  await page.waitForLoadState("networkidle");
  assert.deepEqual(page.dialogs, [], `${where}: dialogs`);
  assert.equal(await page.evaluate(() => window.__xss), undefined, `${where}: a payload ran`);
  const bad = await page.evaluate(() => {
    const found = [];
    for (const el of document.querySelectorAll("#app *")) {
      for (const attr of el.attributes) {
        if (attr.name.startsWith("on")) found.push(`${el.tagName} ${attr.name}`);
        if (/^\s*javascript:/i.test(attr.value)) found.push(`${el.tagName} ${attr.name}=${attr.value}`);
      }
      if (["SCRIPT", "IFRAME", "OBJECT", "EMBED", "SVG"].includes(el.tagName.toUpperCase())) found.push(el.tagName);
    }
    // Rendered model output holds no form or control of its own.
    for (const el of document.querySelectorAll(".markdown form, .markdown input, .markdown button:not(.copy-code), .markdown img, .markdown style")) {
      found.push(`markdown ${el.tagName}`);
    }
    return found;
  });
  assert.deepEqual(bad, [], `${where}: dangerous markup in the page`);
  assert.deepEqual(page.problems, [], `${where}: page errors`);
  // DOMPurify parses hostile markup in an inert document (DOMParser), where
  // Chrome still reports a handler attribute to the CSP before it would
  // not run it; no violation may come from anywhere else.
  for (const v of await cspViolations(page)) {
    assert.ok(v.source.endsWith("/assets/vendor/dompurify/purify.es.mjs") && v.directive === "script-src-attr", `${where}: ${JSON.stringify(v)}`);
  }
}

test("XSS: hostile model output, titles and document names run nothing", async (t) => {
  const server = await startServer();
  const browser = await launch();
  t.after(async () => {
    await browser.close();
    await server.stop();
  });
  const base = server.base;
  const session = (await api(base, "POST", "/v1/sessions", { body: { title: IMG } })).data;
  await api(base, "POST", `/v1/sessions/${session.id}/messages`, { body: { role: "user", content: IMG } });
  await api(base, "POST", `/v1/sessions/${session.id}/messages`, { body: { role: "assistant", content: PAYLOADS } });
  const collection = (await api(base, "POST", "/v1/rag/collections", { body: { name: `${IMG} notes` } })).data;
  const doc = (await api(base, "POST", `/v1/rag/collections/${collection.id}/documents`, {
    body: { name: `${IMG}.md`, text: `# Payloads\n\nThe boiler pressure is set with the grey key.\n\n${PAYLOADS}` },
  })).data;
  await eventually(async () => (await api(base, "GET", `/v1/rag/collections/${collection.id}/documents/${doc.id}`)).data.status === "ready", 120_000, "indexing");

  const page = await openPage(browser);
  // The stored reply, rendered as markdown.
  await page.goto(`${base}/chat/${session.id}`);
  const answer = page.getByRole("article", { name: "Answer" });
  // The javascript: link keeps its text and loses its target.
  await answer.getByText("click me").waitFor();
  assert.equal(await answer.getByRole("link", { name: "click me" }).count(), 0);
  // The code block shows the payload as text.
  assert.match(await answer.locator("pre code").textContent(), /onerror/);
  // The user's message and the title are text.
  assert.equal(await page.getByRole("article", { name: "Your message" }).locator(".text").textContent(), IMG);
  assert.equal(await page.getByRole("heading", { level: 1 }).textContent(), IMG);
  await assertInert(page, "stored reply");

  // A streamed reply carrying the payloads, cut mid-tag across events
  // (served to the page in place of the model, which would not say them
  // word for word), rendered while it streams and when it ends.
  const pieces = [];
  for (let i = 0; i < PAYLOADS.length; i += 7) pieces.push(PAYLOADS.slice(i, i + 7));
  const events = pieces.map((p) => `data: ${JSON.stringify({ id: "x", object: "chat.completion.chunk", choices: [{ index: 0, delta: { content: p }, finish_reason: null }] })}\n\n`);
  events.push(`data: ${JSON.stringify({ id: "x", object: "chat.completion.chunk", choices: [{ index: 0, delta: {}, finish_reason: "stop" }] })}\n\n`, "data: [DONE]\n\n");
  await page.route("**/v1/chat/completions", (route) =>
    route.fulfill({ status: 200, headers: { "content-type": "text/event-stream" }, body: events.join("") }),
  );
  await page.getByRole("textbox", { name: "Message" }).fill("Say the payloads.");
  await page.getByRole("button", { name: "Send" }).click();
  const streamed = page.getByRole("article", { name: "Answer" }).last();
  await streamed.getByText("click me").waitFor();
  await page.getByRole("button", { name: "Send" }).waitFor();
  assert.match(await streamed.locator("pre code").textContent(), /onerror/);
  await assertInert(page, "streamed reply");
  await page.unroute("**/v1/chat/completions");

  // Sessions list, RAG pages, search results and citations.
  await page.goto(`${base}/sessions`);
  await page.getByRole("link", { name: IMG, exact: true }).waitFor();
  await assertInert(page, "sessions");
  await page.goto(`${base}/rag`);
  await page.getByRole("link", { name: `${IMG} notes`, exact: true }).waitFor();
  await assertInert(page, "collections");
  await page.goto(`${base}/rag/${collection.id}`);
  await page.getByText(`${IMG}.md`, { exact: true }).waitFor();
  await page.getByRole("searchbox", { name: "Search documents" }).fill("boiler pressure grey key");
  await page.getByRole("search").getByRole("button", { name: "Search" }).click();
  await page.locator(".hit .doc").first().waitFor();
  assert.equal(await page.locator(".hit .doc").first().textContent(), `${IMG}.md`);
  await assertInert(page, "collection and search");
  await page.goto(`${base}/`);
  await page.getByRole("button", { name: /^Knowledge/ }).click();
  await page.getByRole("checkbox", { name: "All my knowledge" }).check();
  await page.getByRole("textbox", { name: "Message" }).fill("How is the boiler pressure set?");
  await page.getByRole("button", { name: "Send" }).click();
  await page.getByRole("button", { name: "Send" }).waitFor({ timeout: 120_000 });
  await page.locator(".citations .doc").first().waitFor();
  assert.equal(await page.locator(".citations .doc").first().textContent(), `${IMG}.md`);
  await assertInert(page, "citations");
});
