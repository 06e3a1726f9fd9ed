// The Share dialog for sessions and collections: who has access at which
// level (read, write, admin), adding someone by username, changing a
// level, and revoking.
import { html, useState } from "./lib.js";
import { get, post, del } from "./api.js";
import { can, useSession } from "./session.js";
import { Dialog, ErrorNote, Field, useLoad, when } from "./ui.js";

const LEVELS = ["read", "write", "admin"];

/** Shares of `base` (`/v1/sessions/{id}` or `/v1/rag/collections/{id}`). */
export function ShareDialog({ base, name, onClose }) {
  const { me } = useSession();
  const shares = useLoad(() => get(`${base}/shares?limit=100`), [base]);
  // Administrators pick from the accounts; others type a username (the
  // user list is not theirs to see).
  const people = useLoad(() => (can(me, "manage_users") ? get("/v1/users?limit=200") : Promise.resolve({ data: [] })), []);
  const choices = ((people.data && people.data.data) || []).filter((u) => !u.disabled && u.role !== "guest" && (!me.user || u.id !== me.user.id));
  const [username, setUsername] = useState("");
  const [level, setLevel] = useState("read");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const add = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await post(`${base}/shares`, { username: username.trim(), permission: level });
      setUsername("");
      shares.reload();
    } catch (err) {
      setError(err);
    }
    setBusy(false);
  };
  const change = async (share, permission) => {
    setError(null);
    try {
      await post(`${base}/shares`, { user_id: share.user.id, permission });
      shares.reload();
    } catch (err) {
      setError(err);
    }
  };
  const revoke = async (share) => {
    setError(null);
    try {
      await del(`${base}/shares/${encodeURIComponent(share.user.id)}`);
      shares.reload();
    } catch (err) {
      setError(err);
    }
  };
  const list = (shares.data && shares.data.data) || [];
  return html`<${Dialog} title=${`Share “${name}”`} onClose=${onClose}>
    <form class="row-form" onSubmit=${add}>
      <${Field} label="Username"><input name="share-username" required list="share-people" value=${username} onInput=${(e) => setUsername(e.target.value)} autocomplete="off" /><//>
      <${Field} label="Permission">
        <select value=${level} onChange=${(e) => setLevel(e.target.value)}>
          ${LEVELS.map((l) => html`<option value=${l}>${l}</option>`)}
        </select>
      <//>
      <button type="submit" class="primary" disabled=${busy}>Share</button>
    </form>
    <datalist id="share-people">${choices.map((u) => html`<option value=${u.username}>${u.role}</option>`)}</datalist>
    <p class="hint">read: view and use; write: also add; admin: also rename and share.</p>
    <${ErrorNote} error=${error || shares.error} />
    <h3>People with access</h3>
    ${list.length === 0 && !shares.loading && html`<p class="muted">Not shared with anyone.</p>`}
    <ul class="share-list">
      ${list.map(
        (s) => html`<li>
          <span class="name">${s.user.username}</span>
          <select aria-label=${`Permission of ${s.user.username}`} value=${s.permission} onChange=${(e) => change(s, e.target.value)}>
            ${LEVELS.map((l) => html`<option value=${l}>${l}</option>`)}
          </select>
          <span class="muted small">since ${when(s.created_at)}</span>
          <button type="button" class="danger" aria-label=${`Revoke ${s.user.username}`} onClick=${() => revoke(s)}>Revoke</button>
        </li>`,
      )}
    </ul>
  <//>`;
}
