"""Following a village: a resident who joined one is asked once whether its notices should also come to
their private chat with the bot; `/nhantin` says yes and `/dunglai` no at any time, one command each.

Nobody is followed without a yes they gave, stored with its time (a no is stored too, so the question is
not put again). Leaving the village, moving to another one or erasing one's data ends it. A follower
whose chat the platform refuses (they blocked the bot) is not targeted again until they write to the bot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import NamedTuple

from sqlalchemy import and_, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers import audit, conversation, villages  # villages imports this module: used at call time
from handlers.chat import ChatKind, Outgoing
from handlers.choices import Menu, menu
from handlers.context import Turn
from handlers.conversation import Data, Flow
from handlers.handbook import asking
from messages import render
from storage.db import insert_if_absent
from storage.models import Follower, Identity, Person, Place, VillageMember


class Following(NamedTuple):
    follower: Follower
    place_id: int  # the village whose notices they receive


# --- plain operations (no chat needed) ------------------------------------------------------------------


async def followers_of(session: AsyncSession, place_ids: Sequence[int]) -> list[Following]:
    """Who receives these villages' notices in private: members who said yes, whose chat the platform
    has not refused since they last wrote. In a fixed order (the follower's id)."""
    if not place_ids:
        return []
    rows = await session.exec(
        select(Follower, VillageMember.place_id)
        .join(Identity, (col(Identity.platform) == Follower.platform) & (col(Identity.user_id) == Follower.chat_id))
        .join(VillageMember, col(VillageMember.person_id) == Identity.person_id)
        .where(
            col(VillageMember.place_id).in_(place_ids),
            Follower.following == True,  # noqa: E712 - SQL
            col(Follower.stopped_at).is_(None),
        )
        .order_by(col(Follower.id))
    )
    return [Following(follower, place_id) for follower, place_id in rows.all()]


async def follower_for(session: AsyncSession, platform: str, chat_id: str) -> Follower:
    """This private chat's row, created (not following) on first need."""
    await insert_if_absent(session, Follower, platform=platform, chat_id=chat_id, following=False)
    rows = await session.exec(select(Follower).where(Follower.platform == platform, Follower.chat_id == chat_id))
    return rows.one()


async def end_following(session: AsyncSession, person: Person) -> None:
    """The person left their village, moved, or erased their data: no more private notices, and the
    next village they join asks again (a yes or no was about the village they had)."""
    accounts = (await session.exec(select(Identity.platform, Identity.user_id).where(Identity.person_id == person.id))).all()
    if accounts:
        await session.exec(
            update(Follower)
            .where(or_(*(and_(col(Follower.platform) == p, col(Follower.chat_id) == u) for p, u in accounts)))
            .values(following=False, asked_at=None, answered_at=None)
        )


# --- the chat -------------------------------------------------------------------------------------------


async def offer(turn: Turn, village: Place) -> None:
    """After joining `village`: the question, once. Someone already following is told nothing more."""
    follower = await follower_for(turn.session, turn.incoming.platform, turn.incoming.chat_id)
    if follower.following:
        return
    follower.asked_at = turn.now
    turn.session.add(follower)
    choices = _menu()
    await conversation.move(turn, FLOW, "ask", place_id=village.id)
    question = render("follow_ask", choices=choices.lines, village=village.name)
    last = turn.reply.messages[-1] if turn.reply.messages else None
    if last is not None and last.chat == turn.incoming.chat and not last.buttons and not last.has_file:
        # one message: what the turn just said ("Bạn đã tham gia Thôn 2"), then the question and its buttons
        turn.reply.messages[-1] = replace(last, text=f"{last.text}\n\n{question}", buttons=choices.buttons)
    else:
        turn.reply.messages.append(Outgoing(turn.incoming.chat, question, choices.buttons))


async def offer_if_due(turn: Turn) -> None:
    """At the end of a private turn that leaves no conversation open: a member never asked in this chat
    (they joined through a household in a survey, or before followers existed) is asked now, once."""
    village = await villages.village_of(turn.session, turn.person)
    if village is None:
        return
    rows = await turn.session.exec(
        select(Follower).where(Follower.platform == turn.incoming.platform, Follower.chat_id == turn.incoming.chat_id)
    )
    follower = rows.first()
    if follower is None or (follower.asked_at is None and not follower.following):
        await offer(turn, village)


async def _on_answer(turn: Turn, _data: Data) -> None:
    picked = _menu().pick(turn.incoming.answer)
    if picked is None:  # they moved on: what they wrote is a question (no dead end); /nhantin stays open
        await conversation.finish(turn)
        await asking.ask(turn, turn.incoming.answer)
        return
    await conversation.finish(turn)
    await _decide(turn, picked == "yes")


async def start_command(turn: Turn, _args: str) -> None:
    """/nhantin: yes, one command."""
    await _decide(turn, True)


async def stop_command(turn: Turn, _args: str) -> None:
    """/dunglai: no, one command."""
    await _decide(turn, False)


async def _decide(turn: Turn, yes: bool) -> None:
    if turn.incoming.chat_kind is not ChatKind.PRIVATE:
        turn.say("follow_private_only")
        return
    village = await villages.village_of(turn.session, turn.person)
    follower = await follower_for(turn.session, turn.incoming.platform, turn.incoming.chat_id)
    if yes and village is None:
        turn.say("follow_no_village")
        return
    was = follower.following
    follower.following, follower.answered_at, follower.stopped_at = yes, turn.now, None
    follower.asked_at = follower.asked_at or turn.now
    turn.session.add(follower)
    await audit.record(turn.session, "follow_on" if yes else "follow_off", actor_id=turn.person.id, at=turn.now,
                       place_id=village.id if village else None, follower=follower.id)
    if yes:
        turn.say("follow_on", village=village.name if village else "", already=was)
    else:
        turn.say("follow_off", was=was, member=village is not None)


async def wrote_again(turn: Turn) -> None:
    """Anyone writing in a private chat can be written to there again: a follower the platform refused
    (blocked, then unblocked) is targeted again."""
    await turn.session.exec(
        update(Follower)
        .where(
            col(Follower.platform) == turn.incoming.platform,
            col(Follower.chat_id) == turn.incoming.chat_id,
            col(Follower.stopped_at).is_not(None),
        )
        .values(stopped_at=None)
    )


def _menu() -> Menu:
    return menu("yes", "no")


FLOW = Flow("follow", {"ask": _on_answer})
