package netns

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs fn on a thread of its own inside the network namespace ns (an
// nsfs handle: /proc/PID/ns/net or a bind of it) and returns fn's error.
// The thread goes back to the caller's namespace afterwards; if it
// cannot, it dies with its goroutine (locked), so nothing else ever runs
// in the wrong namespace. Use it for netlink, sysctls and tun devices that
// belong to the namespace they are made in; not for anything that starts
// processes or blocks long (the thread is the caller's while fn runs).
func Do(ns *os.File, fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- err
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- fmt.Errorf("setns: %w", err)
			return
		}
		err = fn()
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		ch <- err
	}()
	return <-ch
}

// DoPath is Do with the namespace named by a path.
func DoPath(path string, fn func() error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", path, err)
	}
	defer f.Close()
	return Do(f, fn)
}
