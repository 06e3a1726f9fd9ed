// Models: what is installed, its size, quantization, context length,
// whether it is loaded and for how long it stays; administrators import
// from the server's import folder and remove.
import { html, useState } from "../lib.js";
import { get, post, del } from "../api.js";
import { can, useSession } from "../session.js";
import { Confirm, ErrorNote, Field, PageHead, bytes, useLoad } from "../ui.js";

function keepAlive(m) {
  if (!m.loaded) return "—";
  if (m.expires_in === null) return "stays loaded";
  if (m.expires_in === undefined) return "loaded";
  const s = Number(m.expires_in);
  return s >= 120 ? `unloads in ${Math.round(s / 60)} min` : `unloads in ${s} s`;
}

function Import({ onDone }) {
  const [path, setPath] = useState("");
  const [name, setName] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [done, setDone] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      const body = { path: path.trim() };
      if (name.trim()) body.name = name.trim();
      const m = await post("/v1/models", body);
      setDone(`Imported ${m.id}.`);
      setPath("");
      setName("");
      onDone();
    } catch (err) {
      setError(err);
    }
    setBusy(false);
  };
  return html`<form class="panel row-form" onSubmit=${submit}>
    <${Field} label="File or folder on the server" hint="Relative to the import folder (model_import_dir)."><input required value=${path} onInput=${(e) => setPath(e.target.value)} /><//>
    <${Field} label="Name (optional)"><input value=${name} onInput=${(e) => setName(e.target.value)} /><//>
    <button type="submit" class="primary" disabled=${busy}>${busy ? "Importing…" : "Import model"}</button>
    <${ErrorNote} error=${error} />
    ${done && html`<p class="ok-note" role="status">${done}</p>`}
  </form>`;
}

/** The models page. */
export function ModelsPage() {
  const { me } = useSession();
  const list = useLoad(() => get("/v1/models"), []);
  const [removing, setRemoving] = useState(null);
  const admin = can(me, "manage_models");
  const rows = (list.data && list.data.data) || [];
  return html`<div class="page">
    <${PageHead} title="Models"><button type="button" onClick=${list.reload}>Refresh</button><//>
    ${admin && html`<${Import} onDone=${list.reload} />`}
    <${ErrorNote} error=${list.error} />
    <div class="table-wrap" tabindex="0" role="region" aria-label="Installed models">
      <table>
        <caption class="offscreen">Installed models</caption>
        <thead><tr><th scope="col">Model</th><th scope="col">Type</th><th scope="col">Size</th><th scope="col">Quantization</th><th scope="col">Context</th><th scope="col">State</th>${admin && html`<th scope="col"><span class="offscreen">Actions</span></th>`}</tr></thead>
        <tbody>
          ${rows.map(
            (m) => html`<tr>
              <th scope="row">${m.id}<div class="muted small">${m.architecture}${m.parameters ? ` · ${(m.parameters / 1e6).toFixed(0)}M parameters` : ""}</div></th>
              <td>${m.type}</td>
              <td>${bytes(m.size_bytes)}</td>
              <td>${m.quantization || "—"}</td>
              <td>${m.context_length ? m.context_length.toLocaleString() : m.dimensions ? `${m.dimensions} dims` : "—"}</td>
              <td><span class=${m.loaded ? "badge on" : "badge"}>${m.loaded ? "loaded" : "not loaded"}</span> <span class="muted small">${keepAlive(m)}</span></td>
              ${admin && html`<td><button type="button" class="danger" aria-label=${`Remove ${m.id}`} onClick=${() => setRemoving(m)}>Remove</button></td>`}
            </tr>`,
          )}
        </tbody>
      </table>
    </div>
    ${!list.loading && rows.length === 0 && html`<p class="empty">No models are installed. Run <code>cargo xtask models</code> or import one.</p>`}
    ${removing &&
    html`<${Confirm}
      title="Remove model"
      message=${`Remove ${removing.id} (${bytes(removing.size_bytes)}) from this server? Chats that name it will fail until it is imported again.`}
      action="Remove"
      onConfirm=${async () => {
        await del(`/v1/models/${encodeURIComponent(removing.id)}`);
        list.reload();
      }}
      onClose=${() => setRemoving(null)}
    />`}
  </div>`;
}
