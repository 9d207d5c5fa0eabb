"""Tables. Times are stored and read as aware UTC (sqlmodel's UTCDateTime); local time exists only in
messages."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class PlaceKind(StrEnum):
    COMMUNE = "commune"
    VILLAGE = "village"


class RoleName(StrEnum):
    COMMUNE_OFFICIAL = "commune_official"
    VILLAGE_HEAD = "village_head"
    TECH_TEAM = "tech_team"


class Place(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    kind: str
    code: str = Field(unique=True, index=True)
    name: str
    parent_id: int | None = Field(default=None, foreign_key="place.id", index=True)


class Household(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    place_id: int = Field(foreign_key="place.id", index=True)
    head_name: str
    hamlet: str = ""
    # given to the first member who registers it; family members type it to join the same household
    join_code: str = Field(unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow)


class Person(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    display_name: str = ""
    household_id: int | None = Field(default=None, foreign_key="household.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)


class Identity(SQLModel, table=True):
    """A person's account on one platform."""

    __table_args__ = (UniqueConstraint("platform", "user_id"),)
    id: int | None = Field(default=None, primary_key=True)
    platform: str
    user_id: str
    person_id: int = Field(foreign_key="person.id", index=True)
    # first message in a private chat with the bot: only then may it write to them there (Telegram
    # refuses users who never started the bot)
    private_chat_at: datetime | None = None


class Role(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("person_id", "place_id", "role"),)
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    place_id: int = Field(foreign_key="place.id", index=True)
    role: str


class ChatGroup(SQLModel, table=True):
    """A Telegram or Zalo group the bot is in, linked to one place."""

    __tablename__ = "chat_group"
    __table_args__ = (UniqueConstraint("platform", "chat_id"),)
    id: int | None = Field(default=None, primary_key=True)
    platform: str
    chat_id: str
    title: str = ""
    place_id: int | None = Field(default=None, foreign_key="place.id", index=True)
    active: bool = True
    linked_at: datetime | None = None


class AnnouncementStatus(StrEnum):
    DRAFT = "draft"
    QUEUED = "queued"  # deliveries exist (possibly waiting for not_before)
    RECURRING = "recurring"  # a template: apscheduler makes an occurrence at each firing
    CANCELLED = "cancelled"


