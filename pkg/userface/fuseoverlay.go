package userface

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/rootfs"
	"github.com/bulwark-sec/bulwark/pkg/rootless/mapped"
)

// A rootless image run's snapshot is the kernel's overlayfs, mounted by
// the init in the container's user namespace; where the kernel refuses it
// (rootfs.kernelRefused), or --storage-driver fuse-overlayfs asks, the
// init mounts a FUSE connection at its rootfs instead and the run serves
// it with Debian's fuse-overlayfs (pkg/rootless/mapped StartFuseOverlay).

// Files in the run's directory.
const (
	fuseRecordFile = "fuse-overlayfs.pgid"
	fuseLogFile    = "fuse-overlayfs.log"
)

// EnvStorageDriver sets --storage-driver.
const EnvStorageDriver = "BULWARK_STORAGE_DRIVER"

// checkStorageDriver checks --storage-driver for an image run; a forced
// fuse-overlayfs must find what it needs before anything is made.
func checkStorageDriver(driver string, rootless bool) error {
	if !rootfs.ValidDriver(driver) {
		return fmt.Errorf("--storage-driver %q: want auto, overlay or fuse-overlayfs", driver)
	}
	if driver != rootfs.DriverFuseOverlayfs {
		return nil
	}
	if !rootless {
		return errors.New("--storage-driver fuse-overlayfs: only for runs without root; root's image runs mount the kernel's overlayfs over idmapped layers")
	}
	_, err := fuseOverlayfs("--storage-driver fuse-overlayfs")
	return err
}

// fuseOverlayfs finds the fuse-overlayfs binary and /dev/fuse; why says
// what needs them.
func fuseOverlayfs(why string) (string, error) {
	bin, err := exec.LookPath("fuse-overlayfs")
	if err != nil {
		return "", fmt.Errorf("%s: fuse-overlayfs is not in $PATH (%s): install it with apt-get install fuse-overlayfs", why, os.Getenv("PATH"))
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return "", fmt.Errorf("%s: fuse-overlayfs needs /dev/fuse: %w (modprobe fuse; apt-get install fuse-overlayfs brings what it needs)", why, err)
	}
	return bin, nil
}

// fuseOverlayRun is a run's fuse-overlayfs, started when the init asks.
type fuseOverlayRun struct {
	options string // overlayfs's lowerdir, upperdir and workdir
	dir     string // the run's own directory: the group record and the log
	daemon  *os.Process
}

// wire sets ro up for it; the container owns the daemon's process group
// first, so that delete kills what is left of it before it removes the
// snapshot it serves.
func (f *fuseOverlayRun) wire(ro *container.RunOpts, dir string) {
	f.dir = dir
	ro.Owns = append([]container.Owned{{Kind: container.OwnedProcessGroup,
		Path: filepath.Join(dir, fuseRecordFile)}}, ro.Owns...)
	ro.FuseOverlay = f.serve
}

// serve starts fuse-overlayfs on the init's connection dev.
func (f *fuseOverlayRun) serve(dev *os.File, reason string) error {
	bin, err := fuseOverlayfs("the image's snapshot: " + reason)
	if err != nil {
		return err
	}
	log, err := os.OpenFile(filepath.Join(f.dir, fuseLogFile), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	p, err := mapped.StartFuseOverlay(bin, f.options, dev, log)
	if err != nil {
		return fmt.Errorf("the image's snapshot: fuse-overlayfs: %w", err)
	}
	f.daemon = p
	if err := container.RecordGroup(filepath.Join(f.dir, fuseRecordFile), p.Pid); err != nil {
		f.stop(0)
		return err
	}
	return nil
}

// explain adds the daemon's own words to a failed run's error.
func (f *fuseOverlayRun) explain(err error) error {
	if f == nil || f.dir == "" || err == nil {
		return err
	}
	b, _ := os.ReadFile(filepath.Join(f.dir, fuseLogFile))
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		// libfuse's note on an option of its defaults is noise.
		if l = strings.TrimSpace(l); l != "" && !strings.Contains(l, "unknown argument ignored") {
			keep = append(keep, l)
		}
	}
	if len(keep) == 0 {
		return err
	}
	return fmt.Errorf("%w (fuse-overlayfs: %s)", err, strings.Join(keep, "; "))
}

// stop waits up to grace for the daemon, which ends by itself once the
// container's mount namespace is gone, then kills what is left of its
// group and reaps it (the run is its parent). Safe on nil and twice.
func (f *fuseOverlayRun) stop(grace time.Duration) {
	if f == nil || f.daemon == nil {
		return
	}
	if !reaped(f.daemon.Pid, grace) {
		_ = container.KillRecordedGroup(filepath.Join(f.dir, fuseRecordFile))
		_ = f.daemon.Kill()
		reaped(f.daemon.Pid, 5*time.Second)
	}
	f.daemon = nil
}

// reaped waits up to d for child pid to exit and reaps it; a child some
// other wait reaped already counts as reaped.
func reaped(pid int, d time.Duration) bool {
	for deadline := time.Now().Add(d); ; {
		var ws unix.WaitStatus
		n, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if n == pid || err != nil {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
}
