// Package userface is the person face of bulwark: `bulwark run [flags]
// ROOTFS -- COMMAND` from the request to the finished container. It turns
// the person's Options into a hardened spec (through pkg/policy, which
// only describes), makes on the host everything such a run needs (a
// container id, a user namespace range of its own from the pool, the
// generated bundle, private /etc files, device nodes a user-namespaced
// root can open), hands the container that list to own (container.Owned),
// and undoes all of it on any failure (one cleanup stack). The container's
// delete removes what it owns without knowing this package exists.
//
// Threat: a person's run is where the dangerous defaults would come in
// (root that is host root, every capability, host /etc files, a range
// shared with a neighbour) and where a failed run would leave id ranges,
// device nodes and files behind. Every request goes through the policy's
// floor, every bad input is refused before anything exists on the host,
// and everything made is either owned by the container or removed.
//
// The person's other tools hang here too, so cmd/bulwark only reads flags:
// audit (a config or image before it runs, falling back to the person's
// image store) and check (the host) in audit.go; explain (what a profile
// does to a syscall, path or capability) in explain.go, and the hint line
// after a failed run in hints.go; the person's image store (pull, load,
// images, rmi, prune) in images.go; detached containers (run -d and its
// monitor) in detach.go, and what a person does with them (ls, logs,
// stop, rm) in service.go.
//
// This package is linked into the bulwark binary that every container
// start maps and re-executes, so it and its imports stay light. Flows with
// heavy dependencies (pull and load: a registry client, TLS, HTTP,
// decompressors; audit: YAML) run in bulwark-tools: their code is in
// pkg/userface/tools and this package calls it through internal/toolsproto
// (Images.Pull, Images.Load, Audit), with the same API as in-process.
//
// Not for runc's `create`/`run ID` (OCI bundles from engines): those go
// straight to pkg/container with the engine's config. Images, networks,
// learning a profile from a run and VM isolation belong here, as parts of
// a person's run, not in cmd/bulwark.
package userface
