"""Context compaction: keep a long conversation's requests inside the model's window.

The transcript keeps every message; the model sees a *view* derived from it and the latest
``Compaction`` record (``view``). ``measure`` estimates a request's tokens without a tokenizer,
``steps`` is the ladder of pure shrinking steps, ``summarise`` asks the model for a summary,
and ``compactor`` runs the ladder when a request would pass the threshold.
"""
