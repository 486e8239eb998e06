package userface

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/cleanup"
	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/policy"
)

func TestDeviceNodesGiveTheContainerRootItsOwnNode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mknod needs root")
	}
	s := policy.Base()
	if err := policy.Apply(s, policy.WithUserNamespace(300000, 65536), policy.WithDevice("/dev/null")); err != nil {
		t.Fatal(err)
	}
	h := &host{undo: &cleanup.Stack{}}
	dir := filepath.Join(t.TempDir(), "nodes")
	if err := h.deviceNodes(s, dir); err != nil {
		t.Fatal(err)
	}
	m := s.Mounts[len(s.Mounts)-1]
	if m.Destination != "/dev/null" || m.Type != "bind" || filepath.Dir(m.Source) != dir {
		t.Fatalf("last mount %+v, want a bind at /dev/null of a node in %s", m, dir)
	}
	var st unix.Stat_t
	if err := unix.Stat(m.Source, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) || st.Uid != 300000 || st.Gid != 300000 || st.Mode&0o777 != 0o600 {
		t.Errorf("node mode %#o rdev %d owner %d:%d, want char 1:3 0600 owned by 300000", st.Mode, st.Rdev, st.Uid, st.Gid)
	}
	// Only the container root's group passes the directory: the root can
	// chmod its node, and nobody else may then reach it.
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != 0o710 || st.Uid != 0 || st.Gid != 300000 {
		t.Errorf("node directory mode %#o owner %d:%d, want 0710 root:300000", st.Mode&0o7777, st.Uid, st.Gid)
	}
	want := []container.Owned{{Kind: container.OwnedDir, Path: dir}, {Kind: container.OwnedSharedDir, Path: filepath.Dir(dir)}}
	if !slices.Equal(h.owns, want) {
		t.Errorf("owns %+v, want %+v", h.owns, want)
	}
}

// A run that fails after making its files leaves none of them, parents
// included, and the container would have owned exactly what was made
// (the bundle directory, the run's claim on its name, is run's own).
func TestPrepareIsUndoneByItsCleanupStack(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the /etc files' modes are set as root")
	}
	tmp := t.TempDir()
	p := Paths{
		Bundle: filepath.Join(tmp, "root", "@run", "c1"),
		Dev:    filepath.Join(tmp, "dev", "x"),
		Files:  filepath.Join(tmp, "files", "x"),
	}
	s, err := Spec(&Options{Args: []string{"true"}, UsernsRange: "300000"})
	if err != nil {
		t.Fatal(err)
	}
	var undo cleanup.Stack
	h := &host{stateDir: filepath.Join(tmp, "root", "c1"), undo: &undo}
	if err := os.MkdirAll(p.Bundle, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := h.prepare(s, p, false, nil); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.json"} {
		if _, err := os.Stat(filepath.Join(p.Bundle, f)); err != nil {
			t.Errorf("bundle: %v", err)
		}
	}
	for _, f := range []string{"hostname", "hosts", "resolv.conf"} {
		if _, err := os.Stat(filepath.Join(p.Files, f)); err != nil {
			t.Errorf("/etc files: %v", err)
		}
	}
	var kinds []container.OwnedKind
	for _, o := range h.owns {
		kinds = append(kinds, o.Kind)
	}
	wantKinds := []container.OwnedKind{container.OwnedDir, container.OwnedSharedDir}
	if !slices.Equal(kinds, wantKinds) || h.owns[0].Path != p.Files {
		t.Errorf("owns %+v, want the /etc files with their parent (no devices, no range)", h.owns)
	}
	undo.Clean()
	for _, d := range []string{p.Files, filepath.Dir(p.Files)} {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s left behind", d)
		}
	}
}
