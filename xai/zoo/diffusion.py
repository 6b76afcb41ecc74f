"""Latent diffusion (Rombach et al. 2022) on the digits, small enough to train on one CPU thread.

Three parts in one module, :class:`LatentDiffusion`:

- a tiny KL-regularised autoencoder (:class:`TinyAutoencoderKL`): ``(B, 1, 32, 32)`` images
  in [0, 1] <-> ``(B, 4, 8, 8)`` latents, rescaled by a fixed ``scale_factor`` (one over the
  standard deviation of the training latents, as Stable Diffusion does) so the diffusion sees
  unit-variance latents;
- a prompt encoder: a digit class ``c`` is the two-token prompt ``("digit", "<c>")`` (token
  embeddings plus a position embedding, :data:`TOKENS`); the unconditional prompt of
  classifier-free guidance is ``("digit", "<null>")``;
- a small U-Net denoiser (:class:`LatentUNet`) at 8x8 and 4x4 with residual blocks, a
  timestep embedding and a cross-attention block at each resolution, whose queries are
  the latent pixels and whose keys and values are the prompt tokens.

Training is DDPM (Ho et al. 2020, https://arxiv.org/abs/2006.11239): a linear beta
schedule over ``T = 1000`` steps and epsilon prediction, with the class token dropped to
``<null>`` 10% of the time (classifier-free guidance, Ho & Salimans 2022,
https://arxiv.org/abs/2207.12598). Sampling is deterministic DDIM (Song et al. 2021,
https://arxiv.org/abs/2010.02502; ``eta = 0``) with guidance:
``eps = eps_null + w (eps_class - eps_null)``.

What the explainers see
-----------------------
``forward(x)`` scores every class for a batch of images: the negative epsilon-prediction
error of the denoiser, prompted with each class, on the image's latent noised with fixed
noise at the fixed timesteps :data:`SCORE_TIMESTEPS` (one, ``t = 400``: the "diffusion
classifier" of Li et al. 2023, https://arxiv.org/abs/2303.16203, with a single noise draw;
it classifies 85% of the held-out digits, three timesteps 90% at three times the cost).
The output is ``(B, 10)``, higher = the class prompt explains the image better,
differentiable in the input, so the class-logit targets adapter gives one scalar per
sample ("how much does this pixel make the model's denoiser prefer class c"). The
default explained target is the arg-max: the diffusion classifier's own prediction.

Cross-attention for DAAM
------------------------
:attr:`LatentDiffusion.cross_attention` names the ``nn.Softmax`` modules whose outputs are
the cross-attention probabilities ``(B, heads, h * w, tokens)`` (queries: latent pixels in
row-major order; keys: prompt tokens; each row sums to 1), coarse and fine alike, in call
order. During :meth:`LatentDiffusion.sample` the denoiser's batch holds the ``n``
class-prompted rows first, then (with guidance) the ``n`` unconditional ones.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from xai.datasets import Dataset
from xai.datasets._digits import DIGIT_CLASSES
from xai.errors import DataError, ModelLoadError
from xai.zoo._entry import ZooEntry, register_model
from xai.zoo._train import TrainContext, seed_everything
from xai.zoo.handle import class_logit

__all__ = [
    "TOKENS",
    "CrossAttention",
    "LatentDiffusion",
    "LatentUNet",
    "TinyAutoencoderKL",
    "ddpm_loss",
    "diffusion_eval",
]

#: The prompt vocabulary: ``"digit"``, one word per class, and the unconditional ``<null>``.
TOKENS: tuple[str, ...] = ("digit", *(f"<{c}>" for c in DIGIT_CLASSES), "<null>")
NULL_TOKEN = len(TOKENS) - 1
PROMPT_LENGTH = 2
#: The fixed timesteps at which ``forward`` scores the classes (one noise draw each, seeded).
SCORE_TIMESTEPS: tuple[int, ...] = (400,)
_SCORE_NOISE_SEED = 1234


def prompt_tokens(classes: torch.Tensor) -> torch.Tensor:
    """Class indices ``(B,)`` (``-1``: unconditional) -> token ids ``(B, 2)``: ``("digit", "<c>")``."""
    word = torch.where(classes < 0, torch.full_like(classes, NULL_TOKEN), classes + 1)
    return torch.stack([torch.zeros_like(classes), word], 1)


class TinyAutoencoderKL(nn.Module):
    """A small KL-regularised autoencoder: ``(B, 1, 32, 32)`` <-> ``(B, 4, 8, 8)``.

    The encoder gives the mean and log-variance of a diagonal Gaussian posterior; the
    decoder maps a latent back to an image in [0, 1] (sigmoid). Every activation is its
    own module.
    """

    def __init__(self, latent_channels: int = 4, width: int = 16) -> None:
        super().__init__()
        self.latent_channels = latent_channels
        self.enc_conv1 = nn.Conv2d(1, width // 2, 3, padding=1)  # (B, 8, 32, 32)
        self.enc_act1 = nn.SiLU()
        self.enc_conv2 = nn.Conv2d(width // 2, width, 4, stride=2, padding=1)  # (B, 16, 16, 16)
        self.enc_act2 = nn.SiLU()
        self.enc_conv3 = nn.Conv2d(width, width, 4, stride=2, padding=1)  # (B, 16, 8, 8)
        self.enc_act3 = nn.SiLU()
        self.enc_out = nn.Conv2d(width, 2 * latent_channels, 1)  # (B, 8, 8, 8): mean, log-variance
        self.dec_in = nn.Conv2d(latent_channels, width, 3, padding=1)  # (B, 16, 8, 8)
        self.dec_act1 = nn.SiLU()
        self.dec_up1 = nn.ConvTranspose2d(width, width, 4, stride=2, padding=1)  # (B, 16, 16, 16)
        self.dec_act2 = nn.SiLU()
        self.dec_up2 = nn.ConvTranspose2d(width, width // 2, 4, stride=2, padding=1)  # (B, 8, 32, 32)
        self.dec_act3 = nn.SiLU()
        self.dec_out = nn.Conv2d(width // 2, 1, 3, padding=1)  # (B, 1, 32, 32)
        self.dec_sigmoid = nn.Sigmoid()

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``(B, 1, 32, 32)`` in [0, 1] -> posterior mean and log-variance ``(B, 4, 8, 8)``."""
        h = self.enc_act1(self.enc_conv1(x * 2 - 1))
        h = self.enc_act2(self.enc_conv2(h))
        h = self.enc_act3(self.enc_conv3(h))
        mean, logvar = self.enc_out(h).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents ``(B, 4, 8, 8)`` -> images ``(B, 1, 32, 32)`` in [0, 1]."""
        h = self.dec_act1(self.dec_in(z))
        h = self.dec_act2(self.dec_up1(h))
        h = self.dec_act3(self.dec_up2(h))
        return self.dec_sigmoid(self.dec_out(h))


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps ``(B,)`` -> ``(B, dim)`` (Vaswani et al. 2017)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None, :]  # (B, half)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, the timestep embedding added in between, plus a shortcut."""

    def __init__(self, in_channels: int, out_channels: int, time_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(8, in_channels)
        self.act1 = nn.SiLU()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.time = nn.Linear(time_dim, out_channels)
        self.norm2 = nn.GroupNorm(8, out_channels)
        self.act2 = nn.SiLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.shortcut: nn.Module = (nn.Identity() if in_channels == out_channels
                                    else nn.Conv2d(in_channels, out_channels, 1))

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, H, W)``, ``(B, time_dim)`` -> ``(B, C_out, H, W)``."""
        h = self.conv1(self.act1(self.norm1(x)))
        h = h + self.time(temb)[:, :, None, None]
        h = self.conv2(self.act2(self.norm2(h)))
        return h + self.shortcut(x)


class CrossAttention(nn.Module):
    """Multi-head attention from ``Q`` queries to ``K`` context tokens.

    ``softmax`` is its own module: its output ``(B, heads, Q, K)`` is the attention
    probability of each query over the tokens (hook it to read the maps).

    Examples
    --------
    >>> CrossAttention(16, 8, heads=2)(torch.zeros(3, 5, 16), torch.zeros(3, 2, 8)).shape
    torch.Size([3, 5, 16])
    """

    def __init__(self, dim: int, context_dim: int, heads: int = 4) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(context_dim, dim, bias=False)
        self.to_v = nn.Linear(context_dim, dim, bias=False)
        self.softmax = nn.Softmax(dim=-1)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """``(B, Q, dim)`` queries, ``(B, K, context_dim)`` tokens -> ``(B, Q, dim)``."""
        b, q_len, dim = x.shape
        head_dim = dim // self.heads
        q = self.to_q(x).view(b, q_len, self.heads, head_dim).transpose(1, 2)  # (B, H, Q, d)
        k = self.to_k(context).view(b, -1, self.heads, head_dim).transpose(1, 2)  # (B, H, K, d)
        v = self.to_v(context).view(b, -1, self.heads, head_dim).transpose(1, 2)  # (B, H, K, d)
        attn = self.softmax(q @ k.transpose(-1, -2) / math.sqrt(head_dim))  # (B, H, Q, K)
        out = (attn @ v).transpose(1, 2).reshape(b, q_len, dim)  # (B, Q, dim)
        return self.to_out(out)


class CrossAttentionBlock(nn.Module):
    """Stable Diffusion's spatial transformer, cut down: cross-attention and a feed-forward layer.

    ``(B, C, H, W)`` -> norm, 1x1 in, ``x + attn(LN(x), context)``, ``x + FF(LN(x))``, 1x1 out,
    plus the block's input.
    """

    def __init__(self, channels: int, context_dim: int, heads: int = 4) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(8, channels)
        self.proj_in = nn.Conv2d(channels, channels, 1)
        self.ln1 = nn.LayerNorm(channels)
        self.attn = CrossAttention(channels, context_dim, heads)
        self.ln2 = nn.LayerNorm(channels)
        self.ff = nn.Sequential(nn.Linear(channels, 2 * channels), nn.GELU(), nn.Linear(2 * channels, channels))
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)``, ``(B, K, context_dim)`` -> ``(B, C, H, W)``."""
        b, c, h, w = x.shape
        y = self.proj_in(self.norm(x)).flatten(2).transpose(1, 2)  # (B, H*W, C), row-major pixels
        y = y + self.attn(self.ln1(y), context)
        y = y + self.ff(self.ln2(y))
        y = y.transpose(1, 2).reshape(b, c, h, w)
        return x + self.proj_out(y)


