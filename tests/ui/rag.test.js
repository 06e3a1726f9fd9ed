// RAG in a real Chromium: make a collection, upload a Markdown file and a
// PDF through the file picker (with their progress bars), wait for both to
// be ready, search them, and ask the chat a question one answers: the
// answer cites it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer, launch, openPage, cspViolations } from "./harness.js";

const uploads = resolve(dirname(fileURLToPath(import.meta.url)), "../data/rag/uploads");

test("RAG: upload .md and .pdf, see them ready, search, and get a cited answer", async (t) => {
  const server = await startServer();
  const browser = await launch();
  t.after(async () => {
    await browser.close();
    await server.stop();
  });
  const page = await openPage(browser);
  await page.goto(`${server.base}/rag`);
  await page.getByRole("button", { name: "New collection" }).click();
  const dialog = page.getByRole("dialog", { name: "New collection" });
  await dialog.getByRole("textbox", { name: "Name" }).fill("House notes");
  await dialog.getByRole("button", { name: "Create" }).click();
  await page.getByRole("heading", { name: "House notes" }).waitFor();
  assert.match(new URL(page.url()).pathname, /^\/rag\/[^/]+$/);

  await page.getByLabel("Upload documents").setInputFiles([`${uploads}/garden.md`, `${uploads}/lighthouse.pdf`]);
  const docs = page.getByRole("region", { name: "Documents" });
  for (const name of ["garden.md", "lighthouse.pdf"]) {
    const row = docs.getByRole("listitem").filter({ hasText: name });
    await row.getByText("ready", { exact: true }).waitFor({ timeout: 180_000 });
  }

  // Search shows scored excerpts with their source.
  const search = page.getByRole("search");
  await search.getByRole("searchbox", { name: "Search documents" }).fill("who waters the tomatoes");
  await search.getByRole("button", { name: "Search" }).click();
  const first = page.locator(".hit").first();
  await first.waitFor();
  assert.equal(await first.locator(".doc").textContent(), "garden.md");
  assert.match(await first.locator(".score").textContent(), /^0\.\d\d$/);

  // A chat with all my knowledge cites the document that answers.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Chat" }).click();
  await page.getByRole("button", { name: /^Knowledge/ }).click();
  await page.getByRole("checkbox", { name: "All my knowledge" }).check();
  await page.getByRole("textbox", { name: "Message" }).fill("When is the rooftop garden watered, and who waters the tomatoes?");
  await page.getByRole("button", { name: "Send" }).click();
  await page.getByRole("button", { name: "Send" }).waitFor({ timeout: 120_000 });
  const answer = page.getByRole("article", { name: "Answer" }).last();
  const sources = answer.locator(".citations");
  await sources.waitFor();
  assert.match(await sources.textContent(), /garden\.md/);
  assert.ok((await answer.locator(".text").textContent()).trim().length > 0);

  // After a reload, the saved answer keeps its citations.
  await page.reload();
  await page.getByRole("article", { name: "Answer" }).last().locator(".citations").getByText("garden.md").waitFor();
  assert.deepEqual(page.problems, []);
    assert.deepEqual(await cspViolations(page), []);
});
