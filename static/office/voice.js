// Audio in the office: one shared microphone (AudioHub: getUserMedia, device picker, mute, level
// meters) and proximity voice (ProximityVoice: one browser-to-browser WebRTC connection per person
// you may hear, signalled through `voice.signal` frames; volume falls with distance in open space).
// Video (video.js) rides on the same connections: it adds transceivers and the connection is
// renegotiated over the same relay (perfect negotiation: the lower id is the impolite side).
// A walled room that Office moved to the SFU (docs/adr/0023, `sfu.join`) is heard through sfu.js
// instead: the page hangs up its mesh calls with the people of that room, publishes the microphone
// there and plays every other publisher; walking out (or a revoke) returns it to the mesh. Camera and
// screen go there too while the page is in the SFU (video.js publishes them, and plays the others').

import { el } from "./lib/dom.js";
import { SfuSession } from "./sfu.js";

export const VOICE_RADIUS_TILES = 6;
const SPEAKING_LEVEL = 0.02; // RMS above which someone counts as speaking
const SPEAKING_HOLD_MS = 350;
const OUT_OF_RANGE_GRACE_MS = 1500; // positions jitter at the edge: do not hang up at once
const RETRY_FAILED_MS = 3000;
const SFU_EXPECTED_WITHIN_MS = 5000; // a crowded room with no grant by then: the SFU is unavailable

function newSid() {
  const b = window.crypto.getRandomValues(new Uint8Array(8));
  return [...b].map((v) => v.toString(16).padStart(2, "0")).join("");
}

/** The one microphone of this page, shared by the meeting transcription and proximity voice. */
export class AudioHub {
  constructor({ notice } = {}) {
    this.notice = notice || (() => {});
    this.started = false;
    this.starting = null;
    this.stream = null;
    this.track = null;
    this.ctx = null;
    this.muted = false;
    this.deviceId = "";
    this.listeners = new Set(); // fn(kind) with kind "started" | "track" | "muted" | "stopped"
    this.joinBtn = document.getElementById("audio-join");
    this.controls = document.getElementById("audio-controls");
    this.toggleBtn = document.getElementById("mic-toggle");
    this.selectEl = document.getElementById("mic-select");
    this.stateEl = document.getElementById("audio-state");
    this.meterEl = document.getElementById("mic-meter");
    this._bind();
    this._render();
  }

  on(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  _emit(kind) {
    for (const fn of [...this.listeners]) {
      try {
        fn(kind);
      } catch (err) {
        console.error("office: audio listener failed", err);
      }
    }
  }

  _bind() {
    if (this.joinBtn) this.joinBtn.addEventListener("click", () => this.start());
    if (this.toggleBtn) this.toggleBtn.addEventListener("click", () => this.setMuted(!this.muted));
    if (this.selectEl) {
      this.selectEl.addEventListener("change", () => this.useDevice(this.selectEl.value));
    }
    if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
      navigator.mediaDevices.addEventListener("devicechange", () => this.listDevices());
    }
  }

