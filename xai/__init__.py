"""xai-audit: explainability and ethics audits for PyTorch models."""

from xai.errors import XaiError

__version__ = "0.1.0"
__all__ = ["XaiError", "__version__"]
