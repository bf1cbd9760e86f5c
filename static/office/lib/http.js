// Talking to the server: the CSRF token, JSON requests (apiRequest never throws, getJson does),
// sign-in and WebSocket URLs, and reconnecting with exponential backoff (Backoff, ReconnectingSocket).

export function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  if (match) return decodeURIComponent(match[1]);
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

/** A JSON request that never throws: {ok, status, data, message}; `message` is the server's own 4xx text. */
export async function apiRequest(url, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  const init = { method, credentials: "same-origin", headers };
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken(); // DELETE has no body but needs it too
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch (err) {
    return { ok: false, status: 0, data: null, message: "Not connected right now; try again in a moment." };
  }
  return jsonResult(res);
}

/** A fetch Response as apiRequest's {ok, status, data, message, code}. */
export async function jsonResult(res) {
  let data = null;
  try {
    data = await res.json();
  } catch (err) {
    data = null;
  }
  if (res.ok) return { ok: true, status: res.status, data, message: "" };
  const error = data && data.error;
  const message = (error && error.message) || (res.status >= 500
    ? "The assistant could not answer right now."
    : `The request was refused (HTTP ${res.status}).`);
  return { ok: false, status: res.status, data, message, code: error && error.code };
}

/** GET `url` as JSON; throws when not connected or on an HTTP error (for callers with their own fallback). */
export async function getJson(url) {
  const res = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.json();
}

/** The sign-in page, coming back here afterwards. */
export function loginUrl() {
  return "/login/?next=" + encodeURIComponent(location.pathname + location.search);
}

/** ws(s)://this-host<path>, matching the page's scheme. */
export function wsUrl(path) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}${path}`;
}

/**
 * Exponential backoff for reconnects: `next()` is the wait before the next try (minMs doubling up
 * to maxMs, spread by ±jitter); `reset()` after a connection is established.
 */
export class Backoff {
  constructor({ minMs = 500, maxMs = 10000, jitter = 0.25 } = {}) {
    this.minMs = minMs;
    this.maxMs = maxMs;
    this.jitter = jitter;
    this.attempt = 0;
  }

  reset() {
    this.attempt = 0;
  }

  /** The next wait in ms; `atLeast` counts that many attempts as already failed (e.g. rate limited). */
  next(atLeast = 0) {
    this.attempt = Math.max(this.attempt, atLeast);
    const base = Math.min(this.maxMs, this.minMs * 2 ** this.attempt);
    const spread = this.jitter ? base * (1 - this.jitter + Math.random() * 2 * this.jitter) : base;
    this.attempt += 1;
    return Math.min(this.maxMs, Math.max(this.minMs, spread));
  }
}

/**
 * A JSON WebSocket to `path` on this host that reconnects after every close, waiting per `backoff`
 * (Backoff options). `onFrame` gets each parsed frame; a `readyType` frame (the server's hello) resets
 * the backoff. `onState` hears "connecting", "connected" and "reconnecting". `onClose(event)` may
 * return false to stop reconnecting (e.g. after a "not signed in" close code).
 */
export class ReconnectingSocket {
  constructor(path, { onFrame = () => {}, onState = () => {}, onClose = () => true, readyType = "hello", backoff = {} } = {}) {
    this.path = path;
    this.onFrame = onFrame;
    this.onState = onState;
    this.onClose = onClose;
    this.readyType = readyType;
    this.backoff = new Backoff(backoff);
    this.ws = null;
    this.timer = null;
  }

  connect() {
    clearTimeout(this.timer);
    const ws = new WebSocket(wsUrl(this.path));
    this.ws = ws;
    this.onState("connecting");
    ws.addEventListener("message", (e) => {
      let frame;
      try {
        frame = JSON.parse(e.data);
      } catch {
        return;
      }
      if (!frame || typeof frame.type !== "string") return;
      if (frame.type === this.readyType) {
        this.backoff.reset();
        this.onState("connected");
      }
      this.onFrame(frame);
    });
    ws.addEventListener("close", (e) => {
      if (ws !== this.ws || this.onClose(e) === false) return;
      this.onState("reconnecting");
      this.timer = setTimeout(() => this.connect(), this.backoff.next());
    });
  }
}
