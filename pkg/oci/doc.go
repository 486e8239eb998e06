// Package oci loads and validates OCI runtime bundles (config.json of
// runtime-spec 1.0 through 1.3) before any of it reaches the kernel.
//
// Threat model: config.json is written by whoever prepared the bundle — an
// engine, a script, or an attacker who controls an image or a bundle
// directory. The runtime acts on it as root. A field the runtime silently
// misreads or ignores becomes a security hole: a capability name with a typo
// that is dropped instead of rejected, a sysctl that is written to the host
// because the container shares a namespace, a masked path given relatively so
// it masks nothing, a mount option with a NUL byte that truncates the option
// string the kernel sees, or a container ID such as "../x" that escapes the
// state directory. This package therefore rejects anything it cannot apply
// exactly as written, and names the file and the JSON field so the person who
// wrote it can fix it. Unknown JSON properties are ignored as the spec
// requires, but reported as warnings so that a misspelled security setting
// ("noNewPrivilege") does not go unnoticed.
//
// The package is pure Go and has no side effects beyond reading files: the
// part that needs cgo (seccomp) is validated by a validator the caller
// passes in, and everything is applied elsewhere. It also spells the config's
// vocabulary once for every other package: the run.bulwark.* annotation
// keys, capability names, namespace lookups and FieldError.
package oci
