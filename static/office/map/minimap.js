// The minimap: for maps larger than the view, a small overview in the map pane's corner (the static
// layer scaled down, a dot per person I can see, the view's outline). A click or tap on it pans the
// camera there; walking brings the camera back to me. A button shows and hides it (remembered).

const REDRAW_MS = 150;
const MAX_W = 200;
const MAX_H = 150;
const STORE_KEY = "office.minimap";

export class Minimap {
  constructor(view, container) {
    this.view = view;
    this.root = document.createElement("div");
    this.root.className = "map-minimap-wrap";
    this.root.hidden = true;
    this.toggle = document.createElement("button");
    this.toggle.type = "button";
    this.toggle.id = "minimap-toggle";
    this.toggle.className = "minimap-toggle";
    this.toggle.textContent = "Map";
    this.toggle.title = "Show or hide the overview of the whole floor";
    this.canvas = document.createElement("canvas");
    this.canvas.id = "map-minimap";
    this.canvas.className = "map-minimap";
    this.canvas.setAttribute("role", "img");
    this.canvas.setAttribute("aria-label", "Overview of the floor; click to look there");
    this.root.append(this.canvas, this.toggle);
    container.append(this.root);
    let stored = null;
    try {
      stored = localStorage.getItem(STORE_KEY);
    } catch {
      stored = null;
    }
    this.stored = stored; // "open" | "closed" | null: until chosen, open only on floors much larger than the view
    this.open = stored !== "closed";
    this.lastAt = 0;
    this.scale = 1;
    this.toggle.addEventListener("click", () => this.setOpen(!this.open));
    this.canvas.addEventListener("pointerdown", (e) => {
      e.preventDefault();
      e.stopPropagation();
      const geo = this.view.geo;
      if (!geo) return;
      const rect = this.canvas.getBoundingClientRect();
      const x = (e.clientX - rect.left) / this.scale;
      const y = (e.clientY - rect.top) / this.scale;
      this.view.renderer.panTo(Math.max(0, Math.min(geo.width, x)), Math.max(0, Math.min(geo.height, y)));
      this.lastAt = 0;
    });
    this._render();
  }

  setOpen(open) {
    this.open = !!open;
    this.stored = this.open ? "open" : "closed";
    try {
      localStorage.setItem(STORE_KEY, this.open ? "open" : "closed");
    } catch {
      // private browsing: not remembered
    }
    this._render();
  }

  _render() {
    this.root.dataset.open = this.open ? "true" : "false";
    this.canvas.hidden = !this.open;
    this.toggle.setAttribute("aria-pressed", this.open ? "true" : "false");
  }

  /** Called every frame by the map; redraws a few times a second, only for maps larger than the view. */
  draw(now) {
    const view = this.view;
    const renderer = view.renderer;
    const geo = view.geo;
    const large = !!(geo && view.state.me && !renderer.mapFits(geo));
    if (this.root.hidden === large) {
      this.root.hidden = !large;
      if (large && this.stored === null) {
        // a floor up to twice the view is easy to walk without it
        const area = (geo.width * renderer.tile * geo.height * renderer.tile) / Math.max(1, renderer.cssW * renderer.cssH);
        this.open = area > 2;
        this._render();
      }
    }
    if (!large || !this.open || now - this.lastAt < REDRAW_MS || !renderer.staticLayer) return;
    this.lastAt = now;
    const scale = Math.min(MAX_W / geo.width, MAX_H / geo.height);
    const w = Math.round(geo.width * scale);
    const h = Math.round(geo.height * scale);
    const dpr = renderer.dpr || 1;
    if (this.canvas.width !== Math.round(w * dpr) || this.canvas.height !== Math.round(h * dpr)) {
      this.canvas.width = Math.round(w * dpr);
      this.canvas.height = Math.round(h * dpr);
      this.canvas.style.width = `${w}px`;
      this.canvas.style.height = `${h}px`;
    }
    this.scale = scale;
    const c = this.canvas.getContext("2d");
    c.setTransform(dpr, 0, 0, dpr, 0, 0);
    c.imageSmoothingEnabled = true;
    c.drawImage(renderer.staticLayer, 0, 0, w, h);
    const dot = Math.max(2, scale * 0.8);
    for (const user of view.lastDrawn || []) {
      const pos = view.state.positions.get(user);
      const person = view.state.presence.get(user);
      if (!pos) continue;
      c.fillStyle = (person && person.color) || "#4f7cff";
      c.fillRect((pos.x + 0.5) * scale - dot / 2, (pos.y + 0.5) * scale - dot / 2, dot, dot);
    }
    const you = view.state.you;
    c.fillStyle = "#4f46e5";
    c.strokeStyle = "#ffffff";
    c.lineWidth = 1.5;
    c.beginPath();
    c.arc((you.x + 0.5) * scale, (you.y + 0.5) * scale, dot + 1, 0, Math.PI * 2);
    c.fill();
    c.stroke();
    // the part of the floor the map shows now
    const tile = renderer.tile;
    c.strokeStyle = "rgba(79, 70, 229, 0.95)";
    c.lineWidth = 2;
    c.strokeRect(renderer.cam.x * scale, renderer.cam.y * scale, (renderer.cssW / tile) * scale, (renderer.cssH / tile) * scale);
  }
}
