"""Why the bot could not start, as the one line the operator reads (`langso run` prints it and exits 2).

Each part that opens something at start-up (a platform adapter, the database, the web server) turns
its own failure into a StartError, since only it knows what the failure means."""

from __future__ import annotations

from messages import render


class StartError(Exception):
    """`reason` picks the sentence of messages/templates/start_failed.j2; `details` fill it in
    (platform, url, database, host, port, detail). No detail may hold a secret: the line is printed."""

    def __init__(self, reason: str, **details: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details

    def line(self) -> str:
        return " ".join(render("start_failed", reason=self.reason, **self.details).split())
