// The map editor's canvas: the office map's own drawing (MapRenderer's static layer: floor, rooms,
// walls, doors, desks, names) fitted to the pane, plus the editor's marks: the selection with its
// corner handles, the rectangle being drawn, the tile under the pointer.

import { watchCanvasSize } from "../lib/canvas.js";
import { MapRenderer } from "../map/render.js";

const TILE_MIN = 8;
const TILE_MAX = 40;
const ACCENT = "#4f46e5";
export const HANDLE_PX = 7;

export class EditorRenderer extends MapRenderer {
  constructor(canvas) {
    super(canvas);
    this.mapW = 40;
    this.mapH = 24;
  }

  /** Fit the whole map into the pane: the tile size follows the map's size, the map is centred. */
  fitTo(width, height) {
    this.mapW = width;
    this.mapH = height;
    this._fit();
  }

  _observeSize() {
    watchCanvasSize(this, () => this._fit());
  }

  _fit() {
    const mapW = this.mapW || 40;
    const mapH = this.mapH || 24;
    const tile = Math.floor(Math.min(this.cssW / (mapW + 1), this.cssH / (mapH + 1)));
    this.tile = Math.max(TILE_MIN, Math.min(TILE_MAX, tile || TILE_MIN));
    this.cam = { x: (mapW - this.cssW / this.tile) / 2, y: (mapH - this.cssH / this.tile) / 2 };
  }

  /** Canvas pixel (CSS px) of tile corner (x, y). */
  px(x, y) {
    return [(x - this.cam.x) * this.tile, (y - this.cam.y) * this.tile];
  }

  /** One frame: the layout `geo` and the editor's marks ({selection, ghost, hover, handles}). */
  drawEditor(geo, state, marks) {
    const ctx = this.ctx;
    const { cssW, cssH, dpr, tile } = this;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#1b2232";
    ctx.fillRect(0, 0, cssW, cssH);
    if (!geo) {
      ctx.fillStyle = "#9aa6bd";
      ctx.font = "600 14px system-ui, sans-serif";
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText("Loading the map…", cssW / 2, cssH / 2);
      return;
    }
    this._buildStatic(geo, state);
    const [ox, oy] = this.px(0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(this.staticLayer, ox, oy, geo.width * tile, geo.height * tile);
    ctx.imageSmoothingEnabled = true;

    if (marks.hover) {
      const [hx, hy] = this.px(marks.hover[0], marks.hover[1]);
      ctx.strokeStyle = "rgba(79, 70, 229, 0.55)";
      ctx.lineWidth = 1.5;
      ctx.strokeRect(hx + 1.5, hy + 1.5, tile - 3, tile - 3);
    }
    if (marks.selection) {
      const { x, y, width, height } = marks.selection;
      const [sx, sy] = this.px(x, y);
      ctx.strokeStyle = ACCENT;
      ctx.lineWidth = 2.5;
      ctx.strokeRect(sx, sy, width * tile, height * tile);
      if (marks.handles) {
        for (const [hx, hy] of this.handlePoints(marks.selection)) {
          ctx.fillStyle = "#ffffff";
          ctx.fillRect(hx - HANDLE_PX, hy - HANDLE_PX, HANDLE_PX * 2, HANDLE_PX * 2);
          ctx.strokeStyle = ACCENT;
          ctx.lineWidth = 2;
          ctx.strokeRect(hx - HANDLE_PX, hy - HANDLE_PX, HANDLE_PX * 2, HANDLE_PX * 2);
        }
      }
    }
    if (marks.ghost) {
      const { x, y, width, height, ok } = marks.ghost;
      const [gx, gy] = this.px(x, y);
      ctx.save();
      ctx.setLineDash([6, 4]);
      ctx.strokeStyle = ok ? ACCENT : "#dc2626";
      ctx.fillStyle = ok ? "rgba(79, 70, 229, 0.12)" : "rgba(220, 38, 38, 0.12)";
      ctx.lineWidth = 2;
      ctx.fillRect(gx, gy, width * tile, height * tile);
      ctx.strokeRect(gx, gy, width * tile, height * tile);
      ctx.restore();
    }
  }

  /** The four corner handles of a rectangle in tiles, as canvas pixels: [x, y, corner]. */
  handlePoints({ x, y, width, height }) {
    const [x0, y0] = this.px(x, y);
    const [x1, y1] = this.px(x + width, y + height);
    return [[x0, y0, "nw"], [x1, y0, "ne"], [x0, y1, "sw"], [x1, y1, "se"]];
  }
}
