// The Meeting panel: recording indicator, participants and consent, live captions, and the
// microphone attached to the meeting's server peer (WebRTC offer over the office socket, no trickle).
// While the server listens to the room through the SFU (`meeting.audio_via_sfu` {room, active}), the
// transcriber takes each speaker's feed from there: the page then sends no upload of its own.

import { AgendaPanel } from "./agenda.js";
import { el } from "./lib/dom.js";
import { formatTime } from "./lib/format.js";
import { getJson } from "./lib/http.js";

const MAX_CAPTIONS = 50;
const ICE_GATHER_TIMEOUT_MS = 5000;
const PARTIAL_STALE_MS = 20000;

/** Resolve once ICE gathering is complete (the server does not trickle), or after a timeout. */
export function iceGatheringComplete(pc, timeoutMs = ICE_GATHER_TIMEOUT_MS) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      pc.removeEventListener("icegatheringstatechange", check);
      clearTimeout(timer);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

export class MeetingPanel {
  constructor({ socket, state, audio, notice }) {
    this.socket = socket;
    this.state = state;
    this.audio = audio;
    this.notice = notice || (() => {});
    this.meeting = null; // latest meeting.state payload for the room I am in
    this.iceServers = [];
    this.iceTransportPolicy = "all";
    this.pc = null;
    this.attachState = "off"; // off | connecting | on
    this.attachGen = 0;
    this.lagging = new Map(); // speaker id -> lag_s
    this.captionsFor = null; // meeting id the caption list belongs to
    this.seenSeqs = new Set();
    this.audioViaSfuRoom = null; // the room whose transcriber listens through the SFU, if any

    this.panel = document.getElementById("meeting-panel");
    this.titleEl = document.getElementById("meeting-title");
    this.indicator = document.getElementById("recording-indicator");
    this.peopleEl = document.getElementById("meeting-participants");
    this.consentEl = document.getElementById("consent-toggle");
    this.micStateEl = document.getElementById("meeting-mic-state");
    this.lagEl = document.getElementById("transcription-lag");
    this.captionsEl = document.getElementById("captions");
    this.linkEl = document.getElementById("meeting-link");
    this.agenda = new AgendaPanel({ socket, state, notice: this.notice }); // the booked meeting's agenda, beside this panel
    this._bind();
    this.render();
  }

  _bind() {
    const s = this.socket;
    s.on("hello", (f) => {
      this.iceServers = Array.isArray(f.ice_servers) ? f.ice_servers : [];
      this.iceTransportPolicy = f.ice_transport_policy === "relay" ? "relay" : "all";
      // A new connection: the server peer of the old one is gone; meeting.state follows if we are in one.
      this._dropPc();
      this.meeting = null;
      this.audioViaSfuRoom = null; // told again for the new socket if still so
      this.render();
    });
    s.on("close", () => {
      this._dropPc();
      this.render();
    });
    s.on("meeting.state", (f) => this.onState(f.meeting));
    s.on("rtc.answer", (f) => this.onAnswer(f));
    s.on("caption.partial", (f) => this.onPartial(f));
    s.on("caption.final", (f) => this.onFinal(f.segment));
    s.on("transcription.status", (f) => this.onStatus(f));
    s.on("meeting.audio_via_sfu", (f) => this.onAudioViaSfu(f));
    s.on("error", (f) => {
      if (f.ref === "rtc.offer") {
        this._dropPc();
        if (f.code === "not_transcribed" && this.meeting) this._myParticipant(true);
        // The server hears this room through the SFU already (its frame may be on the way): no upload.
        if (f.code === "audio_via_sfu") this.audioViaSfuRoom = this.state.you.room;
        this.renderMic();
      }
    });
    this.consentEl.addEventListener("change", () => {
      const transcribe = this.consentEl.checked;
      if (!this.meeting || !this.socket.send({ type: "meeting.consent", transcribe })) {
        this.consentEl.checked = !transcribe;
        this.notice("Not connected right now", "warn");
        return;
      }
      const mine = this._myParticipant();
      if (mine) mine.transcribed = transcribe;
      if (!transcribe) this.detach(false); // the server closes our peer itself
      this.render();
      this.reconcile();
    });
    this.audio.on((kind) => {
      if (kind === "started") this.reconcile();
      if (kind === "track" && this.pc) {
        for (const sender of this.pc.getSenders()) sender.replaceTrack(this.audio.track).catch(() => {});
      }
      if (kind === "muted" || kind === "started") this.renderMic();
    });
  }

