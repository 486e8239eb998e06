package cgroups

import (
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/cgroups/systemd"
)

func TestCgroupfsPathRules(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		wantPath   string
		wantParent string
		wantErr    string
	}{
		{"default uses /bulwark/<id>", Config{ID: "c1"}, "/bulwark/c1", "/bulwark", ""},
		{"absolute path kept", Config{Path: "/a/b", ID: "c1"}, "/a/b", "", ""},
		{"relative path is root-relative", Config{Path: "a/b", ID: "c1"}, "/a/b", "", ""},
		{"dot-dot cannot climb above root", Config{Path: "/../../etc/x", ID: "c1"}, "/etc/x", "", ""},
		{"trailing slash cleaned", Config{Path: "/a/b/", ID: "c1"}, "/a/b", "", ""},
		{"root refused", Config{Path: "/", ID: "c1"}, "", "", "cgroup root"},
		{"dot-dot to root refused", Config{Path: "/a/..", ID: "c1"}, "", "", "cgroup root"},
		{"systemd form without driver is a literal path", Config{Path: "test.slice:cri-containerd:abc", ID: "c1"}, "/test.slice:cri-containerd:abc", "", ""},
		{"absolute path with colon allowed", Config{Path: "/x:y", ID: "c1"}, "/x:y", "", ""},
		{"empty id with default path", Config{}, "", "", "container id"},
		{"id with slash", Config{ID: "a/b"}, "", "", "container id"},
		{"id dot-dot", Config{ID: ".."}, "", "", "container id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cg, parent, err := tc.cfg.libCgroup()
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("libCgroup(%+v) = %q, want error containing %q", tc.cfg, cg.Path, tc.wantErr)
				}
				if !errors.Is(err, ErrInvalidPath) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %q: want ErrInvalidPath containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("libCgroup(%+v): %v", tc.cfg, err)
			}
			if cg.Path != tc.wantPath || parent != tc.wantParent {
				t.Fatalf("libCgroup(%+v) = (%q, %q), want (%q, %q)", tc.cfg, cg.Path, parent, tc.wantPath, tc.wantParent)
			}
		})
	}
}

func TestSystemdPathParsing(t *testing.T) {
	tests := []struct {
		path, id                string
		slice, prefix, unitName string
		wantErr                 string
	}{
		{"", "c1", "system.slice", "bulwark", "c1", ""},
		{"system.slice:docker:abc", "c1", "system.slice", "docker", "abc", ""},
		{"machine.slice:libpod:abc", "c1", "machine.slice", "libpod", "abc", ""},
		{":crio:abc", "c1", "system.slice", "crio", "abc", ""},
		{"kubepods-besteffort.slice::pod.slice", "c1", "kubepods-besteffort.slice", "", "pod.slice", ""},
		{"/bulwark/c1", "c1", "", "", "", "slice:prefix:name"},
		{"a:b", "c1", "", "", "", "slice:prefix:name"},
		{"a:b:c:d", "c1", "", "", "", "slice:prefix:name"},
		{"system:docker:abc", "c1", "", "", "", "not a valid systemd slice"},
		{"a/b.slice:docker:abc", "c1", "", "", "", "not a valid systemd slice"},
		{"system.slice:docker:", "c1", "", "", "", "unit name"},
		{"system.slice:do/cker:abc", "c1", "", "", "", "must not contain '/'"},
		{"", "", "", "", "", "container id"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			slice, prefix, name, err := parseSystemdPath(tc.path, tc.id)
			if tc.wantErr != "" {
				if err == nil || !errors.Is(err, ErrInvalidPath) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseSystemdPath(%q) err = %v, want ErrInvalidPath containing %q", tc.path, err, tc.wantErr)
				}
				if tc.path != "" && !strings.Contains(err.Error(), "linux.cgroupsPath") {
					t.Fatalf("error %q does not name linux.cgroupsPath", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseSystemdPath(%q): %v", tc.path, err)
			}
			if slice != tc.slice || prefix != tc.prefix || name != tc.unitName {
				t.Fatalf("parseSystemdPath(%q) = %q %q %q, want %q %q %q", tc.path, slice, prefix, name, tc.slice, tc.prefix, tc.unitName)
			}
		})
	}
}

// TestSystemdDriverWithoutSystemd pins the documented decision: no silent
// fallback to cgroupfs, and path errors win over the availability error so
// the user fixes config.json first.
func TestSystemdDriverWithoutSystemd(t *testing.T) {
	if systemd.IsRunningSystemd() {
		t.Skip("skipping: systemd is running here; this test covers hosts without it")
	}
	tests := []struct {
		path string
		want error
	}{
		{"system.slice:bulwark:x", ErrSystemdUnavailable},
		{"", ErrSystemdUnavailable},
		{"/not/systemd/form", ErrInvalidPath},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			for name, fn := range map[string]func() error{
				"New":  func() error { _, err := New(Config{Path: tc.path, Systemd: true, ID: "x"}, nil); return err },
				"Load": func() error { _, err := Load(Config{Path: tc.path, Systemd: true, ID: "x"}); return err },
			} {
				if err := fn(); !errors.Is(err, tc.want) {
					t.Errorf("%s: err = %v, want %v", name, err, tc.want)
				}
			}
		})
	}
}
