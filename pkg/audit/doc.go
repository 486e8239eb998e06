// Package audit scores a container's configuration and image before it
// runs: an OCI bundle or config.json, `docker inspect` / `podman inspect`
// output, a Kubernetes pod spec (a Pod or anything with spec.template), or
// a root filesystem directory.
//
// Threat: the configuration, not the runtime, decides most escapes. A
// --privileged container, CAP_SYS_ADMIN (the CVE-2022-0492 release_agent
// escape), CAP_DAC_READ_SEARCH (the "shocker" open_by_handle_at escape), a
// mounted docker.sock, no seccomp filter (any buggy syscall, as vmsplice
// was, is the host kernel's) or no user namespace (CVE-2019-5736 rewrote
// the host's runc as root) each hand the host to whoever controls the
// workload, whatever runtime starts it. In the image, SUID binaries and
// file capabilities turn a non-root process back into root. Each finding
// names the scenario or CVE class and the field to change.
//
// Every input is read into an OCI runtime spec (Subject.Spec) with the
// engine's defaults filled in (Docker's 14 capabilities, its seccomp
// profile and masked paths unless the inspect output turns them off), so
// one set of rules judges all formats; the fix is then worded for the
// format the person wrote.
//
// When not to use it: audit reads a configuration; it does not see what
// a running engine adds on the host (dockerd's userns-remap, a kubelet's
// seccompDefault, an admission controller), so a finding about a default
// may be answered outside the file. It never runs the container; use
// `bulwark check` for the host and the escape suite for proof.
package audit
