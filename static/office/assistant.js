// The meeting assistant in the browser: live notes of the meeting in my room, proposed action items
// (approve / edit / reject), questions answered with numbered citations, "catch me up", and one calm
// line when no model answers. The parts live in ./assistant/; this entry gathers their public API.

export { AssistantPanel } from "./assistant/panel.js";
export { ActionItemList } from "./assistant/items.js";
export { pickSummary, renderNotes } from "./assistant/notes.js";
export { askStream, renderAnswer, renderCatchUp, renderPartialAnswer, withCitationLinks } from "./assistant/answers.js";
export { assistantStatus, UNAVAILABLE_TEXT } from "./assistant/status.js";