class Announcement(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    author_id: int = Field(foreign_key="person.id", index=True)
    text: str = ""
    attachment_kind: str | None = None
    attachment_ref: str | None = None
    attachment_platform: str | None = None
    attachment_name: str = ""  # a document's file name as its author sent it
    # how the notice is signed in the groups, fixed when it is queued
    author_name: str = ""
    from_place: str = ""
    source: str = "private"  # "private" (written to the bot) | "relay" (from a commune group)
    urgent: bool = False
    status: str = AnnouncementStatus.DRAFT
    # the place whose groups (and its villages' groups) receive it; None: every place the author manages
    target_place_id: int | None = Field(default=None, foreign_key="place.id")
    send_at: datetime | None = None
    recurrence: str | None = None  # cron fields "day_of_week hour minute" for RECURRING
    parent_id: int | None = Field(default=None, foreign_key="announcement.id")
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id")  # a survey invitation
    created_at: datetime = Field(default_factory=utcnow)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    STOPPED = "stopped"


class Delivery(SQLModel, table=True):
    """Outbox row: one announcement to one chat — a group, or a follower's private chat — committed
    before any send."""

    __table_args__ = (
        UniqueConstraint("announcement_id", "group_id"),
        UniqueConstraint("announcement_id", "follower_id"),
        Index("ix_delivery_due", "status", "not_before"),
    )
    id: int | None = Field(default=None, primary_key=True)
    announcement_id: int = Field(foreign_key="announcement.id", index=True)
    # exactly one of the two: the group, or the follower whose private chat receives it
    group_id: int | None = Field(default=None, foreign_key="chat_group.id", index=True)
    follower_id: int | None = Field(default=None, foreign_key="follower.id", index=True)
    place_id: int | None = Field(default=None, foreign_key="place.id")  # a follower's village when queued
    status: str = DeliveryStatus.PENDING
    not_before: datetime = Field(default_factory=utcnow)
    lease_until: datetime | None = None
    attempts: int = 0
    parts_sent: int = 0  # a long notice goes out in parts; a retry resumes after the last sent one
    message_id: str | None = None
    last_error: str = ""
    sent_at: datetime | None = None


class Acknowledgement(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("announcement_id", "platform", "user_id"),)
    id: int | None = Field(default=None, primary_key=True)
    announcement_id: int = Field(foreign_key="announcement.id", index=True)
    group_id: int | None = Field(default=None, foreign_key="chat_group.id")
    follower_id: int | None = Field(default=None, foreign_key="follower.id", index=True)  # read in private
    platform: str
    user_id: str
    at: datetime = Field(default_factory=utcnow)


class Conversation(SQLModel, table=True):
    """Where a person is in a multi-step exchange, so a restart resumes it."""

    __table_args__ = (UniqueConstraint("platform", "chat_id", "user_id"),)
    id: int | None = Field(default=None, primary_key=True)
    platform: str
    chat_id: str
    user_id: str
    flow: str
    step: str
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


class InboxUpdate(SQLModel, table=True):
    """A platform update, stored before it is acknowledged to the platform and handled after."""

    __tablename__ = "inbox_update"
    __table_args__ = (
        UniqueConstraint("platform", "key"),
        Index("ix_inbox_pending", "processed_at", "id"),
        Index("ix_inbox_chat", "platform", "chat_id", "processed_at", "id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    platform: str
    key: str
    # the chat it came from, None when it has none the bot handles (or could not be read): one chat's
    # updates are handled in order, by whichever process holds the chat's lease
    chat_id: str | None = None
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    received_at: datetime = Field(default_factory=utcnow)
    processed_at: datetime | None = None
    error: str = ""
    # the turn's replies, committed with it and cleared once they went out: a crash between the commit
    # and the send leaves them here, and the next start sends them
    replies: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    reply_pending: bool = Field(default=False, index=True)
    # whose update it was, stamped when its turn runs: /xoadulieu blanks a household's members' updates
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)


class QuestionStatus(StrEnum):
    ANSWERED_BY_HANDBOOK = "handbook"
    OPEN = "open"  # handed to the tech team
    ANSWERED = "answered"  # a tech-team member replied


class HandbookQuestion(SQLModel, table=True):
    """A question asked of the handbook, what the bot did with it, and the asker's feedback."""

    __tablename__ = "question"  # the table keeps its name from when the class was Question
    id: int | None = Field(default=None, primary_key=True)
    platform: str
    chat_id: str
    user_id: str
    person_id: int = Field(foreign_key="person.id", index=True)
    place_id: int | None = Field(default=None, foreign_key="place.id", index=True)
    text: str
    decision: str  # "answer" | "offer" | "handoff"
    article_id: str | None = None
    helpful: bool | None = None
    status: str = Field(default=QuestionStatus.ANSWERED_BY_HANDBOOK, index=True)
    answer: str = ""
    answered_by: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime = Field(default_factory=utcnow)
    answered_at: datetime | None = None


class HandbookEntry(SQLModel, table=True):
    """A tech-team answer saved into the handbook (/luuhuongdan): searched like the articles."""

    __tablename__ = "handbook_entry"
    id: int | None = Field(default=None, primary_key=True)
    title: str
    body: str
    question_id: int | None = Field(default=None, foreign_key="question.id")
    created_by: int = Field(foreign_key="person.id")
    created_at: datetime = Field(default_factory=utcnow)


class LinkCode(SQLModel, table=True):
    """A one-time code (/lienket) that joins a person's accounts on two platforms. Only its SHA-256 is
    kept: whoever reads the database cannot use a code in flight."""

    __tablename__ = "link_code"
    code: str = Field(primary_key=True)  # sha256 hex of the code
    person_id: int = Field(foreign_key="person.id")
    platform: str  # where it was given: it must be typed on another one
    expires_at: datetime


class SurveyForm(SQLModel, table=True):
    """A survey file imported with `langso survey import`: kept whole and read like the shipped ones,
    so every bot process sharing the database sees it."""

    __tablename__ = "survey_form"
    code: str = Field(primary_key=True)
    filename: str
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    imported_at: datetime = Field(default_factory=utcnow)


class Campaign(SQLModel, table=True):
    """One survey opened for one village."""

    id: int | None = Field(default=None, primary_key=True)
    survey_code: str = Field(index=True)
    place_id: int = Field(foreign_key="place.id", index=True)
    opened_by: int = Field(foreign_key="person.id")
    expected_households: int | None = None
    opened_at: datetime = Field(default_factory=utcnow)
    closed_at: datetime | None = None


class ResponseStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    SUBMITTED = "submitted"


class SurveyResponse(SQLModel, table=True):
    """A household's answers to one campaign: one set per household, shared by its members."""

    __tablename__ = "survey_response"
    __table_args__ = (UniqueConstraint("campaign_id", "household_id"),)
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    household_id: int = Field(foreign_key="household.id", index=True)
    # question name -> value; a question skipped with "bỏ qua" is present with null
    answers: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = ResponseStatus.IN_PROGRESS
    updated_by: int | None = Field(default=None, foreign_key="person.id")
    started_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    submitted_at: datetime | None = None


class ReminderPlan(SQLModel, table=True):
    """"Remind the households that have not finished, at this time": one apscheduler job each."""

    __tablename__ = "reminder_plan"
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    created_by: int = Field(foreign_key="person.id")
    run_at: datetime
    done_at: datetime | None = None
    reminded: int = 0


class ReminderStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class Reminder(SQLModel, table=True):
    """One reminder to one household: the unique key is the "at most one a day" rule."""

    __tablename__ = "survey_reminder"
    __table_args__ = (UniqueConstraint("household_id", "day"),)
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    household_id: int = Field(foreign_key="household.id", index=True)
    day: date  # local date
    platform: str
    chat_id: str
    status: str = Field(default=ReminderStatus.PENDING, index=True)
    sent_at: datetime | None = None
    lease_until: datetime | None = None  # SENDING: the process sending it holds it until then


class ExportRecord(SQLModel, table=True):
    """Who took a copy of a village's answers, when, and of what."""

    __tablename__ = "export_record"
    id: int | None = Field(default=None, primary_key=True)
    person_id: int | None = Field(default=None, foreign_key="person.id")
    via: str  # "telegram", "zalo", "local" or "cli"
    survey_code: str
    place_id: int = Field(foreign_key="place.id")  # the village or commune the export was of
    # the places whose households are in the file (ids, ascending): what actually left the bot
    place_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    format: str
    households: int
    at: datetime = Field(default_factory=utcnow)


class AttemptCounter(SQLModel, table=True):
    """Wrong guesses of a secret (a link code, a household code, an invitation) by one person or chat:
    past the limit in a window, that key is locked out until `locked_until`."""

    __tablename__ = "attempt_counter"
    key: str = Field(primary_key=True)  # "<what>:<scope>:<id>", e.g. "link:person:12"
    failures: int = 0
    window_started: datetime = Field(default_factory=utcnow)
    locked_until: datetime | None = None


class AuditEvent(SQLModel, table=True):
    """One sensitive action (accounts joined or separated, a notice cancelled, an export, a deletion,
    a role given): who, when, on what place, and what is needed to understand or undo it."""

    __tablename__ = "audit_event"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor_id: int | None = Field(default=None, foreign_key="person.id", index=True)  # None: the CLI
    action: str = Field(index=True)
    place_id: int | None = Field(default=None, foreign_key="place.id")
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class AccountJoin(SQLModel, table=True):
    """Two people joined into one by /lienket: what moved, so the join can be undone (/lienket tach)."""

    __tablename__ = "account_join"
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)  # the one who gave the code: kept
    joined_person_id: int = Field(foreign_key="person.id")  # the one who typed it: merged into person_id
    identity_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    role_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    household_taken: bool = False  # the kept person had no household and took the joined one's
    at: datetime = Field(default_factory=utcnow)
    undone_at: datetime | None = None


class Invitation(SQLModel, table=True):
    """A one-time invitation to take a role on a place (/moi, `langso admin invite`). Only hashes of its
    two secrets are kept: the deep-link token and the shorter code people type."""

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True, index=True)
    code_hash: str = Field(unique=True, index=True)
    role: str
    place_id: int = Field(foreign_key="place.id", index=True)
    invited_by: int | None = Field(default=None, foreign_key="person.id", index=True)  # None: the CLI
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_by: int | None = Field(default=None, foreign_key="person.id")
    used_at: datetime | None = None
    withdrawn_at: datetime | None = None


