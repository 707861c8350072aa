"""The memory store: a SQLite catalogue plus one standard PEFT adapter folder per memory."""

from loramem.store.names import default_store_path, validate_name
from loramem.store.records import MemoryRecord
from loramem.store.store import MemoryStore

__all__ = ["MemoryRecord", "MemoryStore", "default_store_path", "validate_name"]
