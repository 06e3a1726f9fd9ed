// Single-user mode in a real Chromium against the real server and model:
// pick the model, send, watch tokens stream and the answer complete, stop a
// long answer mid-way (the server's queue empties and the session keeps
// what was generated, marked interrupted), reload and find the session.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startServer, launch, openPage, api, eventually, cspViolations } from "./harness.js";

const MODEL = "smollm2-135m-instruct";

test("single-user: a chat streams, stops on request, and is saved to a session", async (t) => {
  const server = await startServer();
  const browser = await launch();
  t.after(async () => {
    await browser.close();
    await server.stop();
  });
  const page = await openPage(browser);
  await page.goto(`${server.base}/`);

  const model = page.getByRole("combobox", { name: "Model" });
  await model.waitFor();
  await model.selectOption(MODEL);
  assert.equal(await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Chat" }).getAttribute("aria-current"), "page");

  const box = page.getByRole("textbox", { name: "Message" });
  // Shift+Enter is a new line, not a send.
  await box.fill("Write a long story about a lighthouse keeper");
  await box.press("Shift+Enter");
  assert.equal(await box.inputValue(), "Write a long story about a lighthouse keeper\n");
  await box.type("and the sea, with many chapters.");
  await box.press("Enter");

  // Tokens appear while the answer streams: the answer grows in steps
  // while Stop is shown.
  const stop = page.getByRole("button", { name: "Stop" });
  await stop.waitFor();
  const log = page.getByRole("log", { name: "Conversation" });
  const answer = log.getByRole("article", { name: "Answer" }).last();
  const lengths = new Set();
  await eventually(async () => {
    const text = await answer.locator(".text").textContent().catch(() => "");
    if (text.length) lengths.add(text.length);
    return lengths.size >= 3 && text.length > 40;
  }, 60_000, "the answer to stream");
  await stop.click();
  await page.getByText("Stopped before the end.").waitFor();
  await page.getByRole("button", { name: "Send" }).waitFor();
  const stoppedText = await answer.locator(".text").textContent();

  // The server stopped too: nothing is queued or running, and the session
  // holds what was generated, marked interrupted.
  const path = new URL(page.url()).pathname;
  assert.match(path, /^\/chat\/[^/]+$/);
  const id = path.split("/")[2];
  await eventually(async () => (await api(server.base, "GET", "/v1/queue")).data.data.length === 0, 30_000, "the queue to empty");
  const stored = await eventually(async () => {
    const s = (await api(server.base, "GET", `/v1/sessions/${id}`)).data;
    return s.messages.some((m) => m.role === "assistant") && s;
  }, 30_000, "the stopped answer to be saved");
  const saved = stored.messages.find((m) => m.role === "assistant");
  assert.equal(saved.interrupted, true);
  assert.ok(saved.content.length > 0);
  assert.ok(stoppedText.length > 0);

  // A short question completes on its own.
  await box.fill("What is the capital of France?");
  await page.getByRole("button", { name: "Send" }).click();
  await stop.waitFor();
  await page.getByRole("button", { name: "Send" }).waitFor({ timeout: 120_000 });
  const answers = log.getByRole("article", { name: "Answer" });
  assert.equal(await answers.count(), 2);
  const second = answers.nth(1);
  assert.ok((await second.locator(".text").textContent()).trim().length > 0);
  assert.equal(await second.getByText("Stopped before the end.").count(), 0);

  // Reload: the address names the session, which comes back whole.
  await page.reload();
  await log.getByRole("article", { name: "Your message" }).nth(1).waitFor();
  assert.equal(await log.getByRole("article", { name: "Your message" }).count(), 2);
  assert.equal(await log.getByRole("article", { name: "Answer" }).count(), 2);
  await page.getByText("Stopped before the end.").waitFor();

  // And the Sessions page lists it under its title.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Sessions" }).click();
  const link = page.getByRole("link", { name: /^Write a long story about a lighthouse keeper/ });
  await link.waitFor();
  await link.click();
  await page.waitForURL(`**/chat/${id}`);
  await log.getByRole("article", { name: "Answer" }).nth(1).waitFor();

  // Errors show in place, in the answer's bubble: a prompt longer than
  // the model's context (the real server refuses it), and a quota refusal
  // with its retry time (served to the page in place of the server).
  await page.goto(`${server.base}/`);
  await box.waitFor();
  await box.fill("lighthouse ".repeat(12_000));
  await page.getByRole("button", { name: "Send" }).click();
  const tooLong = log.getByRole("article", { name: "Answer" }).last().getByRole("alert");
  await tooLong.waitFor({ timeout: 60_000 });
  assert.match(await tooLong.textContent(), /context/i);
  await page.route("**/v1/chat/completions", (route) =>
    route.fulfill({
      status: 429,
      headers: { "content-type": "application/json", "retry-after": "30" },
      body: JSON.stringify({ error: { message: "Too many requests for your quota.", type: "rate_limit_error", code: "rate_limited" } }),
    }),
  );
  await box.fill("One more?");
  await page.getByRole("button", { name: "Send" }).click();
  const limited = log.getByRole("article", { name: "Answer" }).last().getByRole("alert");
  await limited.waitFor();
  assert.equal(await limited.textContent(), "Too many requests for your quota. Try again in 30 seconds.");
  await page.unroute("**/v1/chat/completions");
  // The page is still usable.
  assert.equal(await page.getByRole("button", { name: "Send" }).isVisible(), true);

  assert.deepEqual(page.problems, []);
    assert.deepEqual(await cspViolations(page), []);
});
