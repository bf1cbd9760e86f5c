// SFU media (docs/adr/0023). On `sfu.join` Office has granted this page a token for the room's Janus
// videoroom: the page publishes its microphone there and subscribes to every other publisher, over
// Janus's HTTP API (long poll for events). Office revokes the token when the person walks out or
// loses access; Janus then hangs up, and `onClosed("hung up")` fires.
//
// voice.js switches a walled room's people from the mesh to this on `sfu.join` (audio; camera and
// screen still ride the mesh only). Each publisher's `display` is its Office user id, so a page knows
// whose feed it plays.

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
    this.publisher = null; // {handle, pc, feed}
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
    if (this.track) await this._publish();
    for (const p of data.publishers || []) this._subscribe(p.id, p.display).catch((err) => this._subscribeFailed(p.id, err));
  }

  /** A new microphone (device change): the published sender takes it without renegotiating. */
  replaceTrack(track) {
    this.track = track;
    const pc = this.publisher && this.publisher.pc;
    if (!pc) return;
    for (const sender of pc.getSenders()) sender.replaceTrack(track).catch(() => {});
  }

  async stop(why = "left") {
    if (this.closed) return;
    this.closed = true;
    for (const { pc } of this.subscribers.values()) pc.close();
    if (this.publisher && this.publisher.pc) this.publisher.pc.close();
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
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    // The answer tells us where the SFU listens; until then send the offer without candidates and
    // trickle the reachable ones afterwards.
    const offer = pc.localDescription.sdp.split("\r\n").filter((l) => !l.startsWith("a=candidate:")).join("\r\n");
    const answer = await this._message(this.publisher.handle, { request: "configure", audio: true, video: false },
      { type: "offer", sdp: offer });
    this.loopbackOnly = sdpLoopbackOnly(answer.jsep.sdp);
    await pc.setRemoteDescription(answer.jsep);
    // Janus hangs up (a DTLS close) when Office revokes this person; the long poll may not hear of it.
    const dtls = pc.getSenders()[0].transport;
    const hungUp = () => {
      if (["closed", "failed"].includes(dtls ? dtls.state : "") || ["closed", "failed"].includes(pc.connectionState)) {
        this.stop("hung up");
      }
    };
    if (dtls) dtls.addEventListener("statechange", hungUp);
    pc.addEventListener("connectionstatechange", hungUp);
    const own = pc.localDescription.sdp.split("\r\n").filter((l) => l.startsWith("a=candidate:"));
    const reachable = own.filter((l) => !this.loopbackOnly || isLoopback(candidateAddress(l)));
    const candidates = reachable.map((l) => ({ candidate: l.slice(2), sdpMid: "0", sdpMLineIndex: 0 }));
    await this._post(`/${this.session}/${this.publisher.handle}`,
      { janus: "trickle", candidates: [...candidates, { completed: true }] });
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
      if (!this.publisher || p.id !== this.publisher.feed) this._subscribe(p.id, p.display).catch((err) => this._subscribeFailed(p.id, err));
    }
    const gone = data.unpublished ?? data.leaving;
    if (typeof gone === "number") this._unsubscribe(gone);
  }
}
