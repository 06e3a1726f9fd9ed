// Keyboard-only use: a skip link, every sidebar page reachable with Tab and
// Enter, a visible focus ring, and dialogs that take focus, keep it inside
// while open, close on Escape and give focus back to what opened them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startServer, launch, openPage, api, cspViolations, eventually } from "./harness.js";

/** Presses Tab until `name` (a role and name) has focus; at most `max` times. */
async function tabTo(page, matches, max = 40) {
  for (let i = 0; i < max; i += 1) {
    await page.keyboard.press("Tab");
    if (await page.evaluate(matches)) return;
  }
  throw new Error(`never reached: ${matches}`);
}

test("keyboard: skip link, navigation, focus ring, dialogs trap and return focus", async (t) => {
  const server = await startServer();
  const browser = await launch();
  t.after(async () => {
    await browser.close();
    await server.stop();
  });
  const session = (await api(server.base, "POST", "/v1/sessions", { body: { title: "Keyboard notes" } })).data;
  await api(server.base, "POST", `/v1/sessions/${session.id}/messages`, { body: { role: "user", content: "hello" } });

  const page = await openPage(browser);
  await page.goto(`${server.base}/`);
  await page.getByRole("textbox", { name: "Message" }).waitFor();

  // The first Tab reaches the skip link, which moves focus to the content.
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Skip to content");
  await page.keyboard.press("Enter");
  assert.equal(await page.evaluate(() => document.activeElement.id || location.hash), "main");

  // Sidebar links by keyboard, with a visible focus ring.
  await page.goto(`${server.base}/`);
  await page.getByRole("textbox", { name: "Message" }).waitFor();
  await tabTo(page, () => document.activeElement.textContent === "Sessions");
  const ring = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.notEqual(ring, "none");
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Sessions", level: 1 }).waitFor();

  await page.getByRole("button", { name: "Rename Keyboard notes" }).waitFor();
  // A dialog takes focus, keeps it while tabbing, closes on Escape and
  // returns focus to its opener.
  await tabTo(page, () => document.activeElement.getAttribute("aria-label") === "Rename Keyboard notes");
  await page.keyboard.press("Enter");
  const dialog = page.getByRole("dialog", { name: "Rename session" });
  await dialog.waitFor();
  for (let i = 0; i < 12; i += 1) {
    assert.equal(await page.evaluate(() => Boolean(document.activeElement.closest("dialog"))), true, `tab ${i}`);
    await page.keyboard.press("Tab");
  }
  await page.keyboard.press("Escape");
  await dialog.waitFor({ state: "detached" });
  await eventually(async () => (await page.evaluate(() => document.activeElement.getAttribute("aria-label"))) === "Rename Keyboard notes", 5_000, "focus back on the opener");

  // The rename works from the keyboard alone.
  await page.keyboard.press("Enter");
  await dialog.waitFor();
  await page.keyboard.press("Control+A");
  await page.keyboard.type("Renamed by keyboard");
  await page.keyboard.press("Enter");
  await page.getByRole("link", { name: "Renamed by keyboard", exact: true }).waitFor();
  assert.deepEqual(page.problems, []);
  assert.deepEqual(await cspViolations(page), []);
});
