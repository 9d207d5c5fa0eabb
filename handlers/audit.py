"""The audit trail: sensitive actions (accounts joined or separated, notices cancelled, exports,
erasures, roles) written to one table, in the transaction that does them."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import AuditEvent


async def record(
    session: AsyncSession,
    action: str,
    *,
    actor_id: int | None,
    at: datetime,
    place_id: int | None = None,
    **details: object,
) -> AuditEvent:
    """`details` holds ids and counts, never what a person wrote or a secret."""
    event = AuditEvent(action=action, actor_id=actor_id, at=at, place_id=place_id, details=dict(details))
    session.add(event)
    await session.flush()
    return event
