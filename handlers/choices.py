"""Numbered choices: the text lists them ("1. Gửi ngay") on every platform, buttons repeat them
where the platform has buttons; the answer is the number either way."""

from __future__ import annotations

from dataclasses import dataclass

from handlers import conversation
from handlers.chat import Button
from handlers.context import Turn
from handlers.numbers import whole_number
from messages import label


@dataclass(frozen=True)
class Choice:
    key: str
    label: str


@dataclass(frozen=True)
class Menu:
    choices: tuple[Choice, ...]

    @property
    def lines(self) -> list[str]:
        return [f"{n}. {c.label}" for n, c in enumerate(self.choices, 1)]

    @property
    def buttons(self) -> tuple[Button, ...]:
        return tuple(Button(f"{n}. {c.label}", str(n)) for n, c in enumerate(self.choices, 1))

    def ask_again(self, turn: Turn) -> None:
        """The answer matched no item: say so politely and show the same choices."""
        turn.say("choice_not_understood", buttons=self.buttons, count=len(self.choices), choices=self.lines)

    def pick(self, answer: str) -> str | None:
        """The key of the chosen item, from its number (also "số 2", "2.") or its exact label."""
        text = answer.strip().lower().removeprefix("số").strip(" .)")  # Incoming made it NFC
        number = whole_number(text)
        if number is not None and 1 <= number <= len(self.choices):
            return self.choices[number - 1].key
        for choice in self.choices:
            if choice.label.lower() == text:
                return choice.key
        return None


def menu(*keys: str, **named: str) -> Menu:
    """A menu of label keys from messages/labels.toml, then items whose label is data (place names)."""
    return Menu(tuple(Choice(key, label(key)) for key in keys) + tuple(Choice(k, v) for k, v in named.items()))


def confirm_menu() -> Menu:
    return menu("confirm", "cancel")


async def confirmed(turn: Turn, choices: Menu | None = None) -> bool | None:
    """The answer to a yes/no question (`choices`, confirm/cancel unless given; its first item is the
    yes): True or False, with the conversation finished; None when the answer was neither and the same
    question was asked again."""
    choices = choices or confirm_menu()
    picked = choices.pick(turn.incoming.answer)
    if picked is None:
        choices.ask_again(turn)
        return None
    await conversation.finish(turn)
    return picked == choices.choices[0].key
