"""Following a village: a resident who joined one is asked once whether its notices should also come to
their private chat with the bot; `/nhantin` says yes and `/dunglai` no at any time, one command each.

Nobody is followed without a yes they gave, stored with its time (a no is stored too, so the question is
not put again). Leaving the village, moving to another one or erasing one's data ends it. A follower
whose chat the platform refuses (they blocked the bot) is not targeted again until they write to the bot.
"""

from __future__ import annotations

from dataclasses import replace

from sqlmodel import select

from handlers import audit, conversation
from handlers.chat import ChatKind, Outgoing
from handlers.choices import Menu, menu
from handlers.context import Turn
from handlers.conversation import Data, Flow
from handlers.followers import follower_for
from handlers.handbook import asking
from handlers.villages import village_of
from messages import render
from storage.models import Follower, Place


async def _offer(turn: Turn, village: Place) -> None:
    """The question, once, after what the turn said. Someone already following is told nothing more."""
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
    """At the end of a private turn that leaves no conversation open: a village member never asked in
    this chat is asked now, once — right after /thamgia or the village's link, after the survey in which
    their household joined it, or at the next message of someone who joined before followers existed."""
    village = await village_of(turn.session, turn.person)
    if village is None:
        return
    rows = await turn.session.exec(
        select(Follower).where(Follower.platform == turn.incoming.platform, Follower.chat_id == turn.incoming.chat_id)
    )
    follower = rows.first()
    if follower is None or (follower.asked_at is None and not follower.following):
        await _offer(turn, village)


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
    village = await village_of(turn.session, turn.person)
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


def wrote_again(turn: Turn) -> None:
    """Anyone writing in a private chat can be written to there again: a follower the platform refused
    (blocked, then unblocked) is targeted again. The row came with the person (`people.arrival`): most
    turns have nothing to clear, and a turn that is only a question asked again writes nothing."""
    follower = turn.refused_follower
    if follower is not None:
        follower.stopped_at = None
        turn.session.add(follower)


def _menu() -> Menu:
    return menu("yes", "no")


FLOW = Flow("follow", {"ask": _on_answer})
