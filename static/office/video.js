// Video in the office: the camera and a shared screen, sent over the proximity voice connections
// (voice.js) by adding video transceivers and renegotiating through the same `voice.signal` relay,
// or, in a room that went to the SFU, published there as a publisher per source (sfu.js `setVideo`);
// and the stage that shows them: a tile per person (name, speaking ring, muted microphone), or the
// presenter view while someone shares a screen. Never sent to the transcriber's server peer
// (meeting.js offers the microphone only, transcription/peer.py refuses video, and the transcriber
// subscribes to no SFU feed without audio).

import { el } from "./lib/dom.js";

const SOURCES = ["camera", "screen"];
const STAGE_TICK_MS = 250;

// Caps by how many people we send to (each is its own upload in a mesh). Screens keep their
// resolution (text must stay legible) and give up frame rate instead.
const CAMERA_STEPS = [
  { upTo: 2, height: 720, maxBitrate: 1_200_000, maxFramerate: 30 },
  { upTo: 4, height: 360, maxBitrate: 450_000, maxFramerate: 24 },
  { upTo: Infinity, height: 180, maxBitrate: 150_000, maxFramerate: 15 },
];
const SCREEN_STEPS = [
  { upTo: 2, height: 1080, maxBitrate: 2_500_000, maxFramerate: 15 },
  { upTo: 4, height: 1080, maxBitrate: 1_500_000, maxFramerate: 8 },
  { upTo: Infinity, height: 720, maxBitrate: 800_000, maxFramerate: 5 },
];

/**
 * What one video sender may use: `source` is "camera" or "screen", `peers` how many people it is
 * sent to, `sourceHeight` the captured height in pixels (0 or unknown: no downscaling).
 * Returns RTCRtpEncodingParameters fields plus the degradation preference.
 */
export function videoSendPolicy({ source, peers, sourceHeight = 0 }) {
  const steps = source === "screen" ? SCREEN_STEPS : CAMERA_STEPS;
  const n = Math.max(1, Number(peers) || 1);
  const step = steps.find((s) => n <= s.upTo);
  const scale = sourceHeight > step.height ? sourceHeight / step.height : 1;
  return {
    maxBitrate: step.maxBitrate,
    maxFramerate: step.maxFramerate,
    scaleResolutionDownBy: Math.round(scale * 100) / 100,
    degradationPreference: source === "screen" ? "maintain-resolution" : "balanced",
  };
}

/** The camera and the shared screen of this page, and what they do to each voice connection. */
export class VideoCall {
  constructor({ state, audio, notice } = {}) {
    this.state = state;
    this.audio = audio;
    this.notice = notice || (() => {});
    this.voice = null;
    // One stream per source for the page's lifetime: its id (the SDP msid) tells the others which
    // of our video tracks is the camera and which the screen, across restarts of either.
    this.local = {
      camera: { stream: new MediaStream(), track: null, since: 0 },
      screen: { stream: new MediaStream(), track: null, since: 0 },
    };
    this.remote = new Map(); // user -> {muted, camera: streamId|null, screen: streamId|null}
    this.remoteStreams = new Map(); // user -> Map(streamId -> MediaStream)
    this.sfuVideo = new Map(); // user -> {camera?: {feed, stream, since}, screen?: {feed, stream, since}}
    this.busy = { camera: false, screen: false };
    this.paramChains = new WeakMap(); // sender -> promise: setParameters calls one after the other
    this.cameraBtn = document.getElementById("camera-toggle");
    this.screenBtn = document.getElementById("screen-toggle");
    if (this.cameraBtn) this.cameraBtn.addEventListener("click", () => this.setCamera(!this.local.camera.track));
    if (this.screenBtn) this.screenBtn.addEventListener("click", () => this.setScreen(!this.local.screen.track));
    if (audio) {
      audio.on((kind) => {
        if (kind === "muted") this.broadcastState();
        if (kind === "started" || kind === "muted") this.stage && this.stage.render();
      });
    }
    this.stage = new VideoStage({ call: this, state });
    this._renderButtons();
  }

  /** Called by ProximityVoice once: the connections video rides on. */
  attach(voice) {
    this.voice = voice;
  }

  // --- local sources ---

