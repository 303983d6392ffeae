"""The session engine every face drives: a runtime of shared parts, and one actor per session."""

from openheim.session.actor import Session
from openheim.session.catalog import ConversationMeta, Page, Transcript
from openheim.session.options import Attachment, SessionOptions
from openheim.session.registry import SessionPolicy, SessionRegistry
from openheim.session.runtime import Runtime, open_runtime

__all__ = [
    "Attachment",
    "ConversationMeta",
    "Page",
    "Runtime",
    "Session",
    "SessionOptions",
    "SessionPolicy",
    "SessionRegistry",
    "Transcript",
    "open_runtime",
]
