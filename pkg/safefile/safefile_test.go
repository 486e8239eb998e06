package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCheckDirAndOpen(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files to another uid")
	}
	tests := []struct {
		name    string
		mode    os.FileMode
		uid     int
		symlink bool
		wantErr error
	}{
		{name: "root 0755", mode: 0o755},
		{name: "root 0700", mode: 0o700},
		{name: "group-writable", mode: 0o775, wantErr: ErrUnsafe},
		{name: "world-writable", mode: 0o777, wantErr: ErrUnsafe},
		{name: "owned by another user", mode: 0o755, uid: 1000, wantErr: ErrUnsafe},
		{name: "a symlink", mode: 0o755, symlink: true, wantErr: unix.ELOOP},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "d")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, "f")
			if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{dir, file} {
				if err := os.Chmod(p, tc.mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chown(p, tc.uid, 0); err != nil {
					t.Fatal(err)
				}
			}
			open := file
			if tc.symlink {
				open = filepath.Join(dir, "link")
				if err := os.Symlink(file, open); err != nil {
					t.Fatal(err)
				}
			}
			_, err := ReadFile(open)
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("ReadFile(%s) = %v, want %v", open, err, tc.wantErr)
			}
			if tc.symlink {
				return
			}
			if err := CheckDir(dir); tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("CheckDir = %v, want %v", err, tc.wantErr)
			}
		})
	}
}
