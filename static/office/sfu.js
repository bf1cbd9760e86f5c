// SFU media (docs/adr/0023). On `sfu.join` Office has granted this page a token for the room's Janus
// videoroom: the page publishes its microphone there and subscribes to every other publisher, over
// Janus's HTTP API (long poll for events). Office revokes the token when the person walks out or
// loses access; Janus then hangs up, and `onClosed("hung up")` fires.
//
// voice.js switches a walled room's people from the mesh to this on `sfu.join`. The microphone is one
// publisher; the camera and a shared screen are one more publisher each, on the same session and
// token, joined while they are on (`setVideo`), so turning a camera on or off never renegotiates the
// voice. A publisher's `display` is its Office user id, with ":camera" or ":screen" for video, so a
// page knows whose feed it plays and which source it is.

const POLL_MS = 30000;

function tx() {
  const b = window.crypto.getRandomValues(new Uint8Array(6));
  return [...b].map((v) => v.toString(16).padStart(2, "0")).join("");
}

function candidateAddress(line) {
  // "candidate:<foundation> <component> <transport> <priority> <address> <port> typ ..."
  const parts = line.replace(/^a=/, "").split(" ");
  return parts[4] || "";
}

function isLoopback(address) {
  return address.startsWith("127.") || address === "::1";
}

/** The SDP's own candidates, and whether every one of them is a loopback address. */
function sdpLoopbackOnly(sdp) {
  const addrs = sdp.split(/\r?\n/).filter((l) => l.startsWith("a=candidate:")).map(candidateAddress);
  return addrs.length > 0 && addrs.every(isLoopback);
}

/** Drops the candidates the SFU cannot reach: a loopback-only SFU (tests, one-machine demos) is
 * reached on loopback alone, so no check goes to this machine's other addresses. */
function keepReachable(sdp, loopbackOnly) {
  if (!loopbackOnly) return sdp;
  return sdp
    .split("\r\n")
    .filter((l) => !l.startsWith("a=candidate:") || isLoopback(candidateAddress(l)))
    .join("\r\n");
}

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") {
        pc.removeEventListener("icegatheringstatechange", done);
        resolve();
      }
    };
    pc.addEventListener("icegatheringstatechange", done);
  });
}

export class SfuSession {
  /**
   * @param {{url: string, room: number, token: string}} grant  the `sfu` part of the `sfu.join` frame
   * @param {{track?: MediaStreamTrack, display?: string, iceServers?: object[],
   *          onTrack?: (feed: number, track: MediaStreamTrack, display: string) => void,
   *          onGone?: (feed: number) => void,
   *          onClosed?: (why: string) => void}} options
   */
  constructor(grant, options = {}) {
    this.url = grant.url.replace(/\/$/, "");
    this.room = grant.room;
    this.token = grant.token;
    this.track = options.track || null;
    this.display = options.display || "";
    this.iceServers = options.iceServers || [];
    this.onTrack = options.onTrack || (() => {});
    this.onGone = options.onGone || (() => {});
    this.onClosed = options.onClosed || (() => {});
    this.session = null;
    this.publisher = null; // {handle, pc, feed}: the microphone
    this.videos = new Map(); // "camera" | "screen" -> {handle, pc, feed, track}
    this.videoChains = new Map(); // source -> promise: one change at a time per source
    this.ownFeeds = new Set(); // every feed this page publishes: never subscribed to
    this.subscribers = new Map(); // feed -> {handle, pc}
    this.displays = new Map(); // feed -> the publisher's display (an Office user id)
    this.waiting = new Map(); // transaction -> resolve
    this.closed = false;
    this.loopbackOnly = false;
  }

  async start() {
    this.session = (await this._post("", { janus: "create" })).data.id;
    this._poll();
    const handle = await this._attach();
    const joined = await this._message(handle, {
      request: "join", ptype: "publisher", room: this.room, token: this.token, display: this.display,
    });
    const data = joined.plugindata.data;
    this.publisher = { handle, pc: null, feed: data.id };
    this.ownFeeds.add(data.id);
    if (this.track) await this._publish();
    for (const p of data.publishers || []) {
      if (!this.ownFeeds.has(p.id)) this._subscribe(p.id, p.display).catch((err) => this._subscribeFailed(p.id, err));
    }
  }

  /** A new microphone (device change): the published sender takes it without renegotiating. */
  replaceTrack(track) {
    this.track = track;
    const pc = this.publisher && this.publisher.pc;
    if (!pc) return;
    for (const sender of pc.getSenders()) sender.replaceTrack(track).catch(() => {});
  }

