// Canvas drawing of the office map: canvas size, tile size, zoom and camera; the cached static layer
// (floors, walls, doors, furniture and desks from ./sprites.js, room names painted on the floor);
// then per frame occupancy badges, avatars with status rings and a speaking ring, the hover tile,
// the walk preview, and the labels (names, desks) placed so that none overlaps (./labels.js).

import { watchCanvasSize } from "../lib/canvas.js";
import { placeLabels } from "./labels.js";
import {
  avatarSprite, deskSprite, doorSprite, drawLounge, drawMeetingTable, floorSprite, labelSprite, plantSprite,
  roundRect, shelfSprite, tileNoise, wallSprite,
} from "./sprites.js";

const VIEW_TILES_X = 30;
const VIEW_TILES_Y = 20;
const TILE_MIN = 24;
const TILE_MAX = 32;
export const ZOOM_MIN = 0.5;
export const ZOOM_MAX = 2.5;
const REBUILD_MIN_MS = 180; // while zooming, the static layer is rebuilt at most this often

const KIND_STYLE = {
  open: { border: "rgba(146, 100, 50, 0.45)", label: "rgba(120, 78, 36, 0.30)" },
  meeting: { border: "#9db7ea", label: "rgba(30, 64, 175, 0.26)" },
  private: { border: "#c4a9ef", label: "rgba(107, 33, 168, 0.26)" },
};
const OUTSIDE = "#1b2232";
const LABEL_PRIORITY = { me: 100, person: 50, desk: 10 };

/** Where an interpolated position {fx, fy, tx, ty, t0, dur} is at `now` (ease-out). */
export function lerp(ent, now) {
  if (!ent.dur) return { x: ent.tx, y: ent.ty };
  const t = Math.min(1, (now - ent.t0) / ent.dur);
  const k = t < 1 ? 1 - (1 - t) * (1 - t) : 1; // ease-out
  return { x: ent.fx + (ent.tx - ent.fx) * k, y: ent.fy + (ent.ty - ent.fy) * k };
}

const isWholeMap = (r, geo) => r.x <= 0 && r.y <= 0 && r.width >= geo.width && r.height >= geo.height;

