package usernet

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary is /proc/self/exe here: started as the watcher, it
// watches.
func TestMain(m *testing.M) {
	if os.Getenv(envWatch) != "" {
		watch()
	}
	os.Exit(m.Run())
}

// TestWatcher: the watcher kills the relay once the keeper's end of its
// pipe closes (the keeper died, however), and ends by itself with the
// relay, leaving the relay untouched while the keeper lives.
func TestWatcher(t *testing.T) {
	for _, c := range []struct {
		name        string
		keeperDies  bool
		wantRelayBy time.Duration // the relay's end, from its own 1s or the kill
	}{
		{"keeper dies: relay killed", true, 500 * time.Millisecond},
		{"relay ends: watcher ends, relay lived its life", false, 3 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			relay := exec.Command("sleep", "1")
			if c.keeperDies {
				relay = exec.Command("sleep", "30")
			}
			if err := relay.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { relay.Process.Kill(); relay.Wait() })
			pidfd, err := unix.PidfdOpen(relay.Process.Pid, 0)
			if err != nil {
				t.Skipf("pidfd_open: %v", err)
			}
			relayFd := os.NewFile(uintptr(pidfd), "relay")
			began := time.Now()
			w, err := startWatcher(relayFd)
			relayFd.Close()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { w.Kill(); w.Wait() })
			if c.keeperDies {
				time.Sleep(100 * time.Millisecond)
				keeperAlive.Close()
			}
			relayDone := make(chan error, 1)
			go func() { relayDone <- relay.Wait() }()
			select {
			case err := <-relayDone:
				killed := err != nil
				if killed != c.keeperDies {
					t.Errorf("relay killed: %v, want %v (%v after start)", killed, c.keeperDies, time.Since(began))
				}
			case <-time.After(c.wantRelayBy):
				t.Fatalf("the relay still runs %v after start", c.wantRelayBy)
			}
			watcherDone := make(chan struct{})
			go func() { w.Wait(); close(watcherDone) }()
			select {
			case <-watcherDone:
			case <-time.After(2 * time.Second):
				t.Errorf("the watcher still runs 2s after the relay ended")
			}
			if !c.keeperDies {
				keeperAlive.Close()
			}
		})
	}
}
