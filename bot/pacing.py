"""Proactive pacing under a platform's limits, so the platform never has to say 429.

Two kinds of limit, both per bot (one Pacer per channel):
- a global rate, handed out as evenly spaced slots; a reply to a person waiting for the bot takes the
  next slot ahead of any bulk delivery, so a 10,000-group broadcast never holds a reply up;
- a sliding window per chat (Telegram: 20 a minute in a group, about 1 a second in a private chat),
  which python-telegram-bot's own limiter does not do for private chats, and which here holds up
  only the one chat, never the others (its limiter pauses everything on one 429).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from handlers.chat import ChatRef


class RateGate:
    """At most `rate` slots a second, evenly spaced; urgent callers are served first."""

    def __init__(self, rate: float, *, headroom: float = 0.97, catch_up: float = 0.02) -> None:
        # A slot goes out late when the event loop is busy; catch_up lets the slots overslept in the last
        # 20 ms go out at once, no more. Slots are never early, so any 1-second window holds at most
        # (1 + catch_up) x rate x headroom + 1 of them: under the limit, with headroom left for jitter.
        self._interval = 1.0 / (rate * headroom)
        self._catch_up = catch_up
        self._next = 0.0
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._bulk: deque[asyncio.Future[None]] = deque()
        self._runner: asyncio.Task[None] | None = None

    async def acquire(self, urgent: bool = False) -> None:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        (self._urgent if urgent else self._bulk).append(waiter)
        if self._runner is None or self._runner.done():
            self._runner = loop.create_task(self._release())
        await waiter  # a cancelled waiter is skipped by _release

    def hold(self, seconds: float) -> None:
        """The platform asked the whole bot to wait (a global 429): give out nothing until then."""
        self._next = max(self._next, asyncio.get_running_loop().time() + seconds)

    async def _release(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            waiter = self._next_waiter()
            if waiter is None:
                return
            now = loop.time()
            if now < self._next:
                await asyncio.sleep(self._next - now)
                continue
            self._pop(waiter).set_result(None)
            self._next = max(self._next, now - self._catch_up) + self._interval

    def _next_waiter(self) -> asyncio.Future[None] | None:
        for queue in (self._urgent, self._bulk):
            while queue and queue[0].done():
                queue.popleft()
            if queue:
                return queue[0]
        return None

    def _pop(self, waiter: asyncio.Future[None]) -> asyncio.Future[None]:
        return (self._urgent if self._urgent and self._urgent[0] is waiter else self._bulk).popleft()


@dataclass
class _ChatWindow:
    sent: deque[float] = field(default_factory=deque)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    held_until: float = 0.0


@dataclass(frozen=True)
class Window:
    count: int
    seconds: float


class Pacer:
    """Global rate plus per-chat windows for one bot on one platform."""

    def __init__(self, per_second: float, group: Window, private: Window) -> None:
        self.gate = RateGate(per_second)
        self._windows = {True: group, False: private}
        self._chats: dict[ChatRef, _ChatWindow] = {}
        self._prune_at = 4096

    def send_slot(self, chat: ChatRef, is_group: bool, urgent: bool = False) -> _Slot:
        """`async with pacer.send_slot(chat, ...):` then make exactly one platform call."""
        return _Slot(self, chat, self._windows[is_group], urgent)

    def hold(self, chat: ChatRef, seconds: float) -> None:
        """After a 429 for one chat: nothing more to it for `seconds`."""
        state = self._chats.setdefault(chat, _ChatWindow())
        state.held_until = max(state.held_until, asyncio.get_running_loop().time() + seconds)

    def _state(self, chat: ChatRef) -> _ChatWindow:
        state = self._chats.get(chat)
        if state is None:
            if len(self._chats) > self._prune_at:
                # amortised: a broadcast to 10,000 groups keeps them all recent, and scanning them
                # for every new chat would cost more than the sends
                self._forget_idle()
                self._prune_at = max(4096, 2 * len(self._chats))
            state = self._chats[chat] = _ChatWindow()
        return state

    def _forget_idle(self) -> None:
        now = asyncio.get_running_loop().time()
        longest = max(w.seconds for w in self._windows.values())
        for chat, state in list(self._chats.items()):
            if not state.lock.locked() and state.held_until < now and (not state.sent or state.sent[-1] < now - longest):
                del self._chats[chat]


class _Slot:
    def __init__(self, pacer: Pacer, chat: ChatRef, window: Window, urgent: bool) -> None:
        self._pacer, self._chat, self._window, self._urgent = pacer, chat, window, urgent
        self._state: _ChatWindow | None = None

    async def __aenter__(self) -> None:
        # Sends to one chat go one at a time, and its window is checked at the moment of sending, so
        # time spent queueing for the global rate can never bunch a chat's sends together.
        state = self._state = self._pacer._state(self._chat)
        await state.lock.acquire()
        try:
            loop = asyncio.get_running_loop()
            while True:
                now = loop.time()
                while state.sent and state.sent[0] <= now - self._window.seconds:
                    state.sent.popleft()
                wait = state.held_until - now
                if len(state.sent) >= self._window.count:
                    wait = max(wait, state.sent[0] + self._window.seconds - now)
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            await self._pacer.gate.acquire(self._urgent)
            state.sent.append(loop.time())
        except BaseException:
            state.lock.release()
            raise

    async def __aexit__(self, *_exc: object) -> None:
        assert self._state is not None
        self._state.lock.release()
