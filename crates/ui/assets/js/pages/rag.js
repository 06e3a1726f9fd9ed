// RAG: collections of documents (create, rename, delete, share), uploads
// with a progress bar (or dropped on the page) and their indexing status,
// and search showing scored excerpts with their sources.
import { html, useEffect, useRef, useState } from "../lib.js";
import { get, post, patch, del, query, upload, describe } from "../api.js";
import { can, useSession } from "../session.js";
import { navigate } from "../router.js";
import { Confirm, Dialog, ErrorNote, Field, PageHead, Pager, bytes, useCursor, useLoad, when } from "../ui.js";
import { ShareDialog } from "../share.js";

function Search({ ids }) {
  const [q, setQ] = useState("");
  const [hits, setHits] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const run = async (e) => {
    e.preventDefault();
    if (!q.trim()) return;
    setBusy(true);
    setError(null);
    try {
      const body = { query: q.trim(), top_k: 8 };
      if (ids) body.collection_ids = ids;
      setHits((await post("/v1/rag/search", body)).data || []);
    } catch (err) {
      setError(err);
    }
    setBusy(false);
  };
  return html`<section class="panel" aria-labelledby="search-head">
    <h2 id="search-head">Search</h2>
    <form role="search" class="row-form" onSubmit=${run}>
      <input type="search" aria-label="Search documents" placeholder="Ask or describe what you look for" value=${q} onInput=${(e) => setQ(e.target.value)} maxlength="8000" />
      <button type="submit" disabled=${busy}>Search</button>
    </form>
    <${ErrorNote} error=${error} />
    ${hits && hits.length === 0 && html`<p class="muted">Nothing found.</p>`}
    ${hits &&
    html`<ol class="hits">
      ${hits.map(
        (h) => html`<li class="hit">
          <div class="hit-head"><span class="score">${h.score.toFixed(2)}</span> <span class="doc">${h.document.name}</span> <span class="muted small">in ${h.collection.name}, part ${h.chunk_index + 1}</span></div>
          <p class="excerpt">${h.text}</p>
        </li>`,
      )}
    </ol>`}
  </section>`;
}

function Edit({ collection, onDone, onClose }) {
  const [name, setName] = useState(collection ? collection.name : "");
  const [description, setDescription] = useState(collection ? collection.description || "" : "");
  const [error, setError] = useState(null);
  const save = async (e) => {
    e.preventDefault();
    try {
      const c = collection
        ? await patch(`/v1/rag/collections/${collection.id}`, { name, description })
        : await post("/v1/rag/collections", { name, description });
      onDone(c);
      onClose();
    } catch (err) {
      setError(err);
    }
  };
  return html`<${Dialog} title=${collection ? "Rename collection" : "New collection"} onClose=${onClose}>
    <form class="stack" onSubmit=${save}>
      <${Field} label="Name"><input required maxlength="200" value=${name} onInput=${(e) => setName(e.target.value)} /><//>
      <${Field} label="Description"><textarea rows="3" maxlength="2000" value=${description} onInput=${(e) => setDescription(e.target.value)}></textarea><//>
      <${ErrorNote} error=${error} />
      <div class="actions"><button type="button" onClick=${onClose}>Cancel</button><button type="submit" class="primary">${collection ? "Save" : "Create"}</button></div>
    </form>
  <//>`;
}

