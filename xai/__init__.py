"""xai-audit: explainability and ethics audits for PyTorch models.

The library's names load on first use (``import xai`` imports no torch)::

    import xai
    handle = xai.ModelHandle.from_module(module, classes=2, input_shape=(4,))
    data = xai.Dataset.from_arrays(x, y, groups={"sex": sex})
    attributions = xai.explain(handle, data, method="saliency")
    frame = xai.group_frame(y_true=y, y_pred=pred, sensitive_features=sex)
"""

from typing import TYPE_CHECKING

from xai._lazy import attach
from xai.errors import XaiError

if TYPE_CHECKING:
    from xai.api import audit, check, explain, list_methods  # at run time: the callable subpackages
    from xai.audit.check import CheckedAudit
    from xai.audit.result import AuditResult
    from xai.audit.spec import AuditSpec, load_spec
    from xai.datasets._base import Dataset, list_datasets, load_dataset
    from xai.errors import DataError, ModelLoadError, SpecError
    from xai.explain._base import AttributionResult
    from xai.fairness.metrics import GroupFrame, group_frame
    from xai.zoo._index import list_models
    from xai.zoo.handle import ModelHandle
    from xai.zoo.loaders import load_model

__version__ = "0.1.0"

# name -> the module that defines it, imported on first use (importing xai stays torch-free); `xai.explain`
# and `xai.audit` are the subpackages, callable as xai.api's explain() and audit() (xai/_lazy.py make_callable)
_EXPORTS: dict[str, str] = {
    "check": "xai.api",
    "list_methods": "xai.api",
    "CheckedAudit": "xai.audit.check",
    "AuditResult": "xai.audit.result",
    "AuditSpec": "xai.audit.spec",
    "load_spec": "xai.audit.spec",
    "Dataset": "xai.datasets._base",
    "list_datasets": "xai.datasets._base",
    "load_dataset": "xai.datasets._base",
    "DataError": "xai.errors",
    "ModelLoadError": "xai.errors",
    "SpecError": "xai.errors",
    "AttributionResult": "xai.explain._base",
    "GroupFrame": "xai.fairness.metrics",
    "group_frame": "xai.fairness.metrics",
    "list_models": "xai.zoo._index",
    "ModelHandle": "xai.zoo.handle",
    "load_model": "xai.zoo.loaders",
}
__getattr__, __dir__ = attach(__name__, _EXPORTS)

__all__ = [
    "AttributionResult",
    "AuditResult",
    "AuditSpec",
    "CheckedAudit",
    "DataError",
    "Dataset",
    "GroupFrame",
    "ModelHandle",
    "ModelLoadError",
    "SpecError",
    "XaiError",
    "__version__",
    "audit",
    "check",
    "explain",
    "group_frame",
    "list_datasets",
    "list_methods",
    "list_models",
    "load_dataset",
    "load_model",
    "load_spec",
]