  /** Start the microphone and the AudioContext (call from a user gesture: the "Join audio" button). */
  start() {
    if (this.started) return Promise.resolve(true);
    if (this.starting) return this.starting;
    this.starting = (async () => {
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
        this.notice("This browser cannot use a microphone here (a secure connection is needed)", "error");
        return false;
      }
      try {
        const Ctx = window.AudioContext || window.webkitAudioContext;
        if (Ctx && !this.ctx) this.ctx = new Ctx();
        if (this.ctx && this.ctx.state === "suspended") await this.ctx.resume().catch(() => {});
        await this._open(this.deviceId);
      } catch (err) {
        console.warn("office: microphone refused", err);
        this.notice(err && err.name === "NotAllowedError"
          ? "Microphone access was refused: allow it in the browser to talk"
          : "The microphone could not be started", "error");
        return false;
      } finally {
        this.starting = null;
      }
      this.started = true;
      this._render();
      this.listDevices();
      this._emit("started");
      return true;
    })();
    this._render();
    return this.starting;
  }

  async _open(deviceId) {
    const audio = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
    if (deviceId) audio.deviceId = { exact: deviceId };
    const stream = await navigator.mediaDevices.getUserMedia({ audio });
    const track = stream.getAudioTracks()[0];
    if (!track) throw new Error("no audio track");
    const old = this.stream;
    this.stream = stream;
    this.track = track;
    track.enabled = !this.muted;
    const settings = track.getSettings ? track.getSettings() : {};
    this.deviceId = settings.deviceId || deviceId || "";
    track.addEventListener("ended", () => {
      if (this.track === track) this.notice("The microphone stopped", "warn");
    });
    this.localMeter = this.ctx ? this.meter(stream) : null;
    if (old) for (const t of old.getTracks()) t.stop();
  }

  async useDevice(deviceId) {
    if (!this.started || deviceId === this.deviceId) return;
    try {
      await this._open(deviceId);
    } catch (err) {
      this.notice("That microphone could not be opened", "error");
      return;
    }
    this._renderDevices();
    this._emit("track");
  }

  async listDevices() {
    if (!this.selectEl || !navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
    try {
      this.devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "audioinput");
    } catch (err) {
      this.devices = [];
    }
    this._renderDevices();
  }

  _renderDevices() {
    if (!this.selectEl) return;
    const frag = document.createDocumentFragment();
    (this.devices || []).forEach((d, i) => {
      const opt = el("option", null, d.label || `Microphone ${i + 1}`);
      opt.value = d.deviceId;
      frag.append(opt);
    });
    this.selectEl.replaceChildren(frag);
    if (this.deviceId) this.selectEl.value = this.deviceId;
    this.selectEl.disabled = (this.devices || []).length < 2;
  }

  setMuted(muted) {
    this.muted = !!muted;
    if (this.track) this.track.enabled = !this.muted;
    this._render();
    this._emit("muted");
  }

  /** An analyser on a stream; returns () => RMS level in [0, 1]. */
  meter(stream) {
    if (!this.ctx) return null;
    try {
      const source = this.ctx.createMediaStreamSource(stream);
      const analyser = this.ctx.createAnalyser();
      analyser.fftSize = 512;
      source.connect(analyser);
      const buf = new Float32Array(analyser.fftSize);
      const fn = () => {
        analyser.getFloatTimeDomainData(buf);
        let sum = 0;
        for (let i = 0; i < buf.length; i++) sum += buf[i] * buf[i];
        return Math.sqrt(sum / buf.length);
      };
      fn.disconnect = () => {
        try { source.disconnect(); } catch (err) { /* already */ }
      };
      return fn;
    } catch (err) {
      return null;
    }
  }

  localLevel() {
    if (!this.localMeter || this.muted) return 0;
    return this.localMeter();
  }

  _render() {
    if (this.joinBtn) {
      this.joinBtn.hidden = this.started;
      this.joinBtn.disabled = !!this.starting;
      this.joinBtn.textContent = this.starting ? "Starting…" : "Join audio";
    }
    if (this.controls) this.controls.hidden = !this.started;
    if (this.toggleBtn) {
      this.toggleBtn.textContent = this.muted ? "Unmute" : "Mute";
      this.toggleBtn.setAttribute("aria-pressed", this.muted ? "true" : "false");
      this.toggleBtn.classList.toggle("is-muted", this.muted);
      this.toggleBtn.title = this.muted ? "Your microphone is off" : "Your microphone is on";
    }
    if (this.stateEl) {
      this.stateEl.textContent = !this.started ? "Audio is off" : this.muted ? "Muted" : "Microphone on";
      this.stateEl.dataset.state = !this.started ? "off" : this.muted ? "muted" : "on";
    }
  }
}

/** May two people hear each other? Mirrors transcription/consumers.py voice_allowed. */
export function voiceAllowed(geo, me, other) {
  if (!geo || !me || !other) return false;
  const mine = me.room != null ? geo.roomById.get(me.room) : null;
  const theirs = other.room != null ? geo.roomById.get(other.room) : null;
  const walled = (r) => !!r && (r.kind === "meeting" || r.kind === "private");
  if (walled(mine) || walled(theirs)) return me.room === other.room;
  return Math.max(Math.abs(me.x - other.x), Math.abs(me.y - other.y)) <= VOICE_RADIUS_TILES;
}

/** Volume for a voice: full in the same walled room, 1.0 at ≤ 1 tile → 0.1 at 6 tiles in the open. */
export function voiceVolume(geo, me, other) {
  const mine = me.room != null && geo ? geo.roomById.get(me.room) : null;
  if (mine && mine.kind !== "open" && me.room === other.room) return 1;
  const d = Math.max(Math.abs(me.x - other.x), Math.abs(me.y - other.y));
  if (d <= 1) return 1;
  return Math.max(0.1, 1 - ((d - 1) * 0.9) / (VOICE_RADIUS_TILES - 1));
}

