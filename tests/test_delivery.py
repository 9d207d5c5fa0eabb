"""What the outbox does with each Bot API answer: wait on 429, stop on 403, follow a migration,
retry 5xx and dropped connections."""

from __future__ import annotations

from sqlmodel import select

from storage.models import ChatGroup, Delivery, DeliveryStatus
from tests.fake_telegram import FakeTelegram
from tests.harness import HEAD, VILLAGE_GROUPS, Harness

ONE, TWO, THREE = VILLAGE_GROUPS.values()


async def _broadcast(h: Harness, text: str) -> None:
    await h.send(HEAD, f"/thongbao {text}")
    await h.send(HEAD, "1")


async def _deliveries(h: Harness) -> dict[str, Delivery]:
    async with h.app.sessions() as session:
        rows = await session.exec(select(Delivery, ChatGroup.chat_id).join(ChatGroup))
        return {chat: d for d, chat in rows.all()}


async def _status(h: Harness, chat: int) -> str:
    return (await _deliveries(h))[str(chat)].status


async def test_throttled_send_waits_retry_after_then_arrives(harness: Harness) -> None:
    fake: FakeTelegram = harness.fake
    fake.fail_next(ONE, "429", retry_after=1)
    await _broadcast(harness, "Thông báo thử 429")
    await harness.wait_groups([ONE, TWO, THREE], timeout=8)
    assert len(fake.messages_to(ONE)) == 1
    await harness.eventually(lambda: _status(harness, ONE), DeliveryStatus.SENT)


async def test_kicked_group_is_marked_inactive_and_not_retried(harness: Harness) -> None:
    fake = harness.fake
    fake.kick(TWO)
    await _broadcast(harness, "Thông báo thử 403")
    await harness.wait_groups([ONE, THREE])
    await harness.eventually(lambda: _status(harness, TWO), DeliveryStatus.STOPPED)
    async with harness.app.sessions() as session:
        group = (await session.exec(select(ChatGroup).where(ChatGroup.chat_id == str(TWO)))).one()
        assert group.active is False
    await harness.eventually(harness.sent_count, 2)
    [status] = await harness.send(HEAD, "/tinhtrang")
    assert "2 nhóm đã nhận, 1 lỗi, 0 đang chờ" in status.text
    # the next notice does not even try the group the bot was removed from
    errors = len(fake.errors)
    await _broadcast(harness, "Thông báo thứ hai")
    await harness.wait_groups([ONE, THREE], count=2)
    assert len(fake.errors) == errors


async def test_migrated_group_gets_the_notice_at_its_new_id(harness: Harness) -> None:
    fake = harness.fake
    fake.migrate(ONE, -100777)  # the service message update is pushed too; the send may race it
    await _broadcast(harness, "Thông báo sau khi nâng cấp nhóm")
    await harness.wait_groups([-100777, TWO, THREE])
    assert fake.messages_to(ONE) == []
    async with harness.app.sessions() as session:
        chats = {g.chat_id for g in (await session.exec(select(ChatGroup).where(ChatGroup.active == True))).all()}  # noqa: E712
    assert "-100777" in chats
    assert str(ONE) not in chats


async def test_server_errors_and_dropped_connections_are_retried(harness: Harness) -> None:
    fake = harness.fake
    fake.fail_next(ONE, "500")
    fake.fail_next(TWO, "drop")
    fake.fail_next(THREE, "502")
    await _broadcast(harness, "Thông báo thử lỗi mạng")
    await harness.wait_groups([ONE, TWO, THREE], timeout=15)
    assert [len(fake.messages_to(c)) for c in (ONE, TWO, THREE)] == [1, 1, 1]
    for chat in (ONE, TWO, THREE):
        await harness.eventually(lambda chat=chat: _status(harness, chat), DeliveryStatus.SENT)
    deliveries = await _deliveries(harness)
    assert all(deliveries[str(c)].attempts == 1 for c in (ONE, TWO, THREE))


async def test_bot_removed_then_added_back(harness: Harness) -> None:
    fake = harness.fake
    fake.bot_removed(ONE, HEAD)
    await harness.settle()
    [preview] = await harness.send(HEAD, "/thongbao Kiểm tra nhóm")
    assert "2 nhóm" in preview.text
    await harness.send(HEAD, "6")
    fake.bot_added(ONE, HEAD)
    await harness.settle()
    await fake.wait_for(lambda: any("Xin chào cả nhà" in (m.text or "") for m in fake.messages_to(ONE)))
    [preview] = await harness.send(HEAD, "/thongbao Kiểm tra nhóm lần hai")
    assert "3 nhóm" in preview.text
