// Package initproto is the protocol between the runtime (pkg/container) and a
// container's init (pkg/containerinit): the environment that hands the init
// its end of the sync socket, the text bootstrap script the C constructor
// (internal/nsenter) reads before the Go runtime starts, and the typed
// frames both Go sides exchange afterwards, among them the InitConfig.
//
// Both sides import this package and nothing of each other, so neither can
// reach into the other's internals, and a message is a Go type checked by the
// compiler rather than a string both ends must agree on.
//
// Threat: the init has entered the container's namespaces by the time it
// talks, and a compromised or crashing container process may write to the
// socket before the init execs. Every frame is bounded, decoding never
// trusts a length it has not read, an unknown or malformed frame is an
// error, and a clean EOF is kept apart from a torn frame because the runtime
// reads EOF as "the process exec'd".
//
// Not a stable format: the runtime and its init are the same binary, so
// nothing here is versioned. Do not persist or send these frames elsewhere.
package initproto

// EnvInitPipe names the environment variable that carries the number of the
// init's sync socket fd, read by the C constructor and then by the Go init,
// which unsets it. Its presence is also what tells the binary it is an init.
const EnvInitPipe = "_BULWARK_INITPIPE"