export class ProximityVoice {
  constructor({ socket, state, audio, notice, video }) {
    this.socket = socket;
    this.video = video || null; // VideoCall: camera and screen over these connections
    if (this.video) this.video.attach(this);
    this.state = state;
    this.audio = audio;
    this.notice = notice || (() => {});
    this.peers = new Map(); // user -> {sid, pc, offerer, el, meter, pending: [], remoteSet, outSince, retryTimer}
    this.signalChains = new Map(); // user -> the tail of their signals being handled (see onSignal)
    this.iceServers = [];
    this.iceTransportPolicy = "all";
    this.speakingUntil = new Map(); // user -> ms timestamp
    this.state.speaking = this.state.speaking || new Set();
    this.audioRoot = document.getElementById("voice-audio") || document.body;
    this.countEl = document.getElementById("voice-count");
    this.modeEl = document.getElementById("media-mode");
    this.reconcileTimer = null;
    // The SFU: null, or {room, session, feeds: Map feed -> {user, el, meter}, videoFeeds: Map feed ->
    // {user, source}} while this page is in one.
    this.sfu = null;
    this.sfuGrant = null; // an `sfu.join` not used yet (audio not started)
    this.sfuFailedRoom = null; // the room whose SFU did not answer: a mesh there
    this.crowdedSince = 0;
    const app = document.getElementById("office-app");
    this.sfuOffered = !!app && app.dataset.sfu === "on";
    this.sfuFrom = app ? Number(app.dataset.sfuFrom) || 0 : 0;

    socket.on("hello", (f) => {
      this.iceServers = Array.isArray(f.ice_servers) ? f.ice_servers : [];
      this.iceTransportPolicy = f.ice_transport_policy === "relay" ? "relay" : "all";
      // A new socket is a new visit: the server sends `sfu.join` again if the room is on the SFU.
      this.leaveSfu("reconnected");
      this.sfuGrant = null;
      this.closeAll(false);
      this.schedule();
    });
    socket.on("close", () => {
      this.leaveSfu("disconnected");
      this.closeAll(false);
    });
    socket.on("sfu.join", (f) => this.onSfuJoin(f));
    socket.on("sfu.feeds", (f) => this.onSfuFeeds(f));
    socket.on("voice.signal", (f) => this.onSignal(f.from, f.signal || {}));
    socket.on("error", (f) => {
      if (f.code === "not_nearby" && f.ref === "voice.signal") this.reconcile();
      if (f.code === "sfu_unavailable" && f.ref === "sfu.feeds" && this.sfu) this._askFeedOwners(this.sfu, 1000);
    });
    socket.on("presence.leave", (f) => this.hangUp(f.user, false));
    audio.on((kind) => {
      if (kind === "started") this.reconcile(true);
      if (kind === "track") this.replaceTrack();
    });
    setInterval(() => this._meterTick(), 100);
    setInterval(() => this.reconcile(), 1000);
  }

  me() {
    const st = this.state;
    return st.me ? { x: st.you.x, y: st.you.y, room: st.you.room } : null;
  }

  /** Where another person is, as far as this page knows (null: not known). */
  where(user) {
    const pos = this.state.positions.get(user);
    const person = this.state.presence.get(user);
    if (!pos || !person) return null;
    const room = this.state.geo ? this.state.geo.roomAt(pos.x, pos.y) : null;
    return { x: pos.x, y: pos.y, room: room ? room.id : person.room ?? null };
  }

  inRange(user) {
    const other = this.where(user);
    if (this.sfu && other && other.room === this.sfu.room) return false; // heard through the SFU
    return voiceAllowed(this.state.geo, this.me(), other);
  }

  /** People standing in a room (me included), as far as this page knows. */
  roomHeadcount(room) {
    const st = this.state;
    if (room == null) return 0;
    let n = st.me && st.you.room === room ? 1 : 0;
    for (const user of st.presence.keys()) {
      if (st.me && user === st.me.id) continue;
      const w = this.where(user);
      if (w && w.room === room) n += 1;
    }
    return n;
  }

  // --- the SFU ---

  onSfuJoin(frame) {
    const me = this.me();
    if (!me || !frame || !frame.sfu || frame.room !== me.room) return;
    this.sfuFailedRoom = null;
    this.sfuGrant = frame;
    if (this.sfu) this.leaveSfu("granted again"); // a reloaded grant: start over with it
    this.reconcile();
  }

