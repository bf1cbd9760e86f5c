// The People side of the sidebar: who is where, the status picker and the member directory.

import { el } from "./lib/dom.js";
import { colorFor, initialsOf, safeColor } from "./lib/format.js";

const WHO_THROTTLE_MS = 250; // at most ~4 DOM updates per second
const STATUS_LABEL = { available: "available", busy: "busy", away: "away" };

/** A person's colour from the server, or their stable palette colour. */
function avatarColor(color, id) {
  return safeColor(color, colorFor(id));
}

export class Sidebar {
  constructor({ socket, state, notice }) {
    this.socket = socket;
    this.state = state;
    this.notice = notice || (() => {});
    this.whoEl = document.getElementById("who-list");
    this.memberEl = document.getElementById("member-list");
    this.statusEl = document.getElementById("status-select");
    this.statusDot = document.getElementById("status-dot");
    this.countEl = document.getElementById("people-count");
    this.meAvatar = document.getElementById("me-avatar");
    this.meName = document.getElementById("me-name");
    this.whoTimer = null;
    this.lastWhoAt = 0;
    this._bind();
  }

  _bind() {
    this.statusEl.addEventListener("change", () => {
      const status = this.statusEl.value;
      if (!STATUS_LABEL[status]) return;
      if (!this.socket.send({ type: "status.set", status })) {
        this.notice("Not connected: your status will not change until the connection is back", "warn");
        if (this.state.me) this.statusEl.value = this.state.me.status;
        return;
      }
      if (this.state.me) this.state.me.status = status;
      const mine = this.state.me && this.state.presence.get(this.state.me.id);
      if (mine) mine.status = status;
      this.renderMe();
      this.scheduleWho(true);
    });
    const open = (li) => {
      const id = Number(li.dataset.userId);
      if (!id || (this.state.me && id === this.state.me.id)) return;
      if (!this.socket.send({ type: "dm.open", user: id })) this.notice("Not connected right now", "warn");
    };
    this.memberEl.addEventListener("click", (e) => {
      const li = e.target.closest("li[data-user-id]");
      if (li) open(li);
    });
    this.memberEl.addEventListener("keydown", (e) => {
      const li = e.target.closest("li[data-user-id]");
      if (!li) return;
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        open(li);
      }
    });
  }

  roomName(roomId) {
    if (roomId == null) return "Hallway";
    const room = this.state.geo && this.state.geo.roomById.get(roomId);
    return room ? room.name : "Elsewhere";
  }

  renderAll() {
    this.renderMe();
    this.renderMembers();
    this.scheduleWho(true);
  }

  renderMe() {
    const me = this.state.me;
    if (!me) return;
    if (this.statusEl.value !== me.status && STATUS_LABEL[me.status]) this.statusEl.value = me.status;
    if (this.statusDot) this.statusDot.dataset.status = me.status || "available";
    if (this.meAvatar) {
      this.meAvatar.textContent = initialsOf(me.name);
      this.meAvatar.style.background = avatarColor(me.color, me.id);
    }
    if (this.meName && me.name) this.meName.textContent = me.name;
  }

  /** Re-render the who-is-where list soon (throttled); `now` renders on the next frame. */
  scheduleWho(now = false) {
    if (this.whoTimer) {
      if (!now) return;
      clearTimeout(this.whoTimer);
    }
    const wait = now ? 0 : Math.max(0, WHO_THROTTLE_MS - (Date.now() - this.lastWhoAt));
    this.whoTimer = setTimeout(() => {
      this.whoTimer = null;
      this.lastWhoAt = Date.now();
      this.renderWho();
    }, wait);
  }

  renderWho() {
    const st = this.state;
    const me = st.me && st.me.id;
    const people = [...st.presence.values()].map((p) => {
      const room = p.user === me ? st.you.room : p.room;
      return { ...p, room: room == null ? null : room, roomName: this.roomName(room) };
    });
    people.sort((a, b) => a.roomName.localeCompare(b.roomName) || (a.room ?? -1) - (b.room ?? -1) ||
      (a.user === me ? -1 : b.user === me ? 1 : 0) || String(a.name).localeCompare(String(b.name)));
    const frag = document.createDocumentFragment();
    let lastRoom;
    for (const p of people) {
      const li = el("li");
      li.dataset.userId = String(p.user);
      li.dataset.room = p.room == null ? "" : String(p.room);
      li.dataset.roomName = p.roomName;
      li.dataset.status = p.status || "available";
      const pos = st.positions.get(p.user);
      li.dataset.x = pos ? String(pos.x) : "";
      li.dataset.y = pos ? String(pos.y) : "";
      if (p.user === me) li.classList.add("is-me");
      if (p.room !== lastRoom) li.classList.add("group-start");
      lastRoom = p.room;
      const avatar = el("span", "person-avatar", initialsOf(p.name));
      avatar.style.background = avatarColor(p.color, p.user);
      avatar.setAttribute("aria-hidden", "true");
      const dot = el("span", "status-dot");
      dot.dataset.status = p.status || "available";
      avatar.append(dot);
      const text = el("span", "who-text", `${p.name} — ${p.roomName}`);
      const status = el("span", "who-status", STATUS_LABEL[p.status] || p.status || "");
      status.dataset.status = p.status || "";
      li.append(avatar, text, status);
      li.title = `${p.name} — ${p.roomName} (${p.status || "available"})`;
      frag.append(li);
    }
    this.whoEl.replaceChildren(frag);
    if (!people.length) this.whoEl.append(el("li", "empty-row", "Nobody is here yet"));
    if (this.countEl) this.countEl.textContent = people.length ? String(people.length) : "";
    this.renderMemberPresence();
  }

  renderMembers() {
    const st = this.state;
    const me = st.me && st.me.id;
    const members = [...st.members.values()].filter((m) => m.id !== me)
      .sort((a, b) => String(a.name || a.username).localeCompare(String(b.name || b.username)));
    const frag = document.createDocumentFragment();
    for (const m of members) {
      const li = el("li");
      li.dataset.userId = String(m.id);
      li.tabIndex = 0;
      li.setAttribute("role", "button");
      li.setAttribute("aria-label", `Message ${m.name || m.username}`);
      const avatar = el("span", "person-avatar", initialsOf(m.name || m.username));
      avatar.setAttribute("aria-hidden", "true");
      const dot = el("span", "status-dot");
      avatar.append(dot);
      li.append(avatar, el("span", "member-name", m.name || m.username));
      if (m.role && m.role !== "member") li.append(el("span", "member-role", m.role));
      li.append(el("span", "member-action", "Message"));
      frag.append(li);
    }
    this.memberEl.replaceChildren(frag);
    if (!members.length) this.memberEl.append(el("li", "empty-row", "No other members yet"));
    this.renderMemberPresence();
  }

  renderMemberPresence() {
    for (const li of this.memberEl.querySelectorAll("li[data-user-id]")) {
      const id = Number(li.dataset.userId);
      const p = this.state.presence.get(id);
      const avatar = li.querySelector(".person-avatar");
      const dot = li.querySelector(".status-dot");
      avatar.style.background = avatarColor(p && p.color, id);
      dot.dataset.status = p ? p.status || "available" : "offline";
      li.classList.toggle("offline", !p);
      li.title = p ? `${p.status || "available"} — ${this.roomName(p.room)}` : "not in the office";
    }
  }
}
