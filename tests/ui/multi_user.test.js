// Multi-user mode in a real Chromium: first-run setup, sign out and in
// (a wrong password shows the server's one generic message), create a user
// (API key shown once) and an invitation; the invited user accepts, signs
// in, sees no admin page, gets "not found" for the admin's session by URL,
// and shares a session read-only with a viewer, who sees it and cannot post
// into it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startServer, launch, openPage, api, cspViolations } from "./harness.js";

const PASSWORD = "correct horse battery staple";

async function chat(page, text) {
  await page.getByRole("textbox", { name: "Message" }).fill(text);
  await page.getByRole("textbox", { name: "Message" }).press("Enter");
  await page.getByRole("button", { name: "Stop" }).waitFor();
  await page.getByRole("button", { name: "Send" }).waitFor({ timeout: 120_000 });
  await page.waitForURL(/\/chat\/[^/]+$/);
  return new URL(page.url()).pathname.split("/")[2];
}

async function signIn(page, base, username, password) {
  await page.goto(`${base}/login`);
  await page.getByRole("textbox", { name: "Username" }).fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

test("multi-user: setup, users, invitations, isolation and a read-only share", async (t) => {
  const server = await startServer({ OFFGRID_MULTI_USER: "true" });
  const browser = await launch();
  t.after(async () => {
    await browser.close();
    await server.stop();
  });

  // First run: the setup page, whatever address is opened.
  const admin = await openPage(browser);
  await admin.goto(`${server.base}/sessions`);
  await admin.waitForURL("**/setup");
  await admin.getByRole("textbox", { name: "Username" }).fill("admin");
  await admin.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await admin.getByLabel("Confirm password").fill(PASSWORD);
  await admin.getByRole("button", { name: "Create administrator" }).click();
  const nav = admin.getByRole("navigation", { name: "Main" });
  await nav.getByRole("link", { name: "Users" }).waitFor();
  for (const item of ["Chat", "Sessions", "Models", "RAG", "Users", "Invitations", "Audit"]) {
    assert.equal(await nav.getByRole("link", { name: item, exact: true }).count(), 1, item);
  }

  // Sign out, then a wrong password: the server's one generic message.
  await admin.getByRole("button", { name: /admin/ }).click();
  await admin.getByRole("button", { name: "Sign out" }).click();
  await admin.waitForURL("**/login");
  const expected = (await api(server.base, "POST", "/v1/auth/login", { body: { username: "nobody", password: "wrong password!" } })).data.error.message;
  await signIn(admin, server.base, "admin", "not the password");
  assert.equal((await admin.getByRole("alert").innerText()).trim(), expected);
  await admin.getByLabel("Password").fill(PASSWORD);
  await admin.getByRole("button", { name: "Sign in" }).click();
  await admin.getByRole("textbox", { name: "Message" }).waitFor();
  // No token is kept where a script could read it.
  assert.equal(await admin.evaluate(() => localStorage.length + sessionStorage.length > 0 && JSON.stringify({ ...localStorage, ...sessionStorage }).includes("v4.local")), false);
  assert.equal(await admin.evaluate(() => document.cookie.includes("offgrid")), false);

  // The admin's own session.
  const adminSession = await chat(admin, "Say hello to the team.");

  // A viewer, made on the Users page; the API key is shown once.
  await nav.getByRole("link", { name: "Users" }).click();
  await admin.getByRole("button", { name: "Create user" }).click();
  const dialog = admin.getByRole("dialog", { name: "Create user" });
  await dialog.getByRole("textbox", { name: "Username" }).fill("carol");
  await dialog.getByLabel("Password").fill(PASSWORD);
  await dialog.getByRole("combobox", { name: "Role" }).selectOption("viewer");
  await dialog.getByRole("button", { name: "Create user" }).click();
  const created = admin.getByRole("dialog", { name: "User created" });
  const key = await created.locator(".secret-value").innerText();
  assert.match(key, /^og_/);
  await created.getByRole("button", { name: "Done" }).click();
  await admin.getByRole("rowheader", { name: /carol/ }).waitFor();

  // An invitation for a user, with its one-time link.
  await nav.getByRole("link", { name: "Invitations" }).click();
  await admin.getByRole("combobox", { name: "Role" }).selectOption("user");
  // A hostile note shows as text, here and in the audit log.
  const note = `<img src=x onerror="alert('note')">`;
  await admin.getByRole("textbox", { name: "Note (optional)" }).fill(note);
  await admin.getByRole("button", { name: "Create invitation" }).click();
  const link = await admin.locator(".secret-value").innerText();
  assert.match(link, new RegExp(`^${server.base}/invite/.+`));
  await admin.getByRole("cell", { name: "pending" }).waitFor();
  assert.equal(await admin.getByRole("cell", { name: note, exact: true }).count(), 1);
  await nav.getByRole("link", { name: "Audit" }).click();
  await admin.getByText("invitation.created").first().waitFor();
  await nav.getByRole("link", { name: "Invitations" }).click();
  await admin.getByRole("cell", { name: "pending" }).waitFor();
  assert.deepEqual(admin.dialogs, []);

  // The invited user accepts in another browser.
  const dave = await openPage(browser);
  await dave.goto(link);
  await dave.getByRole("textbox", { name: "Username" }).fill("dave");
  await dave.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await dave.getByLabel("Confirm password").fill(PASSWORD);
  await dave.getByRole("button", { name: "Create account" }).click();
  const daveNav = dave.getByRole("navigation", { name: "Main" });
  await daveNav.getByRole("link", { name: "Sessions" }).waitFor();
  for (const hidden of ["Users", "Invitations", "Audit"]) {
    assert.equal(await daveNav.getByRole("link", { name: hidden }).count(), 0, hidden);
  }
  await dave.goto(`${server.base}/users`);
  await dave.getByRole("heading", { name: "Not available" }).waitFor();
  await dave.goto(`${server.base}/chat/${adminSession}`);
  await dave.getByRole("heading", { name: "Not found" }).waitFor();
  // The invitation is used now.
  await admin.reload();
  await admin.getByRole("cell", { name: "used" }).waitFor();

  // Dave's session, shared read-only with carol.
  await dave.goto(`${server.base}/`);
  const daveSession = await chat(dave, "List three colours.");
  await daveNav.getByRole("link", { name: "Sessions" }).click();
  await dave.getByRole("button", { name: /^Share List three colours/ }).click();
  const share = dave.getByRole("dialog");
  // A text box with suggestions (a combobox: administrators get the accounts).
  await share.getByRole("combobox", { name: "Username" }).fill("carol");
  await share.getByRole("combobox", { name: "Permission" }).selectOption("read");
  await share.getByRole("button", { name: "Share" }).click();
  await share.getByRole("combobox", { name: "Permission of carol" }).waitFor();
  await dave.keyboard.press("Escape");

  // Carol, a viewer, sees it under "Shared with me" and cannot post.
  const carol = await openPage(browser);
  await signIn(carol, server.base, "carol", PASSWORD);
  await carol.getByText("Your chat is not saved").waitFor();
  await carol.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Sessions" }).click();
  await carol.getByRole("button", { name: "Shared with me" }).click();
  await carol.getByRole("link", { name: "List three colours.", exact: true }).click();
  await carol.waitForURL(`**/chat/${daveSession}`);
  await carol.getByRole("article", { name: "Answer" }).waitFor();
  await carol.getByText("shared with you to read").waitFor();
  assert.equal(await carol.getByRole("textbox", { name: "Message" }).isDisabled(), true);
  assert.equal(await carol.getByRole("button", { name: "Send" }).isDisabled(), true);
  // The server refuses it too, from her signed-in page.
  const status = await carol.evaluate(async (id) => {
    const res = await fetch(`/v1/sessions/${id}/messages`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ role: "user", content: "sneaky" }) });
    return res.status;
  }, daveSession);
  assert.equal(status, 403);

  // An administrator resets dave's password: his browser's sign-in ends,
  // and his next action takes him to the sign-in page, back to where he
  // was afterwards, without a storm of requests.
  const adminToken = (await api(server.base, "POST", "/v1/auth/login", { body: { username: "admin", password: PASSWORD } })).data.token;
  const daveId = (await api(server.base, "GET", "/v1/users?search=dave", { token: adminToken })).data.data[0].id;
  assert.equal((await api(server.base, "POST", `/v1/users/${daveId}/reset-password`, { token: adminToken, body: { password: "a fresh passphrase" } })).status, 200);
  dave.failures.length = 0;
  await daveNav.getByRole("link", { name: "RAG" }).click();
  await dave.waitForURL("**/login?next=%2Frag");
  await dave.getByRole("button", { name: "Sign in" }).waitFor();
  await dave.waitForTimeout(500);
  const meRefusals = dave.failures.filter((f) => f === "401 GET /v1/auth/me").length;
  assert.ok(meRefusals >= 1 && meRefusals <= 2, dave.failures.join(", "));
  assert.ok(dave.failures.length <= 4, dave.failures.join(", "));
  await dave.getByRole("textbox", { name: "Username" }).fill("dave");
  await dave.getByLabel("Password").fill("a fresh passphrase");
  await dave.getByRole("button", { name: "Sign in" }).click();
  await dave.waitForURL("**/rag");
  await dave.getByRole("heading", { name: "RAG", level: 1 }).waitFor();

  for (const page of [admin, dave, carol]) {
    assert.deepEqual(page.problems, []);
    assert.deepEqual(await cspViolations(page), []);
  }
});
