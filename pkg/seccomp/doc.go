// Package seccomp turns an OCI linux.seccomp profile into a kernel seccomp
// filter (through libseccomp), loads it into the container's init just before
// execve, and hands the user-notification fd to a seccomp agent.
//
// The threat: every syscall a container can make is kernel attack surface
// shared with the host. Most container escapes of the last decade went through
// a syscall the workload never needed (keyctl, userfaultfd, bpf, io_uring,
// unshare of a user namespace to reach an unhardened code path, ...). A
// seccomp filter removes that surface, but only if it is built exactly as the
// profile says: a rule silently dropped, an argument condition OR-ed where it
// should be AND-ed, a 32-bit ABI left unfiltered, or a filter that traps
// glibc's clone3 probe into EPERM all turn a profile into a false sense of
// safety or a broken container. This package therefore
//
//   - validates a profile and names the exact field at fault
//     (linux.seccomp.syscalls[3].args[0].op), so a typo is an error and not a
//     hole;
//   - builds the filter with runc's semantics where engines depend on them
//     (unknown syscall names are skipped, repeated argument indices are
//     OR-ed), and documents every place it deliberately differs;
//   - kills the whole process, not one thread, when a syscall arrives from an
//     architecture the profile does not cover;
//   - never sets no_new_privs itself: that is the caller's decision, made in
//     the order caps -> no_new_privs -> seccomp.
package seccomp
