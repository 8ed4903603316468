"""The one rule for the shares the hotline reports (answer rate, on-time rate, satisfaction, the
understanding's accuracies): rounded to four places, and None, not zero, when nothing was counted."""

from __future__ import annotations


def ratio(num: float, den: float | None) -> float | None:
    return round(num / den, 4) if den else None
