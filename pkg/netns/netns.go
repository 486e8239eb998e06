// Package netns creates a container's network namespace ahead of its init.
//
// A new network namespace costs the kernel about 0.4 ms (loopback device,
// per-namespace sysctl and protocol state), and bringing lo up costs more.
// Done by the init's constructor, that is on the critical path of every
// start; done here, on a thread of the runtime's own, it overlaps the rest
// of create, and the init joins the finished namespace by fd.
//
// Threat: the namespace must be exactly the one the init would have made:
// fresh, holding only lo, and owned by the user namespace the init would
// have created it from. Callers use it only for containers without a user
// namespace, whose init would make it from the runtime's (the host's) user
// namespace too; a container with a user namespace must own its network
// namespace, or its root could not configure it, so its init still creates
// it. The thread that unshared goes back to the runtime's namespace before
// it returns to Go's scheduler, and if it cannot, it never returns (its
// goroutine exits locked), so no other goroutine ever runs in the
// container's namespace.
package netns

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// New starts creating a network namespace with lo up. wait returns a
// read-only handle on it (nsfs, for setns); the namespace lives as long as
// that handle or a process in it. Call wait exactly once and close what it
// returns.
func New() (wait func() (*os.File, error)) {
	type result struct {
		f   *os.File
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		f, err := create()
		ch <- result{f, err}
	}()
	return func() (*os.File, error) {
		r := <-ch
		return r.f, r.err
	}
}

// create runs on a locked thread and unlocks it only once the thread is
// back in the namespace it started in.
func create() (*os.File, error) {
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("opening the runtime's network namespace: %w", err)
	}
	defer unix.Close(orig)
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("creating the network namespace: %w", err)
	}
	defer func() {
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
	}()
	fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the new network namespace: %w", err)
	}
	f := os.NewFile(uintptr(fd), "netns")
	if err := LoopbackUp(); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// LoopbackUp brings up lo in the calling thread's network namespace, as
// runc does for a namespace it creates: a fresh one starts with lo down,
// and a payload talking to itself over 127.0.0.1 (a web app and its health
// check) would find "network unreachable".
func LoopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback: socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback: SIOCGIFFLAGS: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback: bringing lo up: %w", err)
	}
	return nil
}
