// Label placement on the map, a pure function of boxes (no canvas): each label has an anchor and a
// size; it tries positions around its anchor in order (below, above, right, left, then farther out)
// and keeps the first that overlaps no label placed before it and no obstacle (an avatar's disc, a
// room badge). Labels are placed in priority order (my name, other people's names, desks), so when
// there is no room it is the desk label that goes. Placed boxes never intersect.

/** Whether two boxes {x, y, w, h} overlap (touching edges do not count). */
export function boxesIntersect(a, b) {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

const SIDES = ["below", "above", "right", "left"];

/** The box of a w x h label on `side` of the anchor box {ax, ay, aw, ah}, `gap` away, `ring` steps out. */
function boxOnSide(label, side, ring) {
  const { ax, ay, w, h } = label;
  const aw = label.aw || 0;
  const ah = label.ah || 0;
  const gap = label.gap ?? 2;
  const out = ring * (side === "below" || side === "above" ? h + gap : w + gap);
  switch (side) {
    case "below": return { x: ax - w / 2, y: ay + ah / 2 + gap + out, w, h };
    case "above": return { x: ax - w / 2, y: ay - ah / 2 - gap - h - out, w, h };
    case "right": return { x: ax + aw / 2 + gap + out, y: ay - h / 2, w, h };
    default: return { x: ax - aw / 2 - gap - w - out, y: ay - h / 2, w, h };
  }
}

/**
 * Place labels without overlaps.
 *
 * labels: [{id, w, h, ax, ay, aw?, ah?, gap?, priority, sides?, rings?}]: the anchor is the centre
 *   (ax, ay) of a box aw x ah the label goes around; higher priority is placed first (ties keep input
 *   order); `sides` (default below, above, right, left) and `rings` (default 1: only next to the
 *   anchor; 2 also tries one label-height farther out) bound the candidates.
 * options: {obstacles: [{x, y, w, h}], bounds: {x, y, w, h} (labels must lie inside; optional)}
 * Returns {placed: [{id, x, y, w, h, side, priority}], dropped: [id]}.
 */
export function placeLabels(labels, { obstacles = [], bounds = null } = {}) {
  const order = labels.map((label, i) => [label, i]).sort((a, b) => (b[0].priority || 0) - (a[0].priority || 0) || a[1] - b[1]);
  const taken = [];
  const placed = [];
  const dropped = [];
  const inside = (box) => !bounds || (box.x >= bounds.x && box.y >= bounds.y
    && box.x + box.w <= bounds.x + bounds.w && box.y + box.h <= bounds.y + bounds.h);
  const free = (box) => inside(box) && !taken.some((t) => boxesIntersect(t, box)) && !obstacles.some((o) => boxesIntersect(o, box));
  for (const [label] of order) {
    let spot = null;
    const sides = label.sides || SIDES;
    for (let ring = 0; ring < (label.rings || 1) && !spot; ring++) {
      for (const side of sides) {
        const box = boxOnSide(label, side, ring);
        if (free(box)) {
          spot = { ...box, side };
          break;
        }
      }
    }
    if (!spot) {
      dropped.push(label.id);
      continue;
    }
    const box = { id: label.id, x: spot.x, y: spot.y, w: spot.w, h: spot.h, side: spot.side, priority: label.priority || 0 };
    taken.push(box);
    placed.push(box);
  }
  return { placed, dropped };
}