function Collections() {
  const { me, config } = useSession();
  const [shared, setShared] = useState(false);
  const paging = useCursor([shared]);
  const list = useLoad(() => get(`/v1/rag/collections${query({ shared, limit: 25, cursor: paging.cursor })}`), [shared, paging.cursor]);
  const [dialog, setDialog] = useState(null);
  const rows = (list.data && list.data.data) || [];
  return html`<div class="page">
    <${PageHead} title="RAG">
      ${can(me, "use_rag") && html`<button type="button" class="primary" onClick=${() => setDialog({ kind: "new" })}>New collection</button>`}
    <//>
    <p class="lead">Collections of documents that chats can search and cite.</p>
    ${config.multi_user_mode &&
    html`<div class="segmented" role="group" aria-label="Which collections">
      <button type="button" aria-pressed=${!shared} onClick=${() => setShared(false)}>Mine</button>
      <button type="button" aria-pressed=${shared} onClick=${() => setShared(true)}>Shared with me</button>
    </div>`}
    <${ErrorNote} error=${list.error} />
    ${!list.loading && rows.length === 0 && html`<p class="empty">${shared ? "No collection is shared with you." : "No collections yet."}</p>`}
    <ul class="cards">
      ${rows.map(
        (c) => html`<li class="card">
          <div class="card-main">
            <a class="title" href=${`/rag/${c.id}`}>${c.name}</a>
            <span class="muted small">${c.document_count} ${c.document_count === 1 ? "document" : "documents"} · ${c.chunk_count} ${c.chunk_count === 1 ? "chunk" : "chunks"} · ${when(c.updated_at)}${c.permission !== "owner" && c.owner ? ` · by ${c.owner.username} (${c.permission})` : ""}</span>
          </div>
          <div class="card-actions">
            ${["owner", "admin"].includes(c.permission) && html`<button type="button" aria-label=${`Rename ${c.name}`} onClick=${() => setDialog({ kind: "edit", c })}>Rename</button>`}
            ${config.multi_user_mode && ["owner", "admin"].includes(c.permission) && html`<button type="button" aria-label=${`Share ${c.name}`} onClick=${() => setDialog({ kind: "share", c })}>Share</button>`}
            ${(c.permission === "owner" || me.role === "admin") && html`<button type="button" class="danger" aria-label=${`Delete ${c.name}`} onClick=${() => setDialog({ kind: "delete", c })}>Delete</button>`}
          </div>
        </li>`,
      )}
    </ul>
    <${Pager} cursors=${paging.stack} next=${list.data && list.data.next_cursor} onPage=${(d) => paging.move(d, list.data.next_cursor)} />
    <${Search} ids=${null} />
    ${dialog && dialog.kind === "new" && html`<${Edit} onDone=${(c) => navigate(`/rag/${c.id}`)} onClose=${() => setDialog(null)} />`}
    ${dialog && dialog.kind === "edit" && html`<${Edit} collection=${dialog.c} onDone=${list.reload} onClose=${() => setDialog(null)} />`}
    ${dialog && dialog.kind === "share" && html`<${ShareDialog} base=${`/v1/rag/collections/${dialog.c.id}`} name=${dialog.c.name} onClose=${() => setDialog(null)} />`}
    ${dialog &&
    dialog.kind === "delete" &&
    html`<${Confirm}
      title="Delete collection"
      message=${`Delete “${dialog.c.name}” and its ${dialog.c.document_count} documents? This cannot be undone.`}
      onConfirm=${async () => {
        await del(`/v1/rag/collections/${dialog.c.id}`);
        list.reload();
      }}
      onClose=${() => setDialog(null)}
    />`}
  </div>`;
}

const ACCEPT = ".txt,.md,.markdown,.html,.htm,.pdf,text/plain,text/markdown,text/html,application/pdf";

function Uploads({ collectionId, onUploaded }) {
  const [items, setItems] = useState([]);
  const [over, setOver] = useState(false);
  const input = useRef(null);
  const send = (files) => {
    for (const file of files) {
      const key = `${file.name}-${Math.random()}`;
      setItems((list) => [...list, { key, name: file.name, progress: 0, error: null }]);
      const form = new FormData();
      form.append("file", file, file.name);
      upload(`/v1/rag/collections/${collectionId}/documents`, form, (p) =>
        setItems((list) => list.map((i) => (i.key === key ? { ...i, progress: p } : i))),
      ).then(
        () => {
          setItems((list) => list.filter((i) => i.key !== key));
          onUploaded();
        },
        (err) => setItems((list) => list.map((i) => (i.key === key ? { ...i, error: describe(err) } : i))),
      );
    }
  };
  const drop = (e) => {
    e.preventDefault();
    setOver(false);
    if (e.dataTransfer && e.dataTransfer.files) send([...e.dataTransfer.files]);
  };
  return html`<section class=${over ? "dropzone over" : "dropzone"} onDragOver=${(e) => (e.preventDefault(), setOver(true))} onDragLeave=${() => setOver(false)} onDrop=${drop} aria-labelledby="upload-head">
    <h2 id="upload-head">Add documents</h2>
    <p class="muted">Drop .txt, .md, .html or .pdf files here, or choose them.</p>
    <input ref=${input} type="file" multiple accept=${ACCEPT} class="offscreen" id="upload-input" tabindex="-1" aria-label="Upload documents" onChange=${(e) => (send([...e.target.files]), (e.target.value = ""))} />
    <button type="button" onClick=${() => input.current.click()}>Choose files</button>
    <ul class="uploads">
      ${items.map(
        (i) => html`<li>
          <span>${i.name}</span>
          ${i.error
            ? html`<span class="error-note" role="alert">${i.error}</span>`
            : html`<progress max="100" value=${Math.round(i.progress * 100)} aria-label=${`Uploading ${i.name}`}></progress>`}
        </li>`,
      )}
    </ul>
  </section>`;
}

