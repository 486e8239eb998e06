package rootless

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestEnabled(t *testing.T) {
	notRoot := os.Geteuid() != 0
	for _, c := range []struct {
		flag    string
		want    bool
		wantErr bool
	}{
		{"", notRoot, false}, {"auto", notRoot, false}, {"true", notRoot, false}, {"false", false, false}, {"yes", false, true},
	} {
		got, err := Enabled(c.flag)
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("Enabled(%q) = %v, %v; want %v, error %v", c.flag, got, err, c.want, c.wantErr)
		}
	}
}

func TestStateDir(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/4242")
	if d, err := StateDir(); err != nil || d != "/run/user/4242/bulwark" {
		t.Errorf("StateDir = %q, %v", d, err)
	}
	t.Setenv("XDG_RUNTIME_DIR", "relative")
	if _, err := StateDir(); !errors.Is(err, ErrNoRuntimeDir) {
		t.Errorf("relative XDG_RUNTIME_DIR: %v, want ErrNoRuntimeDir", err)
	}
}

func TestIDMaps(t *testing.T) {
	me := strconv.Itoa(os.Geteuid())
	for _, c := range []struct {
		name    string
		subuid  string
		want    []specs.LinuxIDMapping
		wantErr error
	}{
		{"one range", "other:5000:10\n" + me + ":100000:65536\n",
			[]specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Geteuid()), Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65536}}, nil},
		{"two ranges follow each other", me + ":100000:10\n# comment\n" + me + ":300000:5\n",
			[]specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Geteuid()), Size: 1}, {ContainerID: 1, HostID: 100000, Size: 10}, {ContainerID: 11, HostID: 300000, Size: 5}}, nil},
		{"malformed and empty lines skipped", me + ":x:10\n" + me + ":100000:0\n\n" + me + ":7:3:1\n", nil, ErrNoSubIDs},
		{"none for us", "other:100000:65536\n", nil, ErrNoSubIDs},
		{"no file", "", nil, ErrNoSubIDs},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			SubUIDFile, SubGIDFile = filepath.Join(dir, "subuid"), filepath.Join(dir, "subgid")
			t.Cleanup(func() { SubUIDFile, SubGIDFile = "/etc/subuid", "/etc/subgid" })
			if c.subuid != "" {
				for _, f := range []string{SubUIDFile, SubGIDFile} {
					if err := os.WriteFile(f, []byte(c.subuid), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			uids, _, err := IDMaps()
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("err = %v, want %v", err, c.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), SubUIDFile) || !strings.Contains(err.Error(), "usermod --add-subuids") {
					t.Errorf("error does not name the file and the fix: %v", err)
				}
				return
			}
			if len(uids) != len(c.want) {
				t.Fatalf("uids = %v, want %v", uids, c.want)
			}
			for i := range uids {
				if uids[i] != c.want[i] {
					t.Errorf("uids[%d] = %v, want %v", i, uids[i], c.want[i])
				}
			}
		})
	}
}
