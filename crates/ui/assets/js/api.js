// Talking to the OffGrid API: JSON requests with the browser's HttpOnly
// session cookie (never a token in storage), errors in the OpenAI shape,
// server-sent events for streamed chat, and uploads with progress.

/** An error answer from the server, or a network failure (status 0). */
export class ApiError extends Error {
  constructor(status, body, headers) {
    const err = (body && body.error) || {};
    super(err.message || (status ? `The server answered ${status}.` : "The server cannot be reached."));
    this.status = status;
    this.code = err.code || null;
    this.type = err.type || null;
    const retry = headers ? Number(headers.get("retry-after")) : NaN;
    this.retryAfter = Number.isFinite(retry) && retry > 0 ? retry : null;
  }
}

let unauthorized = null;

/** Runs `handler` whenever the server answers 401 (a sign-in ended). */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

function noticeStatus(status, path) {
  // Answers of the sign-in endpoints themselves (a wrong password, /me
  // with an ended cookie) say nothing new: reacting to them would loop.
  if (status === 401 && unauthorized && !String(path).startsWith("/v1/auth/")) unauthorized();
}

/** A sentence for an error, with when to try again if the server said. */
export function describe(error) {
  if (!(error instanceof ApiError)) return String(error && error.message ? error.message : error);
  let text = error.message;
  if (error.retryAfter) text += ` Try again in ${duration(error.retryAfter)}.`;
  return text;
}

function duration(seconds) {
  if (seconds < 90) return `${Math.ceil(seconds)} seconds`;
  if (seconds < 5400) return `${Math.ceil(seconds / 60)} minutes`;
  return `${Math.ceil(seconds / 3600)} hours`;
}

/** Sends a request; resolves to the parsed JSON (null for 204). */
export async function api(method, path, body, { signal } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" }, signal };
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, null, null);
  }
  noticeStatus(res.status, path);
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) throw new ApiError(res.status, data, res.headers);
  return data;
}

export const get = (path, opts) => api("GET", path, undefined, opts);
export const post = (path, body, opts) => api("POST", path, body === undefined ? {} : body, opts);
export const patch = (path, body) => api("PATCH", path, body);
export const put = (path, body) => api("PUT", path, body);
export const del = (path) => api("DELETE", path);

/** `?a=1&b=x` from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "" && v !== false) q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

/**
 * Streams a chat completion. `onDelta(text)` gets each piece of the
 * answer, `onEvent(chunk)` every parsed chunk (citations, usage). Resolves
 * to the finish reason; rejects with ApiError for an error answer, or an
 * AbortError when `signal` stops it.
 */
export async function streamChat(body, { signal, onDelta, onEvent }) {
  let res;
  try {
    res = await fetch("/v1/chat/completions", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify({ ...body, stream: true }),
      signal,
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, null, null);
  }
  if (!res.ok) {
    noticeStatus(res.status, "/v1/chat/completions");
    let data = null;
    try {
      data = await res.json();
    } catch {
      data = null;
    }
    throw new ApiError(res.status, data, res.headers);
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let finish = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return finish || "stop";
        let chunk;
        try {
          chunk = JSON.parse(data);
        } catch {
          continue;
        }
        if (chunk.error) throw new ApiError(500, chunk, null);
        if (onEvent) onEvent(chunk);
        const choice = chunk.choices && chunk.choices[0];
        if (choice && choice.delta && choice.delta.content) onDelta(choice.delta.content);
        if (choice && choice.finish_reason) finish = choice.finish_reason;
      }
    }
  }
  return finish || "stop";
}

/**
 * Uploads a form with progress (fetch cannot report upload progress).
 * `onProgress(fraction)` gets 0..1. Resolves to the parsed JSON answer.
 */
export function upload(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    xhr.withCredentials = true;
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total);
    };
    xhr.onerror = () => reject(new ApiError(0, null, null));
    xhr.onload = () => {
      noticeStatus(xhr.status, path);
      let data = null;
      try {
        data = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        data = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(new ApiError(xhr.status, data, { get: (h) => xhr.getResponseHeader(h) }));
    };
    xhr.send(form);
  });
}
