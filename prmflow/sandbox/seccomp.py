"""A small seccomp filter (classic BPF, built here without libseccomp) that bwrap installs on the program.

Namespaces and a dropped uid already stop these calls from reaching the host; the filter closes what
they leave inside the sandbox. Denied with EPERM: debugging and cross-process memory access (ptrace,
process_vm_readv/writev), kernel keyrings, eBPF, perf, userfaultfd, io_uring (whose operations bypass
seccomp), module and kexec loading, mounting, new namespaces (unshare, setns, and ``clone`` with any
CLONE_NEW* flag: as root, a child in its own user namespace would hold every capability there), swap,
reboot, and the memory no rlimit counts (System V shared memory and message queues, memfd files).
``clone3`` passes its flags in memory, which a filter cannot read, so it fails with ENOSYS: glibc then
falls back to ``clone``, whose flags are checked. A call made under another ABI (i386 ``int 0x80``, x32
on x86_64) is denied outright, so the numbers below cannot be sidestepped. Where the architecture is
not in the table no filter is installed.
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
    # memory outside every process's address space, so outside RLIMIT_AS (see docs/sandbox.md)
    "shmget": (29, 194),
    "msgget": (68, 186),
    "memfd_create": (319, 279),
}

CLONE = (56, 220)
CLONE3 = (435, 435)
# CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET
# (linux/sched.h); CLONE_NEWTIME (0x80) is only accepted by clone3 and unshare, both refused.
CLONE_NEW_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000

_ARCHES = {"x86_64": (0, 0xC000003E), "aarch64": (1, 0xC00000B7), "arm64": (1, 0xC00000B7)}
_X32_BIT = 0x40000000

# classic BPF opcodes and seccomp return values (linux/filter.h, linux/seccomp.h)
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
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


def clone_numbers(arch: str | None = None) -> tuple[int, int] | None:
    """(clone, clone3) on ``arch``; None when unsupported."""
    entry = _ARCHES.get(arch or machine())
    return None if entry is None else (CLONE[entry[0]], CLONE3[entry[0]])


def filter_program(arch: str | None = None) -> bytes | None:
    """The filter as ``struct sock_filter[]`` bytes for ``bwrap --seccomp``; None when unsupported.

    Layout: check the ABI, load the number; each denied number jumps to DENY_EPERM, clone3 to
    DENY_ENOSYS; clone loads its flags (the low word of the first argument, little-endian on both
    arches) and jumps to DENY_EPERM when any CLONE_NEW* bit is set; everything else is allowed."""
    arch = arch or machine()
    numbers = denied_numbers(arch)
    if numbers is None:
        return None
    clone, clone3 = clone_numbers(arch)
    audit_arch = _ARCHES[arch][1]
    nrs = sorted(set(numbers.values()))
    # (opcode, k, target when true); the false branch always falls through to the next instruction
    checks: list[tuple[int, int, str]] = [(_JGE_K, _X32_BIT, "eperm")] if arch == "x86_64" else []
    checks.append((_JEQ_K, clone3, "enosys"))
    checks += [(_JEQ_K, nr, "eperm") for nr in nrs]
    n_checks = len(checks)
    # After the checks: +0 jeq clone (else ALLOW); +1 ld arg0; +2 jset CLONE_NEW* -> EPERM else ALLOW;
    # +3 ALLOW; +4 ENOSYS; +5 EPERM.  A jump's offset counts from the instruction after it.
    clone_at, allow_at, enosys_at, eperm_at = n_checks, n_checks + 3, n_checks + 4, n_checks + 5
    targets = {"eperm": eperm_at, "enosys": enosys_at}
    body = [_insn(code, targets[to] - i - 1, 0, k) for i, (code, k, to) in enumerate(checks)]
    body += [
        _insn(_JEQ_K, 0, allow_at - clone_at - 1, clone),
        _insn(_LD_W_ABS, 0, 0, 16),  # seccomp_data.args[0], low 32 bits
        _insn(_JSET_K, eperm_at - (clone_at + 2) - 1, allow_at - (clone_at + 2) - 1, CLONE_NEW_FLAGS),
        _insn(_RET_K, 0, 0, _RET_ALLOW),
        _insn(_RET_K, 0, 0, _RET_ERRNO | errno.ENOSYS),
        _insn(_RET_K, 0, 0, _RET_ERRNO | errno.EPERM),
    ]
    head = [
        _insn(_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
        _insn(_JEQ_K, 0, 1 + eperm_at, audit_arch),  # another ABI: over the number's load to EPERM
        _insn(_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
    ]
    return b"".join(head + body)


def filter_fd(program: bytes) -> int:
    """A memory file holding ``program``, positioned at its start, for bwrap to read (one per run:
    concurrent readers of one descriptor would share its offset)."""
    fd = os.memfd_create("prmflow-seccomp", os.MFD_CLOEXEC)
    os.write(fd, program)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