function CollectionPage({ id }) {
  const { me } = useSession();
  const collection = useLoad(() => get(`/v1/rag/collections/${encodeURIComponent(id)}`), [id]);
  const docs = useLoad(() => get(`/v1/rag/collections/${encodeURIComponent(id)}/documents?limit=100`), [id]);
  const [removing, setRemoving] = useState(null);
  const rows = (docs.data && docs.data.data) || [];
  const indexing = rows.some((d) => d.status === "indexing");
  useEffect(() => {
    if (!indexing) return undefined;
    const timer = setTimeout(() => (docs.reload(), collection.reload()), 1000);
    return () => clearTimeout(timer);
  }, [docs.data]);
  if (collection.error && collection.error.status === 404) {
    return html`<div class="page"><h1>Not found</h1><p>This collection does not exist, or it is not shared with you.</p><p><a href="/rag">Your collections</a></p></div>`;
  }
  const c = collection.data;
  const writes = c && ["owner", "admin", "write"].includes(c.permission);
  return html`<div class="page">
    <p class="crumbs"><a href="/rag">RAG</a> /</p>
    <${PageHead} title=${c ? c.name : "Collection"} />
    ${c && c.description && html`<p class="lead">${c.description}</p>`}
    <${ErrorNote} error=${collection.error || docs.error} />
    ${writes && html`<${Uploads} collectionId=${id} onUploaded=${docs.reload} />`}
    <section class="panel" aria-labelledby="docs-head">
      <h2 id="docs-head">Documents</h2>
      ${!docs.loading && rows.length === 0 && html`<p class="muted">No documents yet.</p>`}
      <ul class="doc-list">
        ${rows.map(
          (d) => html`<li>
            <span class="doc">${d.name}</span>
            <span class=${`badge ${d.status}`}>${d.status}</span>
            <span class="muted small">${d.chunks} ${d.chunks === 1 ? "chunk" : "chunks"}${d.bytes ? ` · ${bytes(d.bytes)}` : ""} · ${when(d.created_at)}</span>
            ${d.error && html`<span class="error-note">${d.error}</span>`}
            ${writes && html`<button type="button" class="danger" aria-label=${`Delete ${d.name}`} onClick=${() => setRemoving(d)}>Delete</button>`}
          </li>`,
        )}
      </ul>
    </section>
    <${Search} ids=${[id]} />
    ${removing &&
    html`<${Confirm}
      title="Delete document"
      message=${`Delete “${removing.name}”? Chats will no longer find it.`}
      onConfirm=${async () => {
        await del(`/v1/rag/collections/${id}/documents/${removing.id}`);
        docs.reload();
        collection.reload();
      }}
      onClose=${() => setRemoving(null)}
    />`}
    ${me.role === "viewer" && html`<p class="muted">Viewers search what is shared with them.</p>`}
  </div>`;
}

/** `/rag` (the collections) or `/rag/{id}` (one collection). */
export function RagPage({ collectionId }) {
  return collectionId ? html`<${CollectionPage} id=${collectionId} />` : html`<${Collections} />`;
}
