// Speaking to everyone (docs/adr/0022): the admin's megaphone (text and an optional recorded clip,
// sent over REST), the announcement banner every page shows, and knocking on a private room's door
// (a button at the door, the members' "Let in / Ignore" prompt, the knocker's answer).

import { csrfToken, jsonResult } from "./lib/http.js";
import { el } from "./lib/dom.js";

const MAX_RECORD_MS = 30000;
const KNOCK_WATCH_MS = 300;

function pickMimeType() {
  if (typeof MediaRecorder === "undefined") return null;
  for (const type of ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm"]) {
    if (MediaRecorder.isTypeSupported(type)) return type;
  }
  return null;
}

export class Megaphone {
  constructor({ socket, state, notice, pane }) {
    this.socket = socket;
    this.state = state;
    this.notice = notice;
    this.pane = pane;
    this.clip = null; // the recorded Blob, if any
    this.recorder = null;
    this.recordTimer = null;
    this.guestRooms = new Set(); // private rooms a member let me into (until I walk out)
    this.guestInside = null; // the one of them I stand in
    this.knocking = null; // {knock, room} while waiting for an answer
    this.prompts = new Map(); // knock id -> prompt element (members)

    this.banners = el("div", { class: "megaphone-banners", id: "megaphone-banners", "aria-live": "assertive" });
    this.knockBar = el("div", { class: "knock-bar", id: "knock-bar", hidden: "" });
    this.prompt = this.banners; // members' knock prompts stack with the banners
    pane.append(this.banners, this.knockBar);

    socket.on("hello", (f) => this.onHello(f.me, f.map));
    socket.on("map.changed", (f) => this.control && this.fillTargets(f.map));
    socket.on("announcement", (f) => this.showAnnouncement(f.announcement));
    socket.on("move.rejected", (f) => this.onRejected(f));
    socket.on("room.knock", (f) => this.showKnockPrompt(f.knock, f.answer_within));
    socket.on("room.knock.closed", (f) => this.closeKnockPrompt(f.knock));
    socket.on("room.knock.result", (f) => this.onKnockResult(f));
    setInterval(() => this.watchDoor(), KNOCK_WATCH_MS);
  }

  // --- the admin's control ---

  onHello(me, layout) {
    // The hello handler in main.js may not have run yet: read the frame itself.
    if (me && me.role === "admin" && !this.control) this.buildControl();
    if (this.control) this.fillTargets(layout);
  }

