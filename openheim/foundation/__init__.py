"""What every layer stands on and nothing here stands on a layer: the data model (``models``),
the error hierarchy (``errors``), trio helpers (``concurrency``), durable file writes
(``fsutil``), process groups (``processes``) and secret redaction (``redact``)."""
