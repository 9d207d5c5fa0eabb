"""Handbook answers in a chat: questions, the top-three offer, feedback, and the tech team's
/cauhoi, /traloi and /luuhuongdan."""

from __future__ import annotations

import re
import unicodedata

from sqlmodel import col, or_, select

from handlers import conversation
from handlers.chat import ChatKind, ChatRef, Outgoing
from handlers.choices import Menu, menu
from handlers.context import Turn
from handlers.groups import this_group
from handlers.handbook.articles import Article
from handlers.handbook.search import Kind, entry_article
from handlers.numbers import whole_number
from handlers.permissions import Spot, may_answer_question, question_answerers, question_places
from handlers.villages import village_of
from messages import label, render
from storage.models import (
    HandbookEntry,
    Household,
    Place,
    Question,
    QuestionStatus,
)

FLOW = "handbook"
_BOLD = re.compile(r"\*\*(.+?)\*\*")


async def ask_command(turn: Turn, args: str) -> None:
    """/hoi câu hỏi (in a group, or in private)."""
    if not args.strip():
        turn.say("handbook_ask_usage")
        return
    await ask(turn, args)


def is_question(text: str) -> bool:
    """Only emoji, punctuation or invisible characters ask nothing the tech team could answer."""
    return any(unicodedata.category(ch)[0] in "LN" for ch in text)


