"""Base models: the embedded default, any Hugging Face folder or hub id, and their fingerprints."""

import lazy_loader

# Names load with their module on first use, so importing the package (for a registry's names,
# the command line's light commands) imports no torch.
__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "loading": ["DEFAULT_MODEL", "BaseModel", "load_base"],
})
