// The chat panel: thread list with unread badges, message log with history paging,
// composer with an outbox that survives reconnects (same client_id on every resend).

import { el } from "./lib/dom.js";
import { colorFor, formatTime, initialsOf, safeColor } from "./lib/format.js";

const HISTORY_PAGE = 50;
const AUTO_SWITCH_AFTER_MS = 30000;
const GROUP_WINDOW_MS = 5 * 60 * 1000;

export function newClientId() {
  if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
  // crypto.randomUUID needs a secure context; getRandomValues does not.
  const b = window.crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((v) => v.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export class ChatPanel {
  constructor({ socket, state, notice }) {
    this.socket = socket;
    this.state = state;
    this.notice = notice || (() => {});
    this.threadListEl = document.getElementById("thread-list");
    this.logEl = document.getElementById("chat-log");
    this.formEl = document.getElementById("chat-form");
    this.inputEl = document.getElementById("chat-input");
    this.titleEl = document.getElementById("chat-title");
    this.threads = state.threads; // Map id -> summary
    this.cache = new Map(); // thread -> {bySeq: Map, more: bool, loaded: bool, loading: bool}
    this.pending = new Map(); // client_id -> {thread, body, client_id, createdAt}
    this.readSent = new Map(); // thread -> seq
    this.selected = null;
    this.manualPickAt = 0;
    this.renderedThread = null;
    this.olderRequested = false;
    this.baseTitle = document.title;
    this._bind();
    this.renderThreads();
    this.renderLog();
  }

  // --- wiring ---

  _bind() {
    const s = this.socket;
    s.on("chat.message", (f) => this.onMessage(f.message));
    s.on("chat.backlog", (f) => this.onMessages(f.thread, f.messages || []));
    s.on("chat.history", (f) => this.onHistory(f));
    s.on("chat.ack", (f) => this.onAck(f));
    s.on("chat.unread", (f) => this.setUnread(f.thread, f.unread));
    s.on("thread.added", (f) => this.onThreadAdded(f.thread));
    s.on("thread.removed", (f) => this.onThreadRemoved(f.thread));
    s.on("dm.opened", (f) => this.onDmOpened(f));

    this.threadListEl.addEventListener("click", (e) => {
      const li = e.target.closest("li[data-thread-id]");
      if (li) this.select(Number(li.dataset.threadId), true);
    });
    this.threadListEl.addEventListener("keydown", (e) => {
      const li = e.target.closest("li[data-thread-id]");
      if (!li) return;
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        this.select(Number(li.dataset.threadId), true);
      } else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        const next = e.key === "ArrowDown" ? li.nextElementSibling : li.previousElementSibling;
        if (next) next.focus();
      }
    });
    this.logEl.addEventListener("click", (e) => {
      if (e.target.closest(".load-older")) this.loadOlder();
    });
    this.logEl.addEventListener("scroll", () => {
      if (this.logEl.scrollTop < 40) {
        const c = this.cache.get(this.selected);
        if (c && c.more && !c.loading) this.loadOlder();
      }
    });
    this.formEl.addEventListener("submit", (e) => {
      e.preventDefault();
      this.submit();
    });
    this.inputEl.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        this.submit();
      } else if (e.key === "Escape") {
        this.inputEl.blur();
      }
    });
    this.inputEl.addEventListener("input", () => this._autosize());
  }

  _autosize() {
    const t = this.inputEl;
    t.style.height = "auto";
    t.style.height = Math.min(140, t.scrollHeight + 2) + "px";
  }

  // --- lifecycle ---

  onHello(frame) {
    const seen = new Set();
    for (const t of frame.threads || []) {
      seen.add(t.id);
      this.threads.set(t.id, { ...(this.threads.get(t.id) || {}), ...t });
    }
    for (const id of [...this.threads.keys()]) {
      if (!seen.has(id)) {
        this.threads.delete(id);
        this.cache.delete(id);
      }
    }
    // Resend whatever never got an acknowledgement, with the same client_id.
    for (const [cid, p] of this.pending) {
      if (!this.threads.has(p.thread)) {
        this.pending.delete(cid);
        continue;
      }
      this.socket.send({ type: "chat.send", thread: p.thread, body: p.body, client_id: cid });
    }
    if (this.selected == null || !this.threads.has(this.selected)) {
      this.selected = null;
      this.select(this.defaultThread(), false);
    } else {
      this.renderThreads();
      const c = this.cache.get(this.selected);
      if (!c || !c.loaded) this._requestHistory(this.selected);
      else this.markRead();
      this.renderLog();
    }
  }

  defaultThread() {
    const room = this.state.you && this.state.you.room;
    for (const t of this.threads.values()) {
      if (t.kind === "room" && room != null && t.room === room) return t.id;
    }
    const first = this.sortedThreads()[0];
    return first ? first.id : null;
  }

  onRoomChanged(roomId) {
    this.renderThreads();
    if (Date.now() - this.manualPickAt < AUTO_SWITCH_AFTER_MS) return;
    for (const t of this.threads.values()) {
      if (t.kind === "room" && t.room === roomId) {
        if (t.id !== this.selected) this.select(t.id, false);
        return;
      }
    }
  }

  // --- incoming ---

  _cacheFor(thread) {
    let c = this.cache.get(thread);
    if (!c) {
      c = { bySeq: new Map(), more: false, loaded: false, loading: false };
      this.cache.set(thread, c);
    }
    return c;
  }

  _store(m) {
    const c = this._cacheFor(m.thread);
    c.bySeq.set(m.seq, m);
    if (m.client_id && this.pending.has(m.client_id)) this.pending.delete(m.client_id);
    const t = this.threads.get(m.thread);
    if (t && m.seq > (t.last_seq || 0)) t.last_seq = m.seq;
  }

  onMessage(m) {
    if (!m) return;
    const known = this.cache.get(m.thread);
    const dup = known && known.bySeq.has(m.seq) && !known.bySeq.get(m.seq).synthetic;
    this._store(m);
    if (dup) return;
    const mine = m.author && this.state.me && m.author.id === this.state.me.id;
    if (m.thread === this.selected) {
      this.renderLog();
      this.markRead();
    } else if (!mine) {
      const t = this.threads.get(m.thread);
      if (t) t.unread = (t.unread || 0) + 1;
      this.renderThreads();
    }
  }

  onMessages(thread, messages) {
    for (const m of messages) this._store(m);
    if (thread === this.selected) {
      this.renderLog();
      this.markRead();
    } else {
      this.renderThreads();
    }
  }

  onHistory(f) {
    const c = this._cacheFor(f.thread);
    const older = c.loaded;
    for (const m of f.messages || []) this._store(m);
    const oldest = Math.min(...[...c.bySeq.keys()]);
    c.more = !!f.more && (!isFinite(oldest) || oldest > 1);
    c.loaded = true;
    c.loading = false;
    if (f.thread === this.selected) {
      this.renderLog({ keepPosition: older });
      this.markRead();
    }
  }

  onAck(f) {
    const p = f.client_id ? this.pending.get(f.client_id) : null;
    if (!p) return;
    this.pending.delete(f.client_id);
    const c = this._cacheFor(p.thread);
    if (!c.bySeq.has(f.seq)) {
      // Shown as sent right away; the real message (same seq) replaces it when it arrives.
      c.bySeq.set(f.seq, {
        thread: p.thread, seq: f.seq, id: null, synthetic: true, client_id: f.client_id, body: p.body,
        author: { id: this.state.me.id, name: this.state.me.name }, created_at: new Date().toISOString(),
      });
    }
    if (p.thread === this.selected) this.renderLog();
  }

  setUnread(thread, unread) {
    const t = this.threads.get(thread);
    if (!t) return;
    t.unread = Math.max(0, unread | 0);
    this.renderThreads();
  }

  onThreadAdded(t) {
    if (!t) return;
    this.threads.set(t.id, { ...(this.threads.get(t.id) || {}), ...t });
    if (this.pendingSelect === t.id) {
      this.pendingSelect = null;
      this.select(t.id, true);
      return;
    }
    if (this.selected == null) this.select(this.defaultThread(), false);
    else this.renderThreads();
  }

  onThreadRemoved(id) {
    this.threads.delete(id);
    this.cache.delete(id);
    for (const [cid, p] of this.pending) if (p.thread === id) this.pending.delete(cid);
    if (this.selected === id) {
      this.selected = null;
      this.select(this.defaultThread(), false);
    } else {
      this.renderThreads();
    }
  }

  onDmOpened(f) {
    if (this.threads.has(f.thread)) this.select(f.thread, true);
    else this.pendingSelect = f.thread;
  }

  // --- actions ---

  select(id, manual) {
    if (manual) this.manualPickAt = Date.now();
    this.selected = id == null ? null : id;
    this.state.selectedThread = this.selected;
    this.renderThreads();
    this.renderLog({ switched: true });
    if (this.selected == null) return;
    const c = this._cacheFor(this.selected);
    if (!c.loaded) this._requestHistory(this.selected);
    else this.markRead();
  }

  _requestHistory(thread) {
    const c = this._cacheFor(thread);
    if (c.loading) return;
    c.loading = true;
    if (!this.socket.send({ type: "chat.history", thread, limit: HISTORY_PAGE })) c.loading = false;
  }

  loadOlder() {
    const c = this.cache.get(this.selected);
    if (!c || c.loading || !c.more) return;
    const oldest = Math.min(...c.bySeq.keys());
    if (!isFinite(oldest) || oldest <= 1) return;
    c.loading = true;
    if (!this.socket.send({ type: "chat.history", thread: this.selected, before: oldest, limit: HISTORY_PAGE })) c.loading = false;
  }

  latestSeq(thread) {
    const c = this.cache.get(thread);
    const t = this.threads.get(thread);
    let latest = Math.max(t ? t.last_seq || 0 : 0, this.socket.lastSeq.get(thread) || 0);
    if (c) for (const s of c.bySeq.keys()) if (s > latest) latest = s;
    return latest;
  }

  markRead() {
    const id = this.selected;
    if (id == null) return;
    const t = this.threads.get(id);
    const latest = this.latestSeq(id);
    if (latest <= 0) return;
    if ((this.readSent.get(id) || 0) >= latest && !(t && t.unread)) return;
    if (this.socket.send({ type: "chat.read", thread: id, seq: latest })) {
      this.readSent.set(id, latest);
      if (t && t.unread) {
        t.unread = 0;
        this.renderThreads();
      }
    }
  }

  submit() {
    const body = this.inputEl.value.replace(/\s+$/, "");
    if (!body.trim()) return;
    if (this.selected == null) {
      this.notice("Pick a conversation first", "warn");
      return;
    }
    const max = (this.state.limits && this.state.limits.chat_max_chars) || 4000;
    if (body.length > max) {
      this.notice(`Messages are limited to ${max} characters`, "warn");
      return;
    }
    this.send(this.selected, body);
    this.inputEl.value = "";
    this._autosize();
  }

  send(thread, body) {
    const clientId = newClientId();
    this.pending.set(clientId, { thread, body, client_id: clientId, createdAt: new Date().toISOString() });
    this.socket.send({ type: "chat.send", thread, body, client_id: clientId });
    if (thread === this.selected) this.renderLog({ toBottom: true });
    return clientId;
  }

  // --- rendering ---

  sortedThreads() {
    const rank = (t) => (t.kind === "room" ? 0 : 1);
    return [...this.threads.values()].sort(
      (a, b) => rank(a) - rank(b) || String(a.title).localeCompare(String(b.title)) || a.id - b.id,
    );
  }

  threadTitle(t) {
    if (!t) return "";
    if (t.kind !== "room" && t.with_user != null) {
      const m = this.state.members.get(t.with_user);
      if (m && m.name) return m.name;
    }
    return t.title || (t.kind === "room" ? "Room" : "Direct message");
  }

  renderThreads() {
    const ul = this.threadListEl;
    const focusedId = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.threadId : undefined;
    const frag = document.createDocumentFragment();
    let total = 0;
    const here = this.state.you && this.state.you.room;
    for (const t of this.sortedThreads()) {
      const li = el("li");
      li.dataset.threadId = String(t.id);
      li.dataset.kind = t.kind;
      li.tabIndex = 0;
      li.setAttribute("role", "option");
      const selected = t.id === this.selected;
      li.setAttribute("aria-selected", selected ? "true" : "false");
      const icon = el("span", "thread-icon", t.kind === "room" ? "#" : "@");
      icon.setAttribute("aria-hidden", "true");
      li.append(icon, el("span", "thread-title", this.threadTitle(t)));
      if (t.kind === "room" && here != null && t.room === here) li.append(el("span", "thread-here", "here"));
      const unread = t.unread || 0;
      total += unread;
      const badge = el("span", "unread", unread);
      badge.hidden = unread === 0;
      badge.setAttribute("aria-label", `${unread} unread`);
      li.append(badge);
      li.classList.toggle("has-unread", unread > 0 && !selected);
      frag.append(li);
    }
    ul.replaceChildren(frag);
    if (!ul.children.length) {
      const empty = el("li", "empty-row", "No conversations yet");
      ul.append(empty);
    }
    const sel = ul.querySelector('li[aria-selected="true"]');
    if (sel) {
      const top = sel.offsetTop; // the list is position: relative, so this is relative to it
      if (top < ul.scrollTop) ul.scrollTop = top;
      else if (top + sel.offsetHeight > ul.scrollTop + ul.clientHeight) ul.scrollTop = top + sel.offsetHeight - ul.clientHeight;
    }
    if (focusedId !== undefined) {
      const again = ul.querySelector(`li[data-thread-id="${CSS.escape(focusedId)}"]`);
      if (again) again.focus();
    }
    document.title = total ? `(${total}) ${this.baseTitle}` : this.baseTitle;
  }

  renderLog({ switched = false, keepPosition = false, toBottom = false } = {}) {
    const log = this.logEl;
    const sameThread = this.renderedThread === this.selected && !switched;
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 48;
    const fromBottom = log.scrollHeight - log.scrollTop;
    const t = this.threads.get(this.selected);

    this.titleEl.replaceChildren();
    if (t) {
      this.titleEl.append(el("span", null, (t.kind === "room" ? "# " : "@ ") + this.threadTitle(t)));
      this.titleEl.append(el("span", "thread-kind", t.kind === "room" ? "room chat" : "direct message"));
    }
    this.inputEl.placeholder = t ? `Message ${t.kind === "room" ? "#" : ""}${this.threadTitle(t)}` : "Pick a conversation";

    const frag = document.createDocumentFragment();
    if (this.selected == null) {
      frag.append(el("div", "chat-empty", "No conversation selected."));
    } else {
      const c = this.cache.get(this.selected);
      if (c && c.more) {
        const btn = el("button", "btn btn-light load-older", c.loading ? "Loading…" : "Load older messages");
        btn.type = "button";
        frag.append(btn);
      }
      const messages = c ? [...c.bySeq.values()].sort((a, b) => a.seq - b.seq) : [];
      const pending = [...this.pending.values()].filter(
        (p) => p.thread === this.selected && !messages.some((m) => m.client_id && m.client_id === p.client_id),
      );
      if (!messages.length && !pending.length) {
        frag.append(el("div", "chat-empty", c && c.loaded ? "No messages yet. Say hello!" : "Loading messages…"));
      }
      let prev = null;
      let prevDay = "";
      for (const m of messages) {
        const when = m.created_at ? new Date(m.created_at) : null;
        const day = when && !isNaN(when) ? when.toDateString() : "";
        if (day && day !== prevDay) {
          frag.append(el("div", "day-divider", this._dayLabel(when)));
          prev = null;
        }
        prevDay = day || prevDay;
        const cont = prev && prev.author && m.author && prev.author.id === m.author.id && when && prev._when &&
          when - prev._when < GROUP_WINDOW_MS;
        frag.append(this._messageNode(m, cont, when));
        prev = { author: m.author, _when: when };
      }
      for (const p of pending) {
        const node = this._messageNode({
          thread: p.thread, seq: null, author: { id: this.state.me.id, name: this.state.me.name }, body: p.body,
          created_at: p.createdAt, client_id: p.client_id,
        }, false, new Date(p.createdAt), true);
        frag.append(node);
      }
    }
    log.replaceChildren(frag);
    if (!sameThread || toBottom || atBottom) {
      if (keepPosition && sameThread) log.scrollTop = log.scrollHeight - fromBottom;
      else log.scrollTop = log.scrollHeight;
    } else if (keepPosition) {
      log.scrollTop = log.scrollHeight - fromBottom;
    }
    this.renderedThread = this.selected;
  }

  _dayLabel(when) {
    const today = new Date();
    const yesterday = new Date(Date.now() - 86400000);
    if (when.toDateString() === today.toDateString()) return "Today";
    if (when.toDateString() === yesterday.toDateString()) return "Yesterday";
    return when.toLocaleDateString([], { weekday: "short", month: "short", day: "numeric", year: "numeric" });
  }

  _messageNode(m, cont, when, pending = false) {
    const node = el("div", "chat-message" + (cont ? " cont" : "") + (pending ? " pending" : ""));
    node.dataset.thread = String(m.thread);
    if (m.seq != null) node.dataset.seq = String(m.seq);
    if (m.client_id) node.dataset.clientId = m.client_id;
    const authorId = m.author ? m.author.id : null;
    if (authorId != null) node.dataset.author = String(authorId);
    const presence = authorId != null ? this.state.presence.get(authorId) : null;
    const avatar = el("span", "msg-avatar", initialsOf(m.author && m.author.name));
    avatar.style.background = safeColor(presence && presence.color, colorFor(authorId));
    avatar.setAttribute("aria-hidden", "true");
    const main = el("div", "msg-main");
    const meta = el("div", "msg-meta");
    meta.append(el("span", "msg-author", (m.author && m.author.name) || "Someone"));
    if (when && !isNaN(when)) {
      const time = el("time", "msg-time", formatTime(when));
      time.dateTime = when.toISOString();
      time.title = when.toLocaleString();
      meta.append(time);
    }
    if (pending) meta.append(el("span", "msg-pending", this.socket.isOpen ? "sending…" : "waiting for connection…"));
    main.append(meta, el("div", "msg-body", m.body));
    node.append(avatar, main);
    return node;
  }
}
