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
	if len(a.Layers) == 0 {
		return result{Error: "volumes: an image without layers"}
	}
	merged := a.Layers[0]
	if len(a.Layers) > 1 {
		merged = filepath.Join(a.Dst, ".merged")
		if err := os.Mkdir(merged, 0o700); err != nil {
			return result{Error: fmt.Sprintf("volumes: %v", err)}
		}
		defer os.Remove(merged)
		lowers := make([]string, 0, len(a.Layers))
		for i := len(a.Layers) - 1; i >= 0; i-- {
			lowers = append(lowers, a.Layers[i])
		}
		// Our own mount namespace: nobody else sees it, and it goes
		// with this process.
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			return result{Error: fmt.Sprintf("volumes: make mounts private: %v", err)}
		}
		opts := "lowerdir=" + strings.Join(lowers, ":") + ",userxattr"
		if err := unix.Mount("overlay", merged, "overlay", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
			return result{Error: fmt.Sprintf("volumes: mount the image's layers read-only (overlay): %v", err)}
		}
		defer unix.Unmount(merged, unix.MNT_DETACH)
	}
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
