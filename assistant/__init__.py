"""Meeting assistant: live summaries, action items, room knowledge and Q&A (not built yet)."""