  async setCamera(on) {
    if (this.busy.camera) return;
    if (!on) return this._stop("camera");
    this.busy.camera = true;
    this._renderButtons();
    try {
      const stream = await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } },
      });
      this._use("camera", stream.getVideoTracks()[0]);
    } catch (err) {
      console.warn("office: camera refused", err);
      this.notice(err && err.name === "NotAllowedError"
        ? "Camera access was refused: allow it in the browser to be seen"
        : "The camera could not be started", "error");
    } finally {
      this.busy.camera = false;
      this._renderButtons();
    }
  }

  async setScreen(on) {
    if (this.busy.screen) return;
    if (!on) return this._stop("screen");
    if (!navigator.mediaDevices || !navigator.mediaDevices.getDisplayMedia) {
      this.notice("This browser cannot share its screen here", "error");
      return;
    }
    this.busy.screen = true;
    this._renderButtons();
    try {
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
      this._use("screen", stream.getVideoTracks()[0]);
    } catch (err) {
      if (!err || err.name !== "NotAllowedError") {
        console.warn("office: screen share failed", err);
        this.notice("The screen could not be shared", "error");
      } // NotAllowedError: the person cancelled the browser's picker
    } finally {
      this.busy.screen = false;
      this._renderButtons();
    }
  }

  _use(source, track) {
    if (!track) return;
    const local = this.local[source];
    const old = local.track;
    if (old) {
      local.stream.removeTrack(old);
      old.stop();
    }
    if (source === "screen") track.contentHint = "detail";
    local.track = track;
    local.since = Date.now();
    local.stream.addTrack(track);
    // The browser's own "Stop sharing" (or an unplugged camera) ends the track.
    track.addEventListener("ended", () => {
      if (this.local[source].track === track) this._stop(source);
    });
    this._changed();
  }

  _stop(source) {
    const local = this.local[source];
    if (!local.track) return;
    const track = local.track;
    local.track = null;
    local.stream.removeTrack(track);
    track.stop();
    this._changed();
  }

  _changed() {
    for (const peer of this._peers()) this._syncPeer(peer);
    this._syncSfu();
    this.broadcastState();
    this._renderButtons();
    this.stage.render();
  }

  _peers() {
    return this.voice ? [...this.voice.peers.values()] : [];
  }

  // --- the voice connections (hooks called by ProximityVoice) ---

  onPeer(peer) {
    peer.video = { tx: { camera: null, screen: null } };
    this._syncPeer(peer);
    this.applyPolicy();
    peer.pc.addEventListener("signalingstatechange", () => {
      if (peer.pc.signalingState === "stable") this._applyPolicyTo(peer);
    });
    this.stage.render();
  }

  onConnected(peer) {
    this._sendState(peer.user);
    this._applyPolicyTo(peer);
    this.stage.render();
  }

  onRemoteTrack(peer, event) {
    const stream = event.streams && event.streams[0] ? event.streams[0] : new MediaStream([event.track]);
    let streams = this.remoteStreams.get(peer.user);
    if (!streams) this.remoteStreams.set(peer.user, (streams = new Map()));
    streams.set(stream.id, stream);
    const rerender = () => this.stage.render();
    event.track.addEventListener("unmute", rerender);
    event.track.addEventListener("mute", rerender);
    event.track.addEventListener("ended", rerender);
    stream.addEventListener("removetrack", rerender);
    this.stage.render();
  }

  onSignal(user, signal) {
    const str = (v) => (typeof v === "string" && v.length <= 100 ? v : null);
    const prev = this.remote.get(user) || {};
    const since = (source, id) => (id && prev[source] === id ? prev[`${source}Since`] : id ? Date.now() : 0);
    this.remote.set(user, {
      muted: signal.muted === true,
      camera: str(signal.camera),
      screen: str(signal.screen),
      cameraSince: since("camera", str(signal.camera)),
      screenSince: since("screen", str(signal.screen)),
    });
    this.stage.render();
  }

  onHangUp(peer) {
    this.remote.delete(peer.user);
    this.remoteStreams.delete(peer.user);
    this.applyPolicy();
    this.stage.render();
  }

  // --- the SFU (hooks called by ProximityVoice while this page is in an SFU room) ---

  _sfuSession() {
    return this.voice && this.voice.sfu ? this.voice.sfu.session : null;
  }

  /** Publish or stop the local sources in the SFU room so they match what is on. */
  _syncSfu() {
    const session = this._sfuSession();
    if (!session) return;
    for (const source of SOURCES) {
      const { track, stream } = this.local[source];
      session.setVideo(source, track, stream).then((sender) => {
        if (sender) this._applySfuPolicy();
      });
    }
  }

  onSfuStarted() {
    this._syncSfu();
    this.broadcastState();
    this.stage.render();
  }

  onSfuEnded() {
    this.sfuVideo.clear();
    this.stage.render();
  }

  onSfuPerson(user) {
    this._sendState(user);
    this._applySfuPolicy();
    this.stage.render();
  }

  onSfuPersonGone(user) {
    if (!this.voice || !this.voice.peers.has(user)) this.remote.delete(user);
    this._applySfuPolicy();
    this.stage.render();
  }

  onSfuVideo(user, source, feed, track) {
    let sources = this.sfuVideo.get(user);
    if (!sources) this.sfuVideo.set(user, (sources = {}));
    sources[source] = { feed, stream: new MediaStream([track]), since: Date.now() };
    const rerender = () => this.stage.render();
    track.addEventListener("unmute", rerender);
    track.addEventListener("mute", rerender);
    track.addEventListener("ended", rerender);
    this.stage.render();
  }

  onSfuVideoGone(user, source, feed) {
    const sources = this.sfuVideo.get(user);
    if (!sources || !sources[source] || sources[source].feed !== feed) return;
    delete sources[source];
    if (!sources.camera && !sources.screen) this.sfuVideo.delete(user);
    this.stage.render();
  }

  /** An SFU room: each source is uploaded once, and everyone there downloads it, so the cap follows
   * the room's size as it does a mesh group's. */
  _applySfuPolicy() {
    const session = this._sfuSession();
    if (!session) return;
    const peers = Math.max(1, this.voice.roomHeadcount(this.voice.sfu.room) - 1);
    for (const source of SOURCES) {
      const sender = session.videoSender(source);
      const track = this.local[source].track;
      if (!sender || !track || sender.track !== track) continue;
      const settings = track.getSettings ? track.getSettings() : {};
      this._setParameters(sender, videoSendPolicy({ source, peers, sourceHeight: settings.height || 0 }));
    }
  }

  /** Add, resume or pause this connection's video senders so they match the local sources. */
  _syncPeer(peer) {
    if (!peer.video || peer.pc.signalingState === "closed") return;
    for (const source of SOURCES) {
      const { track, stream } = this.local[source];
      let tx = peer.video.tx[source];
      try {
        if (track) {
          if (!tx) {
            tx = peer.pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
            peer.video.tx[source] = tx;
          } else {
            if (tx.sender.track !== track) tx.sender.replaceTrack(track).catch(() => {});
            if (tx.direction !== "sendonly") tx.direction = "sendonly"; // renegotiates
          }
        } else if (tx && tx.direction !== "inactive") {
          tx.sender.replaceTrack(null).catch(() => {});
          tx.direction = "inactive"; // renegotiates: the m-line stays for the next time
        }
      } catch (err) {
        console.warn(`office: could not update the ${source} sender`, err);
      }
    }
  }

  applyPolicy() {
    for (const peer of this._peers()) this._applyPolicyTo(peer);
    this._applySfuPolicy();
  }

  _applyPolicyTo(peer) {
    if (!peer.video) return;
    const peers = this.voice ? this.voice.peers.size : 1;
    for (const source of SOURCES) {
      const tx = peer.video.tx[source];
      const track = this.local[source].track;
      if (!tx || !track || tx.sender.track !== track) continue;
      const settings = track.getSettings ? track.getSettings() : {};
      const policy = videoSendPolicy({ source, peers, sourceHeight: settings.height || 0 });
      this._setParameters(tx.sender, policy);
    }
  }

  _setParameters(sender, policy) {
    const prev = this.paramChains.get(sender) || Promise.resolve();
    const next = prev.then(async () => {
      const params = sender.getParameters();
      if (!params.encodings || !params.encodings.length) return; // not negotiated yet: set once stable
      for (const enc of params.encodings) {
        enc.maxBitrate = policy.maxBitrate;
        enc.maxFramerate = policy.maxFramerate;
        enc.scaleResolutionDownBy = policy.scaleResolutionDownBy;
      }
      params.degradationPreference = policy.degradationPreference;
      await sender.setParameters(params);
    }).catch((err) => console.debug("office: video parameters not applied", err));
    this.paramChains.set(sender, next);
    return next;
  }

  // --- what we tell the others ---

  _mediaState() {
    const id = (source) => (this.local[source].track ? this.local[source].stream.id : null);
    return { type: "media", muted: !!(this.audio && this.audio.muted), camera: id("camera"), screen: id("screen") };
  }

  _sendState(user) {
    if (this.voice) this.voice.socket.send({ type: "voice.signal", to: user, signal: this._mediaState() });
  }

  broadcastState() {
    for (const peer of this._peers()) {
      if (peer.pc.connectionState === "connected") this._sendState(peer.user);
    }
    if (this.voice) for (const user of this.voice.sfuPeople()) this._sendState(user);
  }

  _renderButtons() {
    const cam = !!this.local.camera.track;
    const scr = !!this.local.screen.track;
    if (this.cameraBtn) {
      this.cameraBtn.textContent = this.busy.camera ? "Camera…" : cam ? "Stop camera" : "Camera";
      this.cameraBtn.setAttribute("aria-pressed", cam ? "true" : "false");
      this.cameraBtn.classList.toggle("is-on", cam);
      this.cameraBtn.disabled = this.busy.camera;
      this.cameraBtn.title = cam ? "Your camera is on: people who hear you see you" : "Turn your camera on";
    }
    if (this.screenBtn) {
      this.screenBtn.textContent = this.busy.screen ? "Share…" : scr ? "Stop sharing" : "Share screen";
      this.screenBtn.setAttribute("aria-pressed", scr ? "true" : "false");
      this.screenBtn.classList.toggle("is-on", scr);
      this.screenBtn.disabled = this.busy.screen;
      this.screenBtn.title = scr ? "People who hear you see your screen" : "Show your screen to the people who hear you";
    }
  }
}

