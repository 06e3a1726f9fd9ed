// Users (administrators): search and page through accounts, create one
// (its API key shown once), change role, disable or enable, reset a
// password, set quotas, and delete with "transfer data to".
import { html, useEffect, useRef, useState } from "../lib.js";
import { get, post, patch, put, del, query } from "../api.js";
import { useSession } from "../session.js";
import { CopyButton, Confirm, Dialog, ErrorNote, Field, PageHead, useLoad, when } from "../ui.js";

const ROLES = ["admin", "user", "viewer", "guest"];
const PAGE = 25;

/** A primary button that takes focus when it appears (the dialog's
 * content changed under the focused control). */
function FocusedButton({ onClick, children }) {
  const ref = useRef(null);
  useEffect(() => ref.current && ref.current.focus(), []);
  return html`<button type="button" class="primary" ref=${ref} onClick=${onClick}>${children}</button>`;
}

function Create({ onDone, onClose }) {
  const [form, setForm] = useState({ username: "", email: "", password: "", role: "user", key: true });
  const [error, setError] = useState(null);
  const [created, setCreated] = useState(null);
  const set = (k) => (e) => setForm({ ...form, [k]: e.target.type === "checkbox" ? e.target.checked : e.target.value });
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      const body = { username: form.username.trim(), password: form.password, role: form.role, create_api_key: form.key };
      if (form.email.trim()) body.email = form.email.trim();
      setCreated(await post("/v1/users", body));
      onDone();
    } catch (err) {
      setError(err);
    }
  };
  if (created) {
    const key = created.api_key && created.api_key.key;
    return html`<${Dialog} title="User created" onClose=${onClose}>
      <p><strong>${created.user.username}</strong> (${created.user.role}) can sign in now.</p>
      ${key &&
      html`<div class="secret">
        <p>Their API key, shown only now:</p>
        <code class="secret-value">${key}</code>
        <${CopyButton} text=${key} label="Copy key" />
      </div>`}
      <div class="actions"><${FocusedButton} onClick=${onClose}>Done<//></div>
    <//>`;
  }
  return html`<${Dialog} title="Create user" onClose=${onClose}>
    <form class="stack" onSubmit=${submit}>
      <${Field} label="Username"><input required maxlength="64" autocomplete="off" value=${form.username} onInput=${set("username")} /><//>
      <${Field} label="E-mail (optional)"><input type="email" autocomplete="off" value=${form.email} onInput=${set("email")} /><//>
      <${Field} label="Password" hint="At least 8 characters, not a common one."><input type="password" autocomplete="new-password" required minlength="8" value=${form.password} onInput=${set("password")} /><//>
      <${Field} label="Role"><select value=${form.role} onChange=${set("role")}>${ROLES.map((r) => html`<option value=${r}>${r}</option>`)}</select><//>
      <label class="check"><input type="checkbox" checked=${form.key} onChange=${set("key")} /> Create an API key too</label>
      <${ErrorNote} error=${error} />
      <div class="actions"><button type="button" onClick=${onClose}>Cancel</button><button type="submit" class="primary">Create user</button></div>
    </form>
  <//>`;
}

function ResetPassword({ user, onClose }) {
  const [password, setPassword] = useState("");
  const [error, setError] = useState(null);
  const [done, setDone] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      await post(`/v1/users/${user.id}/reset-password`, { password });
      setDone(true);
    } catch (err) {
      setError(err);
    }
  };
  return html`<${Dialog} title=${`Reset the password of ${user.username}`} onClose=${onClose}>
    ${done
      ? html`<p role="status">Done. Their sessions and API keys have ended; tell them the new password.</p><div class="actions"><button type="button" class="primary" onClick=${onClose}>Close</button></div>`
      : html`<form class="stack" onSubmit=${submit}>
          <${Field} label="New password"><input type="password" autocomplete="new-password" required minlength="8" value=${password} onInput=${(e) => setPassword(e.target.value)} /><//>
          <${ErrorNote} error=${error} />
          <div class="actions"><button type="button" onClick=${onClose}>Cancel</button><button type="submit" class="primary">Reset password</button></div>
        </form>`}
  <//>`;
}

const QUOTA_FIELDS = [
  ["requests_per_minute", "Requests per minute"],
  ["tokens_per_day", "Tokens per day"],
  ["max_concurrent", "Generations at once"],
];

