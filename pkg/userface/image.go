package userface

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/image"
	"github.com/bulwark-sec/bulwark/pkg/image/snapshot"
	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/policy"
	"github.com/bulwark-sec/bulwark/pkg/rootless/mapped"
	"github.com/bulwark-sec/bulwark/pkg/userns"
)

// image mounts o.Image's snapshot for container id, owned by the container
// (unmounted and removed at its delete), and returns a copy of o that runs
// it: the snapshot as rootfs, the user namespace range the snapshot is
// idmapped to, and the image's Entrypoint/Cmd, Env, WorkingDir and User
// under what the person gave.
func (h *host) image(o *Options, id string) (*Options, error) {
	if err := checkStorageDriver(o.StorageDriver, h.rootless()); err != nil {
		return nil, err
	}
	in, err := image.Inspect(o.DataRoot, o.Image)
	if err != nil {
		return nil, err
	}
	if h.rootless() {
		return h.rootlessImage(o, id, in)
	}
	r := *o
	var rg userns.Range
	if r.UsernsRange == "" {
		pool := userns.Default()
		// Journaled first: see prepare.
		h.own(container.Owned{Kind: container.OwnedUsernsRange, Path: pool.Dir})
		if rg, err = pool.Allocate(h.stateDir); err != nil {
			return nil, fmt.Errorf("user namespace range: %w", err)
		}
		r.UsernsRange = fmt.Sprintf("%d:%d", rg.HostID, rg.Size)
	} else if rg, err = userns.ParseRange(r.UsernsRange); err != nil {
		return nil, fmt.Errorf("--userns-range %q: %w", r.UsernsRange, err)
	}
	// Under the data root, on disk; traversable so that the container's
	// root reaches its rootfs, not listable.
	parent := image.SnapshotsDir(r.DataRoot)
	for _, d := range []string{r.DataRoot, parent} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("image %s: snapshot: %w", r.Image, err)
		}
		if err := os.Chmod(d, 0o711); err != nil {
			return nil, fmt.Errorf("image %s: snapshot: %w", r.Image, err)
		}
	}
	sum := sha256.Sum256([]byte(h.stateDir))
	dir := filepath.Join(parent, id+"-"+hex.EncodeToString(sum[:4]))
	h.own(container.Owned{Kind: container.OwnedMount, Path: filepath.Join(dir, "volumes")},
		container.Owned{Kind: container.OwnedMount, Path: filepath.Join(dir, "rootfs")},
		container.Owned{Kind: container.OwnedDir, Path: dir},
		container.Owned{Kind: container.OwnedSharedDir, Path: parent})
	var dirs []string
	for _, l := range in.Layers {
		dirs = append(dirs, l.Dir)
	}
	if r.Rootfs, err = snapshot.Mount(dirs, dir, &snapshot.IDMap{HostID: rg.HostID, Size: rg.Size}); err != nil {
		return nil, fmt.Errorf("image %s: %w", r.Image, err)
	}
	c, err := useImage(&r, dir, in)
	if err != nil {
		return nil, err
	}
	if err := imageVolumes(&r, c, rg, filepath.Join(dir, "volumes")); err != nil {
		return nil, err
	}
	return &r, nil
}

// useImage marks the image's layers in use by the container's snapshot
// dir, so that rmi and prune keep them until the container's delete, and
// fills r from the image's config (applyImageConfig). It returns that
// config for what the caller does with the image's volumes.
func useImage(r *Options, dir string, in image.Inspection) (v1.Config, error) {
	var c v1.Config
	if err := image.MarkInUse(dir, in.Image.Layers); err != nil {
		return c, fmt.Errorf("image %s: %w", r.Image, err)
	}
	if in.Config != nil {
		c = in.Config.Config
	}
	return c, applyImageConfig(r, c)
}

// applyImageConfig fills what the person left unsaid from the image's
// config: the command (Entrypoint and Cmd, as Docker joins them), Env
// (under the person's -e), WorkingDir, User, StopSignal and ExposedPorts.
func applyImageConfig(r *Options, c v1.Config) error {
	ep := c.Entrypoint
	cmd := c.Cmd
	if r.Entrypoint != nil {
		// As docker run --entrypoint: the image's Cmd was written for
		// the image's Entrypoint, so it goes with it.
		ep, cmd = nil, nil
		if *r.Entrypoint != "" {
			ep = []string{*r.Entrypoint}
		}
	}
	if len(r.Args) > 0 {
		cmd = r.Args
	}
	r.Args = append(slices.Clone(ep), cmd...)
	if len(r.Args) == 0 {
		return fmt.Errorf("image %s has no Entrypoint or Cmd: give a command after --", r.Image)
	}
	r.Env = append(slices.Clone(c.Env), r.Env...)
	if r.Workdir == "" {
		r.Workdir = c.WorkingDir
	}
	if r.User == "" {
		r.User = c.User
	}
	if r.StopSignal == "" && c.StopSignal != "" {
		if _, err := container.ParseSignal(c.StopSignal); err != nil {
			return fmt.Errorf("image %s: config StopSignal: %w", r.Image, err)
		}
		r.StopSignal = c.StopSignal
	}
	ports := slices.Sorted(maps.Keys(c.ExposedPorts))
	for _, p := range ports {
		if _, err := parsePort(p); err != nil {
			return fmt.Errorf("image %s: config ExposedPorts %q: %w", r.Image, p, err)
		}
	}
	r.Expose = append(ports, r.Expose...)
	r.annotations = map[string]string{oci.AnnotationImage: r.Image}
	return nil
}