/** The tiles: me and everyone I am connected to; a shared screen takes the stage when there is one.
 * With several shares the newest of someone else's is on the stage (mine only when no one else
 * shares), the others wait in the strip, and clicking one puts it on the stage until it stops. */
export class VideoStage {
  constructor({ call, state }) {
    this.call = call;
    this.state = state;
    this.root = document.getElementById("video-stage");
    this.mainEl = document.getElementById("video-main");
    this.tilesEl = document.getElementById("video-tiles");
    this.tiles = new Map(); // key ("u12", "s12") -> tile element
    this.pinned = null; // the user whose screen this person chose to watch
    if (this.root) setInterval(() => this._tick(), STAGE_TICK_MS);
  }

  _name(user) {
    const me = this.state.me;
    if (me && user === me.id) return `${me.name || me.username || "You"} (you)`;
    const person = this.state.presence.get(user);
    return (person && person.name) || "Someone";
  }

  /** Who is on the stage and what each shows: [{user, camera: MediaStream|null, screen: MediaStream|null, ...}]. */
  _people() {
    const call = this.call;
    const st = this.state;
    const out = [];
    if (!st.me || !call.audio || !call.audio.started) return out;
    const live = (stream) => (stream && stream.getVideoTracks().some((t) => t.readyState === "live") ? stream : null);
    const mine = call.local;
    out.push({
      user: st.me.id, self: true, muted: call.audio.muted,
      camera: mine.camera.track ? mine.camera.stream : null,
      screen: mine.screen.track ? mine.screen.stream : null,
      screenSince: mine.screen.since,
    });
    for (const peer of call._peers()) {
      const info = call.remote.get(peer.user) || {};
      const streams = call.remoteStreams.get(peer.user) || new Map();
      out.push({
        user: peer.user, self: false, muted: !!info.muted,
        connected: peer.pc.connectionState === "connected",
        camera: info.camera ? live(streams.get(info.camera)) : null,
        screen: info.screen ? live(streams.get(info.screen)) : null,
        screenSince: info.screenSince || 0,
      });
    }
    const meshed = new Set(out.map((p) => p.user));
    for (const user of call.voice ? call.voice.sfuPeople() : []) {
      if (meshed.has(user)) continue;
      const info = call.remote.get(user) || {};
      const sources = call.sfuVideo.get(user) || {};
      out.push({
        user, self: false, muted: !!info.muted, connected: true,
        camera: sources.camera ? live(sources.camera.stream) : null,
        screen: sources.screen ? live(sources.screen.stream) : null,
        screenSince: sources.screen ? sources.screen.since : 0,
      });
    }
    return out;
  }

