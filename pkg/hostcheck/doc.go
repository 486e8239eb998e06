// Package hostcheck judges the host containers run on, as the talk asks:
// "keep your kernel up to date" and "hardening the L in LXC". Containers
// share the host's kernel, so a kernel with a known escape (Dirty Pipe,
// CVE-2022-0492, CVE-2024-1086), kernel addresses handed to any process,
// unprivileged eBPF or user namespaces, a missing LSM, or an engine that
// never starts Bulwark undoes whatever the container's configuration
// promised. Each finding names what an attacker gets and the sysctl, file
// or command that fixes it.
//
// Everything is read from files under a root directory (Options.Root):
// /proc/sys, /sys, /etc and the state directory, so tests build a fake
// root that flips each finding. Only the Landlock ABI is probed by a
// syscall, and only when the root is "/".
//
// When not to use it: the kernel table compares version numbers. A
// distribution kernel that backports a fix keeps its old version number
// (Debian's and Red Hat's do); the finding then says to check the
// distribution's advisory instead of claiming the host is vulnerable. It
// is not a vulnerability scanner and lists only container-escape-relevant
// kernel CVEs, not runc's (CVE-2019-5736 is the runtime's, which Bulwark
// answers with pkg/selfexe).
package hostcheck
