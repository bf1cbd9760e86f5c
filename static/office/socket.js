// The office WebSocket client: JSON frames, an event emitter, automatic reconnects with
// exponential backoff and jitter, and per-thread chat sequence tracking (resume + de-duplication).

import { Backoff, loginUrl, wsUrl } from "./lib/http.js";

export const CLOSE = Object.freeze({
  NOT_SIGNED_IN: 4401,
  FORBIDDEN: 4403,
  SESSION_EXPIRED: 4408,
  REPLACED: 4409,
  RATE_LIMITED: 4429,
});

export const STATES = Object.freeze(["connecting", "connected", "reconnecting", "signed out"]);

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10000;
const PING_EVERY_MS = 25000;
const SILENCE_LIMIT_MS = 70000;

export class OfficeSocket {
  constructor(mapId, { stateEl = null, bannerEl = null } = {}) {
    this.mapId = mapId;
    this.ws = null;
    this.handlers = new Map();
    this.lastSeq = new Map(); // thread id -> last chat seq seen
    this.state = "connecting";
    this.backoff = new Backoff({ minMs: BACKOFF_MIN_MS, maxMs: BACKOFF_MAX_MS });
    this.retryTimer = null;
    this.pingTimer = null;
    this.blockedUntil = 0;
    this.stopped = false; // true after a close code that forbids reconnecting
    this.connections = 0; // how many hellos so far
    this.lastFrameAt = 0;
    this.lastClose = null;
    this.stateEl = stateEl || document.getElementById("connection-state");
    this.bannerEl = bannerEl || document.getElementById("connection-banner");
    this._renderState();
    window.addEventListener("online", () => {
      if (!this.ws && !this.stopped && Date.now() >= this.blockedUntil) this.connect();
    });
  }

  get url() {
    // On a reconnect the server learns our last seq per thread in the handshake, so it can send
    // exactly what we missed before any live message (no race with a later chat.resume).
    const resume = [...this.lastSeq].map(([thread, seq]) => `${thread}.${seq}`).join(",");
    const query = resume ? `?resume=${resume}` : "";
    return wsUrl(`/ws/office/${this.mapId}/${query}`);
  }

  get isOpen() {
    return !!this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  // --- event emitter ---

  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(fn);
    return () => this.off(type, fn);
  }

  off(type, fn) {
    const set = this.handlers.get(type);
    if (set) set.delete(fn);
  }

  emit(type, payload) {
    for (const key of [type, "*"]) {
      const set = this.handlers.get(key);
      if (!set) continue;
      for (const fn of [...set]) {
        try {
          fn(payload, type);
        } catch (err) {
          console.error(`office: handler for ${type} failed`, err);
        }
      }
    }
  }

  // --- connection lifecycle ---

