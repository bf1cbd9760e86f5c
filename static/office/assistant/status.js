// Whether the assistant's models answer: the status check shared by the office panel and the
// meeting page, and the one calm line shown when no model answers.

import { apiRequest } from "../lib/http.js";

export const UNAVAILABLE_TEXT = "Assistant unavailable — notes resume when the model is back";

/** Which model tiers answer: {down: [tier...], all: bool} or null when the status itself failed. */
export async function assistantStatus() {
  const r = await apiRequest("/api/assistant/status/");
  if (!r.ok || !r.data || typeof r.data.tiers !== "object") return null;
  const tiers = Object.entries(r.data.tiers);
  const down = tiers.filter(([, t]) => t && t.available === false).map(([name]) => name);
  return { down, all: tiers.length > 0 && down.length === tiers.length };
}
