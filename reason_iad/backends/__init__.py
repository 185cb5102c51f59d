"""Model backends: one `Backend` protocol, one transformers implementation, per-family adapters, 4-bit loading."""

from reason_iad.backends.base import Backend, ImageSlots, Message, Prefix, SuffixOutput

__all__ = ["Backend", "ImageSlots", "Message", "Prefix", "SuffixOutput", "load_backend"]


def load_backend(config):
    """Load the model named by a `BackendConfig` (lazy import: torch and transformers load only here)."""
    from reason_iad.backends.loading import load_backend as _load

    return _load(config)
