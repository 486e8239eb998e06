package userface

import (
	"strings"
	"testing"
)

func TestCheckStorageDriver(t *testing.T) {
	for _, tc := range []struct {
		driver   string
		rootless bool
		want     string // "" no error, else a part of it
	}{
		{"", false, ""},
		{"auto", true, ""},
		{"overlay", false, ""},
		{"overlay", true, ""},
		{"vfs", true, `--storage-driver "vfs": want auto, overlay or fuse-overlayfs`},
		{"fuse-overlayfs", false, "only for runs without root"},
	} {
		err := checkStorageDriver(tc.driver, tc.rootless)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("checkStorageDriver(%q, %v): %v", tc.driver, tc.rootless, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("checkStorageDriver(%q, %v) = %v, want an error with %q", tc.driver, tc.rootless, err, tc.want)
		}
	}
}
