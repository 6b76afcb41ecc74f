"""What different agents attend to: one explainer on the same states, for several RL agents.

Value-based (DQN), policy-based (REINFORCE) and actor-critic (PPO) agents of one task
can all balance a pole and still read the state differently. This method explains the
same seeded rows with the same explainer on every agent, for two kinds of target:

- ``action``: the agent's chosen action (its own greedy action, or the data's reference
  action with ``action_target = "label"``): a Q-value for DQN, a log-probability for a
  policy;
- ``value``: the state's value, the last output column (``max_a Q(s, a)`` for DQN,
  ``V(s)`` for a critic or a REINFORCE baseline).

Per agent and target it reports each state variable's mean ``|attribution|`` over the
rows, and its share of their sum (the agents' outputs have different scales: a Q-value
is a discounted return, a log-probability is not; shares and ranks compare across them).
Between every two agents it reports the Spearman rank correlation of those per-feature
importances (``spearman``), the mean over rows of the per-row rank correlation
(``state_spearman``, NaN rows left out), and how often their greedy actions agree.

Metrics (under ``agents.``): ``<target>.<agent>.share.<feature>`` (spaces as ``_``),
``<target>.spearman.<a>.<b>``, ``<target>.state_spearman.<a>.<b>``,
``<target>.min_spearman``, ``<target>.min_state_spearman``, ``action_agreement.<a>.<b>``
and ``min_action_agreement``.

Example
-------
>>> from xai.datasets import load_dataset
>>> from xai.zoo import load_model
>>> result = AgentCompare.run(load_model("cartpole-dqn"), load_dataset("cartpole-states"),
...                           {"agents": ["cartpole-ac"], "samples": 16, "options": {"steps": 16}})
>>> result.agents, result.importance["value"].shape  # (agents, state variables)
(('cartpole-dqn', 'cartpole-ac'), (2, 4))
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from xai._method import Capabilities, Kind, Method, Options
from xai._provenance import Provenance
from xai._results import to_jsonable
from xai.datasets import Dataset
from xai.errors import DataError
from xai.explain._index import AGENT_METHODS, EXPLAINERS
from xai.explain.drift import drift_features, spearman_rows
from xai.zoo.handle import ModelHandle, eval_mode

if TYPE_CHECKING:
    from xai.explain._base import AttributionResult

__all__ = ["TARGET_KINDS", "AgentCompare", "AgentComparison", "feature_importance", "rank_agreement"]

TargetKind = Literal["action", "value"]
#: The two kinds of target every agent is explained on.
TARGET_KINDS: tuple[TargetKind, ...] = ("action", "value")
#: The name the agents give their last output column.
VALUE_TARGET = "value"


def feature_importance(result: AttributionResult) -> tuple[np.ndarray, tuple[str, ...]]:
    """Mean ``|attribution|`` per state variable over the explained rows ``(F,)``, and the names."""
    magnitude, names, _ = drift_features(result)  # (N, F) |column attributions|
    return magnitude.mean(axis=0), names


def rank_agreement(importance: np.ndarray) -> np.ndarray:
    """Spearman correlation of every two rows of ``importance`` ``(A, F)``: ``(A, A)``, NaN where undefined.

    Examples
    --------
    >>> rank_agreement(np.array([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0], [30.0, 1.0, 2.0]])).round(2).tolist()
    [[1.0, -1.0, 0.5], [-1.0, 1.0, -0.5], [0.5, -0.5, 1.0]]
    """
    a = len(importance)
    out = np.full((a, a), np.nan)
    for i in range(a):
        for j in range(a):
            out[i, j] = spearman_rows(importance[i:i + 1], importance[j:j + 1])[0]
    return out


def _slug(name: str) -> str:
    return name.replace(" ", "_")


def _nanmean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else math.nan


@dataclass(frozen=True, eq=False)
class AgentComparison:
    """Per-feature importance of several agents on the same rows, and how their rankings agree.

    Attributes
    ----------
    method
        The explainer every agent was explained with.
    model
        The audited agent (the first of ``agents``).
    agents
        Every compared agent, the audited one first.
    feature_names
        The state variables (columns of ``importance``).
    importance
        ``{target kind: (A, F)}``: mean ``|attribution|`` per agent and state variable.
    spearman, state_spearman
        ``{target kind: (A, A)}``: rank correlation of the agents' importances, and mean
        over rows of the per-row rank correlation of ``|attribution|``.
    action_agreement
        ``(A, A)``: share of rows on which two agents' greedy actions are the same.
    target_columns
        ``{target kind: per-agent description}`` of what was explained (``"predicted"``,
        ``"label"`` or ``"value (column k)"``).
    """

    method: str
    model: str
    agents: tuple[str, ...]
    feature_names: tuple[str, ...]
    samples: int
    importance: dict[str, np.ndarray]
    spearman: dict[str, np.ndarray]
    state_spearman: dict[str, np.ndarray]
    action_agreement: np.ndarray
    target_columns: dict[str, tuple[str, ...]]
    options: dict[str, Any]
    provenance: Provenance
    notes: tuple[str, ...] = field(default_factory=tuple)

    def shares(self, kind: str) -> np.ndarray:
        """``(A, F)``: each agent's importance as a share of its total (rows sum to 1; 0 without mass)."""
        values = self.importance[kind]
        total = values.sum(axis=1, keepdims=True)
        return np.divide(values, total, out=np.zeros_like(values), where=total > 0)

    def pairs(self) -> list[tuple[int, int]]:
        """Index pairs ``(i, j)``, ``i < j``, of the compared agents."""
        return [(i, j) for i in range(len(self.agents)) for j in range(i + 1, len(self.agents))]

    def metrics(self) -> dict[str, float]:
        """Shares, pairwise rank agreements and their minima, action agreement (relative to ``agents``)."""
        out: dict[str, float] = {}
        for kind in self.importance:
            shares = self.shares(kind)
            for a, agent in enumerate(self.agents):
                for f, feature in enumerate(self.feature_names):
                    out[f"{kind}.{agent}.share.{_slug(feature)}"] = float(shares[a, f])
            for name, table in (("spearman", self.spearman[kind]), ("state_spearman", self.state_spearman[kind])):
                values = [float(table[i, j]) for i, j in self.pairs()]
                for (i, j), value in zip(self.pairs(), values, strict=True):
                    out[f"{kind}.{name}.{self.agents[i]}.{self.agents[j]}"] = value
                finite = [v for v in values if math.isfinite(v)]
                if finite:
                    out[f"{kind}.min_{name}"] = min(finite)
        agreement = [float(self.action_agreement[i, j]) for i, j in self.pairs()]
        for (i, j), value in zip(self.pairs(), agreement, strict=True):
            out[f"action_agreement.{self.agents[i]}.{self.agents[j]}"] = value
        if agreement:
            out["min_action_agreement"] = min(agreement)
        return {k: v for k, v in out.items() if math.isfinite(v)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (arrays as nested lists), with the shares."""
        out = to_jsonable(self)
        out["shares"] = {kind: to_jsonable(self.shares(kind)) for kind in self.importance}
        return out


@AGENT_METHODS.register("agent-compare")
class AgentCompare(Method):
    """What each RL agent attends to on the same states: per-feature importance and rank agreement."""

    name: ClassVar[str] = "agent-compare"
    kind: ClassVar[Kind] = "agents"
    result_type: ClassVar[str] = "xai.explain.agents:AgentComparison"
    paper: ClassVar[str] = ("https://doi.org/10.1038/nature14236; https://doi.org/10.1007/BF00992696; "
                            "https://arxiv.org/abs/1707.06347")
    capabilities: ClassVar[Capabilities] = Capabilities(tasks=frozenset({"policy"}), modalities=frozenset({"state"}))

    class Options(Options):
        """Which agents, which explainer, which targets; the ``[[agents]]`` section's keys."""

        #: Zoo names (or folders) of the other agents, read from the audited model's zoo.
        agents: list[str] = Field(min_length=1)
        #: Explainer that every agent is explained with.
        method: str = Field(default="integrated-gradients", min_length=1)
        #: The explainer's own options (as in ``[[explain]] options``).
        options: dict[str, Any] = Field(default_factory=dict)
        #: Rows explained (a seeded subset of the audit's rows, the same for every agent).
        samples: int = Field(default=64, gt=1)
        #: Which target kinds to explain.
        targets: list[TargetKind] = Field(default_factory=lambda: list(TARGET_KINDS), min_length=1)
        #: ``predicted``: each agent's own greedy action; ``label``: the data's reference action.
        action_target: Literal["predicted", "label"] = "predicted"

        @field_validator("method")
        @classmethod
        def _known_explainer(cls, value: str) -> str:
            if value not in EXPLAINERS:  # the lazy table: no explainer module is imported
                raise ValueError(f"unknown explainer {value!r}; known: {', '.join(EXPLAINERS.names())}")
            return value

        @field_validator("agents")
        @classmethod
        def _distinct(cls, value: list[str]) -> list[str]:
            if len(set(value)) != len(value):
                raise ValueError("name each agent once")
            return value

        @field_validator("targets")
        @classmethod
        def _distinct_targets(cls, value: list[str]) -> list[str]:
            if len(set(value)) != len(value):
                raise ValueError("name each target kind once")
            return value

    @classmethod
    def run(cls, handle: ModelHandle, data: Dataset | None, options: Any, seed: int = 0) -> AgentComparison:
        """Explain ``options.samples`` seeded rows of ``data`` on every agent, per target kind; compare."""
        import torch

        from xai.audit.runner import sample_rows  # the audit's row sampler (imported on use: no cycle)
        from xai.explain import create_explainer

        opts = cls.parse_options(options)
        assert isinstance(opts, AgentCompare.Options)
        if data is None:
            raise DataError(f"{cls.name} needs the states to explain the agents on")
        cls.check_applies(handle)
        if handle.name in opts.agents:
            raise DataError(f"{cls.name}: {handle.name} is the audited agent; list only the others in agents")
        start = time.perf_counter()
        rows = sample_rows(data, opts.samples, seed)
        if len(rows) < 2:
            raise DataError(f"{cls.name}: needs at least 2 rows to compare, got {len(rows)}")
        handles = [handle, *(_agent_handle(handle, name, data) for name in opts.agents)]
        names = tuple(h.name for h in handles)
        importance: dict[str, np.ndarray] = {}
        spearman: dict[str, np.ndarray] = {}
        state_spearman: dict[str, np.ndarray] = {}
        columns: dict[str, tuple[str, ...]] = {}
        features: tuple[str, ...] = ()
        for kind in opts.targets:
            per_agent, magnitudes, described = [], [], []
            for h in handles:
                target: Literal["predicted", "label"] | int = opts.action_target
                if kind == "value":
                    target = _value_column(h)
                    described.append(f"value (column {target})")
                else:
                    described.append(opts.action_target)
                result = create_explainer(opts.method, h, **opts.options).explain(rows, target=target, seed=seed)
                magnitude, names_f, _ = drift_features(result)  # (N, F)
                if features and names_f != features:
                    raise DataError(f"{cls.name}: {h.name} explains {', '.join(names_f)}, not "
                                    f"{', '.join(features)}; compare agents of the same task")
                features = names_f
                magnitudes.append(magnitude)
                per_agent.append(magnitude.mean(axis=0))
            importance[kind] = np.stack(per_agent)  # (A, F)
            spearman[kind] = rank_agreement(importance[kind])
            a = len(handles)
            table = np.full((a, a), np.nan)
            for i in range(a):
                for j in range(a):
                    table[i, j] = _nanmean(spearman_rows(magnitudes[i], magnitudes[j]))
            state_spearman[kind] = table
            columns[kind] = tuple(described)
        if not features:
            raise DataError(f"{cls.name}: the agents' attributions name no state variables")
        greedy = []
        for h in handles:
            with torch.no_grad(), eval_mode(h.module):
                greedy.append(h.predicted_target(h.module(rows.x.to(h.device))).cpu().numpy())
        agreement = np.array([[float((gi == gj).mean()) for gj in greedy] for gi in greedy])
        notes = []
        for kind in opts.targets:
            undefined = [f"{names[i]} / {names[j]}" for i in range(len(names)) for j in range(i + 1, len(names))
                         if not math.isfinite(spearman[kind][i, j])]
            if undefined:
                notes.append(f"{kind}: no rank correlation for {', '.join(undefined)} (an agent's importances "
                             "are all equal)")
        return AgentComparison(
            method=opts.method, model=handle.name, agents=names, feature_names=features, samples=len(rows),
            importance=importance, spearman=spearman, state_spearman=state_spearman, action_agreement=agreement,
            target_columns=columns, options=opts.model_dump(), notes=tuple(notes),
            provenance=Provenance(model_sha256=handle.sha256, data_sha256=rows.sha256, seed=seed,
                                  wall_seconds=round(time.perf_counter() - start, 4), device=str(handle.device)),
        )


def _value_column(handle: ModelHandle) -> int:
    """The index of an agent's ``value`` target (its last output column)."""
    names = tuple(handle.target_names)
    if VALUE_TARGET not in names:
        raise DataError(f"agent-compare: {handle.name} has no {VALUE_TARGET!r} target (its targets: "
                        f"{', '.join(names)}); an agent's last output must be its state value")
    return names.index(VALUE_TARGET)


def _agent_handle(handle: ModelHandle, name: str, data: Dataset) -> ModelHandle:
    """Another agent, read from the audited model's zoo folder (no pickle: a spec grants no trust)."""
    from xai.zoo import check_model_on_data, load_model

    source = str(getattr(handle, "source", ""))
    zoo_dir = Path(source.removeprefix("zoo:")).parent if source.startswith("zoo:") else None
    agent = load_model(name, data=data.name, zoo_dir=zoo_dir, trust_pickle=False)
    if agent.task != "policy":
        raise DataError(f"agent-compare: {name} is a {agent.task} model, not an agent (a policy)")
    agent.to(handle.device)
    check_model_on_data(agent, data)
    return agent
