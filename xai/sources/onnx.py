"""ONNX files through onnxruntime (optional extra ``xai-audit[onnx]``) -> a :class:`ModelHandle`.

The handle's module runs an onnxruntime session on NumPy arrays: no gradients
(``differentiable=False``), so gradient methods refuse with a one-line reason from their
capabilities while perturbation methods (occlusion, feature ablation, Kernel SHAP) and
fairness probes run as on any model. The input shape comes from the graph's first input
(a symbolic batch axis); rank 3 inputs are images, rank 1 rows. onnxruntime runs no Python
from the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from xai._typing import Task
from xai.errors import DataError, ModelLoadError
from xai.zoo.handle import TARGETS_BY_TASK, ModelHandle


class OnnxModule(nn.Module):
    """``forward(x)`` = the ONNX session's first output on ``x`` (float32, CPU), as a tensor."""

    def __init__(self, session: Any, path: Path) -> None:
        super().__init__()
        self.session = session
        self.path = path
        self.input_name = session.get_inputs()[0].name
        self.output_name = session.get_outputs()[0].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the session (no gradient flows through it)."""
        array = x.detach().cpu().numpy().astype(np.float32, copy=False)
        try:
            (out,) = self.session.run([self.output_name], {self.input_name: array})
        except Exception as exc:  # onnxruntime's errors name the input it refused
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise DataError(f"{self.path.name}: onnxruntime refused inputs of shape {tuple(x.shape)}: {first}") \
                from None
        return torch.from_numpy(np.ascontiguousarray(out)).to(x.device)


def load_onnx(path: Path, *, classes: Sequence[str] | None = None) -> ModelHandle:
    """An ONNX classifier; its outputs' last axis are the classes."""
    from xai._provenance import sha256_file
    from xai.sources._common import class_names_for

    if not path.is_file():
        raise ModelLoadError(f"ONNX file not found: {path}")
    try:
        import onnxruntime as ort  # type: ignore[import-untyped]
    except ImportError:
        raise ModelLoadError("ONNX models need onnxruntime: pip install 'xai-audit[onnx]'") from None
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: warnings are not ours to print
    try:
        session = ort.InferenceSession(path.read_bytes(), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types for a bad file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ModelLoadError(f"{path}: not an ONNX model onnxruntime can run ({first})") from None
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        raise ModelLoadError(f"{path}: takes {len(inputs)} inputs; xai audits models of one input tensor")
    shape = tuple(inputs[0].shape[1:])
    if not all(isinstance(d, int) and d > 0 for d in shape):
        raise ModelLoadError(f"{path}: input {inputs[0].name} has symbolic dimensions {inputs[0].shape}; "
                             "export with a fixed shape for everything but the batch axis")
    out_shape = outputs[0].shape
    n = out_shape[-1] if out_shape and isinstance(out_shape[-1], int) else None
    if n is None or len(out_shape) != 2:
        raise ModelLoadError(f"{path}: output {outputs[0].name} has shape {out_shape}; expected (batch, classes)")
    modality = {1: "tabular", 3: "image", 2: "sequence"}.get(len(shape))
    if modality is None:
        raise ModelLoadError(f"{path}: inputs of shape {shape} are neither rows, sequences nor images")
    names = class_names_for(classes, int(n), path.name)
    task: Task = "binary-classification" if n == 2 else "classification"
    return ModelHandle(
        name=path.stem,
        module=OnnxModule(session, path),
        task=task,
        modality=modality,  # type: ignore[arg-type]
        input_shape=tuple(int(d) for d in shape),
        class_names=names,
        source=f"onnx:{path}",
        sha256=sha256_file(path),
        targets_adapter=TARGETS_BY_TASK[task],
        differentiable=False,
    )