class VillageMember(SQLModel, table=True):
    """A resident who joined a village (/thamgia, the poster's link, a household registered there):
    their handbook questions go to its tech team, and its notices may follow them (later)."""

    __tablename__ = "village_member"
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", unique=True)  # one village per person
    place_id: int = Field(foreign_key="place.id", index=True)
    source: str = "command"  # "command" | "link" | "household"
    joined_at: datetime = Field(default_factory=utcnow)


class Lease(SQLModel, table=True):
    """A right one process holds until `expires_at` unless it renews it: `poll:<platform>` (the one
    process polling a platform) and `chat:<platform>:<chat id>` (the one process running a chat's turns).
    storage/leases.py."""

    name: str = Field(primary_key=True)
    holder: str = Field(index=True)  # hostname-pid-random of the process
    expires_at: datetime


class JobRun(SQLModel, table=True):
    """One due time of a scheduled job, claimed by the first process to insert it: every process's
    scheduler fires the job, and only the one whose insert wins does the work (storage/job_runs.py)."""

    __tablename__ = "job_run"
    __table_args__ = (UniqueConstraint("job_id", "due_at"),)
    id: int | None = Field(default=None, primary_key=True)
    job_id: str  # the apscheduler job's id, e.g. "announcement-12"
    due_at: datetime
    outcome: str  # "done" (its work is committed with this row) | "missed" (beyond the grace: reported)
    at: datetime = Field(default_factory=utcnow)


