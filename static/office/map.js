// The 2D office map: MapView holds who is where and moves me (keyboard steps, click-to-walk along a
// BFS path); it composes ./map/geometry.js (layout, paths, area of interest), ./map/render.js (canvas
// drawing, camera, zoom; tiles from ./map/sprites.js, labels placed by ./map/labels.js),
// ./map/minimap.js (overview of large floors) and ./map/input.js (keys, pointer, touch).

import { apiRequest } from "./lib/http.js";
import { canSee, compileLayout, findPath } from "./map/geometry.js";
import { MapInput } from "./map/input.js";
import { placeLabels } from "./map/labels.js";
import { Minimap } from "./map/minimap.js";
import { lerp, MapRenderer } from "./map/render.js";

export { compileLayout, findPath } from "./map/geometry.js";
export { isTextEntry } from "./map/input.js";

export const STEP_MS = 200; // never more than 5 moves per second
const LERP_OTHERS_MS = 180;
const LERP_ME_MS = 110;

export class MapView {
  constructor({ canvas, state, socket, notice, onMoved }) {
    this.canvas = canvas;
    this.state = state;
    this.socket = socket;
    this.notice = notice || (() => {});
    this.onMoved = onMoved || (() => {});
    this.geo = null;
    this.entities = new Map(); // user -> {fx, fy, tx, ty, t0, dur}
    this.meDisp = null; // {fx, fy, tx, ty, t0, dur}
    this.path = [];
    this.pathGoal = null;
    this.lastStepAt = 0;
    this.rejectQuietUntilSeq = 0;
    this.hover = null; // the tile under the pointer (set by the input)
    this.lastDrawn = [];
    this.occupancy = new Map(); // room id -> {count, present, at} from sensors (iot)
    this.renderer = new MapRenderer(canvas);
    this.renderer.deskLabelsInStatic = false; // desk names take part in the label placement
    this._watchOccupancy();
    this.input = new MapInput(this);
    this.minimap = canvas.parentElement ? new Minimap(this, canvas.parentElement) : null;
    this.moveTimer = setInterval(() => this.movementTick(), 40);
    const loop = (now) => {
      const drawn = this.renderer.draw(this, now);
      if (drawn) this.lastDrawn = drawn;
      if (this.minimap) this.minimap.draw(now);
      this.raf = requestAnimationFrame(loop);
    };
    this.raf = requestAnimationFrame(loop);
    // For end-to-end tests: what the last frame placed, and the placement itself.
    window.__officeMap = {
      view: this,
      labels: () => this.renderer.labels.map((l) => ({ ...l })),
      badges: () => this.renderer.badges.map((b) => ({ ...b })),
      avatars: () => this.renderer.avatars.map((a) => ({ ...a })),
      placeLabels,
      tileToScreen: (x, y) => this.tileToScreen(x, y),
      zoom: () => this.renderer.zoom,
      camera: () => ({ ...this.renderer.cam, tile: this.renderer.tile, pan: this.renderer.pan }),
    };
  }

  // --- data in ---

  setLayout(layout) {
    this.geo = compileLayout(layout);
    this.state.geo = this.geo;
    this.renderer.invalidate();
    this.path = [];
    this.pathGoal = null;
  }

  /** Someone's static decorations changed (e.g. member names for desks). */
  invalidateStatic() {
    this.renderer.invalidate();
  }

  /** Called after hello: forget interpolation state and place me. */
  reset() {
    this.entities.clear();
    const { x, y } = this.state.you;
    this.meDisp = { fx: x, fy: y, tx: x, ty: y, t0: 0, dur: 0 };
    this.path = [];
    this.pathGoal = null;
    this.input.clearTaps();
    for (const [user, pos] of this.state.positions) {
      if (user !== this.state.me.id) this.entities.set(user, { fx: pos.x, fy: pos.y, tx: pos.x, ty: pos.y, t0: 0, dur: 0 });
    }
  }

  applyMoves(entries) {
    const now = performance.now();
    const me = this.state.me && this.state.me.id;
    for (const entry of entries) {
      const [user, x, y, seq] = entry;
      if (user === me) {
        // The server echoes our own moves; our prediction is already ahead of it.
        continue;
      }
      this.state.positions.set(user, { x, y, seq });
      const ent = this.entities.get(user);
      if (!ent) {
        this.entities.set(user, { fx: x, fy: y, tx: x, ty: y, t0: now, dur: 0 });
        continue;
      }
      const cur = lerp(ent, now);
      const far = Math.abs(cur.x - x) > 3 || Math.abs(cur.y - y) > 3;
      ent.fx = far ? x : cur.x;
      ent.fy = far ? y : cur.y;
      ent.tx = x;
      ent.ty = y;
      ent.t0 = now;
      ent.dur = far ? 0 : LERP_OTHERS_MS;
    }
  }

  forget(user) {
    this.entities.delete(user);
    this.state.positions.delete(user);
  }

  onRejected(frame) {
    const quiet = frame.seq <= this.rejectQuietUntilSeq && frame.seq !== 0;
    this.rejectQuietUntilSeq = Math.max(this.rejectQuietUntilSeq, this.state.moveSeq);
    this.path = [];
    this.pathGoal = null;
    this.input.clearTaps();
    this._placeMe(frame.x, frame.y, false);
    if (!quiet && frame.reason) this.notice(frame.reason, "warn");
  }

  // --- movement ---

