// Package learn records what a workload does and turns it into a
// least-privilege profile: `bulwark learn ROOTFS -- CMD` (pkg/userface
// drives it), the profile file `bulwark run --profile FILE` enforces, its
// merge and its diff against another seccomp profile.
//
// How it records: the container's init loads a recording filter
// (pkg/seccomp Recording: the base profile with every allowing rule turned
// into SECCOMP_RET_USER_NOTIF) as its last step before execve, exactly where
// the payload's filter would go, and keeps the listener fd. Attach takes a
// copy of that fd with pidfd_getfd(2) while the init waits in execve for an
// answer, then answers every call with SECCOMP_USER_NOTIF_FLAG_CONTINUE
// after noting its name, the arguments Bulwark's rules look at, and the
// paths, devices and ports it names (read from /proc/PID/mem while the
// caller is stopped). User notification, not SCMP_ACT_LOG: the notification
// carries the caller's pid and all six arguments, it is per filter and so
// per container (children inherit it), and nothing is lost, where the audit
// log is host-wide, rate-limited, holds no arguments and needs the pids
// mapped back to containers. It needs no eBPF, no daemon, no audit.
//
// Threat: over-broad profiles. A learned profile allows the calls (and the
// argument values of socket, clone, ioctl, personality, prctl, mmap and
// mprotect PROT_EXEC, setsockopt) the workload made and nothing else, and
// never more than its base: what the base refuses stays refused with the
// base's errno. The capabilities kept are those whose removal changed the
// workload's exit status (pkg/userface, trials).
//
// Not for: untrusted recording runs. The recorded workload runs under its
// base profile's rules and nothing is denied while learning; a workload
// that behaves differently when watched, or a path never exercised, is not
// in the profile (its calls then fail with ENOSYS). Learn from the real
// workload, exercise every path, and merge runs (--merge).
package learn
