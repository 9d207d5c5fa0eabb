"""The language each member chose to read a form's own texts in, kept with the household's answers (under
LANGUAGES, member id to language), not in the conversation: coming back after /huy, a sent set or a
restart reads the same, each member chooses their own, and leaving the household takes the choice along.
The bot's own words stay Vietnamese. No change here is a correction, so `updated_at` stays."""

from __future__ import annotations

from handlers.surveys.definition import LANGUAGES
from storage.models import SurveyResponse


def _choices(response: SurveyResponse) -> dict[str, str]:
    chosen = response.answers.get(LANGUAGES)
    return {str(member): str(language) for member, language in chosen.items()} if isinstance(chosen, dict) else {}


def chosen_language(response: SurveyResponse, person_id: int | None) -> str:
    """The member's choice, "" for the form's first language."""
    return _choices(response).get(str(person_id), "")


def keep_language(response: SurveyResponse, person_id: int | None, language: str) -> None:
    # a new dict: JSON columns only notice reassignment
    response.answers = {**response.answers, LANGUAGES: {**_choices(response), str(person_id): language}}


def forget_language(response: SurveyResponse, person_id: int | None) -> bool:
    """Drop the member's choice; whether there was one."""
    choices = _choices(response)
    if choices.pop(str(person_id), None) is None:
        return False
    response.answers = {**response.answers, LANGUAGES: choices}
    return True
