// Map geometry, pure functions of a layout: walls, doors and which room a tile is in (compileLayout),
// shortest walks (findPath), and the area of interest (who is near enough to be seen).

/** Walls, doors and "which room is this tile in" for a map layout (mirrors rooms/geometry.py). */
export function compileLayout(layout) {
  const width = layout.width | 0;
  const height = layout.height | 0;
  const size = width * height;
  const rooms = (layout.rooms || []).map((r) => ({ ...r, doors: r.doors || [] }));
  const roomById = new Map(rooms.map((r) => [r.id, r]));
  const roomIndex = new Int32Array(size).fill(-1);
  const walls = new Uint8Array(size);
  const doors = new Uint8Array(size);
  const byArea = rooms.map((r, i) => [r, i]).sort((a, b) => b[0].width * b[0].height - a[0].width * a[0].height);
  for (const [r, i] of byArea) {
    for (let x = Math.max(0, r.x); x < Math.min(width, r.x + r.width); x++) {
      for (let y = Math.max(0, r.y); y < Math.min(height, r.y + r.height); y++) roomIndex[y * width + x] = i;
    }
  }
  const mark = (x, y, r) => {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    const isDoor = r.doors.some(([dx, dy]) => dx === x && dy === y);
    if (isDoor) doors[y * width + x] = 1;
    else walls[y * width + x] = 1;
  };
  for (const r of rooms) {
    if (r.kind === "open") continue;
    for (let x = r.x; x < r.x + r.width; x++) {
      mark(x, r.y, r);
      mark(x, r.y + r.height - 1, r);
    }
    for (let y = r.y + 1; y < r.y + r.height - 1; y++) {
      mark(r.x, y, r);
      mark(r.x + r.width - 1, y, r);
    }
  }
  const geo = {
    layout, width, height, rooms, roomById, roomIndex, walls, doors,
    aoi: Math.max(1, layout.aoi_cell | 0 || 16),
    desks: layout.desks || [],
    inBounds: (x, y) => x >= 0 && y >= 0 && x < width && y < height,
    isWall: (x, y) => !geo.inBounds(x, y) || walls[y * width + x] === 1,
    passable: (x, y) => geo.inBounds(x, y) && walls[y * width + x] === 0,
    isDoor: (x, y) => geo.inBounds(x, y) && doors[y * width + x] === 1 && walls[y * width + x] === 0,
    roomAt: (x, y) => {
      if (!geo.inBounds(x, y)) return null;
      const i = roomIndex[y * width + x];
      return i < 0 ? null : rooms[i];
    },
    /** Physical legality of one step (bounds, walls, no cutting wall corners). */
    canStep: (x0, y0, x1, y1) => {
      if (Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0)) !== 1) return false;
      if (!geo.passable(x1, y1)) return false;
      if (x1 !== x0 && y1 !== y0 && (geo.isWall(x1, y0) || geo.isWall(x0, y1))) return false;
      return true;
    },
  };
  return geo;
}

/** Shortest 8-neighbour path from start to goal (excluding start), or null. */
export function findPath(geo, start, goal, allowed = () => true) {
  const { width, height } = geo;
  const [sx, sy] = start;
  const [gx, gy] = goal;
  if (!geo.inBounds(gx, gy) || !geo.passable(gx, gy) || !allowed(gx, gy)) return null;
  if (sx === gx && sy === gy) return [];
  const prev = new Int32Array(width * height).fill(-1);
  const startI = sy * width + sx;
  const goalI = gy * width + gx;
  prev[startI] = startI;
  const queue = new Int32Array(width * height);
  let head = 0;
  let tail = 0;
  queue[tail++] = startI;
  // Orthogonal first so paths prefer straight lines.
  const dirs = [[1, 0], [-1, 0], [0, 1], [0, -1], [1, 1], [1, -1], [-1, 1], [-1, -1]];
  while (head < tail) {
    const i = queue[head++];
    if (i === goalI) break;
    const x = i % width;
    const y = (i / width) | 0;
    for (const [dx, dy] of dirs) {
      const nx = x + dx;
      const ny = y + dy;
      if (!geo.inBounds(nx, ny)) continue;
      const ni = ny * width + nx;
      if (prev[ni] !== -1) continue;
      if (!geo.canStep(x, y, nx, ny) || !allowed(nx, ny)) continue;
      prev[ni] = i;
      queue[tail++] = ni;
    }
  }
  if (prev[goalI] === -1) return null;
  const path = [];
  for (let i = goalI; i !== startI; i = prev[i]) path.push([i % width, (i / width) | 0]);
  return path.reverse();
}

/**
 * Whether someone at `pos` whose presence says `roomId` can be seen from `you` ({x, y, room}): in a
 * private room only by those in it, elsewhere within one area-of-interest cell of one's own.
 */
export function canSee(geo, you, pos, roomId) {
  const room = roomId != null ? geo.roomById.get(roomId) : null;
  if (room && room.kind === "private") {
    // Only people in the private room you are standing in.
    return room.id === you.room;
  }
  const cell = geo.aoi;
  const mx = Math.floor(you.x / cell);
  const my = Math.floor(you.y / cell);
  return Math.abs(Math.floor(pos.x / cell) - mx) <= 1 && Math.abs(Math.floor(pos.y / cell) - my) <= 1;
}
