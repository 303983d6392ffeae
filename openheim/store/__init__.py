"""Conversation persistence behind the ``HistoryStore`` protocol."""

from openheim.store.base import ConversationMeta, HistoryStore
from openheim.store.files import FileHistoryStore

__all__ = ["ConversationMeta", "FileHistoryStore", "HistoryStore"]
