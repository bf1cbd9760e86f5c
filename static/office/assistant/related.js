// "Related meetings" on the meeting page: meetings you may read that share topics with this one
// (assistant/topic_views.py RelatedMeetingsApi), each with the topics they share, linked to the topic page.

import { el } from "../lib/dom.js";
import { formatDateTime } from "../lib/format.js";
import { apiRequest } from "../lib/http.js";

const root = document.getElementById("meeting-page");
const listEl = document.getElementById("related-meetings");

async function loadRelated() {
  if (!root || !listEl) return;
  const r = await apiRequest(`/api/meetings/${Number(root.dataset.meetingId)}/related/`);
  listEl.replaceChildren();
  if (!r.ok) {
    listEl.append(el("li", "notes-empty", "Related meetings could not be loaded."));
    return;
  }
  if (!r.data.related.length) {
    listEl.append(el("li", "notes-empty", "No related meetings yet: topics are found once a few meetings have ended."));
    return;
  }
  for (const related of r.data.related) {
    const item = el("li", { "data-meeting-id": String(related.id) });
    item.append(el("a", { href: related.url }, `${related.room_name} · ${formatDateTime(related.started_at)}`));
    if (related.topics.length) {
      item.append(document.createTextNode(" — "));
      related.topics.forEach((topic, i) => {
        if (i) item.append(document.createTextNode(", "));
        item.append(el("a", { href: `/topics/${Number(topic.id)}/`, class: "topic-link" }, topic.label));
      });
    }
    listEl.append(item);
  }
}

loadRelated();
