// Invitations (administrators): make one for a role with an expiry (its
// one-time link shown once, with a copy button), see them all with their
// status, revoke a pending one.
import { html, useState } from "../lib.js";
import { get, post, del, query } from "../api.js";
import { CopyButton, ErrorNote, Field, PageHead, Pager, useCursor, useLoad, when } from "../ui.js";

/** The invitations page. */
export function InvitationsPage() {
  const paging = useCursor([]);
  const list = useLoad(() => get(`/v1/invitations${query({ limit: 25, cursor: paging.cursor })}`), [paging.cursor]);
  const [form, setForm] = useState({ role: "user", hours: 72, note: "" });
  const [created, setCreated] = useState(null);
  const [error, setError] = useState(null);
  const create = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      const body = { role: form.role, expires_in_hours: Number(form.hours) };
      if (form.note.trim()) body.note = form.note.trim();
      setCreated(await post("/v1/invitations", body));
      list.reload();
    } catch (err) {
      setError(err);
    }
  };
  const revoke = async (id) => {
    setError(null);
    try {
      await del(`/v1/invitations/${id}`);
      list.reload();
    } catch (err) {
      setError(err);
    }
  };
  const rows = (list.data && list.data.data) || [];
  const link = created ? `${location.origin}${created.path}` : null;
  return html`<div class="page">
    <${PageHead} title="Invitations" />
    <form class="panel row-form" onSubmit=${create}>
      <${Field} label="Role"><select value=${form.role} onChange=${(e) => setForm({ ...form, role: e.target.value })}><option value="user">user</option><option value="viewer">viewer</option><option value="admin">admin</option></select><//>
      <${Field} label="Expires in (hours)"><input type="number" min="1" max="720" required value=${form.hours} onInput=${(e) => setForm({ ...form, hours: e.target.value })} /><//>
      <${Field} label="Note (optional)"><input maxlength="200" value=${form.note} onInput=${(e) => setForm({ ...form, note: e.target.value })} /><//>
      <button type="submit" class="primary">Create invitation</button>
    </form>
    ${link &&
    html`<div class="panel secret" role="status">
      <p>Send this link to the person you invite. It works once, until ${when(created.expires_at)}, and is shown only now.</p>
      <code class="secret-value">${link}</code>
      <${CopyButton} text=${link} label="Copy link" />
    </div>`}
    <${ErrorNote} error=${list.error || error} />
    <div class="table-wrap" tabindex="0" role="region" aria-label="Invitations table">
      <table>
        <caption class="offscreen">Invitations</caption>
        <thead><tr><th scope="col">Role</th><th scope="col">Status</th><th scope="col">Note</th><th scope="col">Made by</th><th scope="col">Expires</th><th scope="col">Used by</th><th scope="col"><span class="offscreen">Actions</span></th></tr></thead>
        <tbody>
          ${rows.map(
            (i) => html`<tr>
              <td>${i.role}</td>
              <td><span class=${`badge ${i.status}`}>${i.status}</span></td>
              <td>${i.note || ""}</td>
              <td>${i.created_by && i.created_by.name}</td>
              <td>${when(i.expires_at)}</td>
              <td>${i.used_by ? i.used_by.username : ""}</td>
              <td>${i.status === "pending" && html`<button type="button" class="danger" aria-label=${`Revoke the ${i.role} invitation made ${when(i.created_at)}`} onClick=${() => revoke(i.id)}>Revoke</button>`}</td>
            </tr>`,
          )}
        </tbody>
      </table>
    </div>
    ${!list.loading && rows.length === 0 && html`<p class="empty">No invitations yet.</p>`}
    <${Pager} cursors=${paging.stack} next=${list.data && list.data.next_cursor} onPage=${(d) => paging.move(d, list.data.next_cursor)} />
  </div>`;
}
