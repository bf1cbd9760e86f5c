"""Meeting assistant. Built so far: the room knowledge index (pgvector HNSW over local MiniLM
embeddings) with permission-aware search. Summaries, action items and Q&A come next."""