  render() {
    if (!this.root) return;
    const people = this._people();
    const sharing = people.filter((p) => p.screen).sort((a, b) => (a.self - b.self) || (b.screenSince - a.screenSince));
    if (this.pinned !== null && !sharing.some((p) => p.user === this.pinned)) this.pinned = null;
    const presenting = sharing.find((p) => p.user === this.pinned) || sharing[0] || null;
    const show = people.length > 1 || people.some((p) => p.camera || p.screen);
    this.root.hidden = !show;
    this.root.dataset.layout = presenting ? "presenter" : "grid";
    this.root.dataset.count = String(people.length);
    this.root.dataset.shares = String(sharing.length);
    if (!show) {
      for (const tile of this.tiles.values()) this._release(tile);
      this.tiles.clear();
      this.tilesEl.replaceChildren();
      this.mainEl.replaceChildren();
      return;
    }
    const wanted = new Map();
    if (presenting) {
      wanted.set(`s${presenting.user}`, { ...presenting, kind: "screen", stream: presenting.screen, onStage: true });
    }
    for (const p of sharing) {
      if (p !== presenting) wanted.set(`s${p.user}`, { ...p, kind: "screen", stream: p.screen, onStage: false });
    }
    for (const p of people) wanted.set(`u${p.user}`, { ...p, kind: "camera", stream: p.camera });
    for (const [key, tile] of this.tiles) {
      if (!wanted.has(key)) {
        this._release(tile);
        tile.remove();
        this.tiles.delete(key);
      }
    }
    const strip = [];
    for (const [key, info] of wanted) {
      let tile = this.tiles.get(key);
      if (!tile) {
        tile = this._tile(info);
        this.tiles.set(key, tile);
      }
      this._update(tile, info);
      if (info.onStage) {
        if (tile.parentNode !== this.mainEl) this.mainEl.replaceChildren(tile);
      } else {
        strip.push(tile);
      }
    }
    if (!presenting) this.mainEl.replaceChildren();
    // Keep the order stable (me first, then by connection) without re-attaching playing videos needlessly.
    strip.forEach((tile, i) => {
      if (this.tilesEl.children[i] !== tile) this.tilesEl.insertBefore(tile, this.tilesEl.children[i] || null);
    });
    this._tick();
  }