  connect() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.stopped) return;
    const wait = this.blockedUntil - Date.now();
    if (wait > 0) {
      this._setState(this.connections ? "reconnecting" : "connecting");
      this.retryTimer = setTimeout(() => this.connect(), wait);
      return;
    }
    if (this.ws) this._detach(this.ws);
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      console.error("office: cannot open the socket", err);
      this._scheduleReconnect();
      return;
    }
    this.ws = ws;
    this._setState(this.connections ? "reconnecting" : "connecting");
    ws.onopen = () => {
      if (ws !== this.ws) return;
      this.lastFrameAt = Date.now();
      this._startPing();
      this.emit("open", {});
    };
    ws.onmessage = (event) => {
      if (ws !== this.ws) return;
      this._onFrame(event.data);
    };
    ws.onclose = (event) => {
      if (ws !== this.ws) return;
      this._onClose(event);
    };
    ws.onerror = () => {}; // a close event always follows
  }

  /** Close the socket now and do not reconnect until `ms` milliseconds have passed. */
  dropFor(ms) {
    this.stopped = false;
    this._hideBanner();
    this.blockedUntil = Date.now() + Math.max(0, Number(ms) || 0);
    const ws = this.ws;
    this.ws = null;
    this._stopPing();
    if (ws) {
      this._detach(ws);
      try {
        ws.close(4000, "client drop");
      } catch (err) {
        /* already closed */
      }
    }
    this._setState("reconnecting");
    this.emit("close", { code: 4000, reason: "client drop", willReconnect: true });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), Math.max(0, this.blockedUntil - Date.now()));
  }

  /** Reconnect right away (after a 4409 "Use here", or from the console). */
  reconnectNow() {
    this.stopped = false;
    this.blockedUntil = 0;
    this.backoff.reset();
    this._hideBanner();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      this._detach(ws);
      try { ws.close(1000); } catch (err) { /* ignore */ }
    }
    this.connect();
  }

  /** Stop for good (page unload). */
  close() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this._stopPing();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      this._detach(ws);
      try { ws.close(1000); } catch (err) { /* ignore */ }
    }
  }

  send(obj) {
    if (!this.isOpen) return false;
    try {
      this.ws.send(JSON.stringify(obj));
      return true;
    } catch (err) {
      console.error("office: send failed", err);
      return false;
    }
  }

  // --- internals ---

  _detach(ws) {
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
  }

  _onFrame(text) {
    this.lastFrameAt = Date.now();
    let frame;
    try {
      frame = JSON.parse(text);
    } catch (err) {
      console.warn("office: ignoring a non-JSON frame");
      return;
    }
    if (!frame || typeof frame.type !== "string") return;
    switch (frame.type) {
      case "hello":
        this._onHello(frame);
        return;
      case "chat.message": {
        const m = frame.message;
        if (!m) return;
        const last = this.lastSeq.get(m.thread);
        if (last !== undefined && m.seq <= last) return; // duplicate
        this.lastSeq.set(m.thread, m.seq);
        break;
      }
      case "chat.backlog": {
        const last = this.lastSeq.get(frame.thread);
        const fresh = (frame.messages || []).filter((m) => last === undefined || m.seq > last);
        if (fresh.length) this.lastSeq.set(frame.thread, fresh[fresh.length - 1].seq);
        frame.messages = fresh;
        break;
      }
      case "thread.removed":
        this.lastSeq.delete(frame.thread);
        break;
      case "error":
        if (frame.fatal) this.lastFatal = frame;
        break;
      default:
        break;
    }
    this.emit(frame.type, frame);
  }

  _onHello(frame) {
    const reconnect = this.connections > 0;
    this.connections += 1;
    this.backoff.reset();
    this.lastFatal = null;
    this._hideBanner();
    // Threads we followed were resumed in the handshake (the backlog follows hello); learn new ones.
    const threadIds = new Set();
    for (const t of frame.threads || []) {
      threadIds.add(t.id);
      if (!this.lastSeq.has(t.id)) this.lastSeq.set(t.id, t.last_seq || 0);
    }
    for (const id of [...this.lastSeq.keys()]) {
      if (!threadIds.has(id)) this.lastSeq.delete(id);
    }
    frame.reconnect = reconnect;
    this.emit("hello", frame);
    this._setState("connected");
  }

  _onClose(event) {
    this.ws = null;
    this._stopPing();
    const code = event.code;
    this.lastClose = { code, reason: event.reason, at: Date.now() };
    const message = (this.lastFatal && this.lastFatal.message) || event.reason || "";
    this.lastFatal = null;
    if (code === CLOSE.NOT_SIGNED_IN) {
      this.stopped = true;
      this._setState("signed out");
      this.emit("close", { code, reason: message, willReconnect: false });
      this._showBanner("You are signed out. Taking you to the sign-in page…", "error",
        [{ label: "Sign in", href: loginUrl() }]);
      location.assign(loginUrl());
      return;
    }
    if (code === CLOSE.SESSION_EXPIRED) {
      this.stopped = true;
      this._setState("signed out");
      this.emit("close", { code, reason: message, willReconnect: false });
      this._showBanner("Your session has expired. Please sign in again.", "error",
        [{ label: "Sign in", href: loginUrl() }]);
      this.emit("notice", { text: "Your session has expired. Please sign in again.", kind: "error" });
      setTimeout(() => location.assign(loginUrl()), 2500);
      return;
    }
    if (code === CLOSE.REPLACED) {
      this.stopped = true;
      this._setState("signed out");
      this.emit("close", { code, reason: message, willReconnect: false });
      this._showBanner("The office is open in another tab or window.", "warn",
        [{ label: "Use here", id: "use-here", onClick: () => this.reconnectNow() }]);
      return;
    }
    if (code === CLOSE.FORBIDDEN) {
      this.stopped = true;
      this._setState("signed out");
      this.emit("close", { code, reason: message, willReconnect: false });
      this._showBanner(message ? `This office is not available: ${message}.` : "This office is not available.", "error",
        [{ label: "Go to start", href: "/" }]);
      return;
    }
    this.emit("close", { code, reason: message, willReconnect: true });
    this._scheduleReconnect(code === CLOSE.RATE_LIMITED ? 3 : 0);
  }

  _scheduleReconnect(extraAttempts = 0) {
    if (this.stopped) return;
    const delay = Math.max(this.backoff.next(extraAttempts), this.blockedUntil - Date.now());
    this._setState("reconnecting");
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
    this.nextRetryAt = Date.now() + delay;
  }

  _startPing() {
    this._stopPing();
    this.pingTimer = setInterval(() => {
      if (!this.isOpen) return;
      if (Date.now() - this.lastFrameAt > SILENCE_LIMIT_MS) {
        // The connection went quiet: treat it as dropped.
        const ws = this.ws;
        this.ws = null;
        this._detach(ws);
        try { ws.close(4000, "silent"); } catch (err) { /* ignore */ }
        this._stopPing();
        this.emit("close", { code: 4000, reason: "silent", willReconnect: true });
        this._scheduleReconnect();
        return;
      }
      this.send({ type: "ping" });
    }, PING_EVERY_MS);
  }

  _stopPing() {
    clearInterval(this.pingTimer);
    this.pingTimer = null;
  }

  _setState(state) {
    this.state = state;
    this._renderState();
    this.emit("state", { state });
  }

  _renderState() {
    if (!this.stateEl) return;
    this.stateEl.textContent = this.state;
    this.stateEl.dataset.state = this.state;
  }

  _showBanner(text, kind, actions = []) {
    const banner = this.bannerEl;
    if (!banner) return;
    const textEl = banner.querySelector("#connection-banner-text") || banner;
    const actionsEl = banner.querySelector("#connection-banner-actions");
    textEl.textContent = text;
    if (actionsEl) {
      actionsEl.replaceChildren();
      for (const action of actions) {
        let node;
        if (action.href) {
          node = document.createElement("a");
          node.href = action.href;
        } else {
          node = document.createElement("button");
          node.type = "button";
          node.addEventListener("click", action.onClick);
        }
        if (action.id) node.id = action.id;
        node.className = "btn btn-light";
        node.textContent = action.label;
        actionsEl.append(node);
      }
    }
    banner.classList.toggle("banner-error", kind === "error");
    banner.hidden = false;
  }

  _hideBanner() {
    if (this.bannerEl) this.bannerEl.hidden = true;
  }
}
