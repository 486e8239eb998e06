package tests

// A command SIGKILLed at any point of its work must leave nothing that
// rm -f (or delete -f) cannot remove, and rm -f must then leave nothing:
// the tests here kill one command at many delays, denser than its phases
// are long, and look for what is left after each.

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// killDelays is where a kill-at-any-point test SIGKILLs its command: the
// given set (in ms), or with BULWARK_KILL_SWEEP=dense every 12 ms from 0
// to 708 ms (60 runs: what found the bugs these tests keep fixed, too
// slow for every run of the suite).
func killDelays(set ...time.Duration) []time.Duration {
	if os.Getenv("BULWARK_KILL_SWEEP") != "dense" {
		out := make([]time.Duration, len(set))
		for i, d := range set {
			out[i] = d * time.Millisecond
		}
		return out
	}
	var out []time.Duration
	for i := 0; i < 60; i++ {
		out = append(out, time.Duration(i*12)*time.Millisecond)
	}
	return out
}

// rmGone is rm -f's (or delete -f's) verdict after a kill: it removed the
// container, or says there is none.
func rmGone(r result) bool {
	return r.code == 0 || strings.Contains(r.stderr, "does not exist")
}

// TestUserRunDetachedKilledAtAnyPointLeavesNothingAfterRmF kills `bulwark
// run -d` at points from its start to its return. Its monitor went on
// making the container after the command was killed, so that rm -f, run
// right after, found no container (or a claim still busy) and the
// container appeared, running, after it: killed before it heard that the
// payload runs, the monitor must end too, and rm -f then leave nothing.
// Killed after, the container runs and rm -f removes it.
func TestUserRunDetachedKilledAtAnyPointLeavesNothingAfterRmF(t *testing.T) {
	e := newEnv(t)
	rootfs := userRootfs(t)
	host := snapHost(t)
	for _, delay := range killDelays(0, 15, 30, 45, 60, 80, 100, 120, 150, 200, 300) {
		id := e.id()
		c := e.startBW("run", "-d", "--name", id, rootfs, "--", "sleep", "30")
		time.Sleep(delay)
		c.Process.Signal(syscall.SIGKILL)
		if err := c.Wait(); err != nil {
			// Killed: its monitor must end with it, unless the word
			// that the payload runs was already on its way.
			for deadline := time.Now().Add(5 * time.Second); len(pidsMentioning(id)) > 0 && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
			}
			if left := pidsMentioning(id); len(left) > 0 {
				if st := e.bw("state", id); !strings.Contains(st.stdout, `"running"`) {
					t.Errorf("run -d killed at %v: its monitor outlived it, and no container runs: %v", delay, left)
				}
			}
		}
		if r := e.bw("rm", "-f", id); !rmGone(r) {
			t.Errorf("rm -f after SIGKILL at %v: %v", delay, r)
		}
		e.assertUserRunGone(id)
		// No network: host devices other tests make are not this run's.
		assertClean(t, e.root, id, "", hostSnap{links: hostLinks(t), children: host.children})
		if t.Failed() {
			t.Fatalf("stopping at the first kill point that left something (%v)", delay)
		}
	}
}
