// Package learntest waits for what a container's learn recorder (`bulwark
// learn-recorder`, started by create for run.bulwark.learn=PATH) leaves
// behind: the profile at PATH or its PATH.error, and the recorder's exit.
// The recorder outlives create, start and delete, so a test that reads the
// profile as soon as the container has gone reads nothing, and one that
// waits without a bound hangs when the recorder failed.
//
// The threat it answers is the test suite's own: a wait that never ends, or
// a test that passes because it read an old file. Do not use it outside
// tests.
package learntest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// WaitProfile waits up to d for the profile at path, and fails t with the
// recorder's reason as soon as path.error appears instead.
func WaitProfile(t testing.TB, path string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if b, err := os.ReadFile(path + ".error"); err == nil {
			t.Fatalf("the recorder failed: %s", b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no profile at %s %s after the container ended", path, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitRecorderGone waits up to d for the learn-recorder of container id to
// exit.
func WaitRecorderGone(t testing.TB, id string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for recorderRunning(id) {
		if time.Now().After(deadline) {
			t.Fatalf("the recorder of %s is still running after %s", id, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func recorderRunning(id string) bool {
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), "learn-recorder\x00"+id+"\x00") {
			return true
		}
	}
	return false
}