/** Draws a MapView onto its canvas; owns the canvas size, the tile size, the zoom and the camera. */
export class MapRenderer {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.staticLayer = null;
    this.staticKey = "";
    this.staticBuiltAt = 0;
    this.cssW = 0;
    this.cssH = 0;
    this.dpr = 1;
    this.baseTile = 28;
    this.zoom = 1;
    this.tile = 28;
    this.cam = { x: 0, y: 0 };
    this.pan = null; // {x, y}: the tile the camera centres on instead of following me (minimap, drag)
    this.deskLabelsInStatic = true; // the map editor keeps desk names in the layer; the office places them per frame
    this.labels = []; // the labels placed on the last frame (CSS px boxes), for tests
    this.badges = []; // the occupancy badges drawn on the last frame
    this.avatars = []; // the people drawn on the last frame: {user, x, y, status, speaking}
    this.textWidths = new Map();
    this._observeSize();
  }

  /** The static layer is drawn again on the next frame (new layout, member names for desks). */
  invalidate() {
    this.staticKey = "";
    this.staticBuiltAt = 0;
  }

  /** The tile under a pointer event's client position, or null off the map. */
  tileAt(geo, clientX, clientY) {
    const rect = this.canvas.getBoundingClientRect();
    const px = clientX - rect.left;
    const py = clientY - rect.top;
    const x = Math.floor(px / this.tile + this.cam.x);
    const y = Math.floor(py / this.tile + this.cam.y);
    return geo.inBounds(x, y) ? [x, y] : null;
  }

  /** Screen position (CSS px, relative to the canvas) of the centre of tile (x, y). */
  tileToScreen(x, y) {
    return [(x + 0.5 - this.cam.x) * this.tile, (y + 0.5 - this.cam.y) * this.tile];
  }

  /** Zoom to `zoom` (clamped), keeping the map point under canvas position (px, py) where it is. */
  setZoom(zoom, px = this.cssW / 2, py = this.cssH / 2) {
    const z = Math.max(ZOOM_MIN, Math.min(ZOOM_MAX, zoom));
    const before = this.tile;
    const wx = this.cam.x + px / before;
    const wy = this.cam.y + py / before;
    this.zoom = z;
    this._applyTile();
    if (this.pan && this.tile !== before) {
      // keep the point under the fingers still: move the centre by the change of scale
      const cx = wx - px / this.tile + this.cssW / this.tile / 2;
      const cy = wy - py / this.tile + this.cssH / this.tile / 2;
      this.pan = { x: cx, y: cy };
    }
  }

  /** Centre the camera on tile (x, y) until `follow()`; null-safe for maps smaller than the view. */
  panTo(x, y) {
    this.pan = { x, y };
  }

  follow() {
    this.pan = null;
  }

  _applyTile() {
    this.tile = Math.max(Math.round(TILE_MIN * ZOOM_MIN), Math.min(TILE_MAX * ZOOM_MAX, Math.round(this.baseTile * this.zoom)));
  }

  _observeSize() {
    watchCanvasSize(this, (w, h) => {
      const tile = Math.floor(Math.min(w / VIEW_TILES_X, h / VIEW_TILES_Y));
      this.baseTile = Math.max(TILE_MIN, Math.min(TILE_MAX, tile || TILE_MIN));
      this._applyTile();
    });
  }

  _memberName(state, id) {
    const m = state.members && state.members.get(id);
    return m ? String(m.name || m.username).split(/\s+/)[0] : "";
  }

  _deskText(state, d) {
    const owner = d.owner != null ? this._memberName(state, d.owner) : "";
    return owner ? `${d.label} · ${owner}` : String(d.label || "");
  }

  _buildStatic(geo, state) {
    const tile = this.tile;
    let scale = this.dpr;
    const maxDim = 8192;
    scale = Math.min(scale, maxDim / (geo.width * tile), maxDim / (geo.height * tile));
    const rest = `${scale}|${state.membersVersion || 0}`;
    const key = `${tile}|${rest}`;
    if (this.staticLayer && this.staticKey === key) return;
    // While a pinch changes the tile size, the old layer is stretched until the fingers rest.
    const now = performance.now();
    if (this.staticLayer && this.staticKey.endsWith(`|${rest}`) && now - this.staticBuiltAt < REBUILD_MIN_MS) return;
    const layer = this.staticLayer || document.createElement("canvas");
    layer.width = Math.max(1, Math.round(geo.width * tile * scale));
    layer.height = Math.max(1, Math.round(geo.height * tile * scale));
    const c = layer.getContext("2d");
    c.setTransform(scale, 0, 0, scale, 0, 0);
    c.imageSmoothingEnabled = false;
    const px = Math.max(1, Math.round(tile * scale)); // a sprite's size in the layer's pixels
    const ordered = [...geo.rooms].sort((a, b) => b.width * b.height - a.width * a.height);

    // floors: each tile by the kind of room it is in (the hallway outside rooms)
    for (let y = 0; y < geo.height; y++) {
      for (let x = 0; x < geo.width; x++) {
        const room = geo.roomAt(x, y);
        const kind = !room || (room.kind === "open" && isWholeMap(room, geo)) ? "hall" : room.kind;
        const variant = kind === "open" ? (x + y * 2) & 3 : kind === "hall" ? (x + y) & 1 : (tileNoise(x, y) * 4) | 0;
        c.drawImage(floorSprite(kind, px, variant), x * tile, y * tile, tile, tile);
      }
    }
    // open areas (no walls) get a painted border
    for (const r of ordered) {
      if (r.kind !== "open" || isWholeMap(r, geo)) continue;
      c.save();
      c.setLineDash([tile * 0.3, tile * 0.2]);
      c.strokeStyle = KIND_STYLE.open.border;
      c.lineWidth = Math.max(1.5, tile * 0.06);
      c.strokeRect(r.x * tile + 1, r.y * tile + 1, r.width * tile - 2, r.height * tile - 2);
      c.restore();
    }

    // furniture that comes with a kind of room (decoration: it does not block walking)
    const deskAt = new Set(geo.desks.map((d) => `${d.x},${d.y}`));
    const freeTile = (x, y) => geo.passable(x, y) && !geo.isDoor(x, y) && !deskAt.has(`${x},${y}`)
      && !geo.isDoor(x + 1, y) && !geo.isDoor(x - 1, y) && !geo.isDoor(x, y + 1) && !geo.isDoor(x, y - 1);
    for (const r of ordered) {
      if (isWholeMap(r, geo)) continue;
      const inner = r.kind === "open" ? { x: r.x, y: r.y, w: r.width, h: r.height } : { x: r.x + 1, y: r.y + 1, w: r.width - 2, h: r.height - 2 };
      if (inner.w < 2 || inner.h < 2) continue;
      if (r.kind === "meeting" && inner.w >= 4 && inner.h >= 4) {
        // the first row is the name's; the table stands in the rows below it
        const tw = Math.max(2, inner.w - 2);
        const th = Math.max(1, Math.min(2, inner.h - 3));
        const tx = inner.x + (inner.w - tw) / 2;
        const ty = inner.y + 1 + (inner.h - 1 - th) / 2;
        drawMeetingTable(c, tx * tile, (ty + 0.1) * tile, tw * tile, th * tile * 0.8, tile);
      } else if (r.kind === "private" && inner.w >= 4 && inner.h >= 3) {
        // a sofa on a rug in the bottom right corner, shelves against the bottom wall on the left
        const bottom = inner.y + inner.h - 1;
        if (freeTile(inner.x + inner.w - 2, bottom) && freeTile(inner.x + inner.w - 1, bottom)) {
          drawLounge(c, (inner.x + inner.w - 2) * tile, (bottom - 0.4) * tile, tile);
        }
        for (let x = inner.x; x < inner.x + Math.min(2, inner.w - 2); x++) {
          if (!freeTile(x, bottom)) continue;
          c.save();
          c.translate(x * tile, (bottom + 1) * tile);
          c.scale(1, -1);
          c.drawImage(shelfSprite(px), 0, 0, tile, tile);
          c.restore();
        }
        continue;
      }
      // plants in the bottom corners that are free (the top right corner is the occupancy badge's)
      for (const [x, y] of [[inner.x, inner.y + inner.h - 1], [inner.x + inner.w - 1, inner.y + inner.h - 1]]) {
        if (freeTile(x, y)) c.drawImage(plantSprite(px), x * tile, y * tile, tile, tile);
      }
    }

    // walls and doors
    for (let y = 0; y < geo.height; y++) {
      for (let x = 0; x < geo.width; x++) {
        const i = y * geo.width + x;
        if (geo.walls[i]) {
          const face = y + 1 < geo.height && !geo.walls[i + geo.width];
          const cap = y === 0 || !geo.walls[i - geo.width];
          c.drawImage(wallSprite(px, face, cap), x * tile, y * tile, tile, tile);
        } else if (geo.doors[i]) {
          const horizontal = geo.isWall(x - 1, y) || geo.isWall(x + 1, y);
          c.drawImage(doorSprite(px, horizontal), x * tile, y * tile, tile, tile);
        }
      }
    }

    // desks (their labels are placed per frame, around the people, unless drawn here)
    for (const d of geo.desks) {
      c.drawImage(deskSprite(px), d.x * tile, d.y * tile, tile, tile);
      if (!this.deskLabelsInStatic) continue;
      c.font = `600 ${Math.max(9, Math.round(tile * 0.34))}px system-ui, sans-serif`;
      c.textAlign = "center";
      c.textBaseline = "top";
      c.fillStyle = "#5b6476";
      c.fillText(this._deskText(state, d), d.x * tile + tile / 2, d.y * tile + tile * 0.98);
    }

    // room names, painted on the floor: large, letter-spaced, translucent
    for (const r of ordered) {
      if (isWholeMap(r, geo)) continue;
      this._paintRoomName(c, r, tile);
    }

    this.staticLayer = layer;
    this.staticKey = key;
    this.staticBuiltAt = now;
  }

  _paintRoomName(c, r, tile) {
    const style = KIND_STYLE[r.kind] || KIND_STYLE.open;
    const inset = r.kind === "open" ? 0 : 1;
    const w = (r.width - 2 * inset) * tile;
    const h = (r.height - 2 * inset) * tile;
    if (w < tile || h < tile * 0.8) return;
    let text = String(r.name || "").toUpperCase();
    let size = Math.min(tile * 0.8, h * 0.36);
    c.font = `800 ${Math.round(size)}px system-ui, sans-serif`;
    if ("letterSpacing" in c) c.letterSpacing = `${Math.round(size * 0.12)}px`;
    let tw = c.measureText(text).width;
    if (tw > w * 0.9) {
      size = Math.max(9, size * (w * 0.9) / tw);
      c.font = `800 ${Math.round(size)}px system-ui, sans-serif`;
      if ("letterSpacing" in c) c.letterSpacing = `${Math.round(size * 0.12)}px`;
      tw = c.measureText(text).width;
      while (tw > w * 0.95 && text.length > 2) {
        text = text.slice(0, -2) + "…";
        tw = c.measureText(text).width;
      }
    }
    const cx = (r.x + r.width / 2) * tile;
    // in the room's first row: the middle is where the table and the people are
    const cy = (r.y + inset) * tile + Math.min(h / 2, tile * 0.55);
    c.textAlign = "center";
    c.textBaseline = "middle";
    c.fillStyle = style.label;
    c.fillText(text, cx, cy);
    if (r.kind === "private") drawLock(c, cx - tw / 2 - size * 0.9, cy - size * 0.5, size * 0.75, style.label);
    if ("letterSpacing" in c) c.letterSpacing = "0px";
  }

  _camera(view, me) {
    const { geo } = view;
    const viewW = this.cssW / this.tile;
    const viewH = this.cssH / this.tile;
    const center = this.pan || { x: me.x + 0.5, y: me.y + 0.5 };
    const camFor = (c, span, size) => {
      if (size + 2 <= span) return (size - span) / 2;
      return Math.max(-1, Math.min(size + 1 - span, c - span / 2));
    };
    this.cam.x = camFor(center.x, viewW, geo.width);
    this.cam.y = camFor(center.y, viewH, geo.height);
  }

  /** Whether the whole map fits in the canvas at the current tile size. */
  mapFits(geo) {
    return geo.width * this.tile <= this.cssW && geo.height * this.tile <= this.cssH;
  }

  /** Draw one frame of `view` (a MapView); returns the users drawn besides me, or null before a hello. */
  draw(view, now) {
    const ctx = this.ctx;
    const { cssW, cssH, dpr } = this;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = OUTSIDE;
    ctx.fillRect(0, 0, cssW, cssH);
    if (!view.geo || !view.state.me) {
      ctx.fillStyle = "#9aa6bd";
      ctx.font = "600 14px system-ui, sans-serif";
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText(view.socket.state === "connected" ? "Loading the office…" : "Connecting to the office…", cssW / 2, cssH / 2);
      return null;
    }
    const { geo, state } = view;
    const tile = this.tile;
    this._buildStatic(geo, state);

    const me = view.meDisp ? lerp(view.meDisp, now) : { x: state.you.x, y: state.you.y };
    this._camera(view, me);
    const ox = -this.cam.x * tile;
    const oy = -this.cam.y * tile;

    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(this.staticLayer, ox, oy, geo.width * tile, geo.height * tile);
    const badges = this._drawOccupancy(ctx, geo, view.occupancy, ox, oy);

    // hover tile
    if (view.hover) {
      const [hx, hy] = view.hover;
      const ok = geo.passable(hx, hy) && view.allowedTile(hx, hy);
      ctx.strokeStyle = ok ? "rgba(79, 70, 229, 0.7)" : "rgba(220, 38, 38, 0.7)";
      ctx.lineWidth = 2;
      roundRect(ctx, ox + hx * tile + 2, oy + hy * tile + 2, tile - 4, tile - 4, 5);
      ctx.stroke();
    }

    // path preview
    if (view.path.length) {
      ctx.fillStyle = "rgba(79, 70, 229, 0.45)";
      for (const [px, py] of view.path) {
        ctx.beginPath();
        ctx.arc(ox + (px + 0.5) * tile, oy + (py + 0.5) * tile, Math.max(2, tile * 0.08), 0, Math.PI * 2);
        ctx.fill();
      }
      if (view.pathGoal) {
        const [gx, gy] = view.pathGoal;
        ctx.strokeStyle = "rgba(79, 70, 229, 0.9)";
        ctx.lineWidth = 2;
        ctx.beginPath();
        ctx.arc(ox + (gx + 0.5) * tile, oy + (gy + 0.5) * tile, tile * 0.32, 0, Math.PI * 2);
        ctx.fill();
        ctx.stroke();
      }
    }

    // avatars (others within the area of interest, then me on top)
    const drawn = [];
    for (const user of view.visibleUsers()) {
      let ent = view.entities.get(user);
      if (!ent) {
        const pos = state.positions.get(user);
        ent = { fx: pos.x, fy: pos.y, tx: pos.x, ty: pos.y, t0: now, dur: 0 };
        view.entities.set(user, ent);
      }
      const p = lerp(ent, now);
      drawn.push({ user, x: p.x, y: p.y, person: state.presence.get(user), isMe: false });
    }
    drawn.sort((a, b) => a.y - b.y);
    const mePerson = state.presence.get(state.me.id) || state.me;
    const meEntry = {
      user: state.me.id, x: me.x, y: me.y, isMe: true,
      person: { ...mePerson, user: state.me.id, name: state.me.name, color: state.me.color, status: state.me.status },
    };
    const onScreen = (d) => {
      const sx = ox + (d.x + 0.5) * tile;
      const sy = oy + (d.y + 0.5) * tile;
      return sx > -tile * 3 && sy > -tile * 3 && sx < cssW + tile * 3 && sy < cssH + tile * 3;
    };
    const shown = drawn.filter(onScreen);
    this.avatars = [];
    for (const d of [...shown, meEntry]) {
      const status = (d.person && d.person.status) || "available";
      const speaking = !!(state.speaking && state.speaking.has(d.user));
      this._drawAvatar(ctx, ox, oy, d, status, speaking, now);
      this.avatars.push({ user: d.user, x: d.x, y: d.y, status, speaking });
    }

    this._drawLabels(ctx, view, [...shown, meEntry], badges, ox, oy);
    return drawn.map((d) => d.user);
  }

  _textWidth(ctx, font, text) {
    const key = `${font}|${text}`;
    let w = this.textWidths.get(key);
    if (w === undefined) {
      if (this.textWidths.size > 2000) this.textWidths.clear();
      ctx.font = font;
      w = ctx.measureText(text).width;
      this.textWidths.set(key, w);
    }
    return w;
  }

  /** Names under people, desk names under desks: placed so that none overlaps another, a badge or a face. */
  _drawLabels(ctx, view, people, badges, ox, oy) {
    const { geo, state } = view;
    const tile = this.tile;
    const fontPx = Math.max(10, Math.min(15, Math.round(tile * 0.4)));
    const padX = 5;
    const h = fontPx + 4;
    const r = tile * 0.4;
    const requests = [];
    const meta = new Map();
    const obstacles = badges.map((b) => ({ x: b.x, y: b.y, w: b.w, h: b.h }));
    for (const d of people) {
      const cx = ox + (d.x + 0.5) * tile;
      const cy = oy + (d.y + 0.5) * tile;
      obstacles.push({ x: cx - r - 2, y: cy - r - 2, w: 2 * r + 4, h: 2 * r + 4 }); // the disc and its ring
      const name = (d.person && d.person.name) || "";
      if (!name) continue;
      const font = `${d.isMe ? 700 : 600} ${fontPx}px system-ui, sans-serif`;
      const id = `person:${d.user}`;
      requests.push({
        id, w: this._textWidth(ctx, font, name) + padX * 2, h, ax: cx, ay: cy, aw: 2 * r + 8, ah: 2 * r + 6, gap: 1,
        priority: d.isMe ? LABEL_PRIORITY.me : LABEL_PRIORITY.person, rings: 2,
      });
      meta.set(id, { text: name, font, kind: "person", isMe: d.isMe, user: d.user });
    }
    if (!this.deskLabelsInStatic) {
      const deskFontPx = Math.max(9, Math.min(13, Math.round(tile * 0.32)));
      const font = `600 ${deskFontPx}px system-ui, sans-serif`;
      for (const d of geo.desks) {
        const cx = ox + (d.x + 0.5) * tile;
        const cy = oy + (d.y + 0.5) * tile;
        if (cx < -tile * 2 || cy < -tile * 2 || cx > this.cssW + tile * 2 || cy > this.cssH + tile * 2) continue;
        const text = this._deskText(state, d);
        if (!text) continue;
        const id = `desk:${d.x},${d.y}`;
        requests.push({
          id, w: this._textWidth(ctx, font, text) + 8, h: deskFontPx + 3, ax: cx, ay: cy, aw: tile, ah: tile, gap: 0,
          priority: LABEL_PRIORITY.desk, sides: ["below", "above"],
        });
        meta.set(id, { text, font, kind: "desk" });
      }
    }
    const { placed } = placeLabels(requests, { obstacles, bounds: { x: 0, y: 0, w: this.cssW, h: this.cssH } });
    this.labels = [];
    for (const box of placed) {
      const m = meta.get(box.id);
      this.labels.push({ ...box, text: m.text, kind: m.kind });
      const look = m.kind === "desk" ? "desk" : m.isMe ? "me" : "person";
      ctx.drawImage(labelSprite(m.text, m.font, look, box.w, box.h, this.dpr), Math.round(box.x), Math.round(box.y), box.w, box.h);
    }
  }

  /** Live head counts from sensors (iot), a badge at each room's top right. */
  _drawOccupancy(ctx, geo, occupancy, ox, oy) {
    const badges = [];
    this.badges = badges;
    if (!occupancy || !occupancy.size) return badges;
    const tile = this.tile;
    for (const [roomId, o] of occupancy) {
      const room = geo.roomById.get(roomId);
      if (!room) continue;
      const count = Number(o.count) || 0;
      const over = room.capacity != null && count > room.capacity;
      const label = room.capacity != null ? `${count}/${room.capacity}` : String(count);
      ctx.font = `700 ${Math.max(10, Math.round(tile * 0.4))}px system-ui, sans-serif`;
      const w = ctx.measureText(label).width + tile * 0.9;
      const h = Math.max(16, tile * 0.62);
      // on a walled room's top wall, like a sign by the door; inside an open area's corner
      const walled = room.kind !== "open";
      const x = ox + (room.x + room.width - (walled ? 0.6 : 0.25)) * tile - w;
      const y = oy + room.y * tile + (walled ? (tile - h) / 2 : tile * 0.25);
      ctx.fillStyle = over ? "#dc2626" : count > 0 ? "#16a34a" : "rgba(100, 116, 139, 0.9)";
      roundRect(ctx, x, y, w, h, h / 2);
      ctx.fill();
      // a small person glyph, then the count
      const gx = x + tile * 0.35;
      const gy = y + h / 2;
      ctx.fillStyle = "#ffffff";
      ctx.beginPath();
      ctx.arc(gx, gy - h * 0.16, h * 0.14, 0, Math.PI * 2);
      ctx.fill();
      ctx.beginPath();
      ctx.arc(gx, gy + h * 0.3, h * 0.26, Math.PI, 0);
      ctx.fill();
      ctx.textAlign = "left";
      ctx.textBaseline = "middle";
      ctx.fillText(label, gx + tile * 0.25, gy + 0.5);
      badges.push({ room: roomId, count, label, over, x, y, w, h });
    }
    return badges;
  }

  /** One person: the cached disc with its status ring, a pulsing ring while speaking, a halo for me. */
  _drawAvatar(ctx, ox, oy, d, status, speaking, now) {
    const tile = this.tile;
    const { person, isMe } = d;
    const cx = ox + (d.x + 0.5) * tile;
    const cy = oy + (d.y + 0.5) * tile;
    const r = tile * 0.4;
    if (isMe) {
      ctx.fillStyle = "rgba(79, 70, 229, 0.22)";
      ctx.beginPath();
      ctx.arc(cx, cy, r + 6, 0, Math.PI * 2);
      ctx.fill();
    }
    if (speaking) {
      const pulse = 0.5 + 0.5 * Math.sin(now / 140);
      ctx.strokeStyle = `rgba(34, 197, 94, ${0.45 + 0.4 * pulse})`;
      ctx.lineWidth = 3;
      ctx.beginPath();
      ctx.arc(cx, cy, r + 5 + 3 * pulse, 0, Math.PI * 2);
      ctx.stroke();
    }
    const dpx = Math.max(8, Math.round(2 * r * this.dpr));
    const { canvas: sprite, pad } = avatarSprite(person && person.color, person && person.name, status, dpx);
    const k = (2 * r) / dpx; // device pixels to CSS px
    ctx.drawImage(sprite, cx - r - pad * k, cy - r - pad * k, sprite.width * k, sprite.height * k);
    if (speaking) {
      // sound waves beside the head
      ctx.strokeStyle = "rgba(22, 163, 74, 0.9)";
      ctx.lineWidth = Math.max(1.5, tile * 0.05);
      for (let i = 1; i <= 2; i++) {
        ctx.beginPath();
        ctx.arc(cx + r * 0.9, cy - r * 0.9, r * 0.22 * i, -Math.PI / 3, Math.PI / 6);
        ctx.stroke();
      }
    }
  }
}

function drawLock(c, x, y, size, color) {
  c.save();
  c.fillStyle = color;
  c.strokeStyle = color;
  c.lineWidth = Math.max(1.5, size * 0.14);
  const bw = size * 0.8;
  const bh = size * 0.55;
  const bx = x;
  const by = y + size * 0.45;
  c.beginPath();
  c.arc(bx + bw / 2, by, bw * 0.3, Math.PI, 0);
  c.stroke();
  roundRect(c, bx, by, bw, bh, 2);
  c.fill();
  c.restore();
}
