"""The process's own edges, without root: the pid file, privileges, the address book,
and warnings about misconfigured peers under a flood of spoofed sources."""

from __future__ import annotations

import logging
import os
from ipaddress import IPv6Address, ip_address, ip_interface
from pathlib import Path

import pytest

from freevrrpd.core.packet import encode
from freevrrpd.core.router import Router
from freevrrpd.core.settings import VRRP_GROUP_V6, RouterSettings, VirtualAddress
from freevrrpd.core.validate import ReportLimit
from freevrrpd.daemon import process
from freevrrpd.daemon.pidfile import PidFile, PidFileError
from freevrrpd.vrid.addressbook import AddressBook, book_path


def test_a_pid_file_that_cannot_be_created_is_a_message(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(PidFileError, match=r"cannot create the pid file .*file/x\.pid: .* "
                                           r"\(run as root, or give a path"):
        PidFile(str(blocker / "x.pid")).acquire()


def test_missing_capabilities_are_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path
                                        ) -> None:
    status = tmp_path / "status"
    real = open  # noqa: SIM115 - the patched open below returns files to the caller

    def fake_open(path: str, *args: object, **kw: object) -> object:
        target = status if path == "/proc/self/status" else path
        return real(target, *args, **kw)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", fake_open)
    status.write_text("Name:\tx\nCapEff:\t0000000000000000\n")
    text = process.missing_privileges()
    assert text is not None and "CAP_NET_ADMIN and CAP_NET_RAW" in text and "root" in text
    status.write_text("CapEff:\t0000000000003000\n")  # bits 12 and 13
    assert process.missing_privileges() is None
    assert process.EXIT_PRIVILEGE == 4  # LSB: user had insufficient privilege


def test_the_address_book_remembers_across_a_crash(tmp_path: Path) -> None:
    path = book_path(str(tmp_path / "freevrrpd.pid"))
    assert path.endswith("freevrrpd.addresses")
    book = AddressBook(path)
    book.added("vrrp4-1-2", "192.0.2.254/24")
    book.added("eth0", "192.0.2.253/24")
    book.removed([("vrrp4-1-2", "192.0.2.254/24")])
    # kill -9 here: nothing closes the book.  The next run reads what is left.
    again = AddressBook(path)
    assert again.left == {("eth0", "192.0.2.253/24")}
    assert again.ours("eth0", "192.0.2.253/24") and not again.ours("eth0", "192.0.2.1/24")
    assert len(Path(path).read_text().splitlines()) == 1  # rewritten short
    again.removed([("eth0", "192.0.2.253/24")])
    again.close()  # a clean stop with nothing left: the file goes
    assert not os.path.exists(path)
    looking = AddressBook(path, read_only=True)
    looking.added("eth0", "192.0.2.9/24")
    assert not os.path.exists(path)  # -t never writes


def test_spoofed_sources_cannot_flood_the_log_or_memory() -> None:
    """15000 adverts from random link-local sources, each with the wrong address
    list: a handful of warnings a minute, and a bounded memory of who was reported."""
    vip = VirtualAddress(ip_interface("2001:db8::1/64"))
    settings = RouterSettings(vrid=1, interface="eth0", family=6, version=3,
                              addresses=(vip,), conflict_check=False)
    r = Router(settings, ip_address("fe80::1"))
    r.start(0.0)
    other = RouterSettings(vrid=1, interface="eth0", family=6, version=3,
                           addresses=(VirtualAddress(ip_interface("2001:db8::99/64")),))
    reports = []
    for n in range(15000):
        src = IPv6Address(f"fe80::{n + 2:x}")
        data = encode(Router(other, src).build_advert(100), src, VRRP_GROUP_V6)
        reports += r.receive(data, src, VRRP_GROUP_V6, 255, n * 0.004)  # a minute of them
    warnings = [x for x in reports if x.level == "warning"]
    assert r.drops["addresses"] == 15000
    assert len(warnings) <= ReportLimit.BURST + ReportLimit.PER_MINUTE * 2
    assert len(r.validator.limit._seen) <= ReportLimit.MEMORY
    assert any("held back" in w.message for w in warnings)


def test_journal_lines_carry_their_priority_on_every_line() -> None:
    from freevrrpd.daemon.logs import JournalFormatter

    def line(level: int, msg: str) -> str:
        return JournalFormatter().format(logging.LogRecord("freevrrpd", level, "x", 1, msg,
                                                           None, None))

    assert line(logging.WARNING, "VRID 1: BACKUP -> FAULT") == "<4>WARNING VRID 1: BACKUP -> FAULT"
    assert line(logging.ERROR, "a\nb") == "<3>ERROR a\n<3>b"
    assert line(logging.DEBUG, "d").startswith("<7>") and line(logging.INFO, "i").startswith("<6>")


def test_the_journal_is_recognised_by_its_stream_only(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from freevrrpd.daemon.logs import to_journal

    with open(tmp_path / "stream", "w") as f:
        st = os.fstat(f.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        assert to_journal(f.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino + 1}")
        assert not to_journal(f.fileno())
        monkeypatch.delenv("JOURNAL_STREAM")
        assert not to_journal(f.fileno())


def test_syslog_is_available_only_where_a_daemon_listens(tmp_path: Path) -> None:
    import socket

    from freevrrpd.daemon.logs import syslog_available

    path = str(tmp_path / "log")
    assert not syslog_available(path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        assert syslog_available(path)


def test_the_watchdog_interval_is_half_of_what_systemd_asks_and_only_for_us() -> None:
    from freevrrpd.daemon.watchdog import interval

    assert interval({}) is None
    assert interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}, pid=42) == 15.0
    assert interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "41"}, pid=42) is None
    assert interval({"WATCHDOG_USEC": "0"}) is None and interval({"WATCHDOG_USEC": "x"}) is None
