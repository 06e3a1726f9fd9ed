// Chat: pick a model (and a preset, and knowledge to search), write, and
// watch the answer stream in; Stop ends it on the server too (the stream's
// connection closes and the engine stops at its next step). Chats of
// account holders who own sessions are saved to a session; viewers and
// guests are told theirs is not.
import { html, useEffect, useLayoutEffect, useMemo, useRef, useState } from "../lib.js";
import { get, patch, post, streamChat, describe, ApiError } from "../api.js";
import { can, useSession } from "../session.js";
import { markdownToHtml, enhanceCode } from "../markdown.js";

const MODEL_KEY = "offgrid.model";

/** One message's text: markdown for the assistant, plain for the rest. */
function Body({ role, content, streaming }) {
  const ref = useRef(null);
  // Parsed and sanitized once per text: a streaming answer re-renders the
  // transcript every frame, and earlier messages must cost nothing.
  const rendered = useMemo(() => (role === "assistant" ? markdownToHtml(content) : null), [role, content]);
  useLayoutEffect(() => {
    if (ref.current && rendered !== null) enhanceCode(ref.current, !streaming);
  }, [rendered, streaming]);
  if (rendered === null) return html`<div class="text plain">${content}</div>`;
  return html`<div class="text markdown" ref=${ref} dangerouslySetInnerHTML=${{ __html: rendered }}></div>`;
}

function Citations({ citations }) {
  if (!citations || citations.length === 0) return null;
  return html`<div class="citations">
    <span class="label">Sources</span>
    <ol>
      ${citations.map(
        (c) => html`<li>
          <span class="doc">${c.document && c.document.name}</span>
          <span class="muted"> in ${c.collection && c.collection.name}, part ${c.chunk_index + 1}, score ${Number(c.score).toFixed(2)}</span>
        </li>`,
      )}
    </ol>
  </div>`;
}

function Message({ m }) {
  const who = m.role === "user" ? "You" : m.role === "assistant" ? m.model || "Assistant" : m.role;
  return html`<article class=${`msg ${m.role}${m.error ? " failed" : ""}`} aria-label=${m.role === "user" ? "Your message" : "Answer"}>
    <div class="msg-who">${who}</div>
    ${m.error
      ? html`<p class="error-note" role="alert">${m.error}</p>`
      : html`<${Body} role=${m.role} content=${m.content} streaming=${m.streaming} />`}
    ${m.streaming && !m.content && html`<p class="muted thinking">Thinking…</p>`}
    ${m.interrupted && html`<p class="muted note">Stopped before the end.</p>`}
    <${Citations} citations=${m.citations} />
  </article>`;
}

function KnowledgePicker({ collections, value, onChange }) {
  const [open, setOpen] = useState(false);
  const button = useRef(null);
  const close = (e) => {
    if (e.key === "Escape") {
      e.stopPropagation();
      setOpen(false);
      button.current && button.current.focus();
    }
  };
  const label = value.all ? "All my knowledge" : value.ids.length ? `${value.ids.length} collection${value.ids.length > 1 ? "s" : ""}` : "Off";
  const toggle = (id) => {
    const ids = value.ids.includes(id) ? value.ids.filter((x) => x !== id) : [...value.ids, id];
    onChange({ all: false, ids });
  };
  return html`<div class="knowledge" onKeyDown=${close}>
    <button type="button" ref=${button} aria-expanded=${open} aria-controls="knowledge-list" onClick=${() => setOpen(!open)}>Knowledge: ${label}</button>
    ${open &&
    html`<fieldset id="knowledge-list" class="popover">
      <legend>Search these documents</legend>
      <label class="check"><input type="checkbox" checked=${value.all} onChange=${(e) => onChange({ all: e.target.checked, ids: [] })} /> All my knowledge</label>
      ${collections.map(
        (c) => html`<label class="check"><input type="checkbox" disabled=${value.all} checked=${value.all || value.ids.includes(c.id)} onChange=${() => toggle(c.id)} /> ${c.name}</label>`,
      )}
      ${collections.length === 0 && html`<p class="muted">No collections yet: add documents on the RAG page.</p>`}
    </fieldset>`}
  </div>`;
}