  async enterSfu(frame) {
    this.sfuGrant = null;
    // owners: feed -> the member Office says published it; waiting: tracks of feeds not confirmed yet.
    const entry = { room: frame.room, session: null, feeds: new Map(), videoFeeds: new Map(),
                    owners: new Map(), waiting: new Map(), askTimer: null };
    this.sfu = entry;
    for (const user of [...this.peers.keys()]) {
      const w = this.where(user);
      if (w && w.room === entry.room) this.hangUp(user, true);
    }
    entry.session = new SfuSession(frame.sfu, {
      track: this.audio.track,
      display: String(this.state.me.id),
      iceServers: this.iceServers,
      onTrack: (feed, track, display) => this._onSfuTrack(entry, feed, track, display),
      onGone: (feed) => this._dropFeed(entry, feed),
      onClosed: () => {
        if (this.sfu !== entry) return;
        this._endSfu(entry);
        this.schedule(); // back to the mesh
      },
    });
    this._renderCount();
    try {
      await entry.session.start();
      if (this.sfu === entry && this.video) this.video.onSfuStarted(entry);
    } catch (err) {
      console.warn("office: the SFU could not be joined; staying a mesh", err);
      if (this.sfu === entry) this.sfuFailedRoom = entry.room;
      entry.session.stop("failed");
    }
    this._renderCount();
  }

  leaveSfu(why) {
    const entry = this.sfu;
    if (!entry) return;
    this._endSfu(entry);
    if (entry.session) entry.session.stop(why);
  }

  _endSfu(entry) {
    if (this.sfu !== entry) return;
    this.sfu = null;
    clearTimeout(entry.askTimer);
    entry.waiting.clear();
    for (const feed of [...entry.feeds.keys()]) this._dropFeed(entry, feed);
    for (const feed of [...entry.videoFeeds.keys()]) this._dropFeed(entry, feed);
    if (this.video) this.video.onSfuEnded(entry);
    this._renderCount();
  }

  /** Which source a feed's display names ("12": the microphone, "12:camera", "12:screen"); whose
   *  feed it is comes from Office (`sfu.feeds`), never from the display. */
  static feedSource(display) {
    return String(display).split(":")[1] || "microphone";
  }

  /** A feed's track: played or shown once Office says whose it is. A page names its feeds itself, so
   *  the name is only trusted for which source it is; the person comes from `sfu.feeds`, which Office
   *  tells by the grant the feed was published with (nobody can speak or show up as someone else). */
  _onSfuTrack(entry, feed, track, display) {
    if (this.sfu !== entry) return;
    if (entry.owners.has(feed)) {
      this._attachSfuTrack(entry, feed, track, display, entry.owners.get(feed));
      return;
    }
    const waiting = entry.waiting.get(feed) || { tracks: [], asked: 0 };
    waiting.tracks.push({ track, display });
    entry.waiting.set(feed, waiting);
    this._askFeedOwners(entry, 30);
  }

  _askFeedOwners(entry, delay) {
    if (entry.askTimer || this.sfu !== entry) return;
    entry.askTimer = setTimeout(() => {
      entry.askTimer = null;
      if (this.sfu !== entry || !entry.waiting.size) return;
      for (const waiting of entry.waiting.values()) waiting.asked += 1;
      this.socket.send({ type: "sfu.feeds", room: entry.room });
    }, delay);
  }

  onSfuFeeds(frame) {
    const entry = this.sfu;
    if (!entry || !frame || frame.room !== entry.room || !frame.owners) return;
    for (const [feed, user] of Object.entries(frame.owners)) entry.owners.set(Number(feed), Number(user));
    for (const [feed, waiting] of [...entry.waiting]) {
      if (entry.owners.has(feed)) {
        entry.waiting.delete(feed);
        for (const { track, display } of waiting.tracks) {
          this._attachSfuTrack(entry, feed, track, display, entry.owners.get(feed));
        }
      } else if (waiting.asked >= 6) { // Office never saw it published on a grant of someone here
        entry.waiting.delete(feed);
        console.warn(`office: SFU feed ${feed} belongs to nobody in this room; not played`);
      }
    }
    if (entry.waiting.size) this._askFeedOwners(entry, 500); // published after the scan began
  }

