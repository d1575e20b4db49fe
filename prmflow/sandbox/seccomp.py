"""A small seccomp filter (classic BPF, built here without libseccomp) that bwrap installs on the program.

Namespaces and a dropped uid already stop these calls from reaching the host; the filter closes what
they leave inside the sandbox. Found by the escape corpus: in user-namespace mode the program shares
its uid with bwrap's pid-1 reaper and could ``ptrace`` it. Denied with EPERM: debugging and
cross-process memory access, kernel keyrings, eBPF, perf, userfaultfd, io_uring (whose operations
bypass seccomp), module and kexec loading, mounting and new namespaces, swap, reboot. A call made
under another ABI (i386 ``int 0x80``, x32 on x86_64) is denied outright, so the numbers below cannot
be sidestepped. Where the architecture is not in the table no filter is installed.
"""

from __future__ import annotations

import errno
import os
import platform
import struct

# name -> (x86_64, aarch64) syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl, include/uapi/asm-generic/unistd.h)
DENIED: dict[str, tuple[int, int]] = {
    "ptrace": (101, 117),
    "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271),
    "perf_event_open": (298, 241),
    "bpf": (321, 280),
    "userfaultfd": (323, 282),
    "keyctl": (250, 219),
    "add_key": (248, 217),
    "request_key": (249, 218),
    "kexec_load": (246, 104),
    "kexec_file_load": (320, 294),
    "init_module": (175, 105),
    "finit_module": (313, 273),
    "delete_module": (176, 106),
    "mount": (165, 40),
    "umount2": (166, 39),
    "pivot_root": (155, 41),
    "swapon": (167, 224),
    "swapoff": (168, 225),
    "reboot": (169, 142),
    "unshare": (272, 97),
    "setns": (308, 268),
    "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427),
    "open_tree": (428, 428),
    "move_mount": (429, 429),
    "fsopen": (430, 430),
    "fsconfig": (431, 431),
    "fsmount": (432, 432),
    "fspick": (433, 433),
    "mount_setattr": (442, 442),
}

_ARCHES = {"x86_64": (0, 0xC000003E), "aarch64": (1, 0xC00000B7), "arm64": (1, 0xC00000B7)}
_X32_BIT = 0x40000000

# classic BPF opcodes and seccomp return values (linux/filter.h, linux/seccomp.h)
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_RET_K = 0x06
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def machine() -> str:
    return platform.machine().lower()


def denied_numbers(arch: str | None = None) -> dict[str, int] | None:
    """The denied calls' numbers on ``arch`` (this machine's by default); None when unsupported."""
    entry = _ARCHES.get(arch or machine())
    if entry is None:
        return None
    return {name: nums[entry[0]] for name, nums in DENIED.items()}


def filter_program(arch: str | None = None) -> bytes | None:
    """The filter as ``struct sock_filter[]`` bytes for ``bwrap --seccomp``; None when unsupported."""
    arch = arch or machine()
    numbers = denied_numbers(arch)
    if numbers is None:
        return None
    audit_arch = _ARCHES[arch][1]
    nrs = sorted(set(numbers.values()))
    checks = [_insn(_JGE_K, 0, 0, _X32_BIT)] if arch == "x86_64" else []
    checks += [_insn(_JEQ_K, 0, 0, nr) for nr in nrs]
    body: list[bytes] = []
    # Each check jumps to DENY (the last instruction) when it matches; ALLOW sits just before DENY.
    for i, insn in enumerate(checks):
        to_deny = len(checks) - i  # instructions after this one up to DENY: the rest, then ALLOW
        code, _, _, k = struct.unpack("=HBBI", insn)
        body.append(_insn(code, to_deny, 0, k))
    head = [
        _insn(_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
        _insn(_JEQ_K, 0, len(checks) + 2, audit_arch),  # another ABI: straight to DENY
        _insn(_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
    ]
    tail = [_insn(_RET_K, 0, 0, _RET_ALLOW), _insn(_RET_K, 0, 0, _RET_ERRNO | errno.EPERM)]
    return b"".join(head + body + tail)


def filter_fd(program: bytes) -> int:
    """A memory file holding ``program``, positioned at its start, for bwrap to read (one per run:
    concurrent readers of one descriptor would share its offset)."""
    fd = os.memfd_create("prmflow-seccomp", os.MFD_CLOEXEC)
    os.write(fd, program)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
