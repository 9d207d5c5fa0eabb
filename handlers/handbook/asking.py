"""Handbook answers in a chat: questions, the top-three offer, feedback; a long article asked in a
group goes to the asker's private chat. What the handbook cannot answer goes to questions.hand_off, and
what may be small talk goes there only once the person says it is a question."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Awaitable, Callable

from handlers import conversation
from handlers.chat import ChatKind, ChatRef, Outgoing
from handlers.choices import Menu, menu
from handlers.context import Turn
from handlers.conversation import Data, Flow, StepHandler
from handlers.handbook.articles import Article
from handlers.handbook.chitchat import asks_for_answer
from handlers.handbook.questions import hand_off, place_of, shown_name, still_waiting
from handlers.handbook.search import Kind
from handlers.people import has_private_chat
from messages import label, render
from storage.models import HandbookQuestion

_BOLD = re.compile(r"\*\*(.+?)\*\*")
# Longer than about one phone screen: in a group it would push everyone's talk out of view, so it goes
# to the asker's private chat. Every shipped article is longer (27 lines and more); a short answer the
# tech team saved stays in the group, where others can read it too.
LONG_LINES = 15
LONG_CHARS = 800


async def ask_command(turn: Turn, args: str) -> None:
    """/hoi câu hỏi (in a group, or in private)."""
    if not args.strip():
        turn.say("handbook_ask_usage")
        return
    await ask(turn, args, new=True)


def is_question(text: str) -> bool:
    """Only emoji, punctuation or invisible characters ask nothing the tech team could answer."""
    return any(unicodedata.category(ch)[0] in "LN" for ch in text)


def is_visible(text: str) -> bool:
    """Something shows: not only spaces, zero-width joiners and other invisible characters."""
    return any(unicodedata.category(ch)[0] not in "ZC" for ch in text)


async def ask(turn: Turn, text: str, *, new: bool = False) -> None:
    """A message to the handbook. `new`: sent with /hoi, so a question even when it reads as asking
    where an earlier answer is."""
    if not is_visible(text):  # not even small talk, though the search would read it as a remark asking nothing
        turn.say("not_understood")
        return
    decision = turn.handbook.decide(text)
    if decision.kind is Kind.CHAT:  # a hello, thanks, laughter, a remark
        turn.say("handbook_small_talk", waiting=await _waiting(turn))
        return
    # "sao ko ai tl z" while a question waits: told where it is, and the team gets no new question saying
    # only that. A message the handbook answers is a question all the same; a menu would be a guess (the
    # article on the bot "not answering"), and the reply says how to send it as a question (/hoi)
    if not new and decision.kind is not Kind.ANSWER and asks_for_answer(text):
        waiting = await _waiting(turn)
        if waiting:
            turn.say("handbook_still_waiting", waiting=waiting)
            return
    if not is_question(text):
        turn.say("not_understood")
        return
    question = HandbookQuestion(
        platform=turn.incoming.platform,
        chat_id=turn.incoming.chat_id,
        user_id=turn.incoming.user_id,
        person_id=turn.person.id,
        place_id=await place_of(turn),
        text=text.strip()[:2000],
        decision=decision.kind,
        created_at=turn.now,
    )
    turn.session.add(question)
    await turn.session.flush()
    if decision.kind is Kind.ANSWER:
        await _answer(turn, question, decision.hits[0].article)
    elif decision.kind is Kind.OFFER:
        offered = [h.article.id for h in decision.hits]
        choices = _offer_menu(turn, offered)
        await conversation.move(turn, FLOW, "offer", question_id=question.id, offered=offered)
        turn.say("handbook_offer", buttons=choices.buttons, choices=choices.lines)
    elif decision.kind is Kind.CONFIRM:
        choices = _confirm_menu()
        await conversation.move(turn, FLOW, "confirm", question_id=question.id)
        turn.say("handbook_confirm", buttons=choices.buttons, choices=choices.lines)
    else:
        await hand_off(turn, question)


async def _waiting(turn: Turn) -> list[dict[str, object]]:
    """The asker's questions still waiting for the team, as the replies show them; none in a group, where
    neighbours would read what someone waits for."""
    if turn.incoming.chat_kind is not ChatKind.PRIVATE:
        return []
    return [{"number": q.id, "at": turn.local(q.created_at)} for q in await still_waiting(turn)]


QuestionStep = Callable[[Turn, HandbookQuestion, Data], Awaitable[None]]


def _on_question(step: QuestionStep) -> StepHandler:
    """A step about a question still stored; once an erasure took it, the message is a new one."""

    async def handler(turn: Turn, data: Data) -> None:
        question = await turn.session.get(HandbookQuestion, data.get("question_id"))
        if question is None:
            await _new_question(turn, turn.incoming.answer)
            return
        await step(turn, question, data)

    return handler


async def _chosen(turn: Turn, choices: Menu) -> str | None:
    """The key of the item the message picks; None once a message that picks nothing was taken as new."""
    picked = choices.pick(turn.incoming.answer)
    if picked is None:
        await _new_question(turn, turn.incoming.answer)
    return picked


async def _on_offer(turn: Turn, question: HandbookQuestion, data: Data) -> None:
    picked = await _chosen(turn, _offer_menu(turn, data.get("offered", [])))
    if picked is None:
        return
    if picked == "handoff":
        await conversation.finish(turn)
        await hand_off(turn, question)
    else:
        article = turn.handbook.article(picked.removeprefix("article:"))
        question.article_id = article.id if article else None
        await _answer(turn, question, article)


async def _on_confirm(turn: Turn, question: HandbookQuestion, _data: Data) -> None:
    """Small talk or a question? The person said which: only a yes reaches the tech team."""
    picked = await _chosen(turn, _confirm_menu())
    if picked is None:
        return
    await conversation.finish(turn)
    if picked == "send":
        await hand_off(turn, question)
    else:
        turn.say("handbook_not_sent")


async def _on_feedback(turn: Turn, question: HandbookQuestion, _data: Data) -> None:
    picked = await _chosen(turn, _feedback_menu())
    if picked is None:
        return
    question.helpful = picked == "yes"
    await conversation.finish(turn)
    if question.helpful:
        turn.say("handbook_thanks")
    else:
        await hand_off(turn, question)


async def _new_question(turn: Turn, text: str) -> None:
    """Something other than a number: the person moved on. In private that is a new question (no dead
    end); in a group it is just talk, and the bot keeps quiet."""
    await conversation.finish(turn)
    if turn.incoming.chat_kind is ChatKind.PRIVATE:
        await ask(turn, text)  # a sticker or an emoji gets the not-understood reply there, not silence


def _feedback_menu() -> Menu:
    return menu("yes", "no")


def _confirm_menu() -> Menu:
    return menu(send=label("send_to_team"), keep=label("keep_it"))


def _offer_menu(turn: Turn, offered: list[str]) -> Menu:
    articles = [a for a in (turn.handbook.article(i) for i in offered) if a is not None]
    return menu(**{f"article:{a.id}": a.title for a in articles}, handoff=label("none_of_these"))


async def _answer(turn: Turn, question: HandbookQuestion, article: Article | None) -> None:
    if article is None:
        await hand_off(turn, question)
        return
    question.article_id = article.id
    sections = [(heading, _BOLD.sub(r"\1", text)) for heading, text in article.sections]
    text = render("handbook_article", title=article.title, summary=article.summary, sections=sections)
    if await _to_private(turn, text):
        return
    turn.reply.messages.append(Outgoing(turn.incoming.chat, text))
    feedback = _feedback_menu()
    await conversation.move(turn, FLOW, "feedback", question_id=question.id)
    turn.say("handbook_feedback", buttons=feedback.buttons, choices=feedback.lines)


def is_long(text: str) -> bool:
    return len(text) > LONG_CHARS or len(text.splitlines()) > LONG_LINES


async def _to_private(turn: Turn, article: str) -> bool:
    """A long article asked in a group goes to the asker's private chat, if the bot may write there, with
    a pointer in the group. No feedback question follows it: the private chat may be busy with
    something else."""
    msg = turn.incoming
    if msg.chat_kind is not ChatKind.GROUP or not is_long(article):
        return False
    if not await has_private_chat(turn.session, msg.platform, msg.user_id):
        return False
    await conversation.finish(turn)  # an offer made in the group is done with
    turn.reply.messages.append(Outgoing(ChatRef(msg.platform, msg.user_id), article))
    turn.say("handbook_sent_private", name=shown_name(turn.person.display_name))
    return True


FLOW = Flow("handbook", {"offer": _on_question(_on_offer), "confirm": _on_question(_on_confirm),
                         "feedback": _on_question(_on_feedback)})
