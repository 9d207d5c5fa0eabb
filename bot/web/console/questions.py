"""The questions inbox: the tech team's hand-off queue (who asked, from which village, when), an
answer relayed to the asker in chat exactly as /traloi does, a good answer saved into the handbook as
/luuhuongdan does, answered questions found by a word. All through handlers/handbook/inbox.py."""

from __future__ import annotations

from aiohttp import web

from bot.web.console.access import Forbidden, Visit, require, see_other, staff
from handlers.handbook import inbox
from handlers.handbook.inbox import TITLE_MAX, Verdict, good_title, suggest_title
from handlers.numbers import whole_number
from handlers.permissions import may_answer_question

ROUTES = web.RouteTableDef()
WAITING_SHOWN = 50
ANSWERED_SHOWN = 30


@ROUTES.get("/cau-hoi")
@staff
async def questions(visit: Visit) -> web.StreamResponse:
    require(may_answer_question(visit.actor, None))  # staff somewhere: each question is judged by its place
    words = visit.request.query.get("tim", "").strip()[:100]
    open_, total = await inbox.waiting(visit.session, visit.actor, WAITING_SHOWN)
    answered = await inbox.answered(visit.session, visit.actor, words, ANSWERED_SHOWN)
    return visit.page("questions.html", waiting=open_, total=total, answered=answered, words=words,
                      done=visit.request.query.get("xong", ""), suggest=suggest_title, title_max=TITLE_MAX)


def _refused(outcome: inbox.Outcome) -> None:
    if outcome.verdict is Verdict.NOT_ALLOWED:
        raise Forbidden
    if outcome.verdict is Verdict.GONE:
        raise web.HTTPNotFound


@ROUTES.post("/cau-hoi/{id}/tra-loi")
@staff
async def answer(visit: Visit) -> web.StreamResponse:
    question_id = whole_number(visit.request.match_info["id"])
    done = await inbox.answer(visit.session, visit.actor, question_id, visit.field("tra_loi"), visit.now)
    _refused(done)
    if done.relay is None:
        return see_other(f"/cau-hoi?xong=trong#q{question_id}")
    visit.relays.append(done.relay)
    return see_other(f"/cau-hoi?xong=da-tra-loi#q{question_id}")


@ROUTES.post("/cau-hoi/{id}/luu")
@staff
async def save(visit: Visit) -> web.StreamResponse:
    question_id = whole_number(visit.request.match_info["id"])
    title = good_title(visit.field("tieu_de"))
    if title is None:
        _refused(await inbox.saveable(visit.session, visit.actor, question_id))
        return see_other(f"/cau-hoi?xong=tieu-de#q{question_id}")
    saved = await inbox.save_entry(visit.session, visit.actor, question_id, title, visit.console.handbook, visit.now)
    _refused(saved)
    return see_other(f"/cau-hoi?xong={'da-luu' if saved.verdict is Verdict.DONE else 'chua-luu'}#q{question_id}")
