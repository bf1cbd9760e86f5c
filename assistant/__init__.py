"""The meeting assistant: the room knowledge index (pgvector plus full text, `indexing`,
`selectors.knowledge_search_hybrid`), rolling and final meeting notes (`meeting_notes`), action items
chosen by versioned turn rankers (`candidate_ranker`, `item_writer`, `registry`, ADRs 0011-0012),
cited Q&A and catch-up (`qa`), all model calls through one OpenAI-compatible client (`llm`, ADR 0010).

Public modules: `services`, `selectors`, `serializers`, `signals` (what automation hears:
`action_item_approved`, `action_item_proposed`, `knowledge_sweep`), `tasks` (Celery adapters).
Builds on transcription and rooms (docs/adr/0013).
"""