  /** Whether (x, y) may be entered on a walk: private rooms need membership. */
  allowedTile(x, y) {
    const room = this.geo.roomAt(x, y);
    if (!room || room.kind !== "private") return true;
    if (room.id === this.state.you.room) return true;
    return this.state.memberRooms.has(room.id);
  }

  canMove() {
    return !!(this.geo && this.state.ready && this.socket.isOpen);
  }

  /** One step by (dx, dy); diagonals that are blocked slide along an axis. Returns true if sent. */
  step(dx, dy) {
    if (!this.canMove()) return false;
    const { x, y } = this.state.you;
    const tries = dx && dy ? [[dx, dy], [dx, 0], [0, dy]] : [[dx, dy]];
    for (const [sx, sy] of tries) {
      if (!sx && !sy) continue;
      if (this.geo.canStep(x, y, x + sx, y + sy)) return this._sendStep(x + sx, y + sy);
    }
    return false;
  }

  walkTo(tx, ty) {
    if (!this.geo) return false;
    const room = this.geo.roomAt(tx, ty);
    if (!this.geo.passable(tx, ty)) {
      this.notice("You can't stand there", "warn");
      return false;
    }
    if (!this.allowedTile(tx, ty)) {
      this.notice(`${room.name} is private: members only`, "warn");
      return false;
    }
    const path = findPath(this.geo, [this.state.you.x, this.state.you.y], [tx, ty], (x, y) => this.allowedTile(x, y));
    if (!path) {
      this.notice("There is no way to get there", "warn");
      return false;
    }
    this.input.clearTaps();
    this.path = path;
    this.pathGoal = path.length ? [tx, ty] : null;
    this.movementTick();
    return true;
  }

  stopWalking() {
    this.path = [];
    this.pathGoal = null;
  }

  _sendStep(nx, ny) {
    const seq = ++this.state.moveSeq;
    if (!this.socket.send({ type: "move", x: nx, y: ny, seq })) {
      this.state.moveSeq -= 1;
      return false;
    }
    this.lastStepAt = performance.now();
    this.renderer.follow(); // walking brings the camera back to me
    this._placeMe(nx, ny, true);
    return true;
  }

  _placeMe(x, y, animate) {
    const now = performance.now();
    const cur = this.meDisp ? lerp(this.meDisp, now) : { x, y };
    const far = Math.abs(cur.x - x) > 2 || Math.abs(cur.y - y) > 2;
    this.meDisp = { fx: cur.x, fy: cur.y, tx: x, ty: y, t0: now, dur: animate && !far ? LERP_ME_MS : 0 };
    this.state.you.x = x;
    this.state.you.y = y;
    this.state.positions.set(this.state.me.id, { x, y, seq: this.state.moveSeq });
    const room = this.geo ? this.geo.roomAt(x, y) : null;
    this.onMoved({ x, y, room: room ? room.id : null });
  }

  /** One step of whatever moves me: a key tap, held keys, else the next tile of the walk. */
  movementTick() {
    if (!this.canMove()) return;
    const now = performance.now();
    if (now - this.lastStepAt < STEP_MS) return;
    const dir = this.input.nextStep();
    if (dir) {
      this.step(dir[0], dir[1]);
      return;
    }
    if (this.path.length) {
      const [nx, ny] = this.path[0];
      const { x, y } = this.state.you;
      if (this.geo.canStep(x, y, nx, ny) && this.allowedTile(nx, ny)) {
        this.path.shift();
        if (!this._sendStep(nx, ny)) this.path.unshift([nx, ny]);
      } else if (this.pathGoal) {
        const again = findPath(this.geo, [x, y], this.pathGoal, (px, py) => this.allowedTile(px, py));
        this.path = again || [];
      } else {
        this.path = [];
      }
      if (!this.path.length) this.pathGoal = null;
    }
  }

  // --- coordinates (the renderer owns the camera) ---

  get tile() {
    return this.renderer.tile;
  }

  get cam() {
    return this.renderer.cam;
  }

  /** The tile under a pointer event, or null (off the map, or no layout yet). */
  tileAt(e) {
    if (!this.geo) return null;
    return this.renderer.tileAt(this.geo, e.clientX, e.clientY);
  }

  /** Screen position (CSS px, relative to the canvas) of the centre of tile (x, y). */
  tileToScreen(x, y) {
    return this.renderer.tileToScreen(x, y);
  }

  // --- visibility (area of interest) ---

  isVisible(user) {
    const st = this.state;
    const pos = st.positions.get(user);
    const person = st.presence.get(user);
    if (!pos || !person || !this.geo) return false;
    return canSee(this.geo, st.you, pos, person.room);
  }

  visibleUsers() {
    const me = this.state.me && this.state.me.id;
    return [...this.state.presence.keys()].filter((u) => u !== me && this.isVisible(u));
  }

  // --- live room occupancy from sensors ---

  /** Badges come from /api/iot/occupancy/ after each hello, then from `room.occupancy` frames. */
  _watchOccupancy() {
    this.socket.on("hello", async () => {
      const r = await apiRequest(`/api/iot/occupancy/?map=${this.state.mapId}`);
      if (r.status === 0) return; // not connected: keep what we have
      const rooms = r.ok && r.data ? r.data.rooms || [] : [];
      this.occupancy = new Map(rooms.map((o) => [o.room, o]));
    });
    this.socket.on("room.occupancy", (f) => this.occupancy.set(f.room, f));
  }
}
