// Package safefile checks and writes the files Bulwark trusts: its state
// and cache directories, the host policy, and the engine configs `bulwark
// install` edits.
//
// Threat: a user who can write one of those directories, or plant a
// symlink in one, makes root write where the user chose (a symlink at a
// temporary file's name) or load what the user planted (a seccomp program
// that allows everything, a policy with the floor switched off). As sudo
// and ssh do for their files, a directory or file is trusted only when it
// is owned by root (or by the user running Bulwark, for a rootless setup)
// and is writable by nobody else; files are opened without following a
// symlink at the last component.
//
// Not for paths a container supplies: those are resolved inside the
// container's root by pkg/rootfs.
package safefile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrUnsafe is wrapped by every refusal of a directory or file anyone but
// its owner could change.
var ErrUnsafe = errors.New("not safe to trust")

// trustedOwner reports whether uid may own a trusted file: root, or the
// user Bulwark runs as.
func trustedOwner(uid uint32) bool {
	return uid == 0 || int(uid) == os.Geteuid()
}

func check(path string, st *unix.Stat_t, kind string) error {
	if !trustedOwner(st.Uid) {
		return fmt.Errorf("%s %s: owned by uid %d, must be owned by root (or uid %d, who runs bulwark): %w",
			kind, path, st.Uid, os.Geteuid(), ErrUnsafe)
	}
	if st.Mode&0o022 != 0 {
		return fmt.Errorf("%s %s: mode %04o is writable by group or others; run chmod go-w %s: %w",
			kind, path, st.Mode&0o7777, path, ErrUnsafe)
	}
	return nil
}

// CheckDir returns an error unless path is a directory owned by root (or
// the effective uid) that neither its group nor others may write.
func CheckDir(path string) error {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fmt.Errorf("directory %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("%s: not a directory: %w", path, ErrUnsafe)
	}
	return check(path, &st, "directory")
}

// Open opens an existing regular file read-only without following a
// symlink at its last component, and returns it only if it is owned by
// root (or the effective uid) and not writable by group or others.
func Open(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		f.Close()
		return nil, fmt.Errorf("%s: not a regular file: %w", path, ErrUnsafe)
	}
	if err := check(path, &st, "file"); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ReadFile is os.ReadFile through Open.
func ReadFile(path string) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// WriteAtomic replaces path with b: in a directory CheckDir accepts, it
// writes a temporary file next to path, created with O_EXCL|O_NOFOLLOW (a
// symlink planted at its name is refused, never followed), and renames it
// over path. A stale temporary file or link from an interrupted write is
// removed first; in a directory only its owner can write, only its owner
// can have left it.
func WriteAtomic(path string, b []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := CheckDir(dir); err != nil {
		return err
	}
	tmp := path + ".bulwark-tmp"
	if err := unix.Unlink(tmp); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("removing stale %s: %w", tmp, err)
	}
	fd, err := unix.Open(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(mode.Perm()))
	if err != nil {
		return &os.PathError{Op: "create", Path: tmp, Err: err}
	}
	f := os.NewFile(uintptr(fd), tmp)
	ok := false
	defer func() {
		if !ok {
			f.Close()
			unix.Unlink(tmp)
		}
	}()
	// The umask may have cleared bits the caller asked for.
	if err := f.Chmod(mode.Perm()); err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	return nil
}
