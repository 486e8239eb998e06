// Package nsenter holds the C constructor that puts a container's init (and
// processes started by exec) into its namespaces before the Go runtime starts.
//
// Threat: a namespace set up half-way, or set up by a multi-threaded process
// where setns silently applies to one thread, leaves the container's processes
// with host mounts, host pids or host root. The constructor does the whole
// join/unshare sequence single-threaded and dies with the runtime (EOF on its
// sync socket) so no half-built container survives a killed `create`.
//
// Import it for its side effect from the binary's main package only.
package nsenter

/*
#cgo CFLAGS: -Wall -Wextra -Wno-unused-parameter
*/
import "C"
