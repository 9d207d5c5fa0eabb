"""Conversations as tables of steps: a row stored by an older version (a step or a flow this version no
longer has) ends with a message, and /huy leaves each flow the way that flow says. The real bot against
the fake Telegram server; a conversation is put at its step by storing its row, as a restart finds it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from handlers.router import FLOWS
from messages import render
from storage.models import Announcement, AnnouncementStatus, Conversation
from tests.harness import HEAD, RESIDENT, Harness

# what /huy says in each flow: a flow added to the router must say it here too
CANCELLED = {
    "announce": "announce_cancelled",  # and the draft is kept, marked cancelled
    "survey": "survey_paused",  # the answers so far are kept
    "handbook": "left_unfinished",
    "handbook_entry": "left_unfinished",
    "campaign": "left_unfinished",
    "mydata": "left_unfinished",
    "household_code": "left_unfinished",
    "invitation": "left_unfinished",
    "role_removal": "left_unfinished",
    "village": "left_unfinished",
    "follow": "left_unfinished",
}


async def _store(harness: Harness, user: int, flow: str, step: str, data: dict[str, Any] | None = None) -> None:
    assert harness.app is not None
    async with harness.app.sessions() as session:
        chat = str(user)
        session.add(Conversation(platform="telegram", chat_id=chat, user_id=chat, flow=flow, step=step, data=data or {}))
        await session.commit()


async def _conversation(harness: Harness, user: int) -> Conversation | None:
    assert harness.app is not None
    async with harness.app.sessions() as session:
        return (await session.exec(select(Conversation).where(Conversation.user_id == str(user)))).first()


def test_every_flow_says_what_cancelling_it_does() -> None:
    assert sorted(f.name for f in FLOWS) == sorted(CANCELLED)


@pytest.mark.parametrize("flow", [*CANCELLED, "poll"])  # "poll": a whole flow this version does not have
async def test_a_conversation_at_a_retired_step_ends_with_a_message(harness: Harness, flow: str) -> None:
    await _store(harness, RESIDENT, flow, "step_of_an_older_version", {"question_id": 1, "campaign_id": 1})
    [ended] = await harness.send(RESIDENT, "1")
    assert ended.text == render("conversation_retired")
    assert await _conversation(harness, RESIDENT) is None
    [nothing] = await harness.send(RESIDENT, "/huy")  # and it is really over
    assert nothing.text == render("nothing_to_cancel")


@pytest.mark.parametrize("flow", sorted(set(CANCELLED) - {"announce"}))
async def test_cancel_leaves_each_flow_its_own_way(harness: Harness, flow: str) -> None:
    first_step = next(iter(next(f for f in FLOWS if f.name == flow).steps))
    await _store(harness, HEAD, flow, first_step)
    [left] = await harness.send(HEAD, "/huy")
    assert left.text == render(CANCELLED[flow])
    assert await _conversation(harness, HEAD) is None


async def test_cancel_while_writing_a_notice_keeps_the_draft_as_cancelled(harness: Harness) -> None:
    await harness.send(HEAD, "/thongbao Họp thôn tối nay")
    [left] = await harness.send(HEAD, "/huy")
    assert left.text == render(CANCELLED["announce"])
    assert await _conversation(harness, HEAD) is None
    assert harness.app is not None
    async with harness.app.sessions() as session:
        [draft] = (await session.exec(select(Announcement))).all()
    assert (draft.text, draft.status) == ("Họp thôn tối nay", AnnouncementStatus.CANCELLED)
