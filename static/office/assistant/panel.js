// The assistant panel in the office sidebar: its shell (open/closed, room, availability line) and
// socket wiring; it composes the notes, action items and answers modules for the meeting in my room.

import { el } from "../lib/dom.js";
import { apiRequest } from "../lib/http.js";
import {
  askStream,
  catchUpStream,
  jobAnswer,
  renderAnswer,
  renderCatchUp,
  renderCatchUpSummary,
  renderPartialAnswer,
} from "./answers.js";
import { expertTopic, findExperts, renderExperts } from "./experts.js";
import { ActionItemList } from "./items.js";
import { pickSummary, renderNotes } from "./notes.js";
import { assistantStatus, UNAVAILABLE_TEXT } from "./status.js";

const STATUS_POLL_MS = 30000;
const STATUS_RETRY_MIN_MS = 3000; // after a failed call, but not more often than this
const OPEN_KEY = "office.assistant.open";

// map-look.css's phone layout: the map comes first there, so the panel starts folded (its head and
// item count stay on the map; a tap opens it) unless this person opened it before.
const NARROW = "(max-width: 600px)";

function loadOpen() {
  let saved = null;
  try {
    saved = localStorage.getItem(OPEN_KEY);
  } catch (err) {
    /* private mode: the default for this screen */
  }
  if (saved !== null) return saved !== "false";
  return !(window.matchMedia && window.matchMedia(NARROW).matches);
}

function saveOpen(open) {
  try {
    localStorage.setItem(OPEN_KEY, open ? "true" : "false");
  } catch (err) {
    /* private mode: the panel just opens again next time */
  }
}

export class AssistantPanel {
  constructor({ socket, state, notice }) {
    this.socket = socket;
    this.state = state;
    this.notice = notice || (() => {});
    this.roomId = null;
    this.meetingId = null;
    this.meetingEnded = false;
    this.summary = null;
    this.loadGen = 0;
    this.loading = false;
    this.liveDuringLoad = []; // frames that arrive while the notes load are applied again after it
    this.statusDown = null; // {down, all} from the last status check
    this.callDown = false; // the last model-backed reply said the model was unavailable
    this.statusTimer = null;
    this.lastStatusAt = 0;
    this.askGen = 0; // a newer question (or walking elsewhere) makes an older answer's events stale
    this.catchUpGen = 0; // the same for catching up
    this.open = loadOpen();

    this.panel = document.getElementById("assistant-panel");
    this.toggleEl = document.getElementById("assistant-toggle");
    this.bodyEl = document.getElementById("assistant-body");
    this.roomEl = document.getElementById("assistant-room");
    this.unavailableEl = document.getElementById("assistant-unavailable");
    this.notesEl = document.getElementById("assistant-notes");
    this.itemsHeadEl = document.getElementById("assistant-items-head");
    this.askForm = document.getElementById("assistant-ask-form");
    this.askInput = document.getElementById("assistant-question");
    this.askButton = document.getElementById("assistant-ask");
    this.answerEl = document.getElementById("assistant-answer");
    this.catchUpButton = document.getElementById("assistant-catch-up");
    this.catchUpEl = document.getElementById("assistant-catch-up-result");
    this.announceEl = document.getElementById("assistant-announce");
    this.items = new ActionItemList({
      listEl: document.getElementById("assistant-items"),
      countEl: document.getElementById("assistant-items-count"),
      members: () => [...this.state.members.values()],
      segmentHref: (item, seq) => `/meetings/${Number(item.meeting)}/#seg-${Number(seq)}`,
      meetingHref: (item) => `/meetings/${Number(item.meeting)}/`,
      reload: () => this.loadNotes(),
      onFailure: () => this.checkStatus(true),
      announce: (text) => this.say(text),
    });
    this._bind();
    this.render();
    this._schedulePoll();
  }

