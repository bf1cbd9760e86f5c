// Canvases that follow their element's size: the backing store is kept at CSS size x device pixel
// ratio (at most 2), and `onResize` is called whenever that changed (the map and the map editor).

/** Watch `renderer.canvas`; sets renderer.cssW, cssH and dpr, sizes the canvas, then calls onResize(). */
export function watchCanvasSize(renderer, onResize) {
  const canvas = renderer.canvas;
  const resize = () => {
    const rect = canvas.getBoundingClientRect();
    const dpr = Math.min(window.devicePixelRatio || 1, 2);
    const w = Math.max(1, Math.round(rect.width));
    const h = Math.max(1, Math.round(rect.height));
    if (w === renderer.cssW && h === renderer.cssH && dpr === renderer.dpr) return;
    renderer.cssW = w;
    renderer.cssH = h;
    renderer.dpr = dpr;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    onResize(w, h);
  };
  resize();
  if (typeof ResizeObserver !== "undefined") new ResizeObserver(resize).observe(canvas);
  window.addEventListener("resize", resize);
}