  // --- state ---

  get active() {
    const m = this.meeting;
    return !!m && m.recording && !m.ended_at && m.room === this.state.you.room;
  }

  _myParticipant(optedOut = false) {
    const me = this.state.me && this.state.me.id;
    if (!this.meeting || me == null) return null;
    const mine = (this.meeting.participants || []).find((p) => p.user === me) || null;
    if (mine && optedOut) mine.transcribed = false;
    return mine;
  }

  /** The transcriber hears my room through the SFU: no upload of my own. */
  get audioViaSfu() {
    return this.audioViaSfuRoom != null && this.audioViaSfuRoom === this.state.you.room;
  }

  onAudioViaSfu(frame) {
    if (!frame || frame.room == null) return;
    if (frame.active) this.audioViaSfuRoom = frame.room;
    else if (this.audioViaSfuRoom === frame.room) this.audioViaSfuRoom = null;
    this.reconcile(); // closes the upload (active) or starts it again (inactive)
  }

  get transcribed() {
    const mine = this._myParticipant();
    return !mine || mine.transcribed !== false;
  }

  onState(meeting) {
    if (!meeting) return;
    const changed = !this.meeting || this.meeting.id !== meeting.id;
    this.meeting = meeting;
    if (meeting.ended_at || !meeting.recording) this.lagging.clear();
    if (changed || this.captionsFor !== meeting.id) this._resetCaptions(meeting.id);
    for (const p of meeting.participants || []) {
      if (!p.transcribed) this._dropPartial(p.user); // opted out: what was being guessed is not said
    }
    this.render();
    this.reconcile();
  }

  /** Called by main.js when my (predicted) room changes. */
  onRoomChanged(room) {
    this.agenda.onRoomChanged(room);
    if (this.meeting && this.meeting.room !== room) {
      // Out of the room the meeting is no longer ours; coming back, the server sends a fresh meeting.state.
      this.meeting = null;
      this.lagging.clear();
    }
    this.render();
    this.reconcile();
  }

  /** Attach or detach the microphone so that it matches where I am and what I agreed to. */
  reconcile() {
    const want = this.active && this.transcribed && !this.audioViaSfu && this.audio.started && this.state.ready
      && this.socket.isOpen;
    if (want && !this.pc) this.attach();
    else if (!want && this.pc) this.detach(this.socket.isOpen);
    this.renderMic();
  }