  _bind() {
    const s = this.socket;
    s.on("meeting.state", (f) => this.onMeetingState(f.meeting));
    s.on("meeting.left", (f) => {
      if (f.meeting === this.meetingId) this.setMeeting(null);
    });
    s.on("assistant.summary", (f) => this.onSummary(f.summary));
    s.on("assistant.action_item", (f) => this.onActionItem(f.item));
    this.toggleEl.addEventListener("click", () => this.setOpen(!this.open));
    this.askForm.addEventListener("submit", (e) => {
      e.preventDefault();
      this.ask(this.askInput.value);
    });
    this.catchUpButton.addEventListener("click", () => this.catchUp());
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && this.open) this.checkStatus();
    });
  }

  // --- where I am ---

  /** Called by main.js after each hello: notes are reloaded (frames may have been missed meanwhile). */
  onHello() {
    this.onRoomChanged(this.state.you.room, true);
  }

  /** Called by main.js when my room changes. */
  onRoomChanged(room, reconnect = false) {
    const changed = room !== this.roomId;
    this.roomId = room == null ? null : room;
    if (changed) {
      this.askGen += 1;
      this.catchUpGen += 1;
      this.askButton.disabled = false;
      this.answerEl.hidden = true;
      this.answerEl.replaceChildren();
      this.catchUpEl.hidden = true;
      this.catchUpEl.replaceChildren();
      this.setMeeting(null); // the room's meeting.state follows if there is one
    } else if (reconnect && this.meetingId != null) {
      this.loadNotes();
    }
    this.render();
  }

  onMeetingState(meeting) {
    if (!meeting || meeting.room !== this.state.you.room) return;
    if (this.roomId !== meeting.room) this.onRoomChanged(meeting.room);
    this.meetingEnded = !!meeting.ended_at;
    if (meeting.id !== this.meetingId) this.setMeeting(meeting.id);
    else this.render();
  }

  setMeeting(id) {
    if (id === this.meetingId) return;
    this.meetingId = id;
    this.loading = false;
    this.summary = null;
    this.items.clear();
    this.loadGen += 1;
    this.render();
    if (id != null) this.loadNotes();
  }

  // --- notes ---

  async loadNotes() {
    const id = this.meetingId;
    if (id == null) return;
    const gen = ++this.loadGen;
    this.loading = true;
    this.liveDuringLoad = [];
    const r = await apiRequest(`/api/meetings/${Number(id)}/notes/`);
    if (gen !== this.loadGen || id !== this.meetingId) return;
    this.loading = false;
    if (!r.ok) {
      if (!this.summary) renderNotes(this.notesEl, null, "The notes could not be loaded; they appear as the assistant writes them.");
      if (r.status === 0 || r.status >= 500) this.checkStatus(true);
      return;
    }
    const data = r.data || {};
    this.summary = pickSummary(pickSummary(null, data.rolling), data.final);
    this.items.setAll(Array.isArray(data.action_items) ? data.action_items : []);
    const replay = this.liveDuringLoad;
    this.liveDuringLoad = [];
    for (const [kind, payload] of replay) {
      if (kind === "summary") this.summary = pickSummary(this.summary, payload);
      else this.items.upsert(payload);
    }
    this.renderNotes();
  }

  onSummary(summary) {
    if (!summary || summary.meeting !== this.meetingId) return;
    if (this.loading) this.liveDuringLoad.push(["summary", summary]);
    this.summary = pickSummary(this.summary, summary);
    if (summary.source === "model") this.callDown = false;
    this.renderNotes();
    this.renderAvailability();
  }

  onActionItem(item) {
    if (!item || item.meeting == null || item.meeting !== this.meetingId) return;
    if (this.loading) this.liveDuringLoad.push(["item", item]);
    const isNew = this.items.upsert(item);
    if (isNew && item.status === "proposed") this.say(`New action item proposed: ${item.text}`);
  }

  say(text) {
    if (!this.announceEl) return;
    // A changed text node is announced by the polite live region.
    this.announceEl.textContent = "";
    setTimeout(() => { this.announceEl.textContent = text; }, 50);
  }

  // --- ask and catch up ---

  async ask(question) {
    const q = String(question || "").trim();
    if (!q) {
      this.askInput.focus();
      return;
    }
    const gen = ++this.askGen;
    this.askButton.disabled = true;
    this.answerEl.hidden = false;
    this.answerEl.dataset.state = "asking";
    const topic = expertTopic(q);
    if (topic) { // "who knows about X?": people ranked from every room I may read (no model)
      this.answerEl.replaceChildren(el("p", "answer-pending", "Looking for who knows…"));
      const found = await findExperts(topic);
      if (gen !== this.askGen) return;
      this.askButton.disabled = false;
      renderExperts(this.answerEl, found);
      return;
    }
    this.answerEl.replaceChildren(el("p", "answer-pending", "Looking through what this room knows…"));
    const body = { question: q };
    if (this.roomId != null) body.room = this.roomId;
    let text = "";
    let r = await askStream(body, {
      onEvent: (event) => {
        if (gen !== this.askGen) return;
        if (event.type === "sources" && !text && event.count > 0) {
          const passages = event.count === 1 ? "1 passage" : `${Number(event.count)} passages`;
          this.answerEl.replaceChildren(el("p", "answer-pending", `Writing an answer from ${passages}…`));
        } else if (event.type === "delta") {
          text += String(event.text || "");
          renderPartialAnswer(this.answerEl, text);
        }
      },
    });
    if (r === null && gen === this.askGen) r = await jobAnswer("/api/assistant/ask/", { method: "POST", body });
    if (gen !== this.askGen) return;
    this.askButton.disabled = false;
    renderAnswer(this.answerEl, r);
    this._afterCall(r);
  }

  async catchUp() {
    if (this.roomId == null) return;
    const room = this.roomId;
    const gen = ++this.catchUpGen;
    this.catchUpButton.disabled = true;
    this.catchUpEl.hidden = false;
    this.catchUpEl.dataset.state = "loading";
    this.catchUpEl.replaceChildren(el("p", "answer-pending", "Gathering what happened here…"));
    let summary = "";
    let r = await catchUpStream(room, {
      onEvent: (event) => {
        if (gen !== this.catchUpGen) return;
        if (event.type === "events") {
          const { type: _type, ...data } = event;
          const writing = Array.isArray(data.events) && data.events.length > 0; // else `done` follows at once
          renderCatchUp(this.catchUpEl, { ok: true, status: 200, data, message: "" }, { writing });
        } else if (event.type === "delta") {
          summary += String(event.text || "");
          renderCatchUpSummary(this.catchUpEl, summary);
        }
      },
    });
    if (r === null && gen === this.catchUpGen) r = await jobAnswer(`/api/rooms/${Number(room)}/catch-up/`);
    if (gen !== this.catchUpGen) return;
    this.catchUpButton.disabled = this.roomId == null;
    renderCatchUp(this.catchUpEl, r);
    this._afterCall(r);
  }

  _afterCall(r) {
    if (r.ok && r.data) {
      if (r.data.unavailable) {
        this.callDown = true;
        this.checkStatus(true);
      } else if (r.data.model_call || r.data.source === "model") {
        this.callDown = false; // a model answered
      }
    } else if (r.status === 0 || r.status >= 500) {
      this.checkStatus(true);
    }
    this.renderAvailability();
  }

  // --- availability ---

  async checkStatus(afterFailure = false) {
    if (afterFailure && Date.now() - this.lastStatusAt < STATUS_RETRY_MIN_MS) return;
    this.lastStatusAt = Date.now();
    const status = await assistantStatus();
    if (status) {
      // The breakers open only after a few failures, so "all available" right after a failed call proves
      // little; a recovery (down, then up) does clear it, as does any reply that came from a model.
      const recovered = this.statusDown && this.statusDown.down.length && !status.down.length;
      this.statusDown = status;
      if (recovered) this.callDown = false;
    }
    this.renderAvailability();
  }

  _schedulePoll() {
    clearInterval(this.statusTimer);
    this.statusTimer = setInterval(() => {
      if (this.open && !document.hidden && !this.panel.hidden) this.checkStatus();
    }, STATUS_POLL_MS);
    if (this.open) this.checkStatus();
  }

  get unavailable() {
    return this.callDown || !!(this.statusDown && this.statusDown.all);
  }

  // --- rendering ---

  setOpen(open) {
    this.open = !!open;
    saveOpen(this.open);
    this.render();
    if (this.open) this.checkStatus();
  }

  render() {
    this.panel.dataset.open = this.open ? "true" : "false";
    document.body.classList.toggle("assistant-open", this.open);
    this.toggleEl.setAttribute("aria-expanded", this.open ? "true" : "false");
    this.bodyEl.hidden = !this.open;
    const room = this.roomId != null && this.state.geo ? this.state.geo.roomById.get(this.roomId) : null;
    this.roomEl.textContent = room ? room.name : this.roomId == null ? "Hallway" : "";
    this.panel.dataset.room = this.roomId == null ? "" : String(this.roomId);
    this.panel.dataset.meeting = this.meetingId == null ? "" : String(this.meetingId);
    this.askInput.placeholder = room ? `Ask about ${room.name}…` : "Ask about your rooms…";
    this.catchUpButton.disabled = this.roomId == null;
    this.catchUpButton.title = this.roomId == null ? "Walk into a room first" : "What happened here since you were last in";
    this.itemsHeadEl.hidden = this.meetingId == null;
    this.items.listEl.hidden = this.meetingId == null;
    this.renderNotes();
    this.renderAvailability();
  }

  renderNotes() {
    if (this.meetingId == null) {
      renderNotes(this.notesEl, null, this.roomId == null
        ? "Walk into a room to see its meeting notes."
        : "No meeting here right now. Ask about this room, or catch up below.");
      this.notesEl.dataset.source = "none";
      return;
    }
    renderNotes(this.notesEl, this.summary, this.loading ? "Loading the notes…" : undefined);
  }

  renderAvailability() {
    const down = this.unavailable;
    this.unavailableEl.hidden = !down;
    this.panel.dataset.available = down ? "false" : "true";
    if (!down && this.statusDown && this.statusDown.down.length) {
      this.unavailableEl.hidden = false;
      this.unavailableEl.dataset.partial = "true";
      this.unavailableEl.textContent = `The ${this.statusDown.down.join(" and ")} model is unavailable: answers may be simpler for now.`;
    } else {
      this.unavailableEl.dataset.partial = "false";
      this.unavailableEl.textContent = UNAVAILABLE_TEXT;
    }
  }
}
