// Account: change your password, your API keys (made with a name and an
// expiry, shown once, revoked here), and your usage and quota.
import { html, useEffect, useState } from "../lib.js";
import { get, post, del } from "../api.js";
import { useSession } from "../session.js";
import { CopyButton, ErrorNote, Field, PageHead, useLoad, when } from "../ui.js";

function ChangePassword() {
  const [form, setForm] = useState({ current: "", next: "", confirm: "" });
  const [error, setError] = useState(null);
  const [done, setDone] = useState(false);
  const set = (k) => (e) => setForm({ ...form, [k]: e.target.value });
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    setDone(false);
    if (form.next !== form.confirm) {
      setError("The two new passwords differ.");
      return;
    }
    try {
      await post("/v1/auth/change-password", { current_password: form.current, new_password: form.next });
      setForm({ current: "", next: "", confirm: "" });
      setDone(true);
    } catch (err) {
      setError(err);
    }
  };
  return html`<section class="panel" aria-labelledby="password-head">
    <h2 id="password-head">Password</h2>
    <form class="stack narrow" onSubmit=${submit}>
      <${Field} label="Current password"><input type="password" autocomplete="current-password" required value=${form.current} onInput=${set("current")} /><//>
      <${Field} label="New password" hint="At least 8 characters. Your other sessions and API keys end."><input type="password" autocomplete="new-password" required minlength="8" value=${form.next} onInput=${set("next")} /><//>
      <${Field} label="Confirm new password"><input type="password" autocomplete="new-password" required value=${form.confirm} onInput=${set("confirm")} /><//>
      <${ErrorNote} error=${error} />
      ${done && html`<p class="ok-note" role="status">Your password is changed.</p>`}
      <button type="submit" class="primary">Change password</button>
    </form>
  </section>`;
}

function ApiKeys() {
  const keys = useLoad(() => get("/v1/users/me/api-keys"), []);
  const [form, setForm] = useState({ name: "", days: "90" });
  const [created, setCreated] = useState(null);
  const [error, setError] = useState(null);
  const create = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      const body = { name: form.name.trim() };
      if (form.days) body.expires_in_days = Number(form.days);
      setCreated(await post("/v1/users/me/api-keys", body));
      setForm({ name: "", days: form.days });
      keys.reload();
    } catch (err) {
      setError(err);
    }
  };
  const revoke = async (id) => {
    setError(null);
    try {
      await del(`/v1/users/me/api-keys/${id}`);
      keys.reload();
    } catch (err) {
      setError(err);
    }
  };
  const rows = ((keys.data && keys.data.data) || []).filter((k) => !k.revoked);
  return html`<section class="panel" id="api-keys" aria-labelledby="keys-head">
    <h2 id="keys-head">API keys</h2>
    <p class="muted">For scripts and other programs: send <code>Authorization: Bearer og_…</code>.</p>
    <form class="row-form" onSubmit=${create}>
      <${Field} label="Key name"><input required maxlength="100" value=${form.name} onInput=${(e) => setForm({ ...form, name: e.target.value })} /><//>
      <${Field} label="Expires">
        <select value=${form.days} onChange=${(e) => setForm({ ...form, days: e.target.value })}>
          <option value="7">in 7 days</option><option value="30">in 30 days</option><option value="90">in 90 days</option><option value="365">in a year</option><option value="">never</option>
        </select>
      <//>
      <button type="submit" class="primary">Create key</button>
    </form>
    ${created &&
    created.key &&
    html`<div class="secret" role="status">
      <p>Your new key, shown only now:</p>
      <code class="secret-value">${created.key}</code>
      <${CopyButton} text=${created.key} label="Copy key" />
    </div>`}
    <${ErrorNote} error=${keys.error || error} />
    <ul class="key-list">
      ${rows.map(
        (k) => html`<li>
          <span class="name">${k.name}</span> <code>${k.prefix}…</code>
          <span class="muted small">made ${when(k.created_at)} · ${k.expires_at ? `expires ${when(k.expires_at)}` : "never expires"} · ${k.last_used_at ? `used ${when(k.last_used_at)}` : "never used"}</span>
          <button type="button" class="danger" aria-label=${`Revoke the key ${k.name}`} onClick=${() => revoke(k.id)}>Revoke</button>
        </li>`,
      )}
    </ul>
    ${!keys.loading && rows.length === 0 && html`<p class="muted">No API keys.</p>`}
  </section>`;
}

function limit(value) {
  return value === null || value === undefined ? "no limit" : value.toLocaleString();
}

function Usage() {
  const quota = useLoad(() => get("/v1/users/me/quota"), []);
  const usage = useLoad(() => get("/v1/usage?days=30"), []);
  const q = quota.data;
  const rows = (usage.data && usage.data.data) || [];
  return html`<section class="panel" aria-labelledby="usage-head">
    <h2 id="usage-head">Usage and quota</h2>
    <${ErrorNote} error=${quota.error || usage.error} />
    ${q &&
    html`<dl class="facts">
      <dt>Requests this minute</dt><dd>${q.used.requests_per_minute} of ${limit(q.limits.requests_per_minute)}</dd>
      <dt>Tokens today</dt><dd>${q.used.tokens_per_day.toLocaleString()} of ${limit(q.limits.tokens_per_day)}${q.resets_at && q.resets_at.tokens_per_day ? html` <span class="muted small">(resets ${when(q.resets_at.tokens_per_day)})</span>` : null}</dd>
      <dt>Generations at once</dt><dd>${q.used.max_concurrent} of ${limit(q.limits.max_concurrent)}</dd>
    </dl>`}
    <h3>Last 30 days</h3>
    ${rows.length === 0 && !usage.loading && html`<p class="muted">Nothing used yet.</p>`}
    ${rows.length > 0 &&
    html`<div class="table-wrap" tabindex="0" role="region" aria-label="Usage per model"><table>
      <caption class="offscreen">Usage per model</caption>
      <thead><tr><th scope="col">Model</th><th scope="col">Requests</th><th scope="col">Prompt tokens</th><th scope="col">Completion tokens</th></tr></thead>
      <tbody>${rows.map((r) => html`<tr><th scope="row">${r.model}</th><td>${r.requests}</td><td>${r.prompt_tokens.toLocaleString()}</td><td>${r.completion_tokens.toLocaleString()}</td></tr>`)}</tbody>
    </table></div>`}
  </section>`;
}

/** The account page. */
export function AccountPage() {
  const { me, config } = useSession();
  useEffect(() => {
    if (location.hash) {
      const target = document.getElementById(location.hash.slice(1));
      if (target) target.scrollIntoView();
    }
  }, []);
  const multi = config.multi_user_mode;
  return html`<div class="page">
    <${PageHead} title="Account" />
    <p class="lead">${me.user ? html`Signed in as <strong>${me.user.username}</strong> (${me.role}).` : "Single-user mode: no sign-in needed."}</p>
    ${multi && html`<${ChangePassword} />`}
    ${multi && html`<${ApiKeys} />`}
    <${Usage} />
  </div>`;
}