/** One override: {mode: "default" | "unlimited" | "limit", value}. */
function overrideOf(overrides, key) {
  if (!overrides || !(key in overrides)) return { mode: "default", value: "" };
  const v = overrides[key];
  return v === null ? { mode: "unlimited", value: "" } : { mode: "limit", value: String(v) };
}

function QuotaDialog({ user, onClose }) {
  const quota = useLoad(() => get(`/v1/users/${user.id}/quota`), [user.id]);
  const [form, setForm] = useState(null);
  const [error, setError] = useState(null);
  const [saved, setSaved] = useState(false);
  const q = quota.data;
  const values = form || (q ? Object.fromEntries(QUOTA_FIELDS.map(([k]) => [k, overrideOf(q.overrides, k)])) : null);
  const set = (k, change) => {
    setSaved(false);
    setForm({ ...values, [k]: { ...values[k], ...change } });
  };
  const save = async (e) => {
    e.preventDefault();
    setError(null);
    // Left out: the role's default; null: unlimited; a number: the limit.
    const body = {};
    for (const [k] of QUOTA_FIELDS) {
      const v = values[k];
      if (v.mode === "unlimited") body[k] = null;
      else if (v.mode === "limit") body[k] = Number(v.value);
    }
    try {
      await put(`/v1/users/${user.id}/quota`, body);
      // The form keeps what was saved (the reload shows the same).
      setSaved(true);
      quota.reload();
    } catch (err) {
      setError(err);
    }
  };
  const reset = async () => {
    setError(null);
    try {
      await post(`/v1/users/${user.id}/quota/reset`);
      quota.reload();
    } catch (err) {
      setError(err);
    }
  };
  const inForce = (k) => (q && q.limits[k] !== null && q.limits[k] !== undefined ? q.limits[k].toLocaleString() : "no limit");
  return html`<${Dialog} title=${`Quota of ${user.username}`} onClose=${onClose}>
    <${ErrorNote} error=${quota.error || error} />
    ${q && html`<p class="muted small">Used: ${q.used.requests_per_minute} requests this minute, ${q.used.tokens_per_day.toLocaleString()} tokens today, ${q.used.max_concurrent} generating now.</p>`}
    ${values &&
    html`<form class="stack" onSubmit=${save}>
      ${QUOTA_FIELDS.map(
        ([k, label]) => html`<fieldset class="quota-field">
          <legend>${label} <span class="muted small">(now: ${inForce(k)})</span></legend>
          <select aria-label=${`${label}: source`} value=${values[k].mode} onChange=${(e) => set(k, { mode: e.target.value })}>
            <option value="default">Role default</option>
            <option value="unlimited">Unlimited</option>
            <option value="limit">Limit</option>
          </select>
          ${values[k].mode === "limit" &&
          html`<input type="number" min="0" required aria-label=${label} value=${values[k].value} onInput=${(e) => set(k, { value: e.target.value })} />`}
        </fieldset>`,
      )}
      ${saved && html`<p class="ok-note" role="status">Saved.</p>`}
      <div class="actions"><button type="button" onClick=${reset}>Reset usage</button><button type="submit" class="primary">Save quota</button></div>
    </form>`}
  <//>`;
}

function DeleteUser({ user, onDone, onClose }) {
  const [heir, setHeir] = useState("");
  // Every account that may inherit, not only the page shown.
  const all = useLoad(() => get("/v1/users?limit=200"), []);
  const users = (all.data && all.data.data) || [];
  const heirs = users.filter((u) => u.id !== user.id && !u.disabled && (u.role === "admin" || u.role === "user"));
  // Until the heirs are known (or if they cannot be), deleting is not
  // offered: the only choice shown would be to delete their data.
  const ready = !all.loading && !all.error;
  return html`<${Confirm}
    title=${`Delete ${user.username}`}
    message="Their sessions, collections and presets go to the user you choose, or are deleted with the account. Shares they held end either way."
    onConfirm=${async () => {
      await del(`/v1/users/${user.id}${query({ transfer_to: heir })}`);
      onDone();
    }}
    onClose=${onClose}
    disabled=${!ready}
  >
    <${ErrorNote} error=${all.error} />
    <${Field} label="Transfer data to">
      <select value=${heir} onChange=${(e) => setHeir(e.target.value)}>
        <option value="">Nobody: delete their data</option>
        ${heirs.map((u) => html`<option value=${u.id}>${u.username}</option>`)}
      </select>
    <//>
  <//>`;
}

