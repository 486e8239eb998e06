package tests

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Attacks on the wings built around the namespace core (the image store,
// VM isolation, networks), each by a party the wing must hold off: here
// another user of the host. docs/escape.md, "The wings".

// asNobody runs argv as uid and gid 65534 with no supplementary groups: a
// local user with no business in anyone's containers.
func asNobody(t *testing.T, argv ...string) (string, error) {
	t.Helper()
	c := exec.Command(argv[0], argv[1:]...)
	c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	out, err := c.CombinedOutput()
	return string(out), err
}

// TestAnotherUserCannotReachARunningContainersSnapshot: a container run
// from an image has its overlay mounted under the data root
// (containers/ID-HASH/rootfs), which must be traversable by the
// container's mapped root. Another local user who learns the id (ps shows
// it) and computes the directory's name must not get through it: not
// read what the container wrote, not plant files in its world-writable
// directories, not run its set-user-id binaries (which run as the
// container root's host uid) — Docker's CVE-2021-41091.
func TestAnotherUserCannotReachARunningContainersSnapshot(t *testing.T) {
	e := newEnv(t)
	dr := imageDataRoot(t, "example.com/busy:peek")
	t.Setenv("BULWARK_DATA_ROOT", dr)
	_, out, stop := e.startUserRun([]string{"--user", "0", "--writable"}, "example.com/busy:peek",
		"sh", "-c", "echo s3cret > /etc/container-secret && chmod 644 /etc/container-secret && mkdir -m 1777 /shared && echo ready; read x")
	defer stop()
	if line, err := out.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("container did not start: %q %v", line, err)
	}
	ents, err := os.ReadDir(filepath.Join(dr, "containers"))
	if err != nil || len(ents) != 1 {
		t.Fatalf("snapshots: %v %v", ents, err)
	}
	rootfs := filepath.Join(dr, "containers", ents[0].Name(), "rootfs")
	if b, err := os.ReadFile(filepath.Join(rootfs, "etc/container-secret")); err != nil || string(b) != "s3cret\n" {
		t.Fatalf("the test's own look at the snapshot: %q %v", b, err)
	}
	o, err := asNobody(t, "/bin/cat", filepath.Join(rootfs, "etc/container-secret"))
	if err == nil || !strings.Contains(o, "Permission denied") {
		t.Errorf("another user read the running container's file: err=%v output %q", err, o)
	}
	o, err = asNobody(t, "/bin/sh", "-c", "echo planted > "+filepath.Join(rootfs, "shared/planted"))
	if err == nil || !strings.Contains(o, "Permission denied") {
		t.Errorf("another user planted a file in the running container: err=%v output %q", err, o)
	}
	if _, err := os.Lstat(filepath.Join(rootfs, "shared/planted")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("planted file in the container's rootfs: %v", err)
	}
}
