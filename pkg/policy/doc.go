// Package policy turns the scenarios of "LXC, Docker, Security" into OCI
// specs: composable options in containerd's style (type Option
// func(*specs.Spec) error, applied in order by Apply) and named profiles
// built from them. Every profile starts from the default floor and changes
// only what its scenario needs; docs/profiles.md has the long form.
//
// The package is pure spec in, spec out: it never changes the host. It
// reads what it must to describe the host in a spec (a device's numbers,
// whether a mount source exists, the memlock limit, the policy file), and
// where a spec needs something made on the host (a user-namespaced
// container's device nodes, its /etc files) it says what (DeviceNodes,
// EtcFiles) and the caller, pkg/userface, makes it and owns its removal.
//
// Threat models of the profiles:
//
//   - default: the payload is untrusted code that will try to break out.
//     Its root is an unprivileged host id range (user namespace), it holds
//     no capability, cannot gain privileges through exec (no_new_privs,
//     nosuid), reaches the kernel only through the default seccomp
//     allowlist, writes only to a size-capped /tmp, sees no kernel
//     interfaces that leak addresses or host state (masked paths), opens no
//     device but the harmless few, has no network but its own loopback, and
//     cannot exhaust the host's pids or memory.
//   - webapp: a network service that does not need root ("that stuff
//     shouldn't require root access"): a non-root user whose only
//     privilege is binding ports below 1024 (CAP_NET_BIND_SERVICE).
//   - database: webapp plus locking memory (CAP_IPC_LOCK, and an
//     RLIMIT_MEMLOCK large enough, since inside a user namespace the
//     capability does not lift the limit).
//   - dev: trusted code written by your team; the threat is mistakes, not
//     abuse. The rootfs is writable and Docker's default capabilities are
//     back, minus SYS_ADMIN (mount, namespaces: "a big can of worms"),
//     NET_RAW (packet spoofing and sniffing) and MKNOD (device nodes).
//   - netadmin: configures interfaces, routes and netfilter: NET_ADMIN and
//     NET_RAW, but only inside its own network namespace; host networking
//     is refused, since there the capabilities would reach the host's
//     interfaces.
//   - gpu, rawdisk: a device the payload needs, given through the devices
//     cgroup one node at a time, instead of "--privileged".
//   - strict: compute-only code in the spirit of ZeroVM/NaCl: the strict
//     seccomp profile (the subset ordinary C, Python and Go programs need:
//     no sockets, no new processes), no capabilities, read-only but /tmp,
//     no network.
package policy
