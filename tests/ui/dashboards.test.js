// The Benchmark and Metrics pages against the real server and model: a run
// started from the page is measured, stored and charted; the Metrics page
// charts the same figures the API serves, per user included; a user sees
// neither the Metrics page nor the Run button (unless the server lets
// users benchmark).
import { test } from "node:test";
import assert from "node:assert/strict";
import { startServer, launch, openPage, api, cspViolations, eventually } from "./harness.js";

const PASSWORD = "correct horse battery staple";

async function signIn(page, base, username) {
  await page.goto(`${base}/login`);
  await page.getByRole("textbox", { name: "Username" }).fill(username);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("textbox", { name: "Message" }).waitFor();
}

test("benchmark and metrics pages chart what the API measures", async (t) => {
  const server = await startServer({ OFFGRID_MULTI_USER: "true" });
  const browser = await launch();
  t.after(async () => {
    await browser.close();
    await server.stop();
  });
  const base = server.base;
  await api(base, "POST", "/v1/auth/setup", { body: { username: "admin", password: PASSWORD } });
  const token = (await api(base, "POST", "/v1/auth/login", { body: { username: "admin", password: PASSWORD } })).data.token;
  await api(base, "POST", "/v1/users", { token, body: { username: "robin", password: PASSWORD, role: "user" } });
  const robinToken = (await api(base, "POST", "/v1/auth/login", { body: { username: "robin", password: PASSWORD } })).data.token;
  const chat = await api(base, "POST", "/v1/chat/completions", {
    token: robinToken,
    body: { model: "smollm2-135m-instruct", max_tokens: 12, temperature: 0, messages: [{ role: "user", content: "Name a fruit." }] },
  });
  assert.equal(chat.status, 200);

  const page = await openPage(browser);
  await signIn(page, base, "admin");

  // Benchmark: run one from the page.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Benchmark" }).click();
  await page.getByRole("heading", { name: "Benchmark" }).waitFor();
  await page.getByText("No runs yet.").waitFor();
  await page.getByRole("spinbutton", { name: "Prompt tokens" }).fill("48");
  await page.getByRole("spinbutton", { name: "Tokens to generate" }).fill("8");
  await page.getByRole("button", { name: "Run benchmark" }).click();
  const done = page.getByRole("status").filter({ hasText: "tokens/s" });
  await done.waitFor({ timeout: 120_000 });
  const runs = (await api(base, "GET", "/v1/benchmark", { token })).data.data;
  assert.equal(runs.length, 1);
  assert.equal(runs[0].prompt_tokens > 16, true);
  assert.equal(runs[0].generated_tokens, 8);
  // The page shows the stored figures, in a row and a chart.
  const row = page.getByRole("row").filter({ has: page.getByRole("rowheader", { name: "smollm2-135m-instruct" }) });
  await row.waitFor();
  // Formatted as the page does, in the browser's locale.
  const decode = await page.evaluate((n) => n.toLocaleString(undefined, { maximumFractionDigits: n >= 100 ? 0 : n >= 10 ? 1 : 2 }), runs[0].decode_tps);
  assert.ok((await row.textContent()).includes(decode), `${decode} in the row`);
  const speed = page.getByRole("figure", { name: "Speed by run" });
  assert.equal(await speed.locator("svg .series").count(), 2, "prompt and decode, one run each");

  // Metrics: the same figures as the API.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Metrics" }).click();
  await page.getByRole("heading", { name: "Metrics" }).waitFor();
  const usage = page.getByRole("figure", { name: "Tokens by user" });
  // In the legend, and as a column of the chart's table.
  await usage.getByRole("listitem").filter({ hasText: "robin" }).waitFor();
  await usage.getByRole("listitem").filter({ hasText: "admin" }).waitFor();
  assert.equal(await usage.getByRole("columnheader", { name: "robin", includeHidden: true }).count(), 1);
  for (const title of ["Requests", "Tokens per second", "Queue depth", "Time to first token", "Inter-token latency", "Request duration"]) {
    const figure = page.getByRole("figure", { name: title });
    assert.ok((await figure.locator("svg .series").count()) >= 1, `${title} draws a line`);
  }
  const history = (await api(base, "GET", "/v1/metrics/history", { token })).data;
  const generated = history.points.reduce((n, p) => n + p.generated_tokens, 0);
  // The chat and the benchmark's tokens (no other generation ran).
  assert.equal(generated, chat.data.usage.completion_tokens + runs[0].generated_tokens);
  await eventually(
    async () => (await page.getByRole("group", { name: "Now" }).textContent()).includes(`${generated}tokens this hour`),
    20_000,
    "the tokens tile",
  );
  assert.deepEqual(page.problems, []);
  assert.deepEqual(await cspViolations(page), []);
  assert.deepEqual(page.failures, []);
  await page.context().close();

  // A user: the history, no Run button, no Metrics page.
  const user = await openPage(browser);
  await signIn(user, base, "robin");
  const nav = user.getByRole("navigation", { name: "Main" });
  assert.equal(await nav.getByRole("link", { name: "Metrics" }).count(), 0);
  await nav.getByRole("link", { name: "Benchmark" }).click();
  await user.getByRole("rowheader", { name: "smollm2-135m-instruct" }).waitFor();
  await user.getByText("Administrators run benchmarks").waitFor();
  assert.equal(await user.getByRole("button", { name: "Run benchmark" }).count(), 0);
  await user.goto(`${base}/admin/metrics`);
  await user.getByRole("heading", { name: "Not available" }).waitFor();
  assert.deepEqual(user.problems, []);
  await user.context().close();
});
