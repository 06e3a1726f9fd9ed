// Every page of the console, at a desktop and a phone width: axe-core
// reports no serious or critical violation, nothing fails in the page's
// console, and a screenshot is saved (tests/ui/screenshots) for a person to
// look at.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startServer, launch, openPage, api, axeViolations, screenshot, eventually, DESKTOP, PHONE, cspViolations } from "./harness.js";

const PASSWORD = "correct horse battery staple";

async function check(page, name, size) {
  // Let late requests and rendering finish.
  await page.waitForLoadState("networkidle");
  const violations = await axeViolations(page);
  assert.deepEqual(violations, [], `${name} at ${size}`);
  await screenshot(page, `${name}-${size}`);
}

test("every page passes axe at desktop and phone widths, with screenshots", async (t) => {
  const server = await startServer({ OFFGRID_MULTI_USER: "true" });
  const browser = await launch();
  t.after(async () => {
    await browser.close();
    await server.stop();
  });

  // Before setup: the setup page.
  for (const [size, viewport] of [["desktop", DESKTOP], ["phone", PHONE]]) {
    const page = await openPage(browser, viewport);
    await page.goto(`${server.base}/`);
    await page.getByRole("button", { name: "Create administrator" }).waitFor();
    await check(page, "setup", size);
    assert.deepEqual(page.problems, []);
    assert.deepEqual(await cspViolations(page), []);
    await page.context().close();
  }

  // Data to show: an admin, a user, an invitation, a session with a code
  // answer, a collection with a document.
  assert.equal((await api(server.base, "POST", "/v1/auth/setup", { body: { username: "admin", password: PASSWORD } })).status, 201);
  const token = (await api(server.base, "POST", "/v1/auth/login", { body: { username: "admin", password: PASSWORD } })).data.token;
  await api(server.base, "POST", "/v1/users", { token, body: { username: "robin", password: PASSWORD, role: "user" } });
  const invite = (await api(server.base, "POST", "/v1/invitations", { token, body: { role: "viewer", note: "for the lab" } })).data;
  const session = (await api(server.base, "POST", "/v1/sessions", { token, body: { title: "Sorting in Rust", model: "smollm2-135m-instruct" } })).data;
  await api(server.base, "POST", `/v1/sessions/${session.id}/messages`, { token, body: { role: "user", content: "How do I sort a vector?" } });
  await api(server.base, "POST", `/v1/sessions/${session.id}/messages`, {
    token,
    body: { role: "assistant", content: "Use `sort`:\n\n```rust\nlet mut v = vec![3, 1, 2];\nv.sort();\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |" },
  });
  const collection = (await api(server.base, "POST", "/v1/rag/collections", { token, body: { name: "Garden notes", description: "What grows where" } })).data;
  const doc = (await api(server.base, "POST", `/v1/rag/collections/${collection.id}/documents`, { token, body: { name: "tomatoes.md", text: "# Tomatoes\n\nTomatoes need sun, water and support." } })).data;
  await eventually(async () => (await api(server.base, "GET", `/v1/rag/collections/${collection.id}/documents/${doc.id}`, { token })).data.status === "ready", 120_000, "the document to index");
  assert.equal((await api(server.base, "POST", "/v1/benchmark", { token, body: { prompt_tokens: 32, max_tokens: 4 } })).status, 200);

  for (const [size, viewport, scheme] of [["desktop", DESKTOP, "light"], ["phone", PHONE, "light"], ["desktop-dark", DESKTOP, "dark"]]) {
    const page = await openPage(browser, viewport, scheme);
    // Guests may chat: the start page is the chat, with a sign-in link.
    await page.goto(`${server.base}/`);
    await page.getByText("Your chat is not saved").waitFor();
    await check(page, "guest-chat", size);
    await page.getByRole("link", { name: "Sign in" }).click();
    await page.getByRole("button", { name: "Sign in" }).waitFor();
    await check(page, "login", size);
    await page.getByRole("textbox", { name: "Username" }).fill("admin");
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("textbox", { name: "Message" }).waitFor();
    await check(page, "chat", size);

    const pages = [
      ["session", `/chat/${session.id}`, () => page.getByRole("log", { name: "Conversation" }).locator("pre code").waitFor()],
      ["sessions", "/sessions", () => page.getByRole("link", { name: "Sorting in Rust", exact: true }).waitFor()],
      ["models", "/models", () => page.getByRole("rowheader", { name: /smollm2-135m-instruct/ }).waitFor()],
      ["rag", "/rag", () => page.getByRole("link", { name: "Garden notes", exact: true }).waitFor()],
      ["collection", `/rag/${collection.id}`, () => page.getByText("tomatoes.md").waitFor()],
      ["users", "/users", () => page.getByRole("rowheader", { name: /robin/ }).waitFor()],
      ["invitations", "/invitations", () => page.getByText("for the lab").waitFor()],
      ["audit", "/audit", () => page.getByText("invitation.created").first().waitFor()],
      ["benchmark", "/benchmark", () => page.getByRole("figure", { name: "Speed by run" }).waitFor()],
      ["metrics", "/admin/metrics", () => page.getByRole("figure", { name: "Tokens per second" }).waitFor()],
      ["account", "/account", () => page.getByRole("heading", { name: "API keys" }).waitFor()],
      ["not-found", "/chat/00000000-0000-0000-0000-000000000000", () => page.getByRole("heading", { name: "Not found" }).waitFor()],
    ];
    for (const [name, path, ready] of pages) {
      await page.goto(`${server.base}${path}`);
      await ready();
      await check(page, name, size);
    }
    // Dialogs: the share dialog and a confirmation.
    await page.goto(`${server.base}/sessions`);
    await page.getByRole("button", { name: "Share Sorting in Rust" }).click();
    await page.getByRole("dialog").waitFor();
    await check(page, "share-dialog", size);
    await page.keyboard.press("Escape");
    await page.getByRole("dialog").waitFor({ state: "detached" });
    if (size === "phone") {
      await page.getByRole("button", { name: "Menu" }).click();
      await page.getByRole("navigation", { name: "Main" }).waitFor();
      await check(page, "menu", size);
    }
    assert.deepEqual(page.problems, []);
    assert.deepEqual(await cspViolations(page), []);
    // The only error answer: the session that does not exist.
    assert.deepEqual(page.failures, ["404 GET /v1/sessions/00000000-0000-0000-0000-000000000000"], size);
    await page.context().close();
  }

  // The invitation page, signed out.
  const page = await openPage(browser, PHONE);
  await page.goto(`${server.base}${invite.path}`);
  await page.getByRole("button", { name: "Create account" }).waitFor();
  await check(page, "invite", "phone");
  assert.deepEqual(page.problems, []);
    assert.deepEqual(await cspViolations(page), []);
});
