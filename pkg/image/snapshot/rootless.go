package snapshot

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Unprivileged prepares a rootless container's snapshot under dir (which
// must not exist): its upper and work directories and the empty rootfs
// mount point, all the caller's; and returns the overlayfs options for
// the layers (bottom first) that the container's init mounts at rootfs in
// its own user namespace (pkg/rootfs, oci.AnnotationRootfsOverlay). No
// process outside that namespace could mount it: overlayfs is mountable
// without privilege on the host only inside a user namespace, and only
// there is the mount visible. The layers are plain lowers, not idmapped
// clones: the caller, who unpacked them, is the container's root.
func Unprivileged(layers []string, dir string) (rootfs, options string, err error) {
	if len(layers) == 0 {
		return "", "", errors.New("snapshot: an image without layers")
	}
	for _, p := range append(append([]string(nil), layers...), dir) {
		// overlayfs's option syntax has no escapes for these.
		if strings.ContainsAny(p, ",:\\\n") {
			return "", "", fmt.Errorf("snapshot: %q holds a ',', ':' or '\\', which overlayfs options cannot carry: choose a --data-root without them", p)
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("snapshot %s: %w", dir, err)
	}
	upper, work, rootfs := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "rootfs")
	for _, d := range []string{upper, work, rootfs} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return "", "", fmt.Errorf("snapshot %s: %w", d, err)
		}
	}
	top, err := os.Stat(layers[len(layers)-1])
	if err != nil {
		return "", "", fmt.Errorf("snapshot: layer %s: %w", layers[len(layers)-1], err)
	}
	if err := os.Chmod(upper, top.Mode().Perm()); err != nil {
		return "", "", err
	}
	lowers := make([]string, 0, len(layers))
	for i := len(layers) - 1; i >= 0; i-- {
		lowers = append(lowers, layers[i])
	}
	return rootfs, "lowerdir=" + strings.Join(lowers, ":") + ",upperdir=" + upper + ",workdir=" + work, nil
}

// maxLookupFile caps what MergedFiles copies of one file.
const maxLookupFile = 1 << 20

// MergedFiles copies the files rels (relative paths) as the merged view
// of layers (bottom first) shows them into dst, without mounting it: the
// topmost layer that has a regular file at the path wins; a whiteout
// (a 0/0 character device), anything that is not a regular file, or an
// opaque directory on the way hides the layers below. For reading
// /etc/passwd and /etc/group of a snapshot only the container can mount.
func MergedFiles(layers []string, dst string, rels ...string) error {
	for _, rel := range rels {
		for i := len(layers) - 1; i >= 0; i-- {
			p := filepath.Join(layers[i], rel)
			fi, err := os.Lstat(p)
			if errors.Is(err, os.ErrNotExist) {
				if opaqueOnPath(layers[i], rel) {
					break
				}
				continue
			}
			if err != nil {
				return fmt.Errorf("snapshot: %s: %w", p, err)
			}
			if !fi.Mode().IsRegular() {
				break
			}
			if err := copyCapped(p, filepath.Join(dst, rel)); err != nil {
				return err
			}
			break
		}
	}
	return nil
}

func opaqueOnPath(layer, rel string) bool {
	for d := filepath.Dir(rel); d != "." && d != "/"; d = filepath.Dir(d) {
		b := make([]byte, 1)
		if n, err := unix.Lgetxattr(filepath.Join(layer, d), "user.overlay.opaque", b); err == nil && n == 1 && b[0] == 'y' {
			return true
		}
	}
	return false
}

func copyCapped(src, dst string) error {
	f, err := os.OpenFile(src, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	defer f.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if _, err := io.Copy(out, io.LimitReader(f, maxLookupFile)); err != nil {
		out.Close()
		return fmt.Errorf("snapshot: copying %s: %w", src, err)
	}
	return out.Close()
}