  async attach() {
    const gen = ++this.attachGen;
    const meetingId = this.meeting.id;
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, iceTransportPolicy: this.iceTransportPolicy });
    this.pc = pc;
    this.attachState = "connecting";
    this.renderMic();
    pc.addEventListener("connectionstatechange", () => {
      if (this.pc !== pc) return;
      if (pc.connectionState === "connected") this.attachState = "on";
      if (pc.connectionState === "failed") {
        this._dropPc();
        this.notice("The microphone could not reach the transcriber; retrying", "warn");
        setTimeout(() => this.reconcile(), 3000);
      }
      this.renderMic();
    });
    try {
      // The microphone only: camera and screen (video.js) go to the people in the room, never to
      // the transcriber (whose server peer answers any video `inactive` anyway).
      pc.addTrack(this.audio.track, this.audio.stream);
      await pc.setLocalDescription(await pc.createOffer());
      await iceGatheringComplete(pc);
      if (gen !== this.attachGen || this.pc !== pc) return;
      if (/^m=video/m.test(pc.localDescription.sdp)) throw new Error("the transcriber takes audio only");
      if (!this.active || this.meeting.id !== meetingId || this.audioViaSfu) {
        this.detach(false); // the meeting changed while we gathered: start over for the current one
        this.reconcile();
        return;
      }
      this.offerGen = gen;
      if (!this.socket.send({ type: "rtc.offer", sdp: pc.localDescription.sdp })) this._dropPc();
    } catch (err) {
      console.warn("office: could not attach the microphone", err);
      if (this.pc === pc) this._dropPc();
    }
    this.renderMic();
  }

  async onAnswer(frame) {
    const pc = this.pc;
    if (!pc || pc.signalingState !== "have-local-offer") return;
    if (!this.meeting || (frame.meeting != null && frame.meeting !== this.meeting.id)) {
      this.detach(true); // attached to a meeting that is not the one shown: start over
      this.reconcile();
      return;
    }
    try {
      await pc.setRemoteDescription({ type: "answer", sdp: frame.sdp });
    } catch (err) {
      console.warn("office: bad answer from the transcriber", err);
      if (this.pc === pc) this.detach(true);
    }
  }

  detach(tell = true) {
    if (!this.pc) return;
    this._dropPc();
    if (tell) this.socket.send({ type: "rtc.close" });
    this.renderMic();
  }

  _dropPc() {
    this.attachGen += 1;
    const pc = this.pc;
    this.pc = null;
    this.attachState = "off";
    if (pc) {
      try { pc.close(); } catch (err) { /* closed */ }
    }
  }

  // --- captions ---

  _resetCaptions(meetingId) {
    this.captionsFor = meetingId;
    this.seenSeqs.clear();
    this.captionsEl.replaceChildren();
    this._backfill(meetingId);
  }

  /** What was said before we came in (or while we reconnected): the tail of the stored transcript. */
  async _backfill(meetingId) {
    const last = this.meeting && this.meeting.last_seq;
    if (!last) return;
    try {
      const after = Math.max(0, last - MAX_CAPTIONS);
      const data = await getJson(`/api/meetings/${meetingId}/transcript/?after=${after}`);
      if (this.captionsFor !== meetingId) return;
      for (const seg of data.segments || []) this.onFinal(seg, true);
    } catch (err) {
      /* live captions still arrive */
    }
  }

  _forMeeting(meetingId) {
    return this.meeting && (meetingId == null || meetingId === this.meeting.id);
  }

  _captionNode(kind, speaker) {
    const node = el("div", `caption ${kind}`);
    node.dataset.speaker = String(speaker.id);
    const head = el("div", "caption-head");
    head.append(el("span", "caption-speaker", speaker.name || "Someone"));
    node.append(head, el("div", "caption-text"));
    return node;
  }

  _stickToBottom(fn) {
    const c = this.captionsEl;
    const atBottom = c.scrollHeight - c.scrollTop - c.clientHeight < 40;
    fn();
    while (c.querySelectorAll(".caption.final").length > MAX_CAPTIONS) c.querySelector(".caption.final").remove();
    if (atBottom) c.scrollTop = c.scrollHeight;
  }

  onPartial(frame) {
    if (!this._forMeeting(frame.meeting) || !frame.speaker) return;
    const text = String(frame.text || "").trim();
    this._stickToBottom(() => {
      let node = this.captionsEl.querySelector(`.caption.partial[data-speaker="${Number(frame.speaker.id)}"]`);
      if (!text) {
        if (node) node.remove();
        return;
      }
      if (!node) node = this._captionNode("partial", frame.speaker);
      node.querySelector(".caption-text").textContent = text;
      clearTimeout(node._stale);
      node._stale = setTimeout(() => node.remove(), PARTIAL_STALE_MS); // the speaker's stream stopped
      this.captionsEl.append(node); // newest at the bottom
    });
    this._setEmpty();
  }

  _dropPartial(userId) {
    const node = this.captionsEl.querySelector(`.caption.partial[data-speaker="${Number(userId)}"]`);
    if (node) node.remove();
  }

  onFinal(seg, backfill = false) {
    if (!seg || !this._forMeeting(seg.meeting) || !seg.speaker) return;
    if (this.seenSeqs.has(seg.seq)) return;
    this.seenSeqs.add(seg.seq);
    this._stickToBottom(() => {
      if (!backfill) {
        const partial = this.captionsEl.querySelector(`.caption.partial[data-speaker="${Number(seg.speaker.id)}"]`);
        if (partial) partial.remove();
      }
      const node = this._captionNode("final", seg.speaker);
      node.dataset.seq = String(seg.seq);
      const time = el("time", "caption-time", formatTime(seg.spoken_at));
      if (seg.spoken_at) time.dateTime = seg.spoken_at;
      node.querySelector(".caption-head").append(time);
      node.querySelector(".caption-text").textContent = seg.text || "";
      // Keep finals in seq order (a backfill may arrive after live captions).
      const later = [...this.captionsEl.querySelectorAll(".caption.final")].find((n) => Number(n.dataset.seq) > seg.seq);
      const firstPartial = this.captionsEl.querySelector(".caption.partial");
      this.captionsEl.insertBefore(node, later || firstPartial || null);
    });
    this._setEmpty();
  }

  onStatus(frame) {
    if (!this._forMeeting(frame.meeting)) return;
    if (frame.lagging) this.lagging.set(frame.speaker, frame.lag_s);
    else this.lagging.delete(frame.speaker);
    this.renderLag();
  }

  _setEmpty() {
    this.captionsEl.dataset.empty = this.captionsEl.children.length ? "false" : "true";
  }

  // --- rendering ---

  render() {
    const m = this.meeting;
    const show = this.active;
    this.panel.hidden = !show;
    document.body.classList.toggle("in-meeting", show);
    if (!show) {
      this.renderMic();
      return;
    }
    const room = this.state.geo && this.state.geo.roomById.get(m.room);
    this.titleEl.textContent = room ? room.name : "Meeting";
    this.linkEl.href = `/meetings/${m.id}/`;
    this.panel.dataset.meeting = String(m.id);
    this.indicator.title = `Started ${formatTime(m.started_at)}`;
    const me = this.state.me && this.state.me.id;
    const frag = document.createDocumentFragment();
    for (const p of m.participants || []) {
      const li = el("li");
      li.dataset.userId = String(p.user);
      li.dataset.transcribed = p.transcribed ? "true" : "false";
      li.append(el("span", "mp-name", p.user === me ? `${p.name} (you)` : p.name));
      li.append(el("span", p.transcribed ? "mp-badge mp-on" : "mp-badge mp-off", p.transcribed ? "transcribed" : "opted out"));
      frag.append(li);
    }
    this.peopleEl.replaceChildren(frag);
    this.consentEl.checked = this.transcribed;
    this._setEmpty();
    this.renderLag();
    this.renderMic();
  }

  renderLag() {
    const lags = [...this.lagging.values()];
    this.lagEl.hidden = !lags.length;
    if (lags.length) {
      const worst = Math.max(...lags.map((v) => Number(v) || 0));
      this.lagEl.textContent = `Captions are lagging${worst ? ` (${worst.toFixed(0)} s behind)` : ""}; nothing is lost.`;
    }
  }

  renderMic() {
    if (!this.micStateEl) return;
    let text;
    let key;
    if (!this.transcribed) {
      text = "You opted out: your microphone is not transcribed";
      key = "opted-out";
    } else if (!this.audio.started) {
      text = "Join audio to be transcribed";
      key = "off";
    } else if (this.audioViaSfu && this.audio.started) {
      text = this.audio.muted ? "Muted: nothing is transcribed" : "Your microphone is transcribed (through the SFU)";
      key = this.audio.muted ? "muted" : "on";
    } else if (this.attachState === "on") {
      text = this.audio.muted ? "Muted: nothing is transcribed" : "Your microphone is transcribed";
      key = this.audio.muted ? "muted" : "on";
    } else if (this.attachState === "connecting") {
      text = "Connecting your microphone…";
      key = "connecting";
    } else {
      text = "Microphone not connected";
      key = "off";
    }
    this.micStateEl.textContent = text;
    this.micStateEl.dataset.state = key;
  }
}