async def ask(turn: Turn, text: str) -> None:
    if not is_question(text):
        turn.say("not_understood")
        return
    decision = turn.handbook.decide(text)
    question = Question(
        platform=turn.incoming.platform,
        chat_id=turn.incoming.chat_id,
        user_id=turn.incoming.user_id,
        person_id=turn.person.id,
        place_id=await _place_of(turn),
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
    else:
        await _hand_off(turn, question)


async def resume(turn: Turn, step: str, data: dict) -> None:
    question = await turn.session.get(Question, data.get("question_id"))
    if question is None:
        await conversation.finish(turn)
        return
    answer = turn.incoming.answer
    if step == "offer":
        picked = _offer_menu(turn, data.get("offered", [])).pick(answer)
        if picked is None:
            await _new_question(turn, answer)
        elif picked == "handoff":
            await conversation.finish(turn)
            await _hand_off(turn, question)
        else:
            article = turn.handbook.article(picked.removeprefix("article:"))
            question.article_id = article.id if article else None
            await _answer(turn, question, article)
    elif step == "feedback":
        picked = _feedback_menu().pick(answer)
        if picked is None:
            await _new_question(turn, answer)
            return
        question.helpful = picked == "yes"
        await conversation.finish(turn)
        if question.helpful:
            turn.say("handbook_thanks")
        else:
            await _hand_off(turn, question)


async def _new_question(turn: Turn, text: str) -> None:
    """Something other than a number: the person moved on. In private that is a new question (no dead
    end); in a group it is just talk, and the bot keeps quiet."""
    await conversation.finish(turn)
    if turn.incoming.chat_kind is ChatKind.PRIVATE:
        await ask(turn, text)  # a sticker or an emoji gets the not-understood reply there, not silence


def _feedback_menu() -> Menu:
    return menu("yes", "no")


def _offer_menu(turn: Turn, offered: list[str]) -> Menu:
    articles = [a for a in (turn.handbook.article(i) for i in offered) if a is not None]
    return menu(**{f"article:{a.id}": a.title for a in articles}, handoff=label("none_of_these"))


async def _answer(turn: Turn, question: Question, article: Article | None) -> None:
    if article is None:
        await _hand_off(turn, question)
        return
    question.article_id = article.id
    sections = [(heading, _BOLD.sub(r"\1", text)) for heading, text in article.sections]
    turn.say("handbook_article", title=article.title, summary=article.summary, sections=sections)
    feedback = _feedback_menu()
    await conversation.move(turn, FLOW, "feedback", question_id=question.id)
    turn.say("handbook_feedback", buttons=feedback.buttons, choices=feedback.lines)


async def _hand_off(turn: Turn, question: Question) -> None:
    question.status = QuestionStatus.OPEN
    await turn.session.flush()
    for chat in await _tech_team_chats(turn, question):
        turn.reply.messages.append(
            Outgoing(chat, render("handbook_new_question", number=question.id, text=question.text))
        )
    turn.say("handbook_handed_off", number=question.id)


async def _place_of(turn: Turn) -> int | None:
    """The village a question belongs to: the one the asker joined, else the group's place, else the
    asker's household's."""
    village = await village_of(turn.session, turn.person)
    if village is not None:
        return village.id
    if turn.incoming.chat_kind is ChatKind.GROUP:
        group = await this_group(turn, create=False)
        if group is not None and group.place_id is not None:
            return group.place_id
    if turn.person.household_id is not None:
        household = await turn.session.get(Household, turn.person.household_id)
        return household.place_id if household else None
    return None


async def _tech_team_chats(turn: Turn, question: Question) -> list[ChatRef]:
    """Private chats of the tech team of the question's village (and of its commune), on the
    asker's platform; a question from nowhere known goes to every tech team on that platform."""
    places = None
    if question.place_id is not None:
        place = await turn.session.get(Place, question.place_id)
        places = [question.place_id] + ([place.parent_id] if place and place.parent_id else [])
    users = await question_answerers(turn.session, places, question.platform)
    return [ChatRef(question.platform, user) for user in users if user != turn.incoming.user_id]


# --- the tech team ------------------------------------------------------------------------------


async def open_questions(turn: Turn, _args: str) -> None:
    """/cauhoi: questions waiting for the tech team of the places this person serves."""
    places = await question_places(turn.session, await turn.actor())
    if not places:
        turn.say("handbook_staff_only")
        return
    rows = await turn.session.exec(
        select(Question)
        .where(
            Question.status == QuestionStatus.OPEN,
            or_(col(Question.place_id).is_(None), col(Question.place_id).in_(places)),
        )
        .order_by(col(Question.id))
        .limit(20)
    )
    turn.say("handbook_open_questions", questions=list(rows.all()))


async def reply(turn: Turn, args: str) -> None:
    """/traloi N nội dung: the answer goes to the person who asked."""
    number, _, text = args.strip().partition(" ")
    question = await _staff_question(turn, number)
    if question is None:
        return
    if not text.strip():
        turn.say("handbook_reply_usage")
        return
    question.answer, question.status = text.strip(), QuestionStatus.ANSWERED
    question.answered_by, question.answered_at = turn.person.id, turn.now
    turn.reply.messages.append(
        Outgoing(
            ChatRef(question.platform, question.chat_id),
            render("handbook_answer_from_team", question=question.text, answer=question.answer),
        )
    )
    turn.say("handbook_reply_sent", number=question.id)


async def save_answer(turn: Turn, args: str) -> None:
    """/luuhuongdan N: a good answer becomes a handbook entry that the search finds from now on."""
    question = await _staff_question(turn, args.strip())
    if question is None:
        return
    if question.status != QuestionStatus.ANSWERED:
        turn.say("handbook_save_needs_answer", number=question.id)
        return
    entry = HandbookEntry(title=question.text, body=question.answer, question_id=question.id, created_by=turn.person.id)
    turn.session.add(entry)
    await turn.session.flush()
    turn.handbook.add(entry_article(entry))
    turn.say("handbook_saved", number=question.id)


async def _staff_question(turn: Turn, number: str) -> Question | None:
    question_id = whole_number(number)
    question = await turn.session.get(Question, question_id) if question_id is not None else None
    if question is None:
        turn.say("handbook_reply_usage")
        return None
    place = await turn.session.get(Place, question.place_id) if question.place_id else None
    allowed = may_answer_question(await turn.actor(), Spot.of(place) if place else None)
    if not allowed:
        turn.say("handbook_staff_only")
        return None
    return question
