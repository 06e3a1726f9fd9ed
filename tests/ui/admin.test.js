// The administration and account pages do what their buttons say, checked
// against the API: change a role, disable and enable, reset a password,
// set a quota override, delete a user with their data transferred; filter
// the audit log; make and revoke an API key; change one's password;
// rename, export and delete a session.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startServer, launch, openPage, api, cspViolations, eventually } from "./harness.js";

const PASSWORD = "correct horse battery staple";

test("admin and account pages act through the API", async (t) => {
  const server = await startServer({ OFFGRID_MULTI_USER: "true" });
  const browser = await launch();
  t.after(async () => {
    await browser.close();
    await server.stop();
  });
  const base = server.base;
  await api(base, "POST", "/v1/auth/setup", { body: { username: "admin", password: PASSWORD } });
  let token = (await api(base, "POST", "/v1/auth/login", { body: { username: "admin", password: PASSWORD } })).data.token;
  const erin = (await api(base, "POST", "/v1/users", { token, body: { username: "erin", password: PASSWORD, role: "user" } })).data.user;
  const heir = (await api(base, "POST", "/v1/users", { token, body: { username: "frank", password: PASSWORD, role: "user" } })).data.user;
  const erinToken = (await api(base, "POST", "/v1/auth/login", { body: { username: "erin", password: PASSWORD } })).data.token;
  const erinSession = (await api(base, "POST", "/v1/sessions", { token: erinToken, body: { title: "Erin's notes" } })).data;

  const page = await openPage(browser);
  await page.goto(`${base}/login`);
  await page.getByRole("textbox", { name: "Username" }).fill("admin");
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("textbox", { name: "Message" }).waitFor();
  const user = async (id) => (await api(base, "GET", `/v1/users/${id}`, { token })).data;

  // Users: role, disable, enable, reset, quota, delete with transfer.
  await page.goto(`${base}/users`);
  await page.getByRole("combobox", { name: "Role of erin" }).selectOption("viewer");
  await eventually(async () => (await user(erin.id)).role === "viewer", 10_000, "the role change");
  await page.getByRole("button", { name: "Disable erin" }).click();
  await eventually(async () => (await user(erin.id)).disabled === true, 10_000, "disabling");
  await page.getByRole("button", { name: "Enable erin" }).click();
  await eventually(async () => (await user(erin.id)).disabled === false, 10_000, "enabling");
  await page.getByRole("button", { name: "Reset password of erin" }).click();
  await page.getByRole("dialog").getByLabel("New password").fill("a brand new passphrase");
  await page.getByRole("dialog").getByRole("button", { name: "Reset password" }).click();
  await page.getByRole("dialog").getByRole("status").waitFor();
  assert.equal((await api(base, "POST", "/v1/auth/login", { body: { username: "erin", password: "a brand new passphrase" } })).status, 200);
  await page.keyboard.press("Escape");
  await page.getByRole("button", { name: "Quota of erin" }).click();
  const quota = page.getByRole("dialog", { name: "Quota of erin" });
  await quota.getByRole("combobox", { name: "Requests per minute: source" }).selectOption("limit");
  await quota.getByRole("spinbutton", { name: "Requests per minute" }).fill("7");
  await quota.getByRole("combobox", { name: "Tokens per day: source" }).selectOption("unlimited");
  await quota.getByRole("button", { name: "Save quota" }).click();
  await quota.getByText("Saved.").waitFor();
  const overrides = (await api(base, "GET", `/v1/users/${erin.id}/quota`, { token })).data.overrides;
  assert.deepEqual(overrides, { requests_per_minute: 7, tokens_per_day: null });
  await page.keyboard.press("Escape");
  await page.getByRole("button", { name: "Delete erin" }).click();
  const confirm = page.getByRole("dialog", { name: "Delete erin" });
  await confirm.getByRole("combobox", { name: "Transfer data to" }).selectOption({ label: "frank" });
  await confirm.getByRole("button", { name: "Delete" }).click();
  await confirm.waitFor({ state: "detached" });
  assert.equal((await api(base, "GET", `/v1/users/${erin.id}`, { token })).status, 404);
  const moved = (await api(base, "GET", `/v1/sessions/${erinSession.id}`, { token })).data;
  assert.equal(moved.owner.id, heir.id);

  // Audit: filtered by a family of actions.
  await page.goto(`${base}/audit`);
  await page.getByRole("textbox", { name: "Action" }).fill("user.");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.getByText("user.deleted").first().waitFor();
  const actions = await page.locator("tbody td:nth-child(2) code").allInnerTexts();
  assert.ok(actions.length > 0 && actions.every((a) => a.startsWith("user.")), actions.join(", "));

  // Account: an API key shown once that works, then revoked; password.
  await page.goto(`${base}/account#api-keys`);
  await page.getByRole("textbox", { name: "Key name" }).fill("laptop script");
  await page.getByRole("button", { name: "Create key" }).click();
  const key = await page.locator(".secret-value").innerText();
  assert.equal((await api(base, "GET", "/v1/users/me", { token: key })).status, 200);
  await page.getByRole("button", { name: "Revoke the key laptop script" }).click();
  await page.getByRole("button", { name: "Revoke the key laptop script" }).waitFor({ state: "detached" });
  assert.equal((await api(base, "GET", "/v1/users/me", { token: key })).status, 401);
  await page.getByLabel("Current password").fill(PASSWORD);
  await page.getByLabel("New password", { exact: true }).fill("another long passphrase");
  await page.getByLabel("Confirm new password").fill("another long passphrase");
  await page.getByRole("button", { name: "Change password" }).click();
  await page.getByText("Your password is changed.").waitFor();
  // The new password works; the old tokens ended with the change (only
  // this browser's session stays).
  const relogin = await api(base, "POST", "/v1/auth/login", { body: { username: "admin", password: "another long passphrase" } });
  assert.equal(relogin.status, 200);
  assert.equal((await api(base, "GET", "/v1/users/me", { token })).status, 401);
  token = relogin.data.token;

  // Sessions: rename, export, delete.
  await page.goto(`${base}/sessions`);
  await page.getByRole("button", { name: "All users" }).click();
  await page.getByRole("button", { name: "Rename Erin's notes" }).click();
  await page.getByRole("dialog").getByRole("textbox", { name: "Title" }).fill("Frank's notes now");
  await page.getByRole("dialog").getByRole("button", { name: "Save" }).click();
  await page.getByRole("link", { name: "Frank's notes now", exact: true }).waitFor();
  const download = page.waitForEvent("download");
  await page.getByRole("link", { name: "Export Frank's notes now as Markdown" }).click();
  assert.match((await download).suggestedFilename(), /\.md$/);
  await page.getByRole("button", { name: "Delete Frank's notes now" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Delete" }).click();
  await page.getByRole("link", { name: "Frank's notes now", exact: true }).waitFor({ state: "detached" });
  assert.equal((await api(base, "GET", `/v1/sessions/${erinSession.id}`, { token })).status, 404);

  assert.deepEqual(page.problems, []);
  assert.deepEqual(await cspViolations(page), []);
});
