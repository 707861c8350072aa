"""The memory store: a SQLite catalogue plus one standard PEFT adapter folder per memory."""

from loramem.store.records import MemoryRecord
from loramem.store.store import MemoryStore, default_store_path, validate_name

__all__ = ["MemoryRecord", "MemoryStore", "default_store_path", "validate_name"]
