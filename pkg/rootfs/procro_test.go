package rootfs

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ReadOnlyProc remounts only what is procfs: a proc entry whose destination
// holds some other filesystem is an error naming the mount, and nothing is
// remounted (the directory here is the test's own, not a mount of its own).
func TestReadOnlyProcRefusesADestinationThatIsNotProcfs(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		s    *specs.Spec
		want string
	}{
		{"nil spec", nil, "nil spec"},
		{"not procfs", &specs.Spec{Mounts: []specs.Mount{{Destination: "/dev", Type: "tmpfs"}, {Destination: dir, Type: "proc"}}}, "mounts[1] read-only remount of procfs at"},
		{"missing destination", &specs.Spec{Mounts: []specs.Mount{{Destination: dir + "/missing", Type: "proc"}}}, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ReadOnlyProc(tc.s)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReadOnlyProc = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if err := ReadOnlyProc(&specs.Spec{Mounts: []specs.Mount{{Destination: "/tmp", Type: "tmpfs"}}}); err != nil {
		t.Errorf("a spec without procfs mounts: %v", err)
	}
}