  /**
   * Publish this video track as `source` ("camera" or "screen"), or stop publishing it (null). Calls
   * for one source run one after the other; resolves to the RTCRtpSender (null when off or failed).
   */
  setVideo(source, track, stream = null) {
    const prev = this.videoChains.get(source) || Promise.resolve();
    const next = prev.then(() => this._setVideo(source, track, stream)).catch((err) => {
      if (!this.closed) console.warn(`office: the ${source} could not be sent through the SFU`, err);
      return null;
    });
    this.videoChains.set(source, next);
    return next;
  }

  /** The sender of a published video source, or null. */
  videoSender(source) {
    const video = this.videos.get(source);
    return video && video.pc ? video.pc.getSenders()[0] || null : null;
  }

  async _setVideo(source, track, stream) {
    if (this.closed) return null;
    const current = this.videos.get(source);
    if (current && track) {
      if (current.track !== track) await current.pc.getSenders()[0].replaceTrack(track);
      current.track = track;
      return current.pc.getSenders()[0];
    }
    if (current) {
      this.videos.delete(source);
      await this._unpublishVideo(current);
      return null;
    }
    if (!track) return null;
    const handle = await this._attach();
    const video = { handle, pc: null, feed: null, track };
    this.videos.set(source, video);
    try {
      const joined = await this._message(handle, {
        request: "join", ptype: "publisher", room: this.room, token: this.token, display: `${this.display}:${source}`,
      });
      video.feed = joined.plugindata.data.id;
      this.ownFeeds.add(video.feed);
      video.pc = new RTCPeerConnection({ iceServers: this.iceServers });
      video.pc.addTransceiver(track, { direction: "sendonly", streams: stream ? [stream] : [] });
      // A failed video connection drops that source alone; a revoke ends the microphone too (stop()).
      video.pc.addEventListener("connectionstatechange", () => {
        if (video.pc.connectionState === "failed" && this.videos.get(source) === video) {
          this.videos.delete(source);
          this._unpublishVideo(video);
        }
      });
      await this._offer(handle, video.pc, { request: "configure", audio: false, video: true });
    } catch (err) {
      if (this.videos.get(source) === video) this.videos.delete(source);
      await this._unpublishVideo(video);
      throw err;
    }
    if (this.videos.get(source) !== video || this.closed) return null; // turned off meanwhile
    return video.pc.getSenders()[0];
  }

  async _unpublishVideo(video) {
    if (video.pc) video.pc.close();
    if (this.closed) return;
    try {
      await this._post(`/${this.session}/${video.handle}`, { janus: "detach" }); // leaves the room: unpublished
    } catch (err) {
      // gone already
    }
  }

  async stop(why = "left") {
    if (this.closed) return;
    this.closed = true;
    for (const { pc } of this.subscribers.values()) pc.close();
    if (this.publisher && this.publisher.pc) this.publisher.pc.close();
    for (const video of this.videos.values()) if (video.pc) video.pc.close();
    try {
      await this._post(`/${this.session}`, { janus: "destroy" });
    } catch (err) {
      // revoked or gone already: nothing to tidy
    }
    this.onClosed(why);
  }

  async _publish() {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.publisher.pc = pc;
    pc.addTransceiver(this.track, { direction: "sendonly" });
    await this._offer(this.publisher.handle, pc, { request: "configure", audio: true, video: false });
    // Janus hangs up (a DTLS close) when Office revokes this person; the long poll may not hear of it.
    const dtls = pc.getSenders()[0].transport;
    const hungUp = () => {
      if (["closed", "failed"].includes(dtls ? dtls.state : "") || ["closed", "failed"].includes(pc.connectionState)) {
        this.stop("hung up");
      }
    };
    if (dtls) dtls.addEventListener("statechange", hungUp);
    pc.addEventListener("connectionstatechange", hungUp);
  }

  /** Offer this publisher connection to Janus with `configure` and take its answer. */
  async _offer(handle, pc, configure) {
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    // The answer tells us where the SFU listens; until then send the offer without candidates and
    // trickle the reachable ones afterwards.
    const offer = pc.localDescription.sdp.split("\r\n").filter((l) => !l.startsWith("a=candidate:")).join("\r\n");
    const answer = await this._message(handle, configure, { type: "offer", sdp: offer });
    this.loopbackOnly = sdpLoopbackOnly(answer.jsep.sdp);
    await pc.setRemoteDescription(answer.jsep);
    const own = pc.localDescription.sdp.split("\r\n").filter((l) => l.startsWith("a=candidate:"));
    const reachable = own.filter((l) => !this.loopbackOnly || isLoopback(candidateAddress(l)));
    const mid = pc.getTransceivers()[0].mid || "0";
    const candidates = reachable.map((l) => ({ candidate: l.slice(2), sdpMid: mid, sdpMLineIndex: 0 }));
    await this._post(`/${this.session}/${handle}`, { janus: "trickle", candidates: [...candidates, { completed: true }] });
  }

