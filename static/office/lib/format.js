// Text formatting shared by the pages: initials and colours for avatars, and dates and times in the
// reader's locale (each helper returns "" for a missing or invalid date unless it says otherwise).

const AVATAR_PALETTE = ["#6366f1", "#0ea5e9", "#10b981", "#f59e0b", "#ef4444", "#8b5cf6", "#ec4899", "#14b8a6", "#f97316", "#64748b"];
const DEFAULT_COLOR = "#6366f1";

/** "Ada Lovelace" -> "AL", "ada" -> "AD", "" -> "?". */
export function initialsOf(name) {
  const parts = String(name || "?").trim().split(/\s+/).filter(Boolean);
  if (!parts.length) return "?";
  return ((parts[0][0] || "") + (parts.length > 1 ? parts[parts.length - 1][0] : parts[0][1] || "")).toUpperCase();
}

/** A stable avatar colour for a user id. */
export function colorFor(id) {
  const n = Math.abs(Number(id) || 0);
  return AVATAR_PALETTE[n % AVATAR_PALETTE.length];
}

/** `color` when it is a hex colour (it comes from the server and ends up in styles), else `fallback`. */
export function safeColor(color, fallback = DEFAULT_COLOR) {
  return typeof color === "string" && /^#[0-9a-fA-F]{3,8}$/.test(color) ? color : fallback;
}

/** A Date from a Date or an ISO string, or null when missing or invalid. */
export function toDate(value) {
  if (!value) return null;
  const d = value instanceof Date ? value : new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** Date and time, e.g. "Mar 4, 2025, 2:05 PM". */
export function formatDateTime(value) {
  const d = toDate(value);
  return d ? d.toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) : "";
}

/** Time of day, e.g. "14:05" (or "14:05:09" with `seconds`). */
export function formatTime(value, { seconds = false } = {}) {
  const d = toDate(value);
  if (!d) return "";
  const options = seconds ? { hour: "2-digit", minute: "2-digit", second: "2-digit" } : { hour: "2-digit", minute: "2-digit" };
  return d.toLocaleTimeString([], options);
}

/** A calendar day ("2025-03-04") as e.g. "Tue, Mar 4"; an unparsable value is returned as it is. */
export function formatDay(isoDate) {
  const d = isoDate ? new Date(`${isoDate}T12:00:00`) : null;
  if (!d || Number.isNaN(d.getTime())) return String(isoDate || "");
  return d.toLocaleDateString([], { weekday: "short", month: "short", day: "numeric" });
}
