"""Decision smoothing over frames.

A lane-change assistant must not flicker: one noisy frame should not flip ``blocked`` to
``free``. :class:`DecisionSmoother` keeps an exponential moving average of the class
probabilities and changes its decision only with hysteresis:

* a new class takes over when its smoothed probability is at least ``switch_margin`` above the
  current class's for ``hold_frames`` consecutive frames;
* whenever the best smoothed probability is below ``min_confidence`` and the model has a
  fallback class (the card's ``fallback_class``, ``undefined`` for the shipped lane-change
  model, or an override from the node/replay/CLI), the decision is that class: weak evidence is
  reported as such, not guessed. Without a fallback class the smoothed top-1 is published
  (with hysteresis) and its low ``confidence`` says how weak it is; no class is ever picked
  because of its position in the class list.

One smoother per camera; replay and the node both use this class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gapcam.errors import GapcamError


@dataclass(frozen=True)
class SmoothingConfig:
    ema_alpha: float = 0.5  #: weight of the newest frame in the moving average (1 = no smoothing)
    switch_margin: float = 0.1
    hold_frames: int = 2
    min_confidence: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 < self.ema_alpha <= 1.0:
            raise ValueError("ema_alpha must be in (0, 1]")
        if self.hold_frames < 1:
            raise ValueError("hold_frames must be >= 1")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError("min_confidence must be in [0, 1]")


@dataclass(frozen=True)
class SmoothedDecision:
    label: str
    confidence: float  #: smoothed probability of ``label`` (of the best class when falling back)
    probabilities: tuple[float, ...]  #: smoothed probabilities, in class order
    changed: bool  #: the decision differs from the previous frame's


def resolve_fallback(classes: Sequence[str], fallback: str | None) -> str | None:
    """The fallback class to use (``None``: publish the top-1); refuse a name not in ``classes``.

    An empty string means "no fallback" (how a ROS string parameter says ``None``).
    """
    if not fallback:
        return None
    if fallback not in classes:
        raise GapcamError(
            f"fallback class {fallback!r} is not one of the model's classes "
            f"{list(classes)[:8]}{' ...' if len(classes) > 8 else ''}; pick one of them or none"
        )
    return fallback


class DecisionSmoother:
    """Hysteresis over a stream of per-frame class probabilities (one camera)."""

    def __init__(
        self,
        classes: Sequence[str],
        config: SmoothingConfig | None = None,
        fallback: str | None = None,
    ) -> None:
        self.classes = tuple(classes)
        self.config = config or SmoothingConfig()
        self.fallback = resolve_fallback(self.classes, fallback)
        self.reset()

    def reset(self) -> None:
        self._ema: np.ndarray | None = None
        self._current: str | None = None
        self._candidate: str | None = None
        self._streak = 0

    def update(self, probabilities: Sequence[float]) -> SmoothedDecision:
        p = np.asarray(probabilities, dtype=np.float64)
        if p.shape != (len(self.classes),):
            raise ValueError(f"expected {len(self.classes)} probabilities, got shape {p.shape}")
        a = self.config.ema_alpha
        self._ema = p.copy() if self._ema is None else a * p + (1.0 - a) * self._ema
        ema = self._ema
        best = int(np.argmax(ema))
        previous = self._current
        if self.fallback is not None and ema[best] < self.config.min_confidence:
            new, conf = self.fallback, float(ema[best])
            self._candidate, self._streak = None, 0
        else:
            new = self.classes[best] if previous is None else self._hysteresis(best)
            conf = float(ema[self.classes.index(new)])
        self._current = new
        return SmoothedDecision(
            label=new,
            confidence=conf,
            probabilities=tuple(float(x) for x in ema),
            changed=previous is not None and new != previous,
        )

    def _hysteresis(self, best: int) -> str:
        assert self._ema is not None and self._current is not None
        current_idx = self.classes.index(self._current)
        challenger = self.classes[best]
        if challenger == self._current or (
            self._ema[best] - self._ema[current_idx] < self.config.switch_margin
        ):
            self._candidate, self._streak = None, 0
            return self._current
        if challenger == self._candidate:
            self._streak += 1
        else:
            self._candidate, self._streak = challenger, 1
        if self._streak >= self.config.hold_frames:
            self._candidate, self._streak = None, 0
            return challenger
        return self._current
