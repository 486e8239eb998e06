package rootfs

import (
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

func TestKernelRefusedFallsBackOnlyWhereFuseOverlayfsHelps(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{unix.EPERM, true},
		{unix.EINVAL, true},
		{unix.ENODEV, true},
		{unix.EOPNOTSUPP, true},
		{fmt.Errorf("mount: %w", unix.EINVAL), true},
		{unix.ENOENT, false},
		{unix.EACCES, false},
		{unix.ENOTDIR, false},
		{unix.ELOOP, false},
		{unix.EBUSY, false},
	} {
		if got := kernelRefused(tc.err); got != tc.want {
			t.Errorf("kernelRefused(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestValidDriver(t *testing.T) {
	for name, want := range map[string]bool{
		"": true, "auto": true, "overlay": true, "fuse-overlayfs": true,
		"fuse": false, "vfs": false, "Overlay": false,
	} {
		if got := ValidDriver(name); got != want {
			t.Errorf("ValidDriver(%q) = %v, want %v", name, got, want)
		}
	}
}