// imageVolumes gives each of the image's VOLUMEs a writable place, as
// people expect from Docker and Podman (a database image writes there
// even though the rootfs is read-only): with bind (the default) the
// directory of the container's own snapshot, bound onto itself writable,
// so it starts with the image's files and goes with the container (as an
// anonymous volume with docker run --rm); with tmpfs an empty tmpfs;
// with ignore nothing. A -v or --tmpfs at the same place wins. The
// paths are the image's, so hostile: resolved inside the snapshot.
// The binds come from volSrc, a second view of the snapshot, not from the
// rootfs itself: the init mounts the profile's tmpfs (/tmp, /run) over the
// rootfs first, which would hide a VOLUME below them.
func imageVolumes(r *Options, c v1.Config, rg userns.Range, volSrc string) error {
	srcMounted := false
	mode := r.ImageVolumes
	if mode == "ignore" {
		return nil
	}
	vols, err := imageVolumePaths(r, c)
	if err != nil {
		return err
	}
	for _, iv := range vols {
		dst, flag := iv.dst, iv.flag
		if mode == "tmpfs" {
			r.imageTmpfs = append(r.imageTmpfs, tmpfsFlag{flag: flag, dst: dst, size: int64(policy.DefaultTmpSize)})
			continue
		}
		if !srcMounted {
			if err := mountVolumeSource(r.Rootfs, volSrc); err != nil {
				return fmt.Errorf("%s: %w", flag, err)
			}
			srcMounted = true
		}
		src, err := securejoin.SecureJoin(volSrc, dst)
		if err != nil {
			return fmt.Errorf("%s: %w", flag, err)
		}
		if _, err := os.Lstat(src); errors.Is(err, os.ErrNotExist) {
			// Made through the overlay, so in the container's upper dir,
			// and given to the container's root.
			if err := os.MkdirAll(src, 0o755); err != nil {
				return fmt.Errorf("%s: %w", flag, err)
			}
			if err := os.Lchown(src, int(rg.HostID), int(rg.HostID)); err != nil {
				return fmt.Errorf("%s: %w", flag, err)
			}
		}
		if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
			return fmt.Errorf("%s: not a directory in the image", flag)
		}
		// Symlinks in the image's path were followed inside it: mount on
		// the directory they lead to, as the init refuses a symlink in
		// a mount's destination.
		in, err := filepath.Rel(volSrc, src)
		if err != nil || in == ".." || strings.HasPrefix(in, "../") {
			return fmt.Errorf("%s: resolves outside the image", flag)
		}
		r.imageBinds = append(r.imageBinds, volumeFlag{flag: flag, volume: volume{src: src, dst: "/" + in, noIdmap: true}})
	}
	return nil
}

type imageVolume struct{ flag, dst string }

// imageVolumePaths lists the image's VOLUMEs that no -v or --tmpfs takes,
// sorted, each with the flag-like name its errors carry.
func imageVolumePaths(r *Options, c v1.Config) ([]imageVolume, error) {
	taken := map[string]bool{}
	for _, v := range r.Volumes {
		if vol, err := parseVolume(v); err == nil {
			taken[filepath.Clean(vol.dst)] = true
		}
	}
	for _, t := range r.Tmpfs {
		if dst, _, _, err := parseTmpfs(t); err == nil {
			taken[filepath.Clean(dst)] = true
		}
	}
	var out []imageVolume
	for _, v := range slices.Sorted(maps.Keys(c.Volumes)) {
		dst := filepath.Clean(v)
		flag := fmt.Sprintf("image %s VOLUME %s", r.Image, v)
		if !filepath.IsAbs(dst) || dst == "/" {
			return nil, fmt.Errorf("%s: not an absolute path below /", flag)
		}
		if !taken[dst] {
			out = append(out, imageVolume{flag: flag, dst: dst})
		}
	}
	return out, nil
}

