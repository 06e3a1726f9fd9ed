// The console's frame: the sidebar (a navigation landmark named "Main")
// with the pages the caller's role may use, and a footer with the signed-in
// user and their menu, or "Guest" with a sign-in link.
import { html, useState, useEffect, useRef } from "./lib.js";
import { post } from "./api.js";
import { navigate } from "./router.js";
import { can, accountHolder, useSession } from "./session.js";

/** The pages the caller may open, in sidebar order. */
export function navItems(config, me) {
  const multi = config.multi_user_mode;
  const items = [];
  if (can(me, "chat")) items.push({ href: "/", label: "Chat", match: (p) => p === "/" || p.startsWith("/chat/") });
  if (accountHolder(me)) items.push({ href: "/sessions", label: "Sessions" });
  if (can(me, "view_models")) items.push({ href: "/models", label: "Models" });
  if (accountHolder(me)) items.push({ href: "/rag", label: "RAG", match: (p) => p === "/rag" || p.startsWith("/rag/") });
  if (can(me, "view_models")) items.push({ href: "/benchmark", label: "Benchmark" });
  if (multi && can(me, "manage_users")) {
    items.push({ href: "/users", label: "Users" });
    items.push({ href: "/invitations", label: "Invitations" });
  }
  if (multi && can(me, "view_audit")) items.push({ href: "/audit", label: "Audit" });
  if (multi && can(me, "view_metrics")) items.push({ href: "/admin/metrics", label: "Metrics" });
  return items;
}

function UserMenu({ me, multi }) {
  const { refresh } = useSession();
  const [open, setOpen] = useState(false);
  const ref = useRef(null);
  useEffect(() => {
    if (!open) return undefined;
    const away = (e) => {
      if (ref.current && !ref.current.contains(e.target)) setOpen(false);
    };
    const esc = (e) => {
      if (e.key === "Escape") {
        setOpen(false);
        ref.current && ref.current.querySelector("button").focus();
      }
    };
    document.addEventListener("click", away);
    document.addEventListener("keydown", esc);
    return () => {
      document.removeEventListener("click", away);
      document.removeEventListener("keydown", esc);
    };
  }, [open]);
  const signOut = async () => {
    try {
      await post("/v1/auth/logout");
    } catch {
      // Signed out already, or the token expired: the same for the page.
    }
    await refresh();
    navigate("/login");
  };
  const go = (to) => {
    setOpen(false);
    navigate(to);
  };
  return html`<div class="user-menu" ref=${ref}>
    <button type="button" class="user-button" aria-expanded=${open} aria-controls="user-menu" onClick=${() => setOpen(!open)}>
      <span class="avatar" aria-hidden="true">${(me.user ? me.user.username : "?").slice(0, 1).toUpperCase()}</span>
      <span class="who"><span class="name">${me.user ? me.user.username : "You"}</span><span class="role">${me.role}</span></span>
    </button>
    ${open &&
    html`<ul class="menu" id="user-menu">
      <li><button type="button" onClick=${() => go("/account")}>Account</button></li>
      ${multi && html`<li><button type="button" onClick=${() => go("/account#api-keys")}>API keys</button></li>`}
      ${multi && html`<li><button type="button" onClick=${signOut}>Sign out</button></li>`}
    </ul>`}
  </div>`;
}

/** The frame around every page but sign-in and setup. */
export function Layout({ path, children }) {
  const { config, me } = useSession();
  const [menuOpen, setMenuOpen] = useState(false);
  useEffect(() => setMenuOpen(false), [path]);
  const items = navItems(config, me);
  const signedIn = me.authenticated || !config.multi_user_mode;
  return html`<div class=${menuOpen ? "shell nav-open" : "shell"}>
    <a class="skip" href="#main">Skip to content</a>
    <header class="topbar">
      <button type="button" class="icon-button" aria-label="Menu" aria-expanded=${menuOpen} aria-controls="sidebar" onClick=${() => setMenuOpen(!menuOpen)}>☰</button>
      <span class="brand">OffGrid</span>
      ${!signedIn && html`<a class="topbar-signin" href="/login">Sign in</a>`}
    </header>
    <aside class="sidebar" id="sidebar">
      <div class="brand"><img src="/assets/icon.svg" alt="" width="24" height="24" /> OffGrid</div>
      <nav aria-label="Main">
        <ul>
          ${items.map((item) => {
            const current = item.match ? item.match(path) : path === item.href;
            return html`<li><a href=${item.href} aria-current=${current ? "page" : null}>${item.label}</a></li>`;
          })}
        </ul>
      </nav>
      <footer class="sidebar-foot">
        ${signedIn
          ? html`<${UserMenu} me=${me} multi=${config.multi_user_mode} />`
          : html`<div class="guest"><span>Guest</span> <a href="/login">Sign in</a></div>`}
        ${!config.multi_user_mode && html`<p class="mode-note">Single-user mode</p>`}
      </footer>
    </aside>
    <main id="main" tabindex="-1">${children}</main>
  </div>`;
}