/** The chat page, for a new chat or the session `sessionId`. */
export function ChatPage({ sessionId }) {
  const { me, config } = useSession();
  const saves = can(me, "own_sessions");
  const [models, setModels] = useState([]);
  const [model, setModel] = useState("");
  const [presets, setPresets] = useState([]);
  const [presetId, setPresetId] = useState("");
  const [collections, setCollections] = useState([]);
  const [knowledge, setKnowledge] = useState({ all: false, ids: [] });
  const [session, setSession] = useState(null);
  const [messages, setMessages] = useState([]);
  const [text, setText] = useState("");
  const [busy, setBusy] = useState(false);
  const [loadError, setLoadError] = useState(null);
  const [missing, setMissing] = useState(false);
  const abort = useRef(null);
  const log = useRef(null);
  const stick = useRef(true);
  const box = useRef(null);

  useEffect(() => {
    const fallback = { id: config.default_model };
    const listed = can(me, "view_models")
      ? get("/v1/models").then((list) => (list.data || []).filter((m) => m.type === "chat"))
      : // Guests cannot list models: they chat with the server's default.
        Promise.resolve(config.default_model ? [fallback] : []);
    listed
      .then((chat) => {
        setModels(chat);
        setModel((current) => {
          if (current) return current;
          const saved = localStorage.getItem(MODEL_KEY);
          return (chat.find((m) => m.id === saved) || chat.find((m) => m.id === config.default_model) || chat[0] || { id: "" }).id;
        });
      })
      .catch(setLoadError);
    if (me.role && me.role !== "guest") {
      get("/v1/presets?limit=100").then((p) => setPresets(p.data || []), () => setPresets([]));
      // Own collections and those shared with the caller.
      Promise.all([get("/v1/rag/collections?limit=100"), get("/v1/rag/collections?limit=100&shared=true").catch(() => ({ data: [] }))]).then(
        ([own, shared]) => setCollections([...(own.data || []), ...(shared.data || [])]),
        () => setCollections([]),
      );
    }
  }, []);

  useEffect(() => {
    if (!sessionId) return;
    get(`/v1/sessions/${encodeURIComponent(sessionId)}`)
      .then((s) => {
        setSession(s);
        if (s.model) setModel(s.model);
        if (s.preset_id) setPresetId(s.preset_id);
        setMessages((s.messages || []).filter((m) => m.role !== "system"));
      })
      .catch((e) => {
        if (e instanceof ApiError && e.status === 404) setMissing(true);
        else setLoadError(e);
      });
  }, [sessionId]);

  // Follow the end of the conversation unless the reader scrolled up.
  useLayoutEffect(() => {
    const el = log.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [messages]);
  const onScroll = () => {
    const el = log.current;
    if (el) stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
  };
  useEffect(() => () => abort.current && abort.current.abort(), []);

  if (missing) {
    return html`<div class="page"><h1>Not found</h1><p>This session does not exist, or it is not shared with you.</p><p><a href="/sessions">Your sessions</a></p></div>`;
  }

  const readOnly = session && !["owner", "admin", "write"].includes(session.permission);
  const chooseModel = (id) => {
    setModel(id);
    localStorage.setItem(MODEL_KEY, id);
    if (session && !readOnly) patch(`/v1/sessions/${session.id}`, { model: id }).catch(() => {});
  };
  const choosePreset = (id) => {
    setPresetId(id);
    const preset = presets.find((p) => p.id === id);
    if (preset && preset.model) setModel(preset.model);
    if (session && !readOnly) patch(`/v1/sessions/${session.id}`, { preset_id: id || null }).catch(() => {});
  };

  const update = (fn) => setMessages((list) => list.map((m) => (m.pending ? fn(m) : m)));

  const send = async () => {
    const content = text.trim();
    if (!content || busy || readOnly) return;
    if (!model) {
      setLoadError("No chat model is installed: ask an administrator to import one.");
      return;
    }
    setBusy(true);
    setText("");
    stick.current = true;
    const history = messages.filter((m) => !m.error && (m.role === "user" || m.role === "assistant"));
    setMessages((list) => [
      ...list,
      { role: "user", content },
      { role: "assistant", content: "", model, streaming: true, pending: true },
    ]);
    const controller = new AbortController();
    abort.current = controller;
    let current = session;
    const body = { model, messages: [{ role: "user", content }] };
    let pending = "";
    let frame = 0;
    let flushPending = () => {};
    try {
      if (saves && !current) {
        current = await post("/v1/sessions", {
          // By code points: cutting a surrogate pair would send invalid JSON.
          title: Array.from(content.replace(/\s+/g, " ")).slice(0, 80).join(""),
          model,
          preset_id: presetId || undefined,
        });
        setSession(current);
        // The address names the session, so a reload finds it; the page
        // stays mounted (the stream goes on).
        window.history.replaceState(null, "", `/chat/${current.id}`);
      }
      if (current) body.session_id = current.id;
      else body.messages = [...history.map((m) => ({ role: m.role, content: m.content })), ...body.messages];
      if (presetId) body.preset_id = presetId;
      if (knowledge.all) body.use_knowledge_base = true;
      else if (knowledge.ids.length) body.rag = { collection_ids: knowledge.ids };
      const flush = () => {
        frame = 0;
        const piece = pending;
        pending = "";
        if (piece) update((m) => ({ ...m, content: m.content + piece }));
      };
      flushPending = () => {
        if (frame) cancelAnimationFrame(frame);
        flush();
      };
      const finish = await streamChat(body, {
        signal: controller.signal,
        onDelta: (piece) => {
          pending += piece;
          if (!frame) frame = requestAnimationFrame(flush);
        },
        onEvent: (chunk) => {
          if (chunk.citations) update((m) => ({ ...m, citations: chunk.citations }));
        },
      });
      if (frame) cancelAnimationFrame(frame);
      flush();
      update((m) => ({ ...m, streaming: false, pending: false, interrupted: finish === "cancelled" }));
    } catch (e) {
      // What arrived before the stop or the error stays on screen.
      flushPending();
      if (e.name === "AbortError") {
        update((m) => ({ ...m, streaming: false, pending: false, interrupted: true }));
      } else {
        update((m) => ({ ...m, streaming: false, pending: false, error: describe(e) }));
      }
    } finally {
      abort.current = null;
      setBusy(false);
      box.current && box.current.focus();
    }
  };

  const stop = () => abort.current && abort.current.abort();
  const onKey = (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
  };

  return html`<div class="chat">
    <div class="chat-bar">
      <h1 class="chat-title">${session ? session.title : "New chat"}</h1>
      <select aria-label="Model" value=${model} onChange=${(e) => chooseModel(e.target.value)} disabled=${readOnly}>
        ${models.length === 0 && html`<option value="">No chat model</option>`}
        ${models.map((m) => html`<option value=${m.id}>${m.id}</option>`)}
      </select>
      ${presets.length > 0 &&
      html`<select aria-label="Preset" value=${presetId} onChange=${(e) => choosePreset(e.target.value)} disabled=${readOnly}>
        <option value="">No preset</option>
        ${presets.map((p) => html`<option value=${p.id}>${p.name}</option>`)}
      </select>`}
      ${me.role && me.role !== "guest" && html`<${KnowledgePicker} collections=${collections} value=${knowledge} onChange=${setKnowledge} />`}
      ${session && html`<a class="button" href="/">New chat</a>`}
    </div>
    ${!saves && html`<p class="notice" role="note">Your chat is not saved: ${me.role === "viewer" ? "viewers" : "guests"} have no sessions.</p>`}
    ${readOnly && html`<p class="notice" role="note">This session is shared with you to read: you cannot post into it.</p>`}
    ${loadError && html`<p class="error-note" role="alert">${describe(loadError)}</p>`}
    <div class="transcript" role="log" aria-label="Conversation" aria-live="polite" aria-busy=${busy ? "true" : "false"} ref=${log} onScroll=${onScroll} tabindex="0">
      ${messages.length === 0 && html`<p class="empty">Ask anything. Answers are generated on this machine.</p>`}
      ${messages.map((m, i) => html`<${Message} key=${m.id || i} m=${m} />`)}
    </div>
    <form class="composer" onSubmit=${(e) => (e.preventDefault(), send())}>
      <textarea
        ref=${box}
        aria-label="Message"
        placeholder=${readOnly ? "Read-only" : "Message (Enter sends, Shift+Enter for a new line)"}
        rows="2"
        value=${text}
        disabled=${readOnly}
        onInput=${(e) => setText(e.target.value)}
        onKeyDown=${onKey}
      ></textarea>
      ${busy
        ? html`<button type="button" class="danger" onClick=${stop}>Stop</button>`
        : html`<button type="submit" class="primary" disabled=${readOnly || !text.trim()}>Send</button>`}
    </form>
  </div>`;
}