/** The users page. */
export function UsersPage() {
  const { me } = useSession();
  const [q, setQ] = useState("");
  const [search, setSearch] = useState("");
  const [offset, setOffset] = useState(0);
  const list = useLoad(() => get(`/v1/users${query({ search, limit: PAGE, offset })}`), [search, offset]);
  const [dialog, setDialog] = useState(null);
  const [error, setError] = useState(null);
  const rows = (list.data && list.data.data) || [];
  const total = list.data ? list.data.total : 0;
  const change = async (u, body) => {
    setError(null);
    try {
      await patch(`/v1/users/${u.id}`, body);
      list.reload();
    } catch (err) {
      setError(err);
    }
  };
  const close = () => setDialog(null);
  return html`<div class="page">
    <${PageHead} title="Users"><button type="button" class="primary" onClick=${() => setDialog({ kind: "create" })}>Create user</button><//>
    <form role="search" class="toolbar" onSubmit=${(e) => (e.preventDefault(), setOffset(0), setSearch(q.trim()))}>
      <input type="search" aria-label="Search users" placeholder="Username, name or e-mail" value=${q} onInput=${(e) => setQ(e.target.value)} />
      <button type="submit">Search</button>
    </form>
    <${ErrorNote} error=${list.error || error} />
    <div class="table-wrap" tabindex="0" role="region" aria-label="Users table">
      <table>
        <caption class="offscreen">Users</caption>
        <thead><tr><th scope="col">User</th><th scope="col">Role</th><th scope="col">State</th><th scope="col">Last sign-in</th><th scope="col"><span class="offscreen">Actions</span></th></tr></thead>
        <tbody>
          ${rows.map((u) => {
            const self = me.user && me.user.id === u.id;
            return html`<tr>
              <th scope="row">${u.username}${u.email && html`<div class="muted small">${u.email}</div>`}</th>
              <td>
                <select aria-label=${`Role of ${u.username}`} value=${u.role} disabled=${self} onChange=${(e) => change(u, { role: e.target.value })}>
                  ${ROLES.map((r) => html`<option value=${r}>${r}</option>`)}
                </select>
              </td>
              <td><span class=${u.disabled ? "badge failed" : "badge on"}>${u.disabled ? "disabled" : "active"}</span></td>
              <td>${when(u.last_login_at)}</td>
              <td class="row-actions">
                ${!self && html`<button type="button" onClick=${() => change(u, { disabled: !u.disabled })} aria-label=${`${u.disabled ? "Enable" : "Disable"} ${u.username}`}>${u.disabled ? "Enable" : "Disable"}</button>`}
                <button type="button" onClick=${() => setDialog({ kind: "reset", u })} aria-label=${`Reset password of ${u.username}`}>Reset password</button>
                <button type="button" onClick=${() => setDialog({ kind: "quota", u })} aria-label=${`Quota of ${u.username}`}>Quota</button>
                ${!self && html`<button type="button" class="danger" onClick=${() => setDialog({ kind: "delete", u })} aria-label=${`Delete ${u.username}`}>Delete</button>`}
              </td>
            </tr>`;
          })}
        </tbody>
      </table>
    </div>
    <nav class="pager" aria-label="Pages">
      <button type="button" disabled=${offset === 0} onClick=${() => setOffset(Math.max(0, offset - PAGE))}>Previous page</button>
      <span class="muted small">${total ? `${offset + 1}–${Math.min(offset + PAGE, total)} of ${total}` : ""}</span>
      <button type="button" disabled=${offset + PAGE >= total} onClick=${() => setOffset(offset + PAGE)}>Next page</button>
    </nav>
    ${dialog && dialog.kind === "create" && html`<${Create} onDone=${list.reload} onClose=${close} />`}
    ${dialog && dialog.kind === "reset" && html`<${ResetPassword} user=${dialog.u} onClose=${close} />`}
    ${dialog && dialog.kind === "quota" && html`<${QuotaDialog} user=${dialog.u} onClose=${close} />`}
    ${dialog && dialog.kind === "delete" && html`<${DeleteUser} user=${dialog.u} onDone=${list.reload} onClose=${close} />`}
  </div>`;
}