  async _subscribe(feed, display) {
    if (display !== undefined) this.displays.set(feed, String(display));
    if (this.closed || this.subscribers.has(feed)) return;
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    const sub = { handle: null, pc }; // claimed before the first await: one subscription per feed
    this.subscribers.set(feed, sub);
    const handle = await this._attach();
    sub.handle = handle;
    pc.ontrack = (e) => this.onTrack(feed, e.track, this.displays.get(feed) || "");
    const attached = await this._message(handle, {
      request: "join", ptype: "subscriber", room: this.room, token: this.token, streams: [{ feed }],
    });
    const loopbackOnly = sdpLoopbackOnly(attached.jsep.sdp);
    await pc.setRemoteDescription(attached.jsep);
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc);
    await this._message(handle, { request: "start" },
      { type: "answer", sdp: keepReachable(pc.localDescription.sdp, loopbackOnly) });
  }

  _subscribeFailed(feed, err) {
    if (this.closed) return;
    console.warn("office: could not subscribe to an SFU feed", err);
    this._unsubscribe(feed);
  }

  _unsubscribe(feed) {
    const sub = this.subscribers.get(feed);
    if (!sub) return;
    this.subscribers.delete(feed);
    sub.pc.close();
    this.onGone(feed);
  }

  async _attach() {
    const answer = await this._post(`/${this.session}`, { janus: "attach", plugin: "janus.plugin.videoroom" });
    return answer.data.id;
  }

  async _message(handle, body, jsep) {
    const transaction = tx();
    const reply = new Promise((resolve) => this.waiting.set(transaction, resolve));
    const request = { janus: "message", body, transaction };
    if (jsep) request.jsep = jsep;
    const ack = await this._post(`/${this.session}/${handle}`, request, transaction);
    if (ack.janus === "success") return ack;
    const event = await reply;
    const data = (event.plugindata || {}).data || {};
    if (data.error_code) throw new Error(`videoroom ${body.request}: ${data.error_code} ${data.error}`);
    return event;
  }

  async _post(path, body, transaction = tx()) {
    const response = await fetch(this.url + path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ ...body, transaction, token: this.token }),
    });
    const answer = await response.json();
    if (answer.janus === "error") throw new Error(`janus ${body.janus}: ${answer.error.code} ${answer.error.reason}`);
    return answer;
  }

  async _poll() {
    while (!this.closed) {
      let events;
      try {
        const q = `maxev=10&rid=${Date.now()}&token=${encodeURIComponent(this.token)}`;
        const ctl = new AbortController();
        const timer = setTimeout(() => ctl.abort(), POLL_MS + 5000);
        const response = await fetch(`${this.url}/${this.session}?${q}`, { signal: ctl.signal });
        clearTimeout(timer);
        events = await response.json();
      } catch (err) {
        if (this.closed) return;
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      for (const event of Array.isArray(events) ? events : [events]) this._event(event);
    }
  }

  _event(event) {
    if (event.janus === "error") {
      // 403: the token was revoked; 458: the session is gone. Either way this page is out.
      if (event.error && [403, 458].includes(event.error.code)) this.stop("revoked");
      return;
    }
    const resolve = event.transaction && this.waiting.get(event.transaction);
    if (resolve && event.janus === "event") {
      this.waiting.delete(event.transaction);
      resolve(event);
      return;
    }
    const data = (event.plugindata || {}).data || {};
    const mine = this.publisher && event.sender === this.publisher.handle;
    if ((mine && (event.janus === "hangup" || event.janus === "detached")) || data.videoroom === "destroyed"
        || (mine && data.leaving === "ok") || (mine && data.kicked)) {
      this.stop("revoked");
      return;
    }
    for (const p of data.publishers || []) {
      if (!this.ownFeeds.has(p.id)) this._subscribe(p.id, p.display).catch((err) => this._subscribeFailed(p.id, err));
    }
    const gone = data.unpublished ?? data.leaving;
    if (typeof gone === "number") this._unsubscribe(gone);
  }
}