  _attachSfuTrack(entry, feed, track, display, user) {
    const source = ProximityVoice.feedSource(display);
    if (track.kind === "video") {
      if (!["camera", "screen"].includes(source)) return;
      entry.videoFeeds.set(feed, { user, source });
      if (this.video) this.video.onSfuVideo(user, source, feed, track);
      return;
    }
    if (track.kind !== "audio" || source !== "microphone") return;
    this._dropFeed(entry, feed);
    const stream = new MediaStream([track]);
    const audioEl = document.createElement("audio");
    audioEl.autoplay = true;
    audioEl.dataset.feed = String(feed);
    audioEl.dataset.user = String(user);
    audioEl.dataset.via = "sfu";
    this.audioRoot.append(audioEl);
    audioEl.srcObject = stream;
    audioEl.play().catch(() => {});
    entry.feeds.set(feed, { user, el: audioEl, meter: this.audio.meter(stream) });
    if (this.video) this.video.onSfuPerson(user);
    this._renderCount();
  }

  _dropFeed(entry, feed) {
    entry.waiting.delete(feed);
    const seen = entry.videoFeeds.get(feed);
    if (seen) {
      entry.videoFeeds.delete(feed);
      if (this.video) this.video.onSfuVideoGone(seen.user, seen.source, feed);
      return;
    }
    const heard = entry.feeds.get(feed);
    if (!heard) return;
    entry.feeds.delete(feed);
    if (heard.meter && heard.meter.disconnect) heard.meter.disconnect();
    heard.el.srcObject = null;
    heard.el.remove();
    if (this.video && heard.user != null) this.video.onSfuPersonGone(heard.user);
    this._renderCount();
  }

  /** Whether this person stands in the SFU room this page is in (their media state is for us). */
  inSfuRoom(user) {
    const w = this.sfu ? this.where(user) : null;
    return !!w && w.room === this.sfu.room;
  }

  /** The people this page hears through the SFU now (Office user ids). */
  sfuPeople() {
    if (!this.sfu) return [];
    return [...new Set([...this.sfu.feeds.values()].map((h) => h.user).filter((u) => u != null))];
  }

  /** Follow the SFU grant: in it while I stand in its room, out of it (back to the mesh) once I walk out. */
  _reconcileSfu() {
    const me = this.me();
    if (this.sfu && (!me || me.room !== this.sfu.room)) this.leaveSfu("walked out");
    if (this.sfuGrant && (!me || me.room !== this.sfuGrant.room)) this.sfuGrant = null;
    if (!this.sfu && this.sfuGrant && this.audio.started) this.enterSfu(this.sfuGrant);
    if (me && this.sfuFailedRoom !== null && me.room !== this.sfuFailedRoom) this.sfuFailedRoom = null;
  }

  /** Re-check soon who we should be connected to (after moves). */
  schedule() {
    if (this.reconcileTimer) return;
    this.reconcileTimer = setTimeout(() => {
      this.reconcileTimer = null;
      this.reconcile();
    }, 150);
  }

  reconcile(greet = false) {
    const st = this.state;
    if (st.ready && st.me) this._reconcileSfu();
    if (!this.audio.started || !st.ready || !st.me || !this.socket.isOpen) {
      this._renderCount();
      return;
    }
    const now = Date.now();
    const myId = st.me.id;
    for (const user of st.presence.keys()) {
      if (user === myId) continue;
      const peer = this.peers.get(user);
      if (this.inRange(user)) {
        if (peer) {
          peer.outSince = 0;
          this._setVolume(user, peer);
        } else if (myId < user) {
          this.call(user);
        } else if (greet || !this.greeted.has(user)) {
          // The other side makes the offer; tell them we are ready (they may have tried before we were).
          this.greeted.add(user);
          this.socket.send({ type: "voice.signal", to: user, signal: { type: "ready" } });
        }
      } else {
        this.greeted.delete(user);
        if (peer) {
          if (!peer.outSince) peer.outSince = now;
          else if (now - peer.outSince > OUT_OF_RANGE_GRACE_MS) this.hangUp(user, true);
        }
      }
    }
    for (const user of [...this.peers.keys()]) {
      if (!st.presence.has(user)) this.hangUp(user, false);
    }
    this._renderCount();
  }

  get greeted() {
    if (!this._greeted) this._greeted = new Set();
    return this._greeted;
  }

