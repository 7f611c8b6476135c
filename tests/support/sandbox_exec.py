"""Run a command under the sandbox of scripts/freevrrpd.service, without systemd.

    python sandbox_exec.py [--families unix,inet,...] COMMAND [ARG...]

The unit's options map onto the kernel features systemd uses for them:

* NoNewPrivileges=yes        prctl(PR_SET_NO_NEW_PRIVS)
* SystemCallArchitectures=native and RestrictAddressFamilies=...
                             a seccomp filter: system calls of another
                             architecture kill the process; socket() with a
                             family not in the list fails with EAFNOSUPPORT
* MemoryDenyWriteExecute=yes prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN)
                             (Linux 6.3+; systemd uses a seccomp rule or this)
* CapabilityBoundingSet= / AmbientCapabilities=
                             left to setpriv(1) in the command line

Exit status 77 when the kernel or the architecture lacks a feature.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import socket
import struct
import sys

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
PR_SET_MDWE = 65
PR_GET_MDWE = 66
PR_MDWE_REFUSE_EXEC_GAIN = 1

# classic BPF opcodes (linux/filter.h) and seccomp return values (linux/seccomp.h)
BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_RET_K = 0x06
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000
# struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]
OFF_NR, OFF_ARCH, OFF_ARG0 = 0, 4, 16

# machine -> (AUDIT_ARCH_*, __NR_socket)
ARCHES = {
    "x86_64": (0xC000003E, 41),
    "aarch64": (0xC00000B7, 198),
}

FAMILIES = {
    "unix": socket.AF_UNIX,
    "inet": socket.AF_INET,
    "inet6": socket.AF_INET6,
    "netlink": socket.AF_NETLINK,
    "packet": socket.AF_PACKET,
}
# The unit's RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK AF_PACKET
UNIT_FAMILIES = ("unix", "inet", "inet6", "netlink", "packet")

UNSUPPORTED = 77


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def seccomp_program(audit_arch: int, nr_socket: int, families: list[int]) -> bytes:
    n = len(families)
    prog = [
        _insn(BPF_LD_W_ABS, OFF_ARCH),
        _insn(BPF_JEQ_K, audit_arch, jt=1, jf=0),
        _insn(BPF_RET_K, SECCOMP_RET_KILL_PROCESS),
        _insn(BPF_LD_W_ABS, OFF_NR),
        # not socket(): allow (skip the family checks and the errno return)
        _insn(BPF_JEQ_K, nr_socket, jt=0, jf=n + 2),
        _insn(BPF_LD_W_ABS, OFF_ARG0),  # low 32 bits of the family (little endian)
    ]
    for i, family in enumerate(families):
        prog.append(_insn(BPF_JEQ_K, family, jt=n - i, jf=0))
    prog.append(_insn(BPF_RET_K, SECCOMP_RET_ERRNO | errno.EAFNOSUPPORT))
    prog.append(_insn(BPF_RET_K, SECCOMP_RET_ALLOW))
    return b"".join(prog)


def _fail(what: str, code: int = 1) -> None:
    err = ctypes.get_errno()
    print(f"sandbox_exec: {what}: {os.strerror(err)}", file=sys.stderr)
    raise SystemExit(UNSUPPORTED if err in (errno.EINVAL, errno.ENOSYS) else code)


def apply(families: list[int]) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                      ctypes.c_ulong]
    arch = ARCHES.get(platform.machine())
    if arch is None:
        print(f"sandbox_exec: no seccomp table for {platform.machine()}", file=sys.stderr)
        raise SystemExit(UNSUPPORTED)
    if prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        _fail("PR_SET_NO_NEW_PRIVS")
    code = seccomp_program(arch[0], arch[1], families)
    buf = ctypes.create_string_buffer(code, len(code))
    # struct sock_fprog { unsigned short len; struct sock_filter *filter; }
    fprog = struct.pack("HxxxxxxP", len(code) // 8, ctypes.addressof(buf))
    fbuf = ctypes.create_string_buffer(fprog, len(fprog))
    if prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fbuf), 0, 0) != 0:
        _fail("seccomp filter")
    if prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        _fail("PR_SET_MDWE")


def main(argv: list[str]) -> None:
    names = list(UNIT_FAMILIES)
    if len(argv) >= 2 and argv[0] == "--families":
        names = argv[1].split(",")
        argv = argv[2:]
    if not argv:
        raise SystemExit(__doc__)
    apply([FAMILIES[name] for name in names])
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