// mountVolumeSource binds the snapshot's rootfs at dir (imageVolumes).
func mountVolumeSource(rootfs, dir string) error {
	if err := os.Mkdir(dir, 0o711); err != nil {
		return err
	}
	if err := unix.Mount(rootfs, dir, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s at %s: %w", rootfs, dir, err)
	}
	return unix.Mount("", dir, "", unix.MS_PRIVATE, "")
}

// withoutRootfsIdmap drops the idmapped rootfs the user namespace asks for:
// the snapshot's layers are idmapped already, and overlayfs cannot be.
func withoutRootfsIdmap(s *specs.Spec) {
	cur := s.Annotations[oci.AnnotationRootfsOptions]
	if cur == "" {
		return
	}
	opts := slices.DeleteFunc(strings.Split(cur, ","), func(o string) bool { return o == "idmap" })
	if len(opts) == 0 {
		delete(s.Annotations, oci.AnnotationRootfsOptions)
		return
	}
	s.Annotations[oci.AnnotationRootfsOptions] = strings.Join(opts, ",")
}

// SpecImage makes a bundle of o.Image in bundle for runc's form (bulwark
// run -b, or any OCI runtime): bundle/rootfs, a plain copy of the image's
// merged layers owned as in the image, and the spec of o over it with the
// image's config applied as bulwark run IMAGE applies it. Its VOLUMEs
// become tmpfs mounts (the copy is the container's own, but a runtime
// given the bundle knows nothing of images). The caller writes the spec.
// Nothing is left in bundle on failure.
//
// Rootless (unprivileged), the copy is made by the store's mapped helper
// from the caller's own store, so its files keep the image's owners as the
// caller's containers see them (on the host, the caller's subordinate
// ids), and the spec maps the caller's rootless ranges, as a rootless
// `bulwark run IMAGE` does: `bulwark run -b` or `create` of the bundle by
// the same user runs it.
func SpecImage(o *Options, bundle string, unprivileged bool) (*specs.Spec, error) {
	in, err := image.Inspect(o.DataRoot, o.Image)
	if err != nil {
		return nil, err
	}
	rootfs := filepath.Join(bundle, "rootfs")
	if _, err := os.Lstat(rootfs); err == nil {
		return nil, fmt.Errorf("spec: %s already exists, remove it first", rootfs)
	}
	var dirs []string
	for _, l := range in.Layers {
		dirs = append(dirs, l.Dir)
	}
	if unprivileged {
		st, err := image.Open(o.DataRoot)
		if err != nil {
			return nil, err
		}
		if err := image.CheckOwners(st); err != nil {
			return nil, fmt.Errorf("image %s: %w", o.Image, err)
		}
	}
	parent := image.SnapshotsDir(o.DataRoot)
	perm := os.FileMode(0o711)
	if unprivileged {
		perm = 0o700
	}
	if err := os.MkdirAll(parent, perm); err != nil {
		return nil, fmt.Errorf("image %s: %w", o.Image, err)
	}
	tmp, err := os.MkdirTemp(parent, "spec-")
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", o.Image, err)
	}
	defer os.RemoveAll(tmp)
	// rmi and prune keep these layers while they are copied.
	if err := image.MarkInUse(tmp, in.Image.Layers); err != nil {
		return nil, fmt.Errorf("image %s: %w", o.Image, err)
	}
	removeRootfs := os.RemoveAll
	if unprivileged {
		removeRootfs = mapped.RemoveAll
		if err := mapped.CopyImage(dirs, rootfs); err != nil {
			return nil, fmt.Errorf("image %s: %w", o.Image, err)
		}
	} else {
		merged, err := snapshot.Mount(dirs, filepath.Join(tmp, "snapshot"), nil)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", o.Image, err)
		}
		err = snapshot.Copy(merged, rootfs)
		snapshot.Unmount(merged)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", o.Image, err)
		}
	}
	r := *o
	r.Rootfs, r.ImageVolumes = rootfs, "tmpfs"
	var c v1.Config
	if in.Config != nil {
		c = in.Config.Config
	}
	err = applyImageConfig(&r, c)
	if err == nil {
		err = imageVolumes(&r, c, userns.Range{}, "")
	}
	var s *specs.Spec
	if err == nil {
		s, err = Spec(&r)
	}
	if err == nil && unprivileged {
		// The copy's owners are the caller's mapping's: no idmapped
		// rootfs, and the very ranges the layers were unpacked with.
		withoutRootfsIdmap(s)
		err = rootlessUserNamespace(s)
		if err == nil {
			withoutLimits(s, os.Stderr)
		}
	}
	if err != nil {
		_ = removeRootfs(rootfs)
		return nil, err
	}
	s.Root.Path = "rootfs"
	return s, nil
}
