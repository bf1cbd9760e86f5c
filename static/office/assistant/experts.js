// "Who knows about X?" in the ask box: the topic of such a question, and the ranked people
// (GET /api/experts/) rendered with their reasons, each linked to its segment, message, page or task.

import { el, link } from "../lib/dom.js";
import { apiRequest } from "../lib/http.js";
import { openResultBox } from "./answers.js";

const WHO_KNOWS = /^\s*(?:who\s+(?:knows|knows\s+most|would\s+know|can\s+help)|experts?)\s+(?:about|on|with|for|regarding)?\s*(.+?)[\s?.!]*$/i;
const KIND_TEXT = { said: "said", wrote: "wrote", uploaded: "uploaded", completed: "completed" };

/** The topic of "who knows about X?" (X), or null for any other question. */
export function expertTopic(question) {
  const m = String(question || "").match(WHO_KNOWS);
  return m && m[1].trim() ? m[1].trim() : null;
}

/** The people who know most about `topic` among the rooms I may read (resolves like apiRequest). */
export function findExperts(topic) {
  return apiRequest(`/api/experts/?q=${encodeURIComponent(topic)}`);
}

/** Render GET /api/experts/'s answer (or its failure) into `box`. */
export function renderExperts(box, result) {
  const data = openResultBox(box, result);
  if (data === null) return;
  const experts = Array.isArray(data.experts) ? data.experts : [];
  if (!experts.length) {
    box.dataset.state = "not-found";
    box.append(el("p", "answer-not-found", `Nobody here has said, written or done anything on “${data.query}” that I can find.`));
    return;
  }
  box.dataset.state = "experts";
  box.append(el("p", "answer-text", `Who knows about “${data.query}”:`));
  const ol = el("ol", "experts");
  for (const expert of experts) {
    const li = el("li", "expert");
    li.append(el("strong", "expert-name", (expert.person && expert.person.name) || "someone"));
    const reasons = el("ul", "expert-reasons");
    for (const r of expert.reasons || []) {
      const item = el("li", "expert-reason");
      item.dataset.kind = r.kind || "";
      item.append(`${KIND_TEXT[r.kind] || r.kind}: `);
      item.append(el("span", "answer-quote", r.text || ""));
      item.append(" ", r.url ? link(r.url, r.label || "source", "answer-source") : el("span", "answer-source", r.label || ""));
      reasons.append(item);
    }
    li.append(reasons);
    ol.append(li);
  }
  box.append(ol);
}
