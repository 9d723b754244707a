"""A seccomp filter that refuses local (AF_UNIX) sockets to the sandboxed pass@1 programs.

A network namespace cuts the network but not a socket file in a folder anyone can reach (a
co-user's service listening in a 0777 folder): the program could still connect to it. This
filter makes socket(AF_UNIX, ...) fail with EACCES, for the program and everything it starts;
every other system call is left alone. Built as a classic BPF program for the machine's
architecture (x86-64, aarch64); elsewhere there is none, and the sandbox says so.
"""

from __future__ import annotations

import ctypes
import platform
import struct

# linux/filter.h, linux/seccomp.h, linux/audit.h
_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_RET_K = 0x06  # BPF_RET | BPF_K
_ALLOW = 0x7FFF0000  # SECCOMP_RET_ALLOW
_ERRNO = 0x00050000  # SECCOMP_RET_ERRNO
_EACCES = 13
_AF_UNIX = 1
# seccomp_data: nr at 0, arch at 4, args[0] at 16 (its low 32 bits on little-endian machines)
_NR, _ARCH, _ARG0 = 0, 4, 16
# machine -> (AUDIT_ARCH_*, the socket system call's number)
_ARCHES = {"x86_64": (0xC000003E, 41), "aarch64": (0xC00000B7, 198)}

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


def _op(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def unix_socket_filter(machine: str | None = None) -> bytes | None:
    """The filter's instructions for `machine` (this one by default), or None where unknown."""
    arch = _ARCHES.get(machine or platform.machine())
    if arch is None:
        return None
    audit_arch, socket_nr = arch
    return b"".join([
        _op(_LD_W_ABS, 0, 0, _ARCH),
        _op(_JEQ_K, 0, 5, audit_arch),  # another ABI: allow
        _op(_LD_W_ABS, 0, 0, _NR),
        _op(_JEQ_K, 0, 3, socket_nr),  # not socket(): allow
        _op(_LD_W_ABS, 0, 0, _ARG0),
        _op(_JEQ_K, 0, 1, _AF_UNIX),
        _op(_RET_K, 0, 0, _ERRNO | _EACCES),
        _op(_RET_K, 0, 0, _ALLOW),
    ])


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def installer(program: bytes) -> tuple[object, _SockFprog]:
    """(prctl, its argument) prepared before fork: the child calls `install` with them, so
    nothing is allocated or looked up between fork and exec."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong,
                      ctypes.c_ulong]
    return prctl, _SockFprog(len(program) // 8, program)


def install(prctl, fprog: _SockFprog) -> bool:
    """Apply the filter to this process and what it execs; False when the kernel refused."""
    if prctl(PR_SET_NO_NEW_PRIVS, 1, None, 0, 0) != 0:
        return False
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0) == 0
