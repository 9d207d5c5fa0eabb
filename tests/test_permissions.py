"""The permission core as a matrix: every rule × every kind of person × own village / other village /
other commune. The expected table is written out here by hand, from the rules in docs/ARCHITECTURE.md,
not computed by the code under test."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from handlers import permissions as p
from storage.models import RoleName

# Commune C1 with villages V1 and V2; commune C2 with village V3.
SPOTS = {
    "V1": p.Spot(11, 1, False),
    "V2": p.Spot(12, 1, False),
    "V3": p.Spot(21, 2, False),
    "C1": p.Spot(1, 1, True),
    "C2": p.Spot(2, 2, True),
}
ME, SOMEONE_ELSE = 7, 8
PERSONAS = {
    "resident": p.Actor(ME),
    "tech_team_V1": p.Actor(ME, (p.Grant(RoleName.TECH_TEAM, SPOTS["V1"]),)),
    "head_V1": p.Actor(ME, (p.Grant(RoleName.VILLAGE_HEAD, SPOTS["V1"]),)),
    "official_C1": p.Actor(ME, (p.Grant(RoleName.COMMUNE_OFFICIAL, SPOTS["C1"]),)),
}


def _notice(author: int, spot: p.Spot) -> p.NoticeRef:
    return p.NoticeRef(author, frozenset({spot.commune_id}), (spot,))


RULES: dict[str, Callable[[p.Actor, p.Spot], bool]] = {
    "broadcast_to": p.may_broadcast_to,
    "relay_in": p.may_relay_in,
    "link_group": lambda a, s: p.may_link_group(a, s, None),
    "move_group_to_V1": lambda a, s: p.may_link_group(a, SPOTS["V1"], s),
    "unlink_group": p.may_unlink_group,
    "open_survey": p.may_open_survey,
    "follow_survey": p.may_follow_survey,
    "export": p.may_export,
    "make_poster": p.may_make_poster,
    "reset_household_code": p.may_reset_household_code,
    "answer_question": p.may_answer_question,
    "invite_tech_team": lambda a, s: p.may_invite(a, RoleName.TECH_TEAM, s),
    "invite_village_head": lambda a, s: p.may_invite(a, RoleName.VILLAGE_HEAD, s),
    "invite_commune_official": lambda a, s: p.may_invite(a, RoleName.COMMUNE_OFFICIAL, s),
    "remove_tech_team": lambda a, s: p.may_remove_role(a, RoleName.TECH_TEAM, s, 0),
    "remove_village_head": lambda a, s: p.may_remove_role(a, RoleName.VILLAGE_HEAD, s, 0),
    "remove_commune_official": lambda a, s: p.may_remove_role(a, RoleName.COMMUNE_OFFICIAL, s, 1),
    "remove_last_commune_official": lambda a, s: p.may_remove_role(a, RoleName.COMMUNE_OFFICIAL, s, 0),
    "see_status_of_others_notice": lambda a, s: p.may_see_status(a, _notice(SOMEONE_ELSE, s)),
    "cancel_others_notice": lambda a, s: p.may_cancel(a, _notice(SOMEONE_ELSE, s)),
    "see_status_of_own_notice": lambda a, s: p.may_see_status(a, _notice(ME, s)),
    "cancel_own_notice": lambda a, s: p.may_cancel(a, _notice(ME, s)),
    "import_survey_opened_there": lambda a, s: p.may_import_survey(a, (s,)),
}

EVERYWHERE = {"V1", "V2", "V3", "C1", "C2"}
OWN_COMMUNE = {"V1", "V2", "C1"}
# rule -> persona -> the places where it is allowed (absent persona: nowhere)
ALLOWED: dict[str, dict[str, set[str]]] = {
    "broadcast_to": {"head_V1": {"V1"}, "official_C1": OWN_COMMUNE},
    "relay_in": {"official_C1": {"C1"}},
    "link_group": {"tech_team_V1": {"V1"}, "head_V1": {"V1"}, "official_C1": OWN_COMMUNE},
    "move_group_to_V1": {"tech_team_V1": {"V1"}, "head_V1": {"V1"}, "official_C1": OWN_COMMUNE},
    "unlink_group": {"tech_team_V1": {"V1"}, "head_V1": {"V1"}, "official_C1": OWN_COMMUNE},
    "open_survey": {"head_V1": {"V1"}, "official_C1": {"V1", "V2"}},
    "follow_survey": {"tech_team_V1": {"V1"}, "head_V1": {"V1"}, "official_C1": OWN_COMMUNE},
    "export": {"tech_team_V1": {"V1"}, "head_V1": {"V1"}, "official_C1": OWN_COMMUNE},
    "make_poster": {"tech_team_V1": {"V1"}, "head_V1": {"V1"}, "official_C1": OWN_COMMUNE},
    "reset_household_code": {"head_V1": {"V1"}, "official_C1": OWN_COMMUNE},
    "answer_question": {"tech_team_V1": {"V1"}, "head_V1": {"V1"}, "official_C1": OWN_COMMUNE},
    "invite_tech_team": {"head_V1": {"V1"}, "official_C1": OWN_COMMUNE},
    "invite_village_head": {"official_C1": {"V1", "V2"}},
    "invite_commune_official": {"official_C1": {"C1"}},
    "remove_tech_team": {"head_V1": {"V1"}, "official_C1": OWN_COMMUNE},
    "remove_village_head": {"official_C1": {"V1", "V2"}},
    "remove_commune_official": {"official_C1": {"C1"}},
    "remove_last_commune_official": {},
    "see_status_of_others_notice": {"tech_team_V1": {"V1"}, "head_V1": {"V1"}, "official_C1": OWN_COMMUNE},
    "cancel_others_notice": {"official_C1": OWN_COMMUNE},
    "see_status_of_own_notice": dict.fromkeys(PERSONAS, EVERYWHERE),
    "cancel_own_notice": dict.fromkeys(PERSONAS, EVERYWHERE),
    "import_survey_opened_there": {"official_C1": OWN_COMMUNE},
}


@pytest.mark.parametrize("target", sorted(SPOTS))
@pytest.mark.parametrize("persona", sorted(PERSONAS))
@pytest.mark.parametrize("rule", sorted(RULES))
def test_permission_matrix(rule: str, persona: str, target: str) -> None:
    expected = target in ALLOWED[rule].get(persona, set())
    assert RULES[rule](PERSONAS[persona], SPOTS[target]) is expected


def test_every_rule_is_in_the_table() -> None:
    assert sorted(RULES) == sorted(ALLOWED)


@pytest.mark.parametrize("persona", sorted(PERSONAS))
def test_a_question_from_nowhere_known_is_for_any_staff(persona: str) -> None:
    assert p.may_answer_question(PERSONAS[persona], None) is (persona != "resident")


def test_a_role_in_another_commune_gives_nothing_here() -> None:
    """The same person, head of a village in C2 and tech team of V1: the head role does not leak."""
    actor = p.Actor(ME, (p.Grant(RoleName.VILLAGE_HEAD, SPOTS["V3"]), p.Grant(RoleName.TECH_TEAM, SPOTS["V1"])))
    assert p.may_broadcast_to(actor, SPOTS["V3"])
    assert not p.may_broadcast_to(actor, SPOTS["V1"])
    assert p.may_export(actor, SPOTS["V1"])
    assert not p.may_export(actor, SPOTS["V2"])


@pytest.mark.parametrize("persona", sorted(PERSONAS))
def test_a_survey_opened_nowhere_is_imported_by_a_commune_official(persona: str) -> None:
    assert p.may_import_survey(PERSONAS[persona], ()) is (persona == "official_C1")
    assert not p.may_import_survey(PERSONAS[persona], (SPOTS["V1"], SPOTS["V3"]))  # V3: another commune's


# Who hears of a question the handbook cannot answer: persona -> person id, among the personas above.
HOLDERS = {
    "tech_team_V1": p.Actor(1, PERSONAS["tech_team_V1"].grants),
    "head_V1": p.Actor(2, PERSONAS["head_V1"].grants),
    "official_C1": p.Actor(3, PERSONAS["official_C1"].grants),
}
TOLD: dict[str | None, tuple[str | None, tuple[int, ...]]] = {
    "V1": (RoleName.TECH_TEAM, (1,)),
    "V2": (RoleName.COMMUNE_OFFICIAL, (3,)),  # V1's tech team and head are not V2's
    "V3": (None, ()),  # another commune: nobody here is told
    "C1": (RoleName.COMMUNE_OFFICIAL, (3,)),
    "C2": (None, ()),
    None: (RoleName.TECH_TEAM, (1,)),  # from nowhere known: any tech team
}


@pytest.mark.parametrize("target", sorted(TOLD, key=str))
def test_a_question_goes_to_the_first_tier_with_somebody(target: str | None) -> None:
    told = p.choose_answerers(HOLDERS.values(), SPOTS[target] if target else None)
    assert (told.role, told.person_ids) == TOLD[target]


def test_without_the_tech_team_the_head_is_told_then_the_officials() -> None:
    without_team = [HOLDERS["head_V1"], HOLDERS["official_C1"]]
    assert p.choose_answerers(without_team, SPOTS["V1"]) == p.Answerers(RoleName.VILLAGE_HEAD, (2,))
    assert p.choose_answerers([HOLDERS["official_C1"]], SPOTS["V1"]) == p.Answerers(RoleName.COMMUNE_OFFICIAL, (3,))
    assert p.choose_answerers([], SPOTS["V1"]) == p.Answerers(None)


@pytest.mark.parametrize("target", sorted(TOLD, key=str))
def test_whoever_is_told_may_answer(target: str | None) -> None:
    """Every subset of holders: the people told always pass may_answer_question for that place."""
    spot = SPOTS[target] if target else None
    names = sorted(HOLDERS)
    for mask in range(1 << len(names)):
        holders = [HOLDERS[n] for i, n in enumerate(names) if mask >> i & 1]
        told = p.choose_answerers(holders, spot)
        by_id = {h.person_id: h for h in holders}
        assert all(p.may_answer_question(by_id[i], spot) for i in told.person_ids)
