// Signing in: first-run administrator setup, login, and accepting an
// invitation. Each signs the browser in with the server's HttpOnly cookie;
// the token in the answer is never kept.
import { html, useState } from "../lib.js";
import { post, ApiError } from "../api.js";
import { navigate, useLocation } from "../router.js";
import { useSession } from "../session.js";
import { ErrorNote, Field } from "../ui.js";

function Card({ title, children, lead }) {
  return html`<main id="main" class="auth-page">
    <div class="auth-card">
      <div class="brand big"><img src="/assets/icon.svg" alt="" width="32" height="32" /> OffGrid</div>
      <h1>${title}</h1>
      ${lead && html`<p class="lead">${lead}</p>`}
      ${children}
    </div>
  </main>`;
}

/** Where to go after signing in: a page of this console, never elsewhere. */
function safeNext(search) {
  const next = search.get("next");
  if (!next) return "/";
  try {
    const url = new URL(next, location.origin);
    if (url.origin !== location.origin || ["/login", "/setup"].includes(url.pathname) || url.pathname.startsWith("/v1/")) return "/";
    return url.pathname + url.search;
  } catch {
    return "/";
  }
}

/** First run in multi-user mode: make the administrator. */
export function SetupPage() {
  const { refresh } = useSession();
  const [form, setForm] = useState({ username: "", password: "", confirm: "", code: "" });
  const [needCode, setNeedCode] = useState(false);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (k) => (e) => setForm({ ...form, [k]: e.target.value });
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    if (form.password !== form.confirm) {
      setError("The two passwords differ.");
      return;
    }
    setBusy(true);
    try {
      const body = { username: form.username, password: form.password };
      if (form.code) body.setup_code = form.code.trim();
      await post("/v1/auth/setup", body);
      await post("/v1/auth/login", { username: form.username, password: form.password, remember_me: false });
      await refresh();
      navigate("/", { replace: true });
    } catch (err) {
      if (err instanceof ApiError && (err.code === "setup_code_required" || err.code === "invalid_setup_code")) setNeedCode(true);
      setError(err);
      setBusy(false);
    }
  };
  return html`<${Card} title="Create the administrator" lead="OffGrid runs in multi-user mode and has no administrator yet.">
    <form onSubmit=${submit} class="stack">
      <${Field} label="Username"><input name="username" autocomplete="username" required maxlength="64" value=${form.username} onInput=${set("username")} /><//>
      <${Field} label="Password" hint="At least 8 characters, not a common one."><input name="password" type="password" autocomplete="new-password" required minlength="8" value=${form.password} onInput=${set("password")} /><//>
      <${Field} label="Confirm password"><input name="confirm" type="password" autocomplete="new-password" required value=${form.confirm} onInput=${set("confirm")} /><//>
      ${needCode &&
      html`<${Field} label="Setup code" hint="Printed by offgrid serve when it started."><input name="setup_code" autocomplete="off" value=${form.code} onInput=${set("code")} /><//>`}
      <${ErrorNote} error=${error} />
      <button type="submit" class="primary" disabled=${busy}>Create administrator</button>
    </form>
  <//>`;
}

/** Sign in with a username (or e-mail) and password. */
export function LoginPage() {
  const { refresh, config } = useSession();
  const { search } = useLocation();
  const [form, setForm] = useState({ username: "", password: "", remember: false });
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    setBusy(true);
    try {
      await post("/v1/auth/login", { username: form.username, password: form.password, remember_me: form.remember });
      await refresh();
      navigate(safeNext(search), { replace: true });
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return html`<${Card} title="Sign in">
    <form onSubmit=${submit} class="stack">
      <${Field} label="Username"><input name="username" autocomplete="username" required value=${form.username} onInput=${(e) => setForm({ ...form, username: e.target.value })} /><//>
      <${Field} label="Password"><input name="password" type="password" autocomplete="current-password" required value=${form.password} onInput=${(e) => setForm({ ...form, password: e.target.value })} /><//>
      <label class="check"><input type="checkbox" checked=${form.remember} onChange=${(e) => setForm({ ...form, remember: e.target.checked })} /> Remember me</label>
      <${ErrorNote} error=${error} />
      <button type="submit" class="primary" disabled=${busy}>Sign in</button>
    </form>
    ${config.guest_access && !config.require_auth && html`<p class="muted"><a href="/">Continue as a guest</a></p>`}
  <//>`;
}

/** `/invite/{code}`: make the account an administrator invited you to. */
export function InvitePage({ code }) {
  const { refresh } = useSession();
  const [form, setForm] = useState({ username: "", password: "", confirm: "", email: "" });
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (k) => (e) => setForm({ ...form, [k]: e.target.value });
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    if (form.password !== form.confirm) {
      setError("The two passwords differ.");
      return;
    }
    setBusy(true);
    try {
      const body = { code, username: form.username, password: form.password };
      if (form.email) body.email = form.email;
      await post("/v1/auth/accept-invite", body);
      await refresh();
      navigate("/", { replace: true });
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return html`<${Card} title="Accept your invitation" lead="Choose a username and password for your OffGrid account.">
    <form onSubmit=${submit} class="stack">
      <${Field} label="Username"><input name="username" autocomplete="username" required maxlength="64" value=${form.username} onInput=${set("username")} /><//>
      <${Field} label="E-mail (optional)"><input name="email" type="email" autocomplete="email" value=${form.email} onInput=${set("email")} /><//>
      <${Field} label="Password" hint="At least 8 characters, not a common one."><input name="password" type="password" autocomplete="new-password" required minlength="8" value=${form.password} onInput=${set("password")} /><//>
      <${Field} label="Confirm password"><input name="confirm" type="password" autocomplete="new-password" required value=${form.confirm} onInput=${set("confirm")} /><//>
      <${ErrorNote} error=${error} />
      <button type="submit" class="primary" disabled=${busy}>Create account</button>
    </form>
  <//>`;
}