  _tile(info) {
    const tile = el("figure", `video-tile video-tile-${info.kind}`);
    tile.dataset.user = String(info.user);
    tile.dataset.kind = info.kind;
    const video = el("video");
    video.autoplay = true;
    video.muted = true; // the voice plays through voice.js's <audio> elements
    video.playsInline = true;
    const face = el("div", "vt-face", "");
    const caption = el("figcaption", "vt-caption");
    caption.append(el("span", "vt-mic", ""), el("span", "vt-name", ""));
    tile.append(video, face, caption);
    if (info.self && info.kind === "camera") tile.classList.add("is-self");
    if (info.kind === "screen") {
      // A share waiting in the strip is a button: it goes on the stage.
      const choose = () => {
        if (tile.dataset.place !== "strip") return;
        this.pinned = info.user;
        this.render();
      };
      tile.addEventListener("click", choose);
      tile.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          choose();
        }
      });
    }
    return tile;
  }

  _update(tile, info) {
    const video = tile.querySelector("video");
    const stream = info.stream || null;
    if (video.srcObject !== stream) {
      video.srcObject = stream;
      if (stream) video.play().catch(() => {});
    }
    tile.dataset.video = stream ? "on" : "off";
    if (info.kind === "screen") {
      const inStrip = !info.onStage;
      tile.dataset.place = inStrip ? "strip" : "stage";
      if (inStrip) {
        tile.setAttribute("role", "button");
        tile.tabIndex = 0;
        tile.title = `Show ${info.self ? "your" : `${this._name(info.user)}'s`} screen`;
      } else {
        tile.removeAttribute("role");
        tile.removeAttribute("tabindex");
        tile.title = "";
      }
    }
    const name = info.kind === "screen" ? `${this._name(info.user)} · screen` : this._name(info.user);
    const nameEl = tile.querySelector(".vt-name");
    if (nameEl.textContent !== name) nameEl.textContent = name;
    const initials = this._name(info.user).replace(/\(you\)/, "").trim().split(/\s+/).map((w) => w[0] || "").join("").slice(0, 2);
    tile.querySelector(".vt-face").textContent = initials.toUpperCase();
    tile.dataset.muted = info.muted ? "true" : "false";
    const mic = tile.querySelector(".vt-mic");
    mic.textContent = info.kind === "screen" ? "" : info.muted ? "muted" : "";
    mic.title = info.muted ? "Microphone off" : "";
    if (info.connected === false) tile.dataset.connecting = "true";
    else delete tile.dataset.connecting;
  }

  _release(tile) {
    const video = tile.querySelector("video");
    if (video) video.srcObject = null;
  }

  /** The speaking ring follows voice.js's level meter (state.speaking), refreshed a few times a second. */
  _tick() {
    if (!this.root || this.root.hidden) return;
    const speaking = this.state.speaking || new Set();
    for (const tile of this.tiles.values()) {
      const on = tile.dataset.kind === "camera" && speaking.has(Number(tile.dataset.user));
      if ((tile.dataset.speaking === "true") !== on) tile.dataset.speaking = on ? "true" : "false";
    }
  }
}
