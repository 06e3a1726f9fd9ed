// The console's entry: loads the server's configuration and who is signed
// in, then renders the page the address names.
import { html, render, useEffect, useRef, useState, useCallback } from "./lib.js";
import { get, ApiError, onUnauthorized } from "./api.js";
import { navigate, useLocation } from "./router.js";
import { Session, accountHolder, can } from "./session.js";
import { Layout } from "./layout.js";
import { ChatPage } from "./pages/chat.js";
import { SessionsPage } from "./pages/sessions.js";
import { ModelsPage } from "./pages/models.js";
import { RagPage } from "./pages/rag.js";
import { UsersPage } from "./pages/users.js";
import { InvitationsPage } from "./pages/invitations.js";
import { AuditPage } from "./pages/audit.js";
import { BenchmarkPage } from "./pages/benchmark.js";
import { MetricsPage } from "./pages/metrics.js";
import { AccountPage } from "./pages/account.js";
import { LoginPage, SetupPage, InvitePage } from "./pages/auth.js";

async function loadSession() {
  const config = await get("/v1/system/config");
  let me;
  try {
    me = await get("/v1/auth/me");
  } catch (e) {
    if (!(e instanceof ApiError) || (e.status !== 401 && e.status !== 403)) throw e;
    me = { authenticated: false, role: null, permissions: [], user: null };
  }
  return { config, me };
}

function NotFound() {
  return html`<div class="page"><h1>Not found</h1><p>There is no such page, or it is not yours to see.</p><p><a href="/">Back to chat</a></p></div>`;
}

function Forbidden() {
  return html`<div class="page"><h1>Not available</h1><p>Your role does not include this page.</p></div>`;
}

function page(path, config, me, generation) {
  const parts = path.split("/").filter(Boolean);
  const multi = config.multi_user_mode;
  switch (parts[0] || "") {
    case "":
      return can(me, "chat") ? html`<${ChatPage} key=${`new-${generation}`} />` : html`<${Forbidden} />`;
    case "chat":
      return parts.length === 2 ? html`<${ChatPage} key=${parts[1]} sessionId=${parts[1]} />` : html`<${NotFound} />`;
    case "sessions":
      return accountHolder(me) ? html`<${SessionsPage} />` : html`<${Forbidden} />`;
    case "models":
      return can(me, "view_models") ? html`<${ModelsPage} />` : html`<${Forbidden} />`;
    case "rag":
      return accountHolder(me) ? html`<${RagPage} collectionId=${parts[1] || null} />` : html`<${Forbidden} />`;
    case "users":
      return multi && can(me, "manage_users") ? html`<${UsersPage} />` : html`<${Forbidden} />`;
    case "invitations":
      return multi && can(me, "manage_users") ? html`<${InvitationsPage} />` : html`<${Forbidden} />`;
    case "audit":
      return multi && can(me, "view_audit") ? html`<${AuditPage} />` : html`<${Forbidden} />`;
    case "benchmark":
      return can(me, "view_models") ? html`<${BenchmarkPage} />` : html`<${Forbidden} />`;
    case "admin":
      if (parts[1] !== "metrics" || parts.length !== 2) return html`<${NotFound} />`;
      return multi && can(me, "view_metrics") ? html`<${MetricsPage} />` : html`<${Forbidden} />`;
    case "account":
      return accountHolder(me) ? html`<${AccountPage} />` : html`<${Forbidden} />`;
    default:
      return html`<${NotFound} />`;
  }
}

function App({ initial }) {
  const [session, setSession] = useState(initial);
  const { path, generation } = useLocation();
  // The newest session, for handlers registered once; and a counter so an
  // older refresh never overwrites a newer one.
  const current = useRef(initial);
  current.current = session;
  const asked = useRef(0);
  const refresh = useCallback(async () => {
    asked.current += 1;
    const mine = asked.current;
    const next = await loadSession();
    if (mine === asked.current) {
      current.current = next;
      setSession(next);
    }
    return next;
  }, []);
  // A sign-in that ends (expired, revoked, password reset) sends the user
  // to the sign-in page, back here afterwards.
  // Registered once; one check at a time, and only for a signed-in user.
  const checking = useRef(false);
  useEffect(() => {
    onUnauthorized(() => {
      if (checking.current || !current.current.me.authenticated) return;
      checking.current = true;
      refresh()
        .then(
          (next) => {
            if (!next.me.authenticated && next.config.multi_user_mode && location.pathname !== "/login") {
              navigate(`/login?next=${encodeURIComponent(location.pathname + location.search)}`, { replace: true });
            }
          },
          () => {},
        )
        .finally(() => {
          checking.current = false;
        });
    });
  }, []);
  const { config, me } = session;
  const needsSetup = config.multi_user_mode && config.setup_required;
  const signedOut = config.multi_user_mode && !me.authenticated;
  const mustSignIn = signedOut && (config.require_auth || !config.guest_access || me.role === null);
  let target = null;
  if (needsSetup && path !== "/setup") target = "/setup";
  else if (!needsSetup && path === "/setup") target = "/";
  else if (mustSignIn && path !== "/login" && !path.startsWith("/invite/")) target = `/login?next=${encodeURIComponent(path)}`;
  else if (!config.multi_user_mode && (path === "/login" || path.startsWith("/invite/"))) target = "/";
  useEffect(() => {
    if (target) navigate(target, { replace: true });
  }, [target]);
  // After a page change (not the first load, which starts at the skip
  // link), focus goes to the new content for keyboard and reader users.
  const shown = useRef(null);
  const view = `${path}#${generation}`;
  useEffect(() => {
    const main = document.getElementById("main");
    if (shown.current !== null && shown.current !== view && main && (document.activeElement === document.body || !document.activeElement.isConnected)) {
      main.focus({ preventScroll: true });
    }
    shown.current = view;
  }, [view]);
  let content;
  if (target) content = null;
  else if (path === "/setup") content = html`<${SetupPage} />`;
  else if (path === "/login") content = html`<${LoginPage} />`;
  else if (path.startsWith("/invite/")) content = html`<${InvitePage} code=${decoded(path.slice(8))} />`;
  else content = html`<${Layout} path=${path}>${page(path, config, me, generation)}<//>`;
  return html`<${Session.Provider} value=${{ config, me, refresh }}>${content}<//>`;
}

/** A path segment decoded, or as it is when it is not valid %-encoding. */
function decoded(segment) {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

async function start() {
  const root = document.getElementById("app");
  try {
    const initial = await loadSession();
    // The "Loading" line goes: render() adds to what the element holds.
    root.textContent = "";
    render(html`<${App} initial=${initial} />`, root);
  } catch (e) {
    root.textContent = "";
    const p = document.createElement("p");
    p.className = "boot";
    p.setAttribute("role", "alert");
    p.textContent = `OffGrid cannot start: ${e && e.message ? e.message : e}`;
    root.appendChild(p);
  }
}

start();
