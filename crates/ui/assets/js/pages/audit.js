// Audit (administrators): who did what, newest first, filtered by action
// (or a family such as `login.`), actor or target, and paged.
import { html, useState } from "../lib.js";
import { get, query } from "../api.js";
import { ErrorNote, Field, PageHead, useLoad, when } from "../ui.js";

const PAGE = 50;

/** The audit page. */
export function AuditPage() {
  const [filters, setFilters] = useState({ action: "", target: "" });
  const [applied, setApplied] = useState(filters);
  const [offset, setOffset] = useState(0);
  const list = useLoad(() => get(`/v1/audit${query({ action: applied.action.trim(), target: applied.target.trim(), limit: PAGE, offset })}`), [applied, offset]);
  const rows = (list.data && list.data.data) || [];
  const total = list.data ? list.data.total : 0;
  return html`<div class="page">
    <${PageHead} title="Audit log" />
    <form class="panel row-form" role="search" aria-label="Filter the audit log" onSubmit=${(e) => (e.preventDefault(), setOffset(0), setApplied(filters))}>
      <${Field} label="Action" hint="Exact, or a family ending in a dot: login."><input value=${filters.action} onInput=${(e) => setFilters({ ...filters, action: e.target.value })} /><//>
      <${Field} label="Target"><input value=${filters.target} onInput=${(e) => setFilters({ ...filters, target: e.target.value })} /><//>
      <button type="submit">Filter</button>
    </form>
    <${ErrorNote} error=${list.error} />
    <div class="table-wrap" tabindex="0" role="region" aria-label="Audit entries">
      <table>
        <caption class="offscreen">Audit entries</caption>
        <thead><tr><th scope="col">When</th><th scope="col">Action</th><th scope="col">Actor</th><th scope="col">Target</th><th scope="col">From</th><th scope="col">Details</th></tr></thead>
        <tbody>
          ${rows.map(
            (a) => html`<tr>
              <td>${when(a.at)}${a.repeats > 1 ? html`<div class="muted small">×${a.repeats}</div>` : null}</td>
              <td><code>${a.action}</code></td>
              <td>${a.actor || "—"}</td>
              <td>${a.target || ""}</td>
              <td>${a.client_addr || ""}</td>
              <td class="details">${a.details || ""}</td>
            </tr>`,
          )}
        </tbody>
      </table>
    </div>
    ${!list.loading && rows.length === 0 && html`<p class="empty">No entries.</p>`}
    <nav class="pager" aria-label="Pages">
      <button type="button" disabled=${offset === 0} onClick=${() => setOffset(Math.max(0, offset - PAGE))}>Previous page</button>
      <span class="muted small">${total ? `${offset + 1}–${Math.min(offset + PAGE, total)} of ${total}` : ""}</span>
      <button type="button" disabled=${offset + PAGE >= total} onClick=${() => setOffset(offset + PAGE)}>Next page</button>
    </nav>
  </div>`;
}
