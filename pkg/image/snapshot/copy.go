package snapshot

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// Copy writes a plain copy of the merged tree at src (a mounted snapshot)
// into dst, which must not exist: a rootfs directory for a bundle that
// runc, or an engine, can run without the store. Owners, modes
// (set-user-id bits included), modification and access times and hard
// links are kept; device nodes,
// fifos and sockets are left out (a runtime makes /dev), and so are
// extended attributes, file capabilities among them. Nothing outside dst
// is written: every entry is made under its parent by name, never
// following a symlink. On failure dst is removed.
func Copy(src, dst string) (err error) {
	if err := os.Mkdir(dst, 0o700); err != nil {
		return fmt.Errorf("copy to %s: %w", dst, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dst)
		}
	}()
	links := map[[2]uint64]string{}
	type dirTimes struct {
		p  string
		ts []unix.Timespec
	}
	var dirs []dirTimes
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, werr error) error {
		if werr != nil {
			return werr
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		ts := []unix.Timespec{unix.NsecToTimespec(syscall.TimespecToNsec(st.Atim)), unix.NsecToTimespec(syscall.TimespecToNsec(st.Mtim))}
		mode := uint32(fi.Mode().Perm())
		if fi.Mode()&fs.ModeSetuid != 0 {
			mode |= unix.S_ISUID
		}
		if fi.Mode()&fs.ModeSetgid != 0 {
			mode |= unix.S_ISGID
		}
		if fi.Mode()&fs.ModeSticky != 0 {
			mode |= unix.S_ISVTX
		}
		switch {
		case rel == ".":
		case fi.IsDir():
			if err := os.Mkdir(out, 0o700); err != nil {
				return err
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, out); err != nil {
				return err
			}
			if err := os.Lchown(out, int(st.Uid), int(st.Gid)); err != nil {
				return err
			}
			return unix.UtimesNanoAt(unix.AT_FDCWD, out, ts, unix.AT_SYMLINK_NOFOLLOW)
		case fi.Mode().IsRegular():
			key := [2]uint64{st.Dev, st.Ino}
			if first, ok := links[key]; ok && st.Nlink > 1 {
				return os.Link(first, out)
			}
			if err := copyFile(p, out); err != nil {
				return err
			}
			if st.Nlink > 1 {
				links[key] = out
			}
		default:
			return nil // device, fifo, socket
		}
		// chown clears set-user-id bits: the mode goes after it.
		if err := os.Lchown(out, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
		if err := unix.Fchmodat(unix.AT_FDCWD, out, mode, 0); err != nil {
			return err
		}
		if fi.IsDir() {
			// Filling a directory changes its times: set them last.
			dirs = append(dirs, dirTimes{out, ts})
			return nil
		}
		return unix.UtimesNanoAt(unix.AT_FDCWD, out, ts, unix.AT_SYMLINK_NOFOLLOW)
	})
	for i := len(dirs) - 1; err == nil && i >= 0; i-- {
		err = unix.UtimesNanoAt(unix.AT_FDCWD, dirs[i].p, dirs[i].ts, unix.AT_SYMLINK_NOFOLLOW)
	}
	if err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.OpenFile(src, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	return errors.Join(err, out.Close())
}
