"""Gradient attributions through captum: Saliency, IG, SmoothGrad, GradientSHAP, DeepLift.

Each class is a thin wrapper: captum does the work on ``handle.forward_target`` (one
scalar per sample), so any task's targets adapter works unchanged.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from captum.attr import DeepLift as CaptumDeepLift
from captum.attr import GradientShap as CaptumGradientShap
from captum.attr import InputXGradient as CaptumInputXGradient
from captum.attr import IntegratedGradients as CaptumIG
from captum.attr import NoiseTunnel
from captum.attr import Saliency as CaptumSaliency
from pydantic import Field

from xai.datasets import Dataset
from xai.errors import DataError
from xai.explain._base import (
    Explainer,
    ExplainerOptions,
    TargetModule,
    data_baseline,
    quiet_hook_warnings,
    register_explainer,
)
from xai.zoo.handle import ModelHandle, eval_mode
from xai.zoo.vision import blurred_baseline

__all__ = ["DeepLift", "GradientShap", "InputXGradient", "IntegratedGradients", "Saliency", "SmoothGrad"]


@register_explainer("saliency")
class Saliency(Explainer):
    """Vanilla gradient of the target w.r.t. the input (Simonyan et al. 2014).

    Paper: https://arxiv.org/abs/1312.6034. Options: ``abs`` (default ``True``).
    On one-hot tabular inputs a raw column's score is the gradient at the row's level.

    Examples
    --------
    >>> from xai.datasets import load_dataset
    >>> from xai.explain import create_explainer
    >>> from xai.zoo import load_model
    >>> lenet, digits = load_model("lenet"), load_dataset("digits")
    >>> result = create_explainer("saliency", lenet).explain(digits.head(4))
    >>> result.attributions.shape  # one score per input pixel
    (4, 1, 32, 32)
    >>> bool((result.attributions >= 0).all())  # abs=True
    True
    """

    class Options(ExplainerOptions):
        """Saliency's options."""

        #: Absolute gradients (the paper's map) or signed ones.
        abs: bool = True

    paper = "https://arxiv.org/abs/1312.6034"
    column_reduce = "active"

    def attribute(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``|d target / d x|`` (or the signed gradient with ``abs=False``)."""
        method = CaptumSaliency(self.handle.forward_target)
        return method.attribute(x, additional_forward_args=(target,),
                                abs=self.options["abs"])


@register_explainer("input-x-gradient")
class InputXGradient(Explainer):
    """The input times the gradient of the target (Shrikumar et al. 2016).

    Paper: https://arxiv.org/abs/1605.01713. captum's ``InputXGradient``: the signed
    first-order contribution of each input to the output, as if the baseline were zero.
    No options.

    Examples
    --------
    >>> from xai.datasets import load_dataset
    >>> from xai.explain import create_explainer
    >>> from xai.zoo import load_model
    >>> result = create_explainer("input-x-gradient", load_model("lenet")).explain(load_dataset("digits").head(2))
    >>> result.attributions.shape
    (2, 1, 32, 32)
    """

    paper = "https://arxiv.org/abs/1605.01713"

    def attribute(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``x * d target / d x`` for one batch."""
        return CaptumInputXGradient(self.handle.forward_target).attribute(x, additional_forward_args=(target,))


@register_explainer("integrated-gradients")
class IntegratedGradients(Explainer):
    """Path integral of gradients from a baseline to the input (Sundararajan et al. 2017).

    Paper: https://arxiv.org/abs/1703.01365. Options: ``steps`` (50), ``baseline``
    (``zeros``; ``mean`` of the explained data; or ``blurred``, each image blurred by a
    Gaussian of ``sigma`` pixels (2.0), the baseline of LAM, Gu & Dong 2021,
    https://arxiv.org/abs/2011.11036, which asks which pixels' *detail* the output uses),
    ``internal_batch_size``. Defaults: ``mean`` for tabular rows, ``blurred`` for
    image-to-image regression (super-resolution), ``zeros`` otherwise. Completeness: the
    attributions of a sample add up to ``f(x) - f(baseline)``; the gap is kept as
    ``convergence_delta``.
    """

    class Options(ExplainerOptions):
        """Integrated Gradients' options."""

        #: Points on the path from the baseline to the input.
        steps: int = Field(default=50, ge=2)
        #: ``None``: ``mean`` for tabular rows, ``blurred`` for image regression, else ``zeros``.
        baseline: Literal["zeros", "mean", "blurred"] | None = None
        #: Blur of ``baseline = "blurred"``, in pixels.
        sigma: float = Field(default=2.0, gt=0)
        #: Path points per forward pass (memory only); ``None``: all at once.
        internal_batch_size: int | None = Field(default=None, gt=0)

    paper = "https://arxiv.org/abs/1703.01365"
    input_grad = False
    _last_delta: torch.Tensor | None = None

    def resolve(self, options: Any) -> dict[str, Any]:
        """Pick the baseline for the model's modality and task; ``sigma`` only with ``blurred``."""
        handle = self.handle
        if options.baseline is not None:
            baseline = options.baseline
        elif handle.modality == "tabular":
            baseline = "mean"
        elif handle.modality == "image" and handle.task == "regression":
            baseline = "blurred"
        else:
            baseline = "zeros"
        if baseline == "blurred" and handle.modality != "image":
            raise DataError(f"baseline 'blurred' blurs images; {handle.name} takes {handle.modality} inputs")
        if "sigma" in options.model_fields_set and baseline != "blurred":
            raise DataError("sigma is the blur of baseline=blurred; it does not apply to "
                            f"baseline={baseline}")
        out = {"steps": options.steps, "baseline": baseline, "internal_batch_size": options.internal_batch_size}
        if baseline == "blurred":
            out["sigma"] = options.sigma
        return out

    def prepare(self, data: Dataset) -> None:
        """Fix the baseline on the whole explained set (so batching cannot change it)."""
        if self.options["baseline"] == "mean":
            self._baseline = data.x.float().mean(0, keepdim=True)
        else:
            self._baseline = torch.zeros((1, *data.x.shape[1:]))

    def attribute(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """IG attributions for one batch; also records the completeness gap."""
        if self.options["baseline"] == "blurred":  # per image, so batching cannot change it
            baseline = blurred_baseline(x.detach(), self.options["sigma"])
        else:
            if not hasattr(self, "_baseline"):
                self._baseline = torch.zeros((1, *x.shape[1:]))
            baseline = self._baseline.to(x.device).expand_as(x)
        method = CaptumIG(self.handle.forward_target)
        attr, delta = method.attribute(
            x,
            baselines=baseline,
            additional_forward_args=(target,),
            n_steps=self.options["steps"],
            internal_batch_size=self.options["internal_batch_size"],
            return_convergence_delta=True,
        )
        self._last_delta = delta
        return attr

    def convergence(self) -> torch.Tensor | None:
        """Completeness gap of the last batch."""
        return self._last_delta


@register_explainer("smoothgrad")
class SmoothGrad(Explainer):
    """Saliency averaged over noisy copies of the input (Smilkov et al. 2017).

    Paper: https://arxiv.org/abs/1706.03825. captum's ``NoiseTunnel`` over ``Saliency``.
    Options: ``nt_samples`` (16 noisy copies), ``stdevs`` (the noise's standard deviation;
    default 15% of the data's value range for images, as in the paper, and 15% of the
    mean column standard deviation for tabular rows), ``abs`` (``True``).

    Examples
    --------
    >>> from xai.datasets import load_dataset
    >>> from xai.explain import create_explainer
    >>> from xai.zoo import load_model
    >>> lenet, digits = load_model("lenet"), load_dataset("digits")
    >>> create_explainer("smoothgrad", lenet, nt_samples=8).explain(digits.head(4)).attributions.shape
    (4, 1, 32, 32)
    """

    class Options(ExplainerOptions):
        """SmoothGrad's options."""

        #: Noisy copies per input.
        nt_samples: int = Field(default=16, gt=0)
        #: Noise standard deviation; ``None``: 15% of the data's range (images) or column spread.
        stdevs: float | None = Field(default=None, gt=0)
        abs: bool = True

    paper = "https://arxiv.org/abs/1706.03825"
    column_reduce = "active"

    def prepare(self, data: Dataset) -> None:
        """Fix the noise level from the explained data unless the user gave one."""
        x = data.x.float()
        if self.handle.modality == "tabular":
            self._stdevs = 0.15 * float(x.std(0).mean()) if len(x) > 1 else 0.15
        else:
            self._stdevs = 0.15 * float(x.max() - x.min()) or 0.15

    def attribute(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean saliency over ``nt_samples`` Gaussian-noised copies of each input."""
        stdevs = self.options["stdevs"] or getattr(self, "_stdevs", 0.15)
        method = NoiseTunnel(CaptumSaliency(self.handle.forward_target))
        return method.attribute(x, nt_type="smoothgrad", nt_samples=self.options["nt_samples"],
                                stdevs=stdevs, additional_forward_args=(target,),
                                abs=self.options["abs"])


@register_explainer("gradient-shap")
class GradientShap(Explainer):
    """Expected gradients between random data baselines and the input (Lundberg & Lee 2017).

    Paper: https://arxiv.org/abs/1705.07874. captum's ``GradientShap``. Options:
    ``n_samples`` (16 random baseline/interpolation draws per input), ``stdevs`` (input
    noise, 0), ``baselines`` (``data``: up to ``n_baselines`` = 32 rows drawn from the
    explained data with the run's seed, or ``zeros``).
    """

    class Options(ExplainerOptions):
        """GradientSHAP's options."""

        #: Random baseline/interpolation draws per input.
        n_samples: int = Field(default=16, gt=0)
        #: Input noise.
        stdevs: float = Field(default=0.0, ge=0)
        baselines: Literal["data", "zeros"] = "data"
        #: Rows drawn from the explained data as baselines (``baselines = "data"``).
        n_baselines: int = Field(default=32, gt=0)

    paper = "https://arxiv.org/abs/1705.07874"
    input_grad = False

    def prepare(self, data: Dataset) -> None:
        """Draw the baseline distribution once from the explained data (global seed)."""
        if self.options["baselines"] == "data":
            pick = torch.randperm(len(data))[:self.options["n_baselines"]]
            self._baselines = data.x[pick].float()  # (K, ...)
        else:
            self._baselines = torch.zeros((1, *data.x.shape[1:]))

    def attribute(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """GradientSHAP attributions for one batch."""
        baselines = getattr(self, "_baselines", None)
        if baselines is None:
            baselines = torch.zeros((1, *x.shape[1:]))
        method = CaptumGradientShap(self.handle.forward_target)
        return method.attribute(x, baselines=baselines.to(x.device), n_samples=self.options["n_samples"],
                                stdevs=self.options["stdevs"], additional_forward_args=(target,))


@register_explainer("deeplift")
class DeepLift(Explainer):
    """Contributions from differences to a reference through modified backprop (Shrikumar et al. 2017).

    Paper: https://arxiv.org/abs/1704.02685. captum's ``DeepLift`` (Rescale rule), which
    hooks the model's nonlinearity modules; it needs each activation to be its own,
    non-in-place module (the zoo's are). Options: ``baseline`` (``zeros`` for images,
    ``mean`` of the explained rows for tabular). Summation to delta: the attributions add
    up to ``f(x) - f(baseline)``; the gap is kept as ``convergence_delta``.
    """

    class Options(ExplainerOptions):
        """DeepLift's options."""

        #: ``None``: ``mean`` of the explained rows for tabular models, else ``zeros``.
        baseline: Literal["zeros", "mean"] | None = None

    paper = "https://arxiv.org/abs/1704.02685"
    _last_delta: torch.Tensor | None = None

    @classmethod
    def why_not(cls, handle: ModelHandle) -> str | None:
        """The capabilities' reason, else a nonlinearity module the model calls twice per forward.

        captum keeps one input/output per hooked module, so a module used twice (torchvision's
        ResNet blocks call one ``self.relu`` after both convolutions) fails mid-run with a
        long error; it is refused here, before any work, with the module's name.
        """
        reason = super().why_not(handle)
        if reason is not None:
            return reason
        reused = reused_nonlinearities(handle)
        if reused:
            n = len(reused)
            return (f"it needs each nonlinearity to be its own module, but {n} run{'s' if n == 1 else ''} more "
                    f"than once per forward ({reused[0]}{', ...' if n > 1 else ''}); captum's DeepLift hooks one "
                    "call per module")
        return None

    def resolve(self, options: Any) -> dict[str, Any]:
        """``mean`` baseline for tabular rows, ``zeros`` otherwise, unless one is given."""
        default = "mean" if self.handle.modality == "tabular" else "zeros"
        return {"baseline": options.baseline or default}

    def prepare(self, data: Dataset) -> None:
        """Fix the reference input on the whole explained set."""
        self._baseline = data_baseline(self.options["baseline"], data)

    def attribute(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """DeepLift attributions for one batch; also records the summation gap."""
        baseline = getattr(self, "_baseline", torch.zeros((1, *x.shape[1:])))
        method = CaptumDeepLift(TargetModule(self.handle))
        with quiet_hook_warnings():
            attr, delta = method.attribute(x, baselines=baseline.to(x.device).expand_as(x),
                                           additional_forward_args=(target,),
                                           return_convergence_delta=True)
        self._last_delta = delta
        return attr

    def convergence(self) -> torch.Tensor | None:
        """Summation-to-delta gap of the last batch."""
        return self._last_delta


def reused_nonlinearities(handle: ModelHandle) -> list[str]:
    """Names of the nonlinearity modules DeepLift hooks that one forward pass calls more than once.

    One forward on a zero input of the model's shape counts the calls; a model that cannot
    take that input (or has no module) gives ``[]``, so the run itself reports its problem.
    """
    from captum.attr._core.deep_lift import SUPPORTED_NON_LINEAR  # the module types captum's DeepLift hooks

    module = handle.module
    if not isinstance(module, torch.nn.Module):
        return []
    hooked = tuple(SUPPORTED_NON_LINEAR)
    named: dict[torch.nn.Module, str] = {m: n for n, m in module.named_modules() if isinstance(m, hooked)}
    calls: dict[torch.nn.Module, int] = dict.fromkeys(named, 0)

    def count(m: torch.nn.Module, _inputs: Any, _output: Any) -> None:
        calls[m] += 1

    hooks = [m.register_forward_hook(count) for m in named]
    try:
        with torch.no_grad(), eval_mode(module):
            module(torch.zeros((1, *handle.input_shape), device=handle.device))
    except Exception:  # noqa: BLE001  (an input the model rejects: not this check's business)
        return []
    finally:
        for hook in hooks:
            hook.remove()
    return [named[m] for m, n in calls.items() if n > 1]