  _newPeer(user, sid, offerer) {
    this.hangUp(user, false);
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, iceTransportPolicy: this.iceTransportPolicy });
    const peer = {
      user, sid, pc, offerer, el: null, meter: null, pending: [], remoteSet: false, outSince: 0, making: false,
    };
    this.peers.set(user, peer);
    if (this.audio.track) pc.addTrack(this.audio.track, this.audio.stream);
    else pc.addTransceiver("audio", { direction: "recvonly" });
    if (this.video) this.video.onPeer(peer);
    // After the first offer/answer, a change of tracks (camera, screen) renegotiates.
    pc.onnegotiationneeded = () => this._renegotiate(peer);
    // A track added before the call's first answer (a camera already on) may miss its event: check
    // again whenever the call is stable.
    pc.addEventListener("signalingstatechange", () => {
      if (pc.signalingState === "stable") setTimeout(() => this._renegotiateIfUnsent(peer), 0);
    });
    pc.onicecandidate = (e) => {
      if (!e.candidate || this.peers.get(user) !== peer) return;
      const c = e.candidate.toJSON ? e.candidate.toJSON() : e.candidate;
      this.socket.send({
        type: "voice.signal", to: user,
        signal: { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex, sid },
      });
    };
    pc.ontrack = (e) => {
      if (this.peers.get(user) !== peer) return;
      if (e.track.kind === "video") {
        if (this.video) this.video.onRemoteTrack(peer, e);
        return;
      }
      const stream = e.streams && e.streams[0] ? e.streams[0] : new MediaStream([e.track]);
      if (!peer.el) {
        peer.el = document.createElement("audio");
        peer.el.autoplay = true;
        peer.el.dataset.user = String(user);
        this.audioRoot.append(peer.el);
      }
      peer.el.srcObject = stream;
      peer.el.play().catch(() => {});
      if (peer.meter && peer.meter.disconnect) peer.meter.disconnect();
      peer.meter = this.audio.meter(stream);
      this._setVolume(user, peer);
    };
    pc.onconnectionstatechange = () => {
      if (this.peers.get(user) !== peer) return;
      if (pc.connectionState === "failed") {
        this.hangUp(user, false);
        if (offerer) setTimeout(() => this.reconcile(), RETRY_FAILED_MS);
      }
      if (pc.connectionState === "connected" && this.video) this.video.onConnected(peer);
      if (pc.connectionState === "connected") this._renegotiateIfUnsent(peer);
      this._renderCount();
    };
    return peer;
  }

  async call(user) {
    const peer = this._newPeer(user, newSid(), true);
    try {
      const offer = await peer.pc.createOffer();
      if (this.peers.get(user) !== peer) return;
      await peer.pc.setLocalDescription(offer);
      if (this.peers.get(user) !== peer) return;
      this.socket.send({
        type: "voice.signal", to: user,
        signal: { type: "offer", sdp: peer.pc.localDescription.sdp, sid: peer.sid },
      });
    } catch (err) {
      console.warn("office: voice offer failed", err);
      this.hangUp(user, false);
    }
  }

  /** A change of tracks on a connection that is up: offer again (same sid). */
  async _renegotiate(peer) {
    const pc = peer.pc;
    if (this.peers.get(peer.user) !== peer || !peer.remoteSet || pc.signalingState !== "stable") return;
    try {
      peer.making = true;
      await pc.setLocalDescription();
      if (this.peers.get(peer.user) !== peer) return;
      this.socket.send({
        type: "voice.signal", to: peer.user,
        signal: { type: "offer", sdp: pc.localDescription.sdp, sid: peer.sid, renegotiate: true },
      });
    } catch (err) {
      console.warn("office: voice renegotiation failed", err);
    } finally {
      peer.making = false;
    }
  }

  /** Offer again if a sender with a track has never been negotiated (a missed negotiationneeded);
   * a few times at most, so a side that keeps refusing cannot make a loop. */
  _renegotiateIfUnsent(peer) {
    const pc = peer.pc;
    if (this.peers.get(peer.user) !== peer || !peer.remoteSet || peer.making || pc.signalingState !== "stable") return;
    const unsent = pc.getTransceivers().some((t) => t.sender.track && ["sendonly", "sendrecv"].includes(t.direction)
      && !["sendonly", "sendrecv"].includes(t.currentDirection));
    if (!unsent || (peer.unsentRetries || 0) >= 3) return;
    peer.unsentRetries = (peer.unsentRetries || 0) + 1;
    this._renegotiate(peer);
  }

  /** Their change of tracks. On a collision the higher id (polite) yields, the lower one ignores theirs. */
  async _onRenegotiation(peer, signal) {
    const pc = peer.pc;
    const polite = this.state.me.id > peer.user;
    const collision = peer.making || pc.signalingState !== "stable";
    if (collision && !polite) return;
    await pc.setRemoteDescription({ type: "offer", sdp: signal.sdp }); // rolls our offer back if need be
    await pc.setLocalDescription();
    if (this.peers.get(peer.user) !== peer) return;
    this.socket.send({
      type: "voice.signal", to: peer.user,
      signal: { type: "answer", sdp: pc.localDescription.sdp, sid: peer.sid },
    });
  }

  /** Signals from one person are handled one after the other: their renegotiation offer may come
   * right behind their answer, and must find that answer applied (it was dropped, and their side
   * waited for an answer forever). */
  onSignal(from, signal) {
    const next = (this.signalChains.get(from) || Promise.resolve()).then(() => this._handleSignal(from, signal));
    const tail = next.catch(() => {}).finally(() => {
      if (this.signalChains.get(from) === tail) this.signalChains.delete(from);
    });
    this.signalChains.set(from, tail);
    return next;
  }

  async _handleSignal(from, signal) {
    if (!this.audio.started || !this.state.me || typeof from !== "number") return;
    const myId = this.state.me.id;
    let peer = this.peers.get(from);
    if (this.sfu && (signal.type === "offer" || signal.type === "ready")) {
      const w = this.where(from);
      if (w && w.room === this.sfu.room) {
        // We hear each other through the SFU: no mesh call (they stop calling once granted too).
        this.socket.send({ type: "voice.signal", to: from, signal: { type: "bye", sid: signal.sid } });
        return;
      }
    }
    try {
      if (signal.type === "media") {
        if (this.video && (peer || this.inSfuRoom(from))) this.video.onSignal(from, signal);
        return;
      }
      if (signal.type === "ready") {
        // They had no connection with us: make a fresh offer (we are the offerer by id).
        if (myId < from) this.call(from);
        return;
      }
      if (signal.type === "bye") {
        if (peer && (!signal.sid || signal.sid === peer.sid)) this.hangUp(from, false);
        return;
      }
      if (signal.type === "offer" && signal.renegotiate) {
        if (peer && peer.remoteSet && signal.sid === peer.sid) await this._onRenegotiation(peer, signal);
        return; // for a call we no longer have: reconcile() calls again
      }
      if (signal.type === "offer") {
        if (myId < from && peer && peer.offerer) return; // glare: the lower id offers, ignore theirs
        peer = this._newPeer(from, signal.sid || "", false);
        await peer.pc.setRemoteDescription({ type: "offer", sdp: signal.sdp });
        peer.remoteSet = true;
        await this._flushCandidates(peer);
        const answer = await peer.pc.createAnswer();
        if (this.peers.get(from) !== peer) return;
        await peer.pc.setLocalDescription(answer);
        this.socket.send({
          type: "voice.signal", to: from,
          signal: { type: "answer", sdp: peer.pc.localDescription.sdp, sid: peer.sid },
        });
        return;
      }
      if (signal.type === "answer") {
        // The first answer comes to the offerer; answers to renegotiations may come to either side.
        if (!peer || (signal.sid && signal.sid !== peer.sid)) return;
        if (peer.pc.signalingState !== "have-local-offer") return;
        await peer.pc.setRemoteDescription({ type: "answer", sdp: signal.sdp });
        peer.remoteSet = true;
        await this._flushCandidates(peer);
        return;
      }
      if (signal.candidate !== undefined) {
        if (!peer || (signal.sid && signal.sid !== peer.sid)) return;
        const c = { candidate: signal.candidate, sdpMid: signal.sdpMid, sdpMLineIndex: signal.sdpMLineIndex };
        if (peer.remoteSet) await peer.pc.addIceCandidate(c).catch(() => {});
        else peer.pending.push(c);
      }
    } catch (err) {
      console.warn("office: voice signalling failed", err);
      if (peer && this.peers.get(from) === peer) this.hangUp(from, false);
    }
  }

  async _flushCandidates(peer) {
    const pending = peer.pending.splice(0);
    for (const c of pending) await peer.pc.addIceCandidate(c).catch(() => {});
  }

  hangUp(user, tell) {
    const peer = this.peers.get(user);
    if (!peer) return;
    this.peers.delete(user);
    if (tell) this.socket.send({ type: "voice.signal", to: user, signal: { type: "bye", sid: peer.sid } });
    try { peer.pc.close(); } catch (err) { /* closed */ }
    if (peer.meter && peer.meter.disconnect) peer.meter.disconnect();
    if (peer.el) {
      peer.el.srcObject = null;
      peer.el.remove();
    }
    this.speakingUntil.delete(user);
    this.state.speaking.delete(user);
    if (this.video) this.video.onHangUp(peer);
    this._renderCount();
  }

  closeAll(tell) {
    for (const user of [...this.peers.keys()]) this.hangUp(user, tell);
    this.greeted.clear();
  }

  replaceTrack() {
    if (this.sfu && this.sfu.session) this.sfu.session.replaceTrack(this.audio.track);
    for (const peer of this.peers.values()) {
      for (const t of peer.pc.getTransceivers()) {
        // the audio transceiver only (video senders may have no track while the camera is off)
        if (t.receiver.track && t.receiver.track.kind === "audio") t.sender.replaceTrack(this.audio.track).catch(() => {});
      }
    }
  }

  _setVolume(user, peer) {
    if (!peer.el) return;
    const other = this.where(user);
    const me = this.me();
    if (!other || !me) return;
    peer.el.volume = voiceVolume(this.state.geo, me, other);
  }

  _meterTick() {
    const now = Date.now();
    const st = this.state;
    if (!st.me) return;
    const levels = [[st.me.id, this.audio.localLevel()]];
    for (const [user, peer] of this.peers) levels.push([user, peer.meter ? peer.meter() : 0]);
    if (this.sfu) {
      for (const heard of this.sfu.feeds.values()) {
        if (heard.user != null) levels.push([heard.user, heard.meter ? heard.meter() : 0]);
      }
    }
    for (const [user, level] of levels) {
      if (level > SPEAKING_LEVEL) this.speakingUntil.set(user, now + SPEAKING_HOLD_MS);
    }
    for (const [user, until] of [...this.speakingUntil]) {
      if (until < now) this.speakingUntil.delete(user);
    }
    st.speaking.clear();
    for (const user of this.speakingUntil.keys()) st.speaking.add(user);
    const meterEl = this.audio.meterEl;
    if (meterEl) meterEl.style.setProperty("--level", String(Math.min(1, this.audio.localLevel() * 8)));
  }

  /** How this page hears the room: "sfu", "mesh", or "sfu-unavailable" (crowded, but no SFU). */
  mediaMode() {
    const me = this.me();
    if (this.sfu) return { mode: "sfu", people: this.roomHeadcount(this.sfu.room) };
    const room = me && me.room != null && this.state.geo ? this.state.geo.roomById.get(me.room) : null;
    const walled = !!room && room.kind !== "open";
    const connected = [...this.peers.values()].filter((p) => p.pc.connectionState === "connected").length;
    const people = walled ? this.roomHeadcount(me.room) : connected + 1;
    let unavailable = false;
    if (walled && this.sfuFrom && people >= this.sfuFrom) {
      if (!this.crowdedSince) this.crowdedSince = Date.now();
      unavailable = !this.sfuOffered || this.sfuFailedRoom === me.room
        || (!this.sfuGrant && Date.now() - this.crowdedSince > SFU_EXPECTED_WITHIN_MS);
    } else {
      this.crowdedSince = 0;
    }
    return { mode: unavailable ? "sfu-unavailable" : "mesh", people };
  }

  _renderCount() {
    if (this.modeEl) {
      const { mode, people } = this.mediaMode();
      const label = `${people} ${people === 1 ? "person" : "people"}`;
      this.modeEl.textContent = !this.audio.started ? ""
        : mode === "sfu" ? `Through the SFU (${label})`
          : mode === "sfu-unavailable" ? "SFU unavailable — mesh" : `Mesh (${label})`;
      this.modeEl.dataset.mode = mode;
    }
    if (!this.countEl) return;
    const n = this.sfu ? this.sfu.feeds.size
      : [...this.peers.values()].filter((p) => p.pc.connectionState === "connected").length;
    this.countEl.textContent = !this.audio.started ? "" : n ? `talking with ${n}` : "nobody within earshot";
    this.countEl.dataset.count = String(n);
  }
}
