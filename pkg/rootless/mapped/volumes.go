package mapped

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/image/snapshot"
)

type volumesArg struct {
	Layers []string `json:"layers"` // bottom first
	Paths  []string `json:"paths"`
	Dst    string   `json:"dst"`
}

// Volumes fills one fresh directory per image VOLUME, dst/0, dst/1, ...
// (dst exists and is the caller's), with what the image holds at that
// path, owners, modes and times kept, as Podman fills an anonymous volume:
// the layers (bottom first) are merged by a read-only overlay mounted in
// the helper's own mount namespace, so the image's whiteouts and opaque
// directories count. A path missing from the image gets an empty
// directory of the container's root. It returns each volume's place
// inside the container: the path with the image's symlinks resolved
// within the image, so that a bind never lands through a symlink.
func Volumes(layers, paths []string, dst string) ([]string, error) {
	res, err := run(opVolumes, volumesArg{Layers: layers, Paths: paths, Dst: dst}, nil)
	if err != nil {
		return nil, err
	}
	if res.Error != "" {
		return nil, errors.New(res.Error)
	}
	if len(res.Paths) != len(paths) {
		return nil, fmt.Errorf("%w: volumes: %d paths back for %d", ErrHelper, len(res.Paths), len(paths))
	}
	return res.Paths, nil
}

func serveVolumes(arg string) result {
	var a volumesArg
	if err := json.Unmarshal([]byte(arg), &a); err != nil {
		return result{Error: err.Error()}
	}
	merged, done, err := mergeLayers(a.Layers, filepath.Join(a.Dst, ".merged"))
	if err != nil {
		return result{Error: "volumes: " + err.Error()}
	}
	defer done()
	var res result
	for i, p := range a.Paths {
		src, err := securejoin.SecureJoin(merged, p)
		if err != nil {
			return result{Error: fmt.Sprintf("VOLUME %s: %v", p, err)}
		}
		rel, err := filepath.Rel(merged, src)
		if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
			return result{Error: fmt.Sprintf("VOLUME %s: resolves outside the image, or to its root", p)}
		}
		to := filepath.Join(a.Dst, strconv.Itoa(i))
		fi, err := os.Lstat(src)
		switch {
		case errors.Is(err, os.ErrNotExist):
			err = os.Mkdir(to, 0o755)
		case err != nil:
		case !fi.IsDir():
			err = fmt.Errorf("not a directory in the image")
		default:
			err = snapshot.Copy(src, to)
		}
		if err != nil {
			return result{Error: fmt.Sprintf("VOLUME %s: %v", p, err)}
		}
		res.Paths = append(res.Paths, "/"+rel)
	}
	return res
}

// mergeLayers shows layers (bottom first) as the image's one tree: the
// only layer itself, or a read-only overlay of them mounted at at (made
// here, removed by done) in the helper's own mount namespace, which
// nobody else sees and which goes with the helper. The image's whiteouts
// and opaque directories count.
func mergeLayers(layers []string, at string) (merged string, done func(), err error) {
	if len(layers) == 0 {
		return "", nil, errors.New("an image without layers")
	}
	if len(layers) == 1 {
		return layers[0], func() {}, nil
	}
	if err := os.Mkdir(at, 0o700); err != nil {
		return "", nil, err
	}
	lowers := make([]string, 0, len(layers))
	for i := len(layers) - 1; i >= 0; i-- {
		lowers = append(lowers, layers[i])
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		os.Remove(at)
		return "", nil, fmt.Errorf("make mounts private: %w", err)
	}
	opts := "lowerdir=" + strings.Join(lowers, ":") + ",userxattr"
	if err := unix.Mount("overlay", at, "overlay", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		os.Remove(at)
		return "", nil, fmt.Errorf("mount the image's layers read-only (overlay): %w", err)
	}
	return at, func() {
		_ = unix.Unmount(at, unix.MNT_DETACH)
		_ = os.Remove(at)
	}, nil
}

type copyArg struct {
	Layers []string `json:"layers"` // bottom first
	Dst    string   `json:"dst"`
}

// CopyImage writes a plain copy of the image whose layers (bottom first)
// are given into dst, which must not exist and whose parent is the
// caller's: a bundle's rootfs that keeps the image's owners as the
// caller's rootless containers see them (on the host, the caller's
// subordinate ids), as snapshot.Copy makes root's. On failure nothing is
// left at dst.
func CopyImage(layers []string, dst string) error {
	res, err := run(opCopy, copyArg{Layers: layers, Dst: dst}, nil)
	if err != nil {
		return err
	}
	if res.Error != "" {
		return errors.New(res.Error)
	}
	return nil
}

func serveCopy(arg string) result {
	var a copyArg
	if err := json.Unmarshal([]byte(arg), &a); err != nil {
		return result{Error: err.Error()}
	}
	// The overlay's mount point goes beside dst, in the caller's
	// directory, never inside the copy.
	merged, done, err := mergeLayers(a.Layers, a.Dst+".merging")
	if err != nil {
		return result{Error: fmt.Sprintf("copy of the image to %s: %v", a.Dst, err)}
	}
	defer done()
	if err := snapshot.Copy(merged, a.Dst); err != nil {
		return result{Error: err.Error()}
	}
	return result{}
}
