"""Smart-village indicators over the households that submitted their answers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from handlers.surveys.definition import Indicator, Survey
from handlers.surveys.engine import number_text

# Below either, a village's figures are flagged as not yet representative: with a handful of households
# one more answer moves a share by ten points or more, and the first third of a village to answer are
# the households already online (the invitation came through the Zalo or Telegram group).
MIN_HOUSEHOLDS = 10
MIN_SHARE_OF_EXPECTED = 0.3


def representative(households: int, expected: int | None) -> bool:
    """Enough submitted households for the figures to speak for the village (`expected`: its
    households as the head estimated them when opening the survey, if they did)."""
    return households >= MIN_HOUSEHOLDS and (not expected or households >= MIN_SHARE_OF_EXPECTED * expected)


@dataclass(frozen=True)
class Score:
    indicator: Indicator
    numerator: float
    denominator: float
    target: float  # percent: the survey's, or config.toml's [targets] when it sets one

    @property
    def percent(self) -> float | None:
        return None if not self.denominator else 100.0 * self.numerator / self.denominator

    @property
    def met(self) -> bool | None:
        value = self.percent
        return None if value is None else value >= self.target

    @property
    def sentence(self) -> str | None:
        """The indicator's own sentence with the numbers in ("2 trên 3 người từ 15 tuổi có …"), if it has one."""
        text = self.indicator.sentence
        if not text:
            return None
        return text.replace("{numerator}", number_text(self.numerator)).replace(
            "{denominator}", number_text(self.denominator)
        )


def _number(value: object) -> float:
    """A household's contribution: numbers as they are, a true comparison 1, unanswered 0."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    return 0.0


def scorecard(
    survey: Survey, answer_sets: Iterable[Mapping[str, object]], targets: Mapping[str, float], today: str
) -> list[Score]:
    sets = list(answer_sets)
    return [
        Score(
            indicator,
            sum(_number(indicator.numerator.evaluate(a, today=today)) for a in sets),
            sum(_number(indicator.denominator.evaluate(a, today=today)) for a in sets),
            targets.get(indicator.code, indicator.target),
        )
        for indicator in survey.indicators
    ]
