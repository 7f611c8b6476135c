"""pyroute2's rtnetlink message classes, without the rest of pyroute2.

Importing the ``pyroute2`` package runs its ``__init__``, which loads every API
it has (IPRoute, NDB, IPDB, conntrack, WireGuard, ...): about 250 ms, 370
modules and 22 MiB, in the 0.6, 0.7 and 0.9 releases alike.  The daemon uses
pyroute2 for what it is for here, encoding and decoding rtnetlink messages
(``ifinfmsg``, ``ifaddrmsg``), and talks to the kernel on sockets of its own
(``rtnl``), so only the modules of those classes are loaded: the package is
entered without running its ``__init__``.  If anything else in the process has
imported pyroute2 for real already, that is used as it is.
"""

from __future__ import annotations

import importlib.util
import sys
import types


def _enter_package() -> None:
    if "pyroute2" in sys.modules:
        return
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError("pyroute2 is not installed (freevrrpd needs it for netlink)")
    package = types.ModuleType("pyroute2")
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    package.__file__ = spec.origin
    sys.modules["pyroute2"] = package


_enter_package()

from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg  # noqa: E402
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg  # noqa: E402

__all__ = ["ifaddrmsg", "ifinfmsg"]
