"""Quiet hours and recurring notices, with the bot's clock set where the test needs it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger
from sqlmodel import select

from bot.scheduler import JOB_PREFIX
from messages import when_vi
from storage.models import Delivery
from tests.conftest import settings_for
from tests.fake_telegram import FakeTelegram
from tests.harness import HEAD, VILLAGE_GROUPS, Harness

# 22:30 in Hà Nội
LATE_EVENING = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)
# 10:00 on Tuesday 1 December 2026 in Hà Nội
TUESDAY_MORNING = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
QUIET = {"start": "21:00", "end": "06:00"}


async def test_quiet_hours_hold_a_notice_until_morning_unless_urgent(fake: FakeTelegram, sqlite_url: str) -> None:
    settings = settings_for(sqlite_url, fake.url, quiet_hours={"start": "21:00", "end": "06:00"})
    h = Harness(fake, settings, clock=lambda: LATE_EVENING)
    await h.start()
    try:
        await h.seed_commune()
        [preview] = await h.send(HEAD, "/thongbao Sáng mai đi làm đường")
        assert "giờ nghỉ (21:00–06:00)" in preview.text
        assert "06:00 thứ Ba, 24/11/2026" in preview.text
        [queued] = await h.send(HEAD, "1")
        assert "lúc 06:00 thứ Ba, 24/11/2026" in queued.text
        async with h.app.sessions() as session:
            due = {d.not_before for d in (await session.exec(select(Delivery))).all()}
        assert due == {datetime(2026, 11, 23, 23, 0, tzinfo=UTC)}  # 06:00 +07

        await h.send(HEAD, "/thongbao Khẩn: nước lũ lên, di chuyển đồ đạc")
        [preview] = await h.send(HEAD, "5")  # mark urgent
        assert "KHẨN" in preview.text
        assert "giờ nghỉ" not in preview.text
        await h.send(HEAD, "1")
        await h.wait_groups(list(VILLAGE_GROUPS.values()))
        assert all("THÔNG BÁO KHẨN" in fake.messages_to(c)[0].text for c in VILLAGE_GROUPS.values())
        assert all(len(fake.messages_to(c)) == 1 for c in VILLAGE_GROUPS.values())
    finally:
        await h.stop()


async def test_recurring_notice_is_kept_across_restarts_and_fires(harness: Harness) -> None:
    await harness.send(HEAD, "/thongbao Nhắc: họp giao ban thôn")
    await harness.send(HEAD, "2")
    [confirm] = await harness.send(HEAD, "moi chu nhat 19h")
    assert "19:00 mỗi Chủ nhật" in confirm.text
    [saved] = await harness.send(HEAD, "1")
    number = int(saved.text.split("số ")[1].split(":")[0])
    await harness.restart()
    job = harness.app.recurring.scheduler.get_job(f"{JOB_PREFIX}{number}")
    assert job is not None
    assert isinstance(job.trigger, CronTrigger)
    fire_at = job.next_run_time.astimezone(UTC)
    assert fire_at.weekday() in (5, 6)
    assert (fire_at + timedelta(hours=7)).hour == 19  # Sunday 19:00 +07
    first = when_vi(job.next_run_time.astimezone(harness.settings.handler.timezone))
    assert f"lần đầu: {first}" in confirm.text
    assert f"lần đầu: {first}" in saved.text  # the job's own date
    [status] = await harness.send(HEAD, f"/tinhtrang {number}")
    assert f"Lần tới: {first}" in status.text
    assert "Chưa gửi lần nào" in status.text

    assert await harness.app.recurring.occur(number) == 3  # what the job does when it fires
    await harness.eventually(harness.sent_count, 3)
    [status] = await harness.send(HEAD, f"/tinhtrang {number}")
    assert "Nhắc lại lúc 19:00 mỗi Chủ nhật" in status.text
    assert "Tổng: 3 nhóm đã nhận" in status.text

    [stopped] = await harness.send(HEAD, f"/huythongbao {number}")
    assert "không nhắc lại nữa" in stopped.text
    await harness.settle()
    await harness.restart()
    assert harness.app.recurring.scheduler.get_job(f"{JOB_PREFIX}{number}") is None


async def test_someone_else_cannot_see_or_cancel_a_notice(harness: Harness) -> None:
    await harness.send(HEAD, "/thongbao Thông báo riêng của trưởng thôn")
    [queued] = await harness.send(HEAD, "1")
    number = int(queued.text.split("số ")[1].split(":")[0])
    [hidden] = await harness.send(200, f"/tinhtrang {number}")
    assert "Không tìm thấy thông báo số" in hidden.text
    [hidden] = await harness.send(200, f"/huythongbao {number}")
    assert "Không tìm thấy thông báo số" in hidden.text


async def test_the_first_date_of_a_recurring_notice_and_quiet_hours_are_said(fake: FakeTelegram, sqlite_url: str) -> None:
    h = Harness(fake, settings_for(sqlite_url, fake.url, quiet_hours=QUIET), clock=lambda: TUESDAY_MORNING)
    await h.start()
    try:
        await h.seed_commune()
        await h.send(HEAD, "/thongbao Họp giao ban thôn")
        await h.send(HEAD, "2")
        [confirm] = await h.send(HEAD, "mỗi chủ nhật 19h")
        assert "lần đầu: 19:00 Chủ nhật, 06/12/2026" in confirm.text
        assert "giờ nghỉ" not in confirm.text

        await h.send(HEAD, "2")  # another time: one inside quiet hours
        [confirm] = await h.send(HEAD, "mỗi ngày 22h")
        assert "lần đầu: 22:00 thứ Ba, 01/12/2026" in confirm.text
        assert "giờ nghỉ (21:00–06:00)" in confirm.text
        assert "chờ đến 06:00" in confirm.text
        assert "06:00 thứ Tư, 02/12/2026" in confirm.text
        [saved] = await h.send(HEAD, "1")
        assert "(sau giờ nghỉ: 06:00 thứ Tư, 02/12/2026)" in saved.text
        number = int(saved.text.split("số ")[1].split(":")[0])
        [status] = await h.send(HEAD, f"/tinhtrang {number}")
        assert "Lần tới: 22:00 thứ Ba, 01/12/2026 (sau giờ nghỉ: 06:00 thứ Tư, 02/12/2026)" in status.text
    finally:
        await h.stop()


async def test_status_says_when_a_scheduled_notice_goes_out_and_cancel_counts_what_stops(
    fake: FakeTelegram, sqlite_url: str
) -> None:
    h = Harness(fake, settings_for(sqlite_url, fake.url), clock=lambda: TUESDAY_MORNING)
    await h.start()
    try:
        await h.seed_commune()
        await h.send(HEAD, "/thongbao Phun thuốc diệt muỗi")
        await h.send(HEAD, "2")
        await h.send(HEAD, "8h sáng mai")
        [queued] = await h.send(HEAD, "1")
        number = int(queued.text.split("số ")[1].split(":")[0])
        [status] = await h.send(HEAD, f"/tinhtrang {number}")
        assert "Hẹn gửi lúc 08:00 thứ Tư, 02/12/2026" in status.text

        [stopped] = await h.send(HEAD, f"/huythongbao {number}")
        assert "3 nhóm chưa nhận sẽ không nhận nữa" in stopped.text
        [status] = await h.send(HEAD, f"/tinhtrang {number}")
        assert "(đã dừng)" in status.text
        assert "Hẹn gửi" not in status.text
        assert "Tổng: 0 nhóm đã nhận, 0 lỗi, 0 đang chờ, 3 đã dừng" in status.text
        [again] = await h.send(HEAD, f"/huythongbao {number}")
        assert "đã được dừng từ trước" in again.text
        assert "0 nhóm" not in again.text
        assert all(fake.messages_to(c) == [] for c in VILLAGE_GROUPS.values())
    finally:
        await h.stop()


async def test_stopping_a_recurring_notice_also_stops_a_firing_held_by_quiet_hours(
    fake: FakeTelegram, sqlite_url: str
) -> None:
    h = Harness(fake, settings_for(sqlite_url, fake.url, quiet_hours=QUIET), clock=lambda: LATE_EVENING)
    await h.start()
    try:
        await h.seed_commune()
        await h.send(HEAD, "/thongbao Nhắc đóng cửa chuồng trại")
        await h.send(HEAD, "2")
        await h.send(HEAD, "mỗi ngày 22h")
        [saved] = await h.send(HEAD, "1")
        number = int(saved.text.split("số ")[1].split(":")[0])
        assert await h.app.recurring.occur(number) == 3  # fired at 22:30: held until 06:00
        [status] = await h.send(HEAD, f"/tinhtrang {number}")
        assert "chờ hết giờ nghỉ đến 06:00 thứ Ba, 24/11/2026" in status.text

        [stopped] = await h.send(HEAD, f"/huythongbao {number}")
        assert "không nhắc lại nữa" in stopped.text
        assert "3 nhóm chưa nhận sẽ không nhận nữa" in stopped.text
        async with h.app.sessions() as session:
            states = {d.status for d in (await session.exec(select(Delivery))).all()}
        assert states == {"stopped"}
    finally:
        await h.stop()
