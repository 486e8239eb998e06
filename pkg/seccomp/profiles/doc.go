// Package profiles holds Bulwark's built-in seccomp profiles as OCI data
// (*specs.LinuxSeccomp), ready for linux.seccomp of a config.json.
//
// The threat: a container shares the host's kernel, so every syscall it can
// make is attack surface, and most container escapes went through a syscall
// the workload never needed (keyctl, bpf, userfaultfd, io_uring, perf,
// unshare of a user namespace to reach unhardened code, open_by_handle_at).
// A profile that removes that surface must also survive the details that
// quietly undo it: arguments the kernel truncates to 32 bits, syscalls whose
// arguments live in memory where BPF cannot see them, libc fallbacks that
// only trigger on one errno, and libseccomp's own rule merging.
//
// # Names
//
// Names returns "default", "strict" and "unconfined". ByName("unconfined")
// returns a nil profile and no error: that is the runtime-spec's "no
// linux.seccomp", kept as a name so a user can say it on purpose (and a
// typo is still an error, never a silent unconfined container).
//
// # Default ("bullet-proof")
//
// An allowlist. Its names come from Docker's default profile (moby
// profiles/seccomp, the one most images are tested against), keeping only
// names the linked libseccomp knows, minus the decisions below. Every
// decision is a trade of compatibility for kernel surface:
//
//   - defaultAction is SCMP_ACT_ERRNO with ENOSYS, not EPERM. A syscall the
//     profile does not know is, to the program, one the kernel does not have;
//     glibc and Go then take their fallbacks (faccessat2 -> faccessat,
//     fchmodat2 -> fchmodat, statx -> fstatat, newer syscalls than this list).
//     EPERM would make them report a permission error instead.
//   - clone3 returns ENOSYS by an explicit rule. Its flags sit in a struct in
//     user memory that BPF cannot read, so the namespace rule on clone could
//     be bypassed through it; ENOSYS makes glibc fall back to clone, whose
//     flags are a register the filter checks.
//   - clone and unshare are allowed only without namespace flags
//     (CLONE_NEWNS, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWCGROUP,
//     NEWTIME): threads, fork and unshare(CLONE_FILES) work, creating a
//     namespace (the usual first step to regain capabilities inside a user
//     namespace and reach code paths written for root) is EPERM. setns is
//     EPERM.
//   - socket allows AF_UNIX, AF_INET, AF_INET6 and AF_NETLINK. Every other
//     family gets EAFNOSUPPORT, the errno of a kernel built without that
//     family, so programs that probe (AF_VSOCK, AF_ALG, AF_BLUETOOTH) take
//     their "not available" path. These rarely used families are where
//     unprivileged socket CVEs keep appearing (AF_PACKET, AF_VSOCK, AF_TIPC,
//     AF_RDS, AF_CAN, AF_X25). socketpair is limited to AF_UNIX, the only
//     family that makes sense there.
//   - ioctl is allowed except TIOCSTI (pushes bytes into the input of a
//     terminal, which a container sharing the user's tty uses to type
//     commands into the host shell) and TIOCLINUX (console selection and
//     paste, the same attack on a VT). The kernel reads ioctl's command as a
//     32-bit unsigned int and ignores the upper half of the register, so the
//     rules compare args[1] & 0xffffffff: a plain 64-bit equality is
//     bypassed by 0xffffffff00005412. The remaining commands are allowed by a
//     rule on args[1] >= 0 (always true) rather than an unconditional one,
//     because libseccomp drops every conditional rule of a syscall that has
//     an unconditional rule, whatever its action.
//   - personality only to the values Docker allows: PER_LINUX (0),
//     PER_LINUX32 (8), UNAME26 (0x20000), PER_LINUX32|UNAME26 and the query
//     0xffffffff. Flags such as ADDR_NO_RANDOMIZE and READ_IMPLIES_EXEC
//     switch off ASLR or NX for the exploit's next stage. Other values get
//     the default ENOSYS, not EPERM: seccomp cannot AND two comparisons of
//     one argument, and among overlapping rules the stricter action wins, so
//     "every value but these five" has no compact EPERM rule.
//   - EPERM, not ENOSYS, for what is refused on purpose, so a program (and
//     a person reading strace) can tell "forbidden" from "not here":
//     ptrace, process_vm_readv/writev, pidfd_getfd, process_madvise, kcmp
//     (reading or changing another process's memory, files or state; kcmp
//     also defeats KASLR-style pointer hiding); keyctl, add_key, request_key
//     (the keyring is not namespaced); bpf, perf_event_open, userfaultfd,
//     io_uring_setup/enter/register (the richest sources of recent local
//     privilege escalations; userfaultfd makes kernel races reliable);
//     mount, umount, umount2, move_mount, open_tree, fsopen, fsconfig,
//     fsmount, fspick, mount_setattr, pivot_root (chroot stays allowed as in
//     Docker: it needs CAP_SYS_CHROOT, which the default does not grant);
//     kexec_load,
//     kexec_file_load, init_module, finit_module, delete_module,
//     create_module, get_kernel_syms, query_module (the host kernel itself);
//     open_by_handle_at and name_to_handle_at (the "shocker" escape opens
//     host files by handle; the second only feeds the first); acct, swapon,
//     swapoff, reboot, settimeofday, clock_settime, stime, syslog, quotactl,
//     quotactl_fd, lookup_dcookie, vhangup, nfsservctl, uselib, ustat, sysfs,
//     _sysctl, iopl, ioperm, fanotify_init (host-global state or obsolete
//     interfaces with a history of bugs); setns.
//   - adjtimex and clock_adjtime stay allowed as in Docker: they read the
//     clock state, and their "set" mode is in a struct in memory that BPF
//     cannot filter; setting needs CAP_SYS_TIME, which the default does not
//     grant.
//   - modify_ldt, socketcall and ipc are simply not listed (ENOSYS): the
//     first is what a kernel without CONFIG_MODIFY_LDT_SYSCALL returns, the
//     other two are i386 multiplexers whose arguments are in memory.
//
// Architectures: SCMP_ARCH_X86_64 and SCMP_ARCH_X32, not SCMP_ARCH_X86,
// unlike Docker. On i386 libseccomp turns the socket rules into
// socketcall(SYS_SOCKET, ...), whose arguments are a pointer; the family
// condition cannot be evaluated, so the rule would either allow every family
// to 32-bit processes or, with the EAFNOSUPPORT rule, fail to build. With
// i386 out of the filter, any int 0x80 / 32-bit syscall kills the process
// (the bad-architecture action). 32-bit x86 binaries do not run under this
// profile; a custom profile can add them with that caveat. libseccomp always
// adds the host's native architecture, so the profile also works, by name,
// on other hosts.
//
// # Strict ("compute only")
//
// In the spirit of ZeroVM and NaCl: a small subset, and anything outside it
// kills the whole process (SCMP_ACT_KILL_PROCESS), because a compute job that
// reaches for the network or a new process is either broken or compromised,
// and a compromised one must not get to probe. The subset is what ordinary
// compute programs were traced to need, dynamically linked ones included
// (Debian's /bin/true, a threaded C program, python3, static Go): read and
// write, memory management, futexes and threads, signals, clocks and sleeps,
// getrandom, its own ids, exit; and files: glibc's loader calls access and
// newfstatat, Python lists directories (getdents64), resolves its own path
// (readlink) and asks sysinfo and statfs. Files may be created and written:
// seccomp cannot see paths, and the profile's read-only rootfs leaves /tmp
// (and /dev/shm) as the only writable places, both size-limited tmpfs. Some
// calls in the subset are refused with an errno for some arguments instead
// of killing, because programs make them optionally and cope with a refusal:
//
//   - socket(AF_UNIX) is EPERM (every other family kills): glibc asks nscd
//     over a unix socket before it reads /etc/passwd for getpwuid, which
//     Python's start-up (without HOME), id and whoami call.
//   - ioctl is allowed for TCGETS, TIOCGWINSZ, FIONREAD and the fd-flag
//     commands FIOCLEX, FIONCLEX, FIONBIO (isatty, stdio, Python); any
//     other command kills.
//   - epoll_pwait and epoll_wait are allowed although epoll_create is not:
//     Bulwark's init is a Go program whose runtime threads keep running
//     between loading the filter and execve, and its network poller waits
//     in epoll_pwait; a kill there would kill the container before its
//     payload starts. They can only wait on an epoll fd that already exists.
//   - execve is allowed: the runtime loads the filter before its own final
//     execve of the payload, so the first execve must pass. Later ones gain
//     nothing, since the filter is inherited by whatever is executed (it
//     replaces the job; it cannot run beside it: fork is refused).
//   - clone is allowed for threads only (CLONE_THREAD set, no namespace
//     flag); fork-like clone is EPERM, clone3 ENOSYS (as in default), fork
//     and vfork kill.
//   - prlimit64 may read limits of the process itself (pid 0, new_limit
//     NULL); setting is EPERM (Go raises RLIMIT_NOFILE at start and ignores
//     a failure).
//   - prctl is EPERM (Go names its memory regions with PR_SET_VMA and
//     ignores the error).
//
// Strict covers SCMP_ARCH_X86_64 only.
package profiles
