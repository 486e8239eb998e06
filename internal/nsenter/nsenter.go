// Package nsenter holds the C constructor that puts a container's init (and
// processes started by exec) into its namespaces before the Go runtime starts.
//
// Threat: a namespace set up half-way, or set up by a multi-threaded process
// where setns silently applies to one thread, leaves the container's processes
// with host mounts, host pids or host root. The constructor does the whole
// join/unshare sequence single-threaded and dies with the runtime (EOF on its
// sync socket) so no half-built container survives a killed `create`.
//
// Import it for its side effect from the binary's main package; the init
// (pkg/containerinit) reads StartNofile.
package nsenter

/*
#cgo CFLAGS: -Wall -Wextra -Wno-unused-parameter
#include <sys/resource.h>
extern struct rlimit bulwark_start_nofile;
extern int bulwark_have_start_nofile;
*/
import "C"

// StartNofile is RLIMIT_NOFILE as a container's init or exec'd process
// had it when it started, read by the constructor before the Go runtime
// raised the soft limit (package syscall does at init; syscall.Exec puts
// it back, and so must an exec that is not syscall.Exec's). ok is false in
// any other process.
func StartNofile() (soft, hard uint64, ok bool) {
	if C.bulwark_have_start_nofile == 0 {
		return 0, 0, false
	}
	return uint64(C.bulwark_start_nofile.rlim_cur), uint64(C.bulwark_start_nofile.rlim_max), true
}
