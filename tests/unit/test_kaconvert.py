"""keepalived.conf -> freevrrpd.conf (``freevrrpd --import-keepalived``), on files of
this test's own: every mapping of docs/KEEPALIVED.md, includes, and what is listed
as not carried over."""

from __future__ import annotations

from pathlib import Path

import pytest

from freevrrpd.config import load_config
from freevrrpd.config.kaconvert import convert
from freevrrpd.config.kaparse import KeepalivedError

MAIN = """\
! a comment
global_defs {
    router_id test
    vrrp_version 3
}
include more/*.conf
vrrp_script chk_http {
    script "/usr/bin/curl -sf http://192.0.2.10/"
    interval 2
    weight -20 reverse
    fall 3
    rise 2
    user nobody
}
vrrp_track_file prio_file {
    file /run/prio
    weight 2
}
vrrp_sync_group G1 {
    group {
        VI_1
        VI_2
    }
    notify_master /etc/keepalived/group-master.sh
    sync_group_tracking_weight
    smtp_alert
}
vrrp_instance VI_1 {
    state MASTER            # a trailing comment
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 0.5
    nopreempt
    preempt_delay 3
    use_vmac
    garp_master_delay 2
    garp_master_refresh 60
    unicast_src_ip 192.0.2.1
    unicast_peer {
        192.0.2.2
        192.0.2.3
    }
    notify "/etc/keepalived/notify.sh"
    track_interface {
        eth1 weight -30
        eth2
    }
    track_script {
        chk_http
    }
    track_file {
        prio_file
    }
    virtual_ipaddress {
        192.0.2.254/24
        198.51.100.1 dev eth1 label eth1:vip
        2001:db8::fe/64
    }
}
virtual_server 192.0.2.254 80 {
    real_server 192.0.2.10 80 {
    }
}
"""
MORE = """\
vrrp_instance VI_2 {
    interface eth1
    virtual_router_id 52
    version 2
    authentication {
        auth_type PASS
        auth_pass longer-than-eight
    }
    virtual_ipaddress {
        203.0.113.1
    }
}
"""


@pytest.fixture
def converted(tmp_path: Path) -> tuple[str, list[str], int]:
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "two.conf").write_text(MORE)
    main = tmp_path / "keepalived.conf"
    main.write_text(MAIN)
    result = convert(str(main))
    out = tmp_path / "freevrrpd.conf"
    out.write_text(result.text)
    return result.text, result.skipped, result.lvs


def test_every_mapping_reads_back_as_the_source_meant(converted: tuple[str, list[str], int],
                                                      tmp_path: Path) -> None:
    routers = load_config(tmp_path / "freevrrpd.conf")
    # The included instance comes where the include stood; VI_1 splits by family.
    assert [(r.vrid, r.family) for r in routers] == [(52, 4), (51, 4), (51, 6)]
    vi2, vi1, vi1v6 = routers
    assert (vi2.version, vi2.password, vi2.use_vmac, vi2.priority) == (2, "longer-t", False, 100)
    assert (vi1.version, vi1.priority, vi1.advert_int, vi1.preempt) == (3, 150, 0.5, False)
    assert (vi1.preempt_delay, vi1.use_vmac, vi1.garp_repeat_delay) == (3.0, True, 2.0)
    assert vi1.garp_refresh == 60.0 and vi1.name_text == "VI_1"
    assert vi1.notify == "/etc/keepalived/notify.sh"
    assert [str(p) for p in vi1.unicast_peers] == ["192.0.2.2", "192.0.2.3"]
    assert str(vi1.unicast_src) == "192.0.2.1"
    assert [str(a) for a in vi1.addresses] == ["192.0.2.254/24", "eth1:198.51.100.1/32"]
    assert [str(a) for a in vi1v6.addresses] == ["2001:db8::fe/64"]
    assert vi1v6.version == 3 and vi1v6.unicast_peers == () and vi1v6.unicast_src is None
    # Tracking and sync groups (issue 11).
    assert [(t.kind, t.name, t.weight) for t in vi1.tracks] == [
        ("script", "chk_http", -20), ("interface", "eth1", -30), ("interface", "eth2", 0),
        ("file", "/run/prio", 2)]
    check = vi1.tracks[0].check
    assert check is not None
    assert (check.script, check.interval, check.rise, check.fall) == (
        "/usr/bin/curl -sf http://192.0.2.10/", 2.0, 2, 3)
    assert vi1v6.tracks == vi1.tracks
    for r in routers:
        assert r.sync_group is not None and r.sync_group.name == "G1"
        assert r.sync_group.masterscript == "/etc/keepalived/group-master.sh"


def test_what_is_not_carried_over_is_listed_with_its_line(
        converted: tuple[str, list[str], int], tmp_path: Path) -> None:
    text, skipped, lvs = converted
    main = tmp_path / "keepalived.conf"
    assert lvs == 1
    lines = MAIN.splitlines()
    user = lines.index("    user nobody") + 1
    reverse = lines.index("    weight -20 reverse") + 1
    smtp = lines.index("    smtp_alert") + 1
    vip = lines.index("        198.51.100.1 dev eth1 label eth1:vip") + 1
    assert any(s.startswith(f"{main}:{user}: user (vrrp_script chk_http)") for s in skipped)
    assert any(s.startswith(f"{main}:{reverse}: weight -20 reverse: only the number")
               for s in skipped)
    assert f"{main}:{smtp}: smtp_alert (vrrp_sync_group G1): no equivalent yet" in skipped
    assert any(s.startswith(f"{main}:{vip}: virtual_ipaddress 198.51.100.1: label eth1:vip")
               for s in skipped)
    # Split by family, the IPv6 part has no IPv6 peer: multicast, and said so.
    assert any("its IPv6 addresses have no IPv6 unicast peer" in s for s in skipped)
    assert any("auth_pass longer than 8" in s for s in skipped)
    assert "# vrrp_instance VI_1" in text and "# state MASTER: freevrrpd elects" in text


def test_a_broken_file_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.conf"
    bad.write_text("vrrp_instance VI_1 {\n  interface eth0\n")
    with pytest.raises(KeepalivedError, match="never closed"):
        convert(str(bad))
    bad.write_text("}\n")
    with pytest.raises(KeepalivedError, match="without an open block"):
        convert(str(bad))
    with pytest.raises(KeepalivedError):
        convert(str(tmp_path / "missing.conf"))
