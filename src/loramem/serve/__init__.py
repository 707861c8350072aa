"""The OpenAI-compatible server: `loramem serve`, and `create_app` for embedding it elsewhere."""

from loramem.serve.app import ServerThread, create_app, serve

__all__ = ["ServerThread", "create_app", "serve"]
