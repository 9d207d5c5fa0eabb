"""What the bot counts about itself, for /metrics (Prometheus text format) and /healthz. One per App,
on its own registry, so several apps in one process (tests) never share a counter."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from handlers.chat import Outcome

# a turn is a database transaction and a reply or two: tens of milliseconds, seconds when it waits
TURN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

LAST_UPDATE = "langso_last_update_timestamp_seconds"
LAST_POLL = "langso_last_poll_success_timestamp_seconds"


class Metrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self._received = Counter(
            "langso_updates_received", "Updates kept in the inbox (repeats not counted)", ["platform"], registry=registry
        )
        self._handled = Counter("langso_updates_handled", "Turns handled without error", ["platform"], registry=registry)
        self._failed = Counter(
            "langso_updates_failed", "Updates skipped as malformed or whose handler failed", ["platform"], registry=registry
        )
        self._turns = Histogram(
            "langso_turn_seconds", "From an update's arrival to its replies sent", ["platform"],
            buckets=TURN_BUCKETS, registry=registry,
        )
        self._deliveries = Counter(
            "langso_deliveries", "Notice deliveries to groups, by outcome", ["platform", "outcome"], registry=registry
        )
        self._reminders = Counter("langso_reminders_sent", "Survey reminders sent to households", registry=registry)
        self._outbox_pending = Gauge(
            "langso_outbox_pending", "Deliveries due and not yet sent", ["platform"], registry=registry
        )
        self._outbox_oldest = Gauge(
            "langso_outbox_oldest_pending_seconds", "How long the oldest due delivery has waited", ["platform"],
            registry=registry,
        )
        self.database_up = Gauge("langso_database_up", "1 when the database answered the last check", registry=registry)
        self._last_update = Gauge(LAST_UPDATE, "When the last update was received", ["platform"], registry=registry)
        self._last_poll = Gauge(LAST_POLL, "When polling last succeeded", ["platform"], registry=registry)

    def received(self, platform: str) -> None:
        self._received.labels(platform).inc()
        self._last_update.labels(platform).set_to_current_time()

    def handled(self, platform: str, *, failed: bool) -> None:
        (self._failed if failed else self._handled).labels(platform).inc()

    def turn(self, platform: str, seconds: float) -> None:
        self._turns.labels(platform).observe(seconds)

    def delivered(self, platform: str, outcome: Outcome) -> None:
        self._deliveries.labels(platform, outcome.value).inc()

    def reminder_sent(self) -> None:
        self._reminders.inc()

    def outbox(self, platform: str, pending: int, oldest_seconds: float) -> None:
        self._outbox_pending.labels(platform).set(pending)
        self._outbox_oldest.labels(platform).set(oldest_seconds)

    def polled(self, platform: str) -> None:
        self._last_poll.labels(platform).set_to_current_time()

    def last(self, name: str, platform: str) -> float | None:
        """A timestamp gauge's value (LAST_UPDATE, LAST_POLL) for a platform; None before the first."""
        return self.registry.get_sample_value(name, {"platform": platform})

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