class ConsoleLogin(SQLModel, table=True):
    """A one-time link into the web console, sent by /web in a private chat: only its SHA-256 is kept;
    it works once, within minutes (handlers/web_login.py)."""

    __tablename__ = "console_login"
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True, index=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None


class ConsoleSession(SQLModel, table=True):
    """A browser logged into the web console: the cookie's SHA-256, whose it is, until when. Ended by
    "Đăng xuất" or when one of the person's roles is taken back."""

    __tablename__ = "console_session"
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True, index=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    ended_at: datetime | None = None


class Media(SQLModel, table=True):
    """A file a notice carries to another platform, kept once by its SHA-256 in the database itself, so
    every process serves it and backups hold it (storage/media.py). Deleted once no notice younger than
    `[media] keep_days` (nor a recurring one) uses it."""

    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(unique=True)
    kind: str  # "photo" | "document"
    mime: str
    filename: str
    size: int
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class MediaRef(SQLModel, table=True):
    """What a platform calls a stored file: the file id it came with or got on upload (Telegram), the
    URL it came from (Zalo). A notice finds its file by the ref it was written with; a send reuses one."""

    __tablename__ = "media_ref"
    __table_args__ = (UniqueConstraint("platform", "ref"),)
    id: int | None = Field(default=None, primary_key=True)
    media_id: int = Field(foreign_key="media.id", index=True)
    platform: str
    ref: str


class MediaLink(SQLModel, table=True):
    """An unguessable, expiring address of a stored file on the bot's web server (bot/web/media.py):
    only the token's SHA-256 is kept."""

    __tablename__ = "media_link"
    id: int | None = Field(default=None, primary_key=True)
    media_id: int = Field(foreign_key="media.id", index=True)
    token_hash: str
    expires_at: datetime


class Follower(SQLModel, table=True):
    """A resident's private chat and whether they want their village's notices there (asked once after
    joining a village; /nhantin, /dunglai). The person is the identity whose user id is the chat's (a
    private chat's id is the user's on both platforms), so /lienket moves it with the account; the
    village is that person's membership (village_member)."""

    __table_args__ = (UniqueConstraint("platform", "chat_id"),)
    id: int | None = Field(default=None, primary_key=True)
    platform: str
    chat_id: str
    following: bool = False  # only a yes, said by them, makes it true
    asked_at: datetime | None = None  # the question was put to them (None: not yet, or asked again)
    answered_at: datetime | None = None  # when they said yes or no
    stopped_at: datetime | None = None  # the platform refused the chat (blocked): not targeted until they write


class NoticeTarget(SQLModel, table=True):
    """One of several places a notice is aimed at (the web console's checkboxes). A notice with none
    goes by `Announcement.target_place_id` (one place), or else to every place its author manages."""

    __tablename__ = "notice_target"
    __table_args__ = (UniqueConstraint("announcement_id", "place_id"),)
    id: int | None = Field(default=None, primary_key=True)
    announcement_id: int = Field(foreign_key="announcement.id", index=True)
    place_id: int = Field(foreign_key="place.id")


class AnswerFileStatus(StrEnum):
    PENDING = "pending"  # to fetch from the platform into the media store
    STORED = "stored"  # in the media store; the answer holds its media_id
    FAILED = "failed"  # cannot be had (gone, over the limit, retries spent): taken out of its answer, sender told


class AnswerFile(SQLModel, table=True):
    """A file a resident sent as a survey answer (a photo, a voice note…), written by the chat with the
    answer itself and fetched into the media store by bot/answer_media.py. A row of its own rather than
    a scan of the answers' JSON: "what is left to fetch" is one indexed query, and retries and failures
    are kept without adding anything to the answer's value."""

    __tablename__ = "answer_file"
    __table_args__ = (Index("ix_answer_file_due", "status", "next_try_at"),)
    id: int | None = Field(default=None, primary_key=True)
    response_id: int = Field(foreign_key="survey_response.id", index=True)
    question: str  # the question's name
    at: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # repeat instances
    kind: str
    platform: str
    ref: str  # the platform's file id (Telegram) or URL (Zalo)
    person_id: int | None = Field(default=None, foreign_key="person.id")  # who sent it: told if it cannot be fetched
    status: str = AnswerFileStatus.PENDING
    media_id: int | None = Field(default=None, foreign_key="media.id", index=True)
    attempts: int = 0
    next_try_at: datetime = Field(default_factory=utcnow)
    claimed_until: datetime | None = None  # a process is fetching it; another may take it after this
    created_at: datetime = Field(default_factory=utcnow)