class LatentUNet(nn.Module):
    """A two-level U-Net on ``(B, 4, 8, 8)`` latents with cross-attention at 8x8 and 4x4.

    in conv -> [res, cross-attn] @8x8 -> strided conv -> [res, cross-attn] @4x4 ->
    transposed conv -> concat skip -> [res, cross-attn] @8x8 -> norm, SiLU, out conv:
    the predicted noise.
    """

    def __init__(self, latent_channels: int = 4, width: int = 24, context_dim: int = 32,
                 heads: int = 4) -> None:
        super().__init__()
        time_dim = 2 * width
        self.width = width
        self.time_mlp = nn.Sequential(nn.Linear(width, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
        self.conv_in = nn.Conv2d(latent_channels, width, 3, padding=1)  # (B, 24, 8, 8)
        self.down_res = ResBlock(width, width, time_dim)
        self.down_attn = CrossAttentionBlock(width, context_dim, heads)
        self.down = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)  # (B, 48, 4, 4)
        self.mid_res = ResBlock(2 * width, 2 * width, time_dim)
        self.mid_attn = CrossAttentionBlock(2 * width, context_dim, heads)
        self.up = nn.ConvTranspose2d(2 * width, width, 2, stride=2)  # (B, 24, 8, 8)
        self.up_res = ResBlock(2 * width, width, time_dim)  # concat with the skip
        self.up_attn = CrossAttentionBlock(width, context_dim, heads)
        self.out_norm = nn.GroupNorm(8, width)
        self.out_act = nn.SiLU()
        self.conv_out = nn.Conv2d(width, latent_channels, 3, padding=1)

    def forward(self, z: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Noisy latents ``(B, 4, 8, 8)``, timesteps ``(B,)``, tokens ``(B, K, D)`` -> noise ``(B, 4, 8, 8)``."""
        temb = self.time_mlp(timestep_embedding(t, self.width))  # (B, time_dim)
        h0 = self.conv_in(z)
        h1 = self.down_attn(self.down_res(h0, temb), context)  # (B, 24, 8, 8)
        h = self.down(h1)  # (B, 48, 4, 4)
        h = self.mid_attn(self.mid_res(h, temb), context)
        h = self.up(h)  # (B, 24, 8, 8)
        h = self.up_attn(self.up_res(torch.cat([h, h1], 1), temb), context)
        return self.conv_out(self.out_act(self.out_norm(h)))


class LatentDiffusion(nn.Module):
    """Class-prompted latent diffusion: autoencoder, prompt encoder and U-Net denoiser.

    Parameters
    ----------
    steps
        DDPM timesteps ``T`` (linear betas from ``beta_start`` to ``beta_end``).
    sample_steps, guidance
        Defaults of :meth:`sample`: DDIM steps and the classifier-free guidance scale.

    Examples
    --------
    >>> model = LatentDiffusion().eval()
    >>> model(torch.zeros(2, 1, 32, 32)).shape  # one score per class
    torch.Size([2, 10])
    >>> model.sample(3, torch.Generator().manual_seed(0), sample_steps=2).shape
    torch.Size([3, 1, 32, 32])
    """

    #: Modules whose outputs are the cross-attention probabilities ``(B, heads, h*w, tokens)``.
    cross_attention: tuple[str, ...] = (
        "denoiser.down_attn.attn.softmax",
        "denoiser.mid_attn.attn.softmax",
        "denoiser.up_attn.attn.softmax",
    )
    #: Prompt token names, indexed by token id.
    tokens: tuple[str, ...] = TOKENS
    latent_shape: tuple[int, int, int] = (4, 8, 8)

    # buffers (register_buffer), declared for the type checker
    scale_factor: torch.Tensor
    alphas_cumprod: torch.Tensor
    score_noise: torch.Tensor
    score_timesteps: torch.Tensor

    def __init__(self, num_classes: int = 10, width: int = 24, context_dim: int = 32, heads: int = 4,
                 steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02,
                 sample_steps: int = 25, guidance: float = 3.0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.sample_steps = sample_steps
        self.guidance = guidance
        self.autoencoder = TinyAutoencoderKL(self.latent_shape[0])
        self.token_embedding = nn.Embedding(len(TOKENS), context_dim)
        self.position_embedding = nn.Parameter(torch.zeros(PROMPT_LENGTH, context_dim))
        self.denoiser = LatentUNet(self.latent_shape[0], width, context_dim, heads)
        # 1 / std of the training latents; set by the recipe, saved with the weights.
        self.register_buffer("scale_factor", torch.ones(()))
        betas = torch.linspace(beta_start, beta_end, steps, dtype=torch.float64)
        alphas_cumprod = torch.cumprod(1 - betas, 0).float()
        self.register_buffer("alphas_cumprod", alphas_cumprod, persistent=False)
        noise = torch.randn(len(SCORE_TIMESTEPS), *self.latent_shape,
                            generator=torch.Generator().manual_seed(_SCORE_NOISE_SEED))
        self.register_buffer("score_noise", noise, persistent=False)  # (S, 4, 8, 8)
        self.register_buffer("score_timesteps", torch.tensor(SCORE_TIMESTEPS), persistent=False)

    @property
    def num_timesteps(self) -> int:
        """``T``, the number of DDPM steps."""
        return len(self.alphas_cumprod)

    def prompt_tokens(self, classes: torch.Tensor) -> torch.Tensor:
        """Class indices ``(B,)`` (``-1``: unconditional) -> token ids ``(B, 2)`` into :attr:`tokens`."""
        return prompt_tokens(classes)

    def context(self, classes: torch.Tensor) -> torch.Tensor:
        """Class indices ``(B,)`` (``-1``: unconditional) -> prompt embeddings ``(B, 2, D)``."""
        return self.token_embedding(prompt_tokens(classes)) + self.position_embedding

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``(B, 1, 32, 32)`` -> scaled posterior means ``(B, 4, 8, 8)`` (deterministic)."""
        return self.autoencoder.encode(x)[0] * self.scale_factor

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Scaled latents ``(B, 4, 8, 8)`` -> images ``(B, 1, 32, 32)`` in [0, 1]."""
        return self.autoencoder.decode(z / self.scale_factor)

    def q_sample(self, z0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``sqrt(abar_t) z0 + sqrt(1 - abar_t) noise`` (the forward process in closed form)."""
        abar = self.alphas_cumprod[t].view(-1, 1, 1, 1)
        return abar.sqrt() * z0 + (1 - abar).sqrt() * noise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-class scores ``(B, 10)``: minus the denoiser's epsilon error prompted with each class.

        The image's latent is noised with fixed noise at each of :data:`SCORE_TIMESTEPS`;
        the score of class ``c`` is ``-mean ||eps_theta(z_t, t, c) - eps||^2`` over the
        timesteps and latent entries. All ``B * 10 * S`` denoiser calls go in one batch
        (each module runs once per forward, as captum's hooks require).
        """
        b = x.shape[0]
        s, c = len(SCORE_TIMESTEPS), self.num_classes
        z0 = self.encode(x)  # (B, 4, 8, 8)
        zt = self.q_sample(z0.repeat_interleave(s, 0), self.score_timesteps.repeat(b),
                           self.score_noise.repeat(b, 1, 1, 1))  # (B*S, 4, 8, 8)
        zt = zt.repeat_interleave(c, 0)  # (B*S*C, 4, 8, 8)
        t = self.score_timesteps.repeat_interleave(c).repeat(b)  # (B*S*C,)
        classes = torch.arange(c, device=x.device).repeat(b * s)
        eps = self.denoiser(zt, t, self.context(classes))
        target = self.score_noise.repeat_interleave(c, 0).repeat(b, 1, 1, 1)
        err = (eps - target).pow(2).flatten(1).mean(1).view(b, s, c)  # (B, S, C)
        return -err.mean(1)  # (B, C)

    def guided_eps(self, z: torch.Tensor, t: int, classes: torch.Tensor, guidance: float) -> torch.Tensor:
        """Classifier-free guided noise estimate for latents ``z`` ``(n, 4, 8, 8)`` at step ``t``.

        The denoiser's batch holds the class-prompted rows first, then the unconditional ones.
        """
        n = z.shape[0]
        if guidance == 1.0:
            tt = torch.full((n,), t, device=z.device, dtype=torch.long)
            return self.denoiser(z, tt, self.context(classes))
        tt = torch.full((2 * n,), t, device=z.device, dtype=torch.long)
        both = torch.cat([classes, torch.full_like(classes, -1)])
        eps_c, eps_u = self.denoiser(torch.cat([z, z]), tt, self.context(both)).chunk(2)
        return eps_u + guidance * (eps_c - eps_u)

    def ddim_timesteps(self, sample_steps: int) -> list[int]:
        """The DDIM schedule: ``sample_steps`` evenly spaced timesteps from ``T - 1`` down to 0."""
        if sample_steps < 1:
            raise DataError(f"sample_steps must be at least 1, got {sample_steps}")
        steps = torch.linspace(self.num_timesteps - 1, 0, sample_steps).round().long().tolist()
        return list(dict.fromkeys(steps))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, classes: torch.Tensor | None = None, *,
               sample_steps: int | None = None, guidance: float | None = None) -> torch.Tensor:
        """Generate ``n`` images ``(n, 1, 32, 32)`` in [0, 1] with deterministic DDIM (``eta = 0``).

        Parameters
        ----------
        generator
            Seeds the starting noise (and the classes when none are given): same generator
            state, same images.
        classes
            Class of each sample ``(n,)``; ``None``: drawn uniformly from ``generator``.
        sample_steps, guidance
            DDIM steps and classifier-free guidance scale (defaults: the module's).

        Returns the images on the CPU.
        """
        if n < 0:
            raise DataError(f"n must be non-negative, got {n}")
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        device = self.alphas_cumprod.device
        if classes is None:
            classes = torch.randint(0, self.num_classes, (n,), generator=generator)
        classes = torch.as_tensor(classes, dtype=torch.long).view(-1)
        if len(classes) != n or (n and (classes.min() < 0 or classes.max() >= self.num_classes)):
            raise DataError(f"classes must be {n} indices in 0..{self.num_classes - 1}")
        z = torch.randn(n, *self.latent_shape, generator=generator).to(device)
        classes = classes.to(device)
        guidance = self.guidance if guidance is None else float(guidance)
        timesteps = self.ddim_timesteps(sample_steps or self.sample_steps)
        for i, t in enumerate(timesteps):
            eps = self.guided_eps(z, t, classes, guidance)
            abar = self.alphas_cumprod[t]
            abar_prev = self.alphas_cumprod[timesteps[i + 1]] if i + 1 < len(timesteps) else torch.ones(())
            z0 = (z - (1 - abar).sqrt() * eps) / abar.sqrt()
            z = abar_prev.sqrt() * z0 + (1 - abar_prev).sqrt() * eps
        return self.decode(z).clamp(0, 1).float().cpu()


def ddpm_loss(module: LatentDiffusion, z0: torch.Tensor, classes: torch.Tensor,
              generator: torch.Generator | None = None, drop: float = 0.1) -> torch.Tensor:
    """The DDPM simple loss ``E ||eps - eps_theta(z_t, t, c)||^2`` with class dropout ``drop``.

    ``z0`` are scaled latents ``(B, 4, 8, 8)``; timesteps, noise and the dropped prompts are
    drawn from ``generator`` (the global generator when ``None``).
    """
    b = z0.shape[0]
    t = torch.randint(0, module.num_timesteps, (b,), generator=generator).to(z0.device)
    noise = torch.randn(z0.shape, generator=generator).to(z0.device)
    dropped = torch.rand(b, generator=generator).to(z0.device) < drop
    prompt = torch.where(dropped, torch.full_like(classes, -1), classes)
    eps = module.denoiser(module.q_sample(z0, t, noise), t, module.context(prompt))
    return F.mse_loss(eps, noise)


def _entry_loss(module: nn.Module, batch: Dataset) -> torch.Tensor:
    """One DDPM loss on a batch of digits (the encoder frozen, as in the recipe's second stage)."""
    assert isinstance(module, LatentDiffusion)
    with torch.no_grad():
        z0 = module.encode(batch.x.to(module.alphas_cumprod.device))
    return ddpm_loss(module, z0, batch.y.to(z0.device))


def _judge() -> nn.Module:
    """The committed zoo LeNet that judges the samples (``$XAI_ZOO_DIR``/./zoo, else the repository's)."""
    from xai.zoo._store import is_trained
    from xai.zoo.loaders import load_model

    repo_zoo = Path(__file__).resolve().parents[2] / "zoo"
    for zoo_dir in (None, repo_zoo):
        if is_trained("lenet", zoo_dir):
            return load_model("lenet", zoo_dir=zoo_dir).module.eval()
    raise ModelLoadError("latent-diffusion is judged by the zoo's lenet, which is not trained; "
                         "run `xai zoo train lenet`")


_EVAL_PER_CLASS = 10
_EVAL_SEED = 0


@torch.no_grad()
def diffusion_eval(module: nn.Module, test: Dataset, device: torch.device) -> dict[str, float]:
    """Seeded evaluation: LeNet's verdict on 10 samples per class, plus held-out numbers.

    - ``lenet_agreement``: share of the 100 samples (seed 0) that the zoo's LeNet assigns to
      the prompted class (the headline);
    - ``lenet_confidence``: LeNet's mean softmax probability of the prompted class;
    - ``test_denoising_mse``: the DDPM loss on the held-out digits (seeded timesteps and noise);
    - ``test_reconstruction_mse``: the autoencoder's pixel MSE on the held-out digits;
    - ``test_diffusion_classifier_accuracy``: arg-max of ``forward`` (the diffusion classifier)
      against the held-out labels.

    Runs on one CPU thread, as the recipe does, so a re-evaluation of the saved weights
    reproduces the card's numbers bit for bit (a sample on LeNet's decision boundary would
    otherwise flip with the thread count's rounding).
    """
    assert isinstance(module, LatentDiffusion)
    from xai.zoo._store import single_cpu_thread

    was_training = module.training
    module.eval()
    try:
        with single_cpu_thread():  # one thread: the same bits as the recipe's evaluation
            judge = _judge().to(device)
            classes = torch.arange(module.num_classes).repeat_interleave(_EVAL_PER_CLASS)
            images = module.sample(len(classes), torch.Generator().manual_seed(_EVAL_SEED), classes)
            probs = judge(images.to(device)).softmax(1).cpu()  # (N, 10)
            x, y = test.x.to(device), test.y.to(device)
            z0 = module.encode(x)
            recon = module.decode(z0)
            gen = torch.Generator().manual_seed(_EVAL_SEED)
            denoise = float(ddpm_loss(module, z0, y, gen, drop=0.0))
            scores = torch.cat([module(x[i:i + 64]) for i in range(0, len(x), 64)])
    finally:
        module.train(was_training)
    return {
        "lenet_agreement": float((probs.argmax(1) == classes).float().mean()),
        "lenet_confidence": float(probs.gather(1, classes[:, None]).mean()),
        "test_denoising_mse": denoise,
        "test_reconstruction_mse": float(F.mse_loss(recon, x)),
        "test_diffusion_classifier_accuracy": float((scores.argmax(1) == y).float().mean().cpu()),
    }


_LDM_RECIPE: dict[str, Any] = {
    "autoencoder": {"epochs": 15, "lr": 2e-3, "batch_size": 64, "kl_weight": 1e-4},
    "denoiser": {"steps": 1000, "lr": 2e-3, "batch_size": 128, "ema": 0.999, "cond_drop": 0.1},
    "schedule": "linear betas 1e-4..0.02, T=1000, epsilon prediction",
    "sampler": "DDIM eta=0, 25 steps, guidance 3.0",
}


def _train_autoencoder(model: LatentDiffusion, ctx: TrainContext, generator: torch.Generator) -> float:
    cfg = _LDM_RECIPE["autoencoder"]
    ae = model.autoencoder
    optimiser = torch.optim.Adam(ae.parameters(), lr=cfg["lr"])
    x_all = ctx.train.x
    running = float("nan")
    with ctx.progress() as progress:
        task = progress.add_task("autoencoder", total=cfg["epochs"], status="")
        for _ in range(cfg["epochs"]):
            order = torch.randperm(len(x_all), generator=generator)
            total = 0.0
            for start in range(0, len(order), cfg["batch_size"]):
                xb = x_all[order[start:start + cfg["batch_size"]]].to(ctx.device)
                mean, logvar = ae.encode(xb)
                z = mean + (0.5 * logvar).exp() * torch.randn(mean.shape, generator=generator).to(ctx.device)
                recon = ae.decode(z)
                rec = F.mse_loss(recon, xb, reduction="sum") / len(xb)
                kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).sum() / len(xb)
                loss = rec + cfg["kl_weight"] * kl
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                total += float(rec.detach()) * len(xb)
            running = total / len(x_all) / x_all[0].numel()
            progress.update(task, advance=1, status=f"mse {running:.4f}")
    return running


def _train_ldm(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    assert isinstance(module, LatentDiffusion)
    generator = seed_everything(ctx.seed)
    module.to(ctx.device).train()
    ae_mse = _train_autoencoder(module, ctx, generator)
    module.autoencoder.eval()
    with torch.no_grad():
        mean = module.autoencoder.encode(ctx.train.x.to(ctx.device))[0]
        module.scale_factor.fill_(1.0 / float(mean.std()))
        latents = mean * module.scale_factor  # (N, 4, 8, 8)
    labels = ctx.train.y.to(ctx.device)
    cfg = _LDM_RECIPE["denoiser"]
    params = [*module.denoiser.parameters(), *module.token_embedding.parameters(), module.position_embedding]
    optimiser = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=cfg["lr"], total_steps=cfg["steps"],
                                                    pct_start=0.05)
    ema = [p.detach().clone() for p in params]
    running = float("nan")
    with ctx.progress() as progress:
        task = progress.add_task("denoiser", total=cfg["steps"], status="")
        for step in range(cfg["steps"]):
            idx = torch.randint(0, len(latents), (cfg["batch_size"],), generator=generator).to(ctx.device)
            loss = ddpm_loss(module, latents[idx], labels[idx], generator, drop=cfg["cond_drop"])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            scheduler.step()
            decay = min(cfg["ema"], (1 + step) / (10 + step))
            with torch.no_grad():
                for e, p in zip(ema, params, strict=True):
                    e.lerp_(p.detach(), 1 - decay)
            running = 0.98 * running + 0.02 * float(loss.detach()) if step else float(loss.detach())
            if step % 50 == 0:
                progress.update(task, completed=step + 1, status=f"loss {running:.4f}")
    with torch.no_grad():
        for e, p in zip(ema, params, strict=True):
            p.copy_(e)
    module.eval()
    return {**diffusion_eval(module, ctx.test, ctx.device), "train_autoencoder_mse": ae_mse,
            "train_denoising_loss": running}


register_model(
    ZooEntry(
        name="latent-diffusion",
        uses=("lenet",),
        family="diffusion",
        task="generation",
        modality="image",
        dataset="digits",
        build=LatentDiffusion,
        train=_train_ldm,
        input_shape=(1, 32, 32),
        class_names=DIGIT_CLASSES,
        layers=("autoencoder.enc_conv2", "autoencoder.enc_conv3"),
        metric="lenet_agreement",
        floor=0.80,
        paper="https://arxiv.org/abs/2112.10752",
        description=("class-prompted latent diffusion on the digits: KL autoencoder (4x8x8 latents), "
                     "U-Net with cross-attention to a 2-token prompt, DDPM training, DDIM + "
                     "classifier-free guidance sampling; judged by the zoo's LeNet"),
        recipe=_LDM_RECIPE,
        loss=_entry_loss,
        evaluate=diffusion_eval,
        targets=class_logit,  # forward's (B, 10) per-class scores: the prompted class's score
        target_names=DIGIT_CLASSES,
    )
)
