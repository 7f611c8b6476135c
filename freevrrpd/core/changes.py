"""The one reload diff: old settings and new settings of a virtual router -> what to do.

A reload matches routers by identity (VRID, family, interface).  For a
router found in both files, ``diff`` says everything the daemon needs: whether
the change can be taken without disruption at all, which addresses come and go,
and whether the advert a master sends changed (so it goes out at once, RFC 5798
6.4.3).  The supervisor, the router's thread and the state machine all read
this one record instead of comparing settings each in their own way.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from freevrrpd.core.packet import Advert, password_auth_data
from freevrrpd.core.settings import RouterSettings, VirtualAddress

# Changes that cannot be taken in place: the virtual MAC interface comes or
# goes, the wire format changes, an address moves to another device, or the
# source of unicast adverts changes (it is what the peers know us by).
RESTART_FIELDS = ("use_vmac", "version", "unicast_src")


def advert_of(settings: RouterSettings, priority: int) -> Advert:
    """The advert a router with ``settings`` sends with ``priority``
    (RFC 5798 5.2, RFC 3768 5.3: a v2 advert carries 8 authentication octets)."""
    s = settings
    auth_type, auth_data = 0, b""
    if s.version == 2:
        auth_data = bytes(8)
        if s.password is not None:
            auth_type, auth_data = 1, password_auth_data(s.password)
    return Advert(version=s.version, vrid=s.vrid, priority=priority,
                  interval_cs=s.advert_int_cs, addresses=s.ips,
                  auth_type=auth_type, auth_data=auth_data)


@dataclass(frozen=True)
class Change:
    """What differs between two versions of one virtual router's settings."""

    old: RouterSettings
    new: RouterSettings
    fields: tuple[str, ...]  # RouterSettings fields that differ, in declaration order
    restart: bool  # resign and start again: the only reload that disrupts
    added: tuple[VirtualAddress, ...]
    removed: tuple[VirtualAddress, ...]
    advert_changed: bool  # a master's advert is different: send it at once

    def __bool__(self) -> bool:
        return bool(self.fields)


def diff(old: RouterSettings, new: RouterSettings) -> Change:
    if old.key != new.key:
        raise ValueError(f"{new.name} is not {old.name}")
    changed = tuple(f.name for f in fields(RouterSettings)
                    if f.compare and getattr(old, f.name) != getattr(new, f.name))
    devices = {a.device for a in old.addresses} != {a.device for a in new.addresses}
    # Multicast to unicast or back changes how the adverts travel (vrid.worker);
    # peers added or removed within unicast do not.
    restart = (devices or any(name in changed for name in RESTART_FIELDS)
               or old.unicast != new.unicast)
    return Change(
        old=old,
        new=new,
        fields=changed,
        restart=restart,
        added=tuple(a for a in new.addresses if a not in old.addresses),
        removed=tuple(a for a in old.addresses if a not in new.addresses),
        advert_changed=advert_of(old, old.priority) != advert_of(new, new.priority),
    )
