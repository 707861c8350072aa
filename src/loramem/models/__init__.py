"""Base models: the embedded default, any Hugging Face folder or hub id, and their fingerprints."""

from loramem.models.loading import DEFAULT_MODEL, BaseModel, load_base

__all__ = ["DEFAULT_MODEL", "BaseModel", "load_base"]
