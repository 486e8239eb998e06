package rootfs

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// copyUp copies the tree at src (the directory a tmpfs now covers, reached
// through an fd opened before the mount) into dst (the new tmpfs), keeping
// modes, owners and symlinks as they are. Symlinks are copied, never
// followed, so a link in the image cannot pull host files into the tmpfs;
// device nodes and sockets are skipped, as the image has no business
// smuggling devices through a tmpfs.
func copyUp(src, dst string) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		s, d := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		var st unix.Stat_t
		if err := unix.Lstat(s, &st); err != nil {
			return err
		}
		mode := st.Mode & 0o7777
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if err := unix.Mkdir(d, mode); err != nil && err != unix.EEXIST {
				return fmt.Errorf("mkdir %s: %w", e.Name(), err)
			}
			if err := copyUp(s, d); err != nil {
				return err
			}
		case unix.S_IFREG:
			if err := copyRegular(s, d, mode); err != nil {
				return fmt.Errorf("copy %s: %w", e.Name(), err)
			}
		case unix.S_IFLNK:
			link, err := os.Readlink(s)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, d); err != nil {
				return err
			}
		default:
			continue
		}
		if err := unix.Lchown(d, int(st.Uid), int(st.Gid)); err != nil {
			return fmt.Errorf("chown %s: %w", e.Name(), err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			// chown clears set-id bits; put the image's mode back.
			if err := unix.Chmod(d, mode); err != nil {
				return err
			}
		}
	}
	return nil
}

func copyRegular(src, dst string, mode uint32) error {
	in, err := os.OpenFile(src, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, os.FileMode(mode&0o777))
	if err != nil {
		return err
	}
	if _, err := out.ReadFrom(in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
