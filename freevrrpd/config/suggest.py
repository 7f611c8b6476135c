"""What an unknown keyword probably meant: keepalived's names, and typos."""

from __future__ import annotations

from collections.abc import Collection

# Names operators bring from keepalived.conf (its vrrp_instance keywords), and
# what freevrrpd.conf calls the same thing.
KEEPALIVED = {
    "nopreempt": "preempt = no",
    "virtual_router_id": "serverid = VRID",
    "advert_int": "advertint = SECONDS",
    "virtual_ipaddress": "addr = IP/PREFIX, ...",
    "auth_pass": "password = TEXT",
    "preempt_delay": "preemptdelay = SECONDS",
    "notify_master": "masterscript = COMMAND",
    "notify_backup": "backupscript = COMMAND",
    "notify_fault": "faultscript = COMMAND",
    "notify_stop": "stopscript = COMMAND",
    "use_vmac": "useVMAC = yes",
    "vrrp_version": "version = 2 or 3",
    "garp_master_repeat": "garpcount = N",
    "garp_master_delay": "garprepeatdelay = SECONDS",
    "garp_interval": "garpinterval = SECONDS",
    "garp_master_refresh": "garprefresh = SECONDS",
    "dynamic_interfaces": "dynamicinterfaces = yes (in each [VRID] section)",
    "garp_master_refresh_repeat": "garprefreshcount = N",
    "state": "nothing: freevrrpd elects the master; priority = 255 for the address owner",
    "vrid": "serverid = VRID",
}


def suggestion(keyword: str, known: Collection[str]) -> str:
    """`` (did you mean ...?)`` for an unknown keyword, or an empty string."""
    import difflib  # only for a misspelt keyword: not on every start

    word = keyword.lower()
    if word in KEEPALIVED:
        return f" (keepalived's {keyword}; here: {KEEPALIVED[word]})"
    close = difflib.get_close_matches(word, sorted(known), n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""
