// Sessions: yours (or shared with you, or everyone's for administrators),
// searched by title and paged, with rename, share, export and delete.
import { html, useState } from "../lib.js";
import { get, patch, del, query } from "../api.js";
import { can, useSession } from "../session.js";
import { Confirm, Dialog, ErrorNote, Field, PageHead, Pager, useCursor, useLoad, when } from "../ui.js";
import { ShareDialog } from "../share.js";

function Rename({ session, onDone, onClose }) {
  const [title, setTitle] = useState(session.title);
  const [error, setError] = useState(null);
  const save = async (e) => {
    e.preventDefault();
    try {
      await patch(`/v1/sessions/${session.id}`, { title });
      onDone();
      onClose();
    } catch (err) {
      setError(err);
    }
  };
  return html`<${Dialog} title="Rename session" onClose=${onClose}>
    <form class="stack" onSubmit=${save}>
      <${Field} label="Title"><input required maxlength="200" value=${title} onInput=${(e) => setTitle(e.target.value)} /><//>
      <${ErrorNote} error=${error} />
      <div class="actions"><button type="button" onClick=${onClose}>Cancel</button><button type="submit" class="primary">Save</button></div>
    </form>
  <//>`;
}

/** The sessions page. */
export function SessionsPage() {
  const { me, config } = useSession();
  const [q, setQ] = useState("");
  const [search, setSearch] = useState("");
  const [scope, setScope] = useState("mine");
  const paging = useCursor([search, scope]);
  const list = useLoad(
    () => get(`/v1/sessions${query({ q: search, shared: scope === "shared", all: scope === "all", limit: 25, cursor: paging.cursor })}`),
    [search, scope, paging.cursor],
  );
  const [dialog, setDialog] = useState(null);
  const rows = (list.data && list.data.data) || [];
  const multi = config.multi_user_mode;
  const tabs = [["mine", "Mine"]];
  if (multi) tabs.push(["shared", "Shared with me"]);
  if (multi && can(me, "all_sessions")) tabs.push(["all", "All users"]);
  const myId = me.user && me.user.id;
  return html`<div class="page">
    <${PageHead} title="Sessions"><a class="button primary" href="/">New chat</a><//>
    <div class="toolbar">
      <form role="search" onSubmit=${(e) => (e.preventDefault(), setSearch(q.trim()))}>
        <input type="search" aria-label="Search sessions" placeholder="Search titles" value=${q} onInput=${(e) => setQ(e.target.value)} />
        <button type="submit">Search</button>
      </form>
      ${tabs.length > 1 &&
      html`<div class="segmented" role="group" aria-label="Which sessions">
        ${tabs.map(([key, label]) => html`<button type="button" aria-pressed=${scope === key} onClick=${() => setScope(key)}>${label}</button>`)}
      </div>`}
    </div>
    <${ErrorNote} error=${list.error} />
    ${!list.loading && rows.length === 0 && html`<p class="empty">${search ? "No session matches." : scope === "shared" ? "Nothing is shared with you yet." : "No sessions yet: start a chat."}</p>`}
    <ul class="cards">
      ${rows.map((s) => {
        const mine = s.owner && s.owner.id === myId;
        const canDelete = s.permission === "owner" || me.role === "admin";
        const canShare = multi && (s.permission === "owner" || s.permission === "admin");
        const canRename = ["owner", "admin"].includes(s.permission);
        return html`<li class="card">
          <div class="card-main">
            <a class="title" href=${`/chat/${s.id}`}>${s.title}</a>
            <span class="muted small">
              ${s.message_count} ${s.message_count === 1 ? "message" : "messages"} · ${when(s.updated_at)}${s.model ? ` · ${s.model}` : ""}${!mine && s.owner ? ` · by ${s.owner.username} (${s.permission})` : ""}
            </span>
          </div>
          <div class="card-actions">
            ${canRename && html`<button type="button" onClick=${() => setDialog({ kind: "rename", s })} aria-label=${`Rename ${s.title}`}>Rename</button>`}
            ${canShare && html`<button type="button" onClick=${() => setDialog({ kind: "share", s })} aria-label=${`Share ${s.title}`}>Share</button>`}
            <a class="button" href=${`/v1/sessions/${s.id}/export?format=md`} download aria-label=${`Export ${s.title} as Markdown`}>Markdown</a>
            <a class="button" href=${`/v1/sessions/${s.id}/export?format=json`} download aria-label=${`Export ${s.title} as JSON`}>JSON</a>
            ${canDelete && html`<button type="button" class="danger" onClick=${() => setDialog({ kind: "delete", s })} aria-label=${`Delete ${s.title}`}>Delete</button>`}
          </div>
        </li>`;
      })}
    </ul>
    <${Pager} cursors=${paging.stack} next=${list.data && list.data.next_cursor} onPage=${(d) => paging.move(d, list.data.next_cursor)} />
    ${dialog && dialog.kind === "rename" && html`<${Rename} session=${dialog.s} onDone=${list.reload} onClose=${() => setDialog(null)} />`}
    ${dialog && dialog.kind === "share" && html`<${ShareDialog} base=${`/v1/sessions/${dialog.s.id}`} name=${dialog.s.title} onClose=${() => setDialog(null)} />`}
    ${dialog &&
    dialog.kind === "delete" &&
    html`<${Confirm}
      title="Delete session"
      message=${`Delete “${dialog.s.title}” and its ${dialog.s.message_count} messages? This cannot be undone.`}
      onConfirm=${async () => {
        await del(`/v1/sessions/${dialog.s.id}`);
        list.reload();
      }}
      onClose=${() => setDialog(null)}
    />`}
  </div>`;
}