  buildControl() {
    this.toggle = el("button", { type: "button", class: "hud megaphone-toggle", id: "megaphone-toggle",
      "aria-expanded": "false", "aria-controls": "megaphone-form", title: "Speak to everyone on this map, or in one room" }, "Megaphone");
    this.form = el("form", { class: "megaphone-form", id: "megaphone-form", hidden: "", autocomplete: "off" });
    this.target = el("select", { id: "megaphone-target", "aria-label": "Who hears it" });
    this.text = el("textarea", { id: "megaphone-text", maxlength: "500", rows: "2", required: "",
      placeholder: "Say something to everyone…", "aria-label": "Announcement" });
    this.recordBtn = el("button", { type: "button", class: "btn btn-light btn-small", id: "megaphone-record" },
      "● Record");
    this.clipState = el("span", { class: "megaphone-clip", id: "megaphone-clip" });
    const send = el("button", { type: "submit", class: "btn btn-primary btn-small", id: "megaphone-send" }, "Announce");
    const row = el("div", "megaphone-row");
    row.append(this.recordBtn, this.clipState, send);
    this.form.append(this.target, this.text, row);
    this.control = el("div", { class: "megaphone", id: "megaphone" });
    this.control.append(this.toggle, this.form);
    this.pane.append(this.control);
    this.toggle.addEventListener("click", () => {
      const open = this.form.hidden;
      this.form.hidden = !open;
      this.toggle.setAttribute("aria-expanded", open ? "true" : "false");
      if (open) this.text.focus();
    });
    this.recordBtn.addEventListener("click", () => (this.recorder ? this.stopRecording() : this.startRecording()));
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.send();
    });
  }

  fillTargets(layout) {
    const rooms = (layout && layout.rooms) || [];
    const current = this.target.value;
    this.target.replaceChildren(el("option", { value: "" }, "The whole map"));
    for (const room of rooms) this.target.append(el("option", { value: String(room.id) }, room.name));
    this.target.value = current;
  }

  async startRecording() {
    const mimeType = pickMimeType();
    if (!mimeType || !navigator.mediaDevices) {
      this.notice("This browser cannot record audio here", "error");
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (err) {
      this.notice("The microphone is not available", "error");
      return;
    }
    const chunks = [];
    const recorder = new MediaRecorder(stream, { mimeType });
    recorder.ondataavailable = (e) => e.data.size && chunks.push(e.data);
    recorder.onstop = () => {
      stream.getTracks().forEach((t) => t.stop());
      this.clip = new Blob(chunks, { type: recorder.mimeType || mimeType });
      this.clipState.textContent = `clip: ${((Date.now() - this.recordStart) / 1000).toFixed(1)} s`;
      this.recordBtn.textContent = "● Record again";
      this.recorder = null;
    };
    this.recorder = recorder;
    this.recordStart = Date.now();
    recorder.start();
    this.recordBtn.textContent = "■ Stop";
    this.clipState.textContent = "recording… (30 s at most)";
    this.recordTimer = setTimeout(() => this.stopRecording(), MAX_RECORD_MS);
  }

  stopRecording() {
    clearTimeout(this.recordTimer);
    if (this.recorder && this.recorder.state !== "inactive") this.recorder.stop();
  }

  async send() {
    const text = this.text.value.trim();
    if (!text) return;
    const url = `/api/maps/${this.state.mapId}/announcements/`;
    const headers = { Accept: "application/json", "X-CSRFToken": csrfToken() };
    let body;
    if (this.clip) {
      body = new FormData();
      body.append("text", text);
      if (this.target.value) body.append("room", this.target.value);
      body.append("audio", this.clip, this.clip.type.includes("ogg") ? "clip.ogg" : "clip.webm");
    } else {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify({ text, room: this.target.value ? Number(this.target.value) : null });
    }
    let result;
    try {
      result = await jsonResult(await fetch(url, { method: "POST", credentials: "same-origin", headers, body }));
    } catch (err) {
      result = { ok: false, message: "Not connected right now; try again in a moment." };
    }
    if (!result.ok) {
      this.notice(result.message, "error");
      return;
    }
    this.text.value = "";
    this.clip = null;
    this.clipState.textContent = "";
    this.recordBtn.textContent = "● Record";
    this.form.hidden = true;
    this.toggle.setAttribute("aria-expanded", "false");
  }

  // --- the banner ---

  showAnnouncement(a) {
    if (!a || this.banners.querySelector(`[data-announcement="${a.id}"]`)) return;
    const banner = el("div", { class: "megaphone-banner", role: "alert", "data-announcement": String(a.id) });
    const who = el("strong", "megaphone-author", a.author.name);
    const where = el("span", "megaphone-where", a.room_name ? `to ${a.room_name}:` : "to everyone:");
    const text = el("span", "megaphone-text", a.text);
    const close = el("button", { type: "button", class: "megaphone-close", "aria-label": "Dismiss" }, "×");
    close.addEventListener("click", () => banner.remove());
    banner.append(el("span", { class: "megaphone-icon", "aria-hidden": "true" }), who, where, text);
    if (a.audio_url) {
      const audio = new Audio(a.audio_url);
      banner._audio = audio;
      banner.dataset.audio = "loading";
      audio.play().then(() => { banner.dataset.audio = "playing"; }).catch(() => {
        banner.dataset.audio = "blocked";
        // Autoplay was refused (no gesture on this page yet): let the member start it.
        const play = el("button", { type: "button", class: "btn btn-light btn-small megaphone-play" }, "▶ Play");
        play.addEventListener("click", () => {
          audio.play().then(() => { banner.dataset.audio = "playing"; })
            .catch(() => this.notice("The clip could not be played", "error"));
          play.remove();
        });
        banner.insertBefore(play, close);
      });
    }
    banner.append(close);
    this.banners.append(banner);
    const left = Date.parse(a.ends_at) - Date.now();
    setTimeout(() => {
      if (banner._audio) banner._audio.pause();
      banner.remove();
    }, Math.max(5000, Math.min(left, 3600 * 1000)));
  }

  // --- knocking ---

  /** The private room (not mine) whose door is next to where I stand, if any. */
  doorHere() {
    const { layout, you, memberRooms } = this.state;
    if (!layout || !this.state.ready) return null;
    for (const room of layout.rooms || []) {
      if (room.kind !== "private" || memberRooms.has(room.id) || room.id === you.room) continue;
      const inside = you.x >= room.x && you.x < room.x + room.width && you.y >= room.y && you.y < room.y + room.height;
      if (inside) continue;
      if ((room.doors || []).some(([dx, dy]) => Math.max(Math.abs(dx - you.x), Math.abs(dy - you.y)) <= 1)) return room;
    }
    return null;
  }

  watchDoor() {
    // A guest pass ends when I walk out: forget the room so the map stops offering it.
    const here = this.state.you.room;
    if (this.guestInside != null && here !== this.guestInside) {
      this.guestRooms.delete(this.guestInside);
      this.state.memberRooms.delete(this.guestInside);
      this.guestInside = null;
    }
    if (this.guestRooms.has(here)) this.guestInside = here;
    const room = this.doorHere();
    if (!room) {
      if (!this.knocking) this.knockBar.hidden = true;
      return;
    }
    if (this.knockBar.dataset.room === String(room.id) && !this.knockBar.hidden) return;
    this.renderKnockButton(room);
  }

  onRejected(frame) {
    if (!/is private/.test(frame.reason || "")) return;
    const room = this.doorHere();
    if (room) this.renderKnockButton(room);
  }

  renderKnockButton(room) {
    this.knockBar.dataset.room = String(room.id);
    const button = el("button", { type: "button", class: "btn btn-primary btn-small", id: "knock-button" },
      `Knock on ${room.name}`);
    button.addEventListener("click", () => this.socket.send({ type: "room.knock", room: room.id }));
    this.knockBar.replaceChildren(el("span", "knock-text", `${room.name} is private.`), button);
    this.knockBar.hidden = false;
  }

  onKnockResult(f) {
    const room = this.state.geo && this.state.geo.roomById.get(f.room);
    const name = room ? room.name : "the room";
    if (f.result === "waiting") {
      this.knocking = { knock: f.knock, room: f.room };
      this.knockBar.replaceChildren(el("span", "knock-text", `Knocking on ${name}… waiting for a member to answer`));
      this.knockBar.hidden = false;
      return;
    }
    this.knocking = null;
    this.knockBar.hidden = true;
    if (f.result === "accepted") {
      this.guestRooms.add(f.room);
      this.state.memberRooms.add(f.room);
      this.notice(`${f.by} let you into ${name}: step in`, "info", 6000);
    } else if (f.result === "ignored") {
      this.notice(`No one let you into ${name}`, "warn", 6000);
    } else {
      this.notice(`No one answered at ${name}`, "warn", 6000);
    }
  }

  showKnockPrompt(knock, answerWithin) {
    if (!knock || this.prompts.has(knock.id)) return;
    const box = el("div", { class: "knock-prompt", role: "alertdialog", "data-knock": String(knock.id),
      "aria-label": `${knock.user.name} is knocking` });
    const letIn = el("button", { type: "button", class: "btn btn-primary btn-small knock-let-in" }, "Let in");
    const ignore = el("button", { type: "button", class: "btn btn-light btn-small knock-ignore" }, "Ignore");
    const answer = (yes) => {
      this.socket.send({ type: "room.knock.answer", knock: knock.id, let_in: yes });
      this.closeKnockPrompt(knock.id);
    };
    letIn.addEventListener("click", () => answer(true));
    ignore.addEventListener("click", () => answer(false));
    box.append(el("span", "knock-text", `${knock.user.name} is knocking on ${knock.room_name} — `), letIn, ignore);
    this.prompt.append(box);
    this.prompts.set(knock.id, box);
    setTimeout(() => this.closeKnockPrompt(knock.id), (answerWithin || 30) * 1000);
  }

  closeKnockPrompt(id) {
    const box = this.prompts.get(id);
    if (box) box.remove();
    this.prompts.delete(id);
  }
}
