// Package floorns is the host's side of the hardening floor's user
// namespace (pkg/policy, hardenuserns.go): for an engine's config without
// one, it takes a range from the user namespace pool and makes every bind
// mount's source appear inside with its on-disk ownership, through an
// idmapped mount the container owns; the rootfs is idmapped by the runtime
// (pkg/rootfs: directly, or for an engine's overlayfs over its idmapped
// layers).
//
// The threat is container root being host root: without a user namespace,
// any way out of the container's mount, PID or device view (a kernel bug,
// a bind of the wrong host path, an fd passed in) meets the full power of
// uid 0. With one, it meets an unprivileged uid that owns nothing on the
// host, while the container's files look as the image made them.
//
// Where the kernel cannot idmap what the container needs (the rootfs, or
// a filesystem under it), the container runs without a user namespace and
// the reason is logged; a bind source that cannot be idmapped is bound as
// it is, its files then owned by nobody inside. policy.json's
// "userns": "require" turns both into refusals.
package floorns

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/policy"
	"github.com/bulwark-sec/bulwark/pkg/rootfs"
	"github.com/bulwark-sec/bulwark/pkg/userns"
)

// nsFiles are the /proc/self/ns names of the namespaces a config may share
// with the host.
var nsFiles = map[specs.LinuxNamespaceType]string{
	specs.NetworkNamespace: "net", specs.PIDNamespace: "pid", specs.IPCNamespace: "ipc", specs.MountNamespace: "mnt",
}

// hostNS reports whether s's namespace of type t is the host's: not listed
// at all, or a path to the namespace the runtime itself is in.
func hostNS(s *specs.Spec) func(specs.LinuxNamespaceType) bool {
	return func(t specs.LinuxNamespaceType) bool {
		ns, ok := oci.Namespace(s, t)
		if !ok {
			return true
		}
		if ns.Path == "" {
			return false
		}
		var a, b unix.Stat_t
		if unix.Stat(ns.Path, &a) != nil || unix.Stat("/proc/self/ns/"+nsFiles[t], &b) != nil {
			return false
		}
		return a.Dev == b.Dev && a.Ino == b.Ino
	}
}

// Apply gives s the floor's user namespace where it can, and returns what
// it made on the host (for the container to own) and its decisions.
// stateDir is the container's state directory (the pool's owner of the
// range); the idmapped mounts live beside it. On error nothing is left.
func Apply(s *specs.Spec, cfg policy.HardenConfig, rootfsPath, stateDir string) (owns []container.Owned, ds []policy.Decision, err error) {
	if why := policy.FloorUsernsBlocker(s, cfg, hostNS(s)); why != "" {
		return none(cfg, why)
	}
	// Probe with the maps the container will have, before taking a range.
	probe := []specs.LinuxIDMapping{{ContainerID: 0, HostID: userns.DefaultBase, Size: policy.FloorUsernsSize}}
	nsfd, err := rootfs.UsernsFd(probe, probe)
	if err != nil {
		return nil, nil, fmt.Errorf("hardening floor: user namespace: %w", err)
	}
	defer unix.Close(nsfd)
	if err := rootfs.CheckIdmap(rootfsPath, nsfd); err != nil {
		return none(cfg, fmt.Sprintf("the rootfs cannot be idmapped on this kernel, so its files would belong to nobody inside: %v", err))
	}

	defer func() {
		if err != nil {
			// In order, as delete does: each mount is detached before its
			// mount point is removed, and nothing is removed recursively,
			// so a volume still mounted is never emptied.
			for _, o := range owns {
				_ = o.Release(stateDir)
			}
			owns = nil
		}
	}()
	pool := userns.Default()
	rg, err := pool.Allocate(stateDir)
	if err != nil {
		return nil, nil, fmt.Errorf("hardening floor: user namespace range: %w", err)
	}
	owns = append(owns, container.Owned{Kind: container.OwnedUsernsRange, Path: pool.Dir})
	if rg.Size < policy.FloorUsernsSize {
		return owns, nil, fmt.Errorf("hardening floor: the user namespace pool's ranges hold %d ids, fewer than the %d the floor maps", rg.Size, policy.FloorUsernsSize)
	}
	if err := policy.WithUserNamespace(rg.HostID, policy.FloorUsernsSize)(s); err != nil {
		return owns, nil, err
	}
	// Docker allows ping to every gid ("0 2147483647"); inside the user
	// namespace only its own gids can be named.
	if v, ok := s.Linux.Sysctl["net.ipv4.ping_group_range"]; ok {
		var lo, hi uint64
		if n, _ := fmt.Sscanf(v, "%d %d", &lo, &hi); n == 2 && hi >= policy.FloorUsernsSize {
			nv := fmt.Sprintf("%d %d", min(lo, policy.FloorUsernsSize-1), policy.FloorUsernsSize-1)
			s.Linux.Sysctl["net.ipv4.ping_group_range"] = nv
			ds = append(ds, policy.Decision{Field: `linux.sysctl["net.ipv4.ping_group_range"]`, Action: fmt.Sprintf("set to %q", nv),
				Reason: "inside the user namespace only its own gids exist"})
		}
	}
	ds = append(ds, policy.Decision{Field: "linux.namespaces", Action: fmt.Sprintf("added a user namespace: container ids 0-%d are host ids %d-%d", policy.FloorUsernsSize-1, rg.HostID, uint64(rg.HostID)+policy.FloorUsernsSize-1),
		Reason: "container root must not be host root; the rootfs and bind mounts are idmapped, so files keep the owners they have on disk"})

	maps := s.Linux.UIDMappings
	mnsfd, err := rootfs.UsernsFd(maps, maps)
	if err != nil {
		return owns, nil, err
	}
	defer unix.Close(mnsfd)
	// The init reaches the rootfs and the bind sources by path after
	// entering the user namespace, as the container's root: engines keep
	// them below directories only the host's root may traverse
	// (/var/lib/docker, containerd's state). So they are bound where the
	// container's root can reach them and nobody can list them.
	dir := IdmapDir(stateDir)
	if err := os.MkdirAll(filepath.Dir(dir), 0o711); err != nil {
		return owns, nil, fmt.Errorf("hardening floor: %w", err)
	}
	if err := os.Mkdir(dir, 0o711); err != nil {
		return owns, nil, fmt.Errorf("hardening floor: %w", err)
	}
	defer func() {
		// Last, once every mount point in it is gone.
		owns = append(owns, container.Owned{Kind: container.OwnedSharedDir, Path: dir})
	}()
	root := filepath.Join(dir, "rootfs")
	if err := os.Mkdir(root, 0o711); err != nil {
		return owns, nil, fmt.Errorf("hardening floor: %w", err)
	}
	owns = append(owns, container.Owned{Kind: container.OwnedMount, Path: root}, container.Owned{Kind: container.OwnedSharedDir, Path: root})
	// An engine's overlay stays an overlay mount point here, so the
	// runtime still mounts it again over idmapped layers.
	if err := unix.Mount(rootfsPath, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return owns, nil, fmt.Errorf("hardening floor: binding the rootfs %s where the container's root reaches it: %w", rootfsPath, err)
	}
	s.Root.Path = root
	for i := range s.Mounts {
		m := &s.Mounts[i]
		if !isBind(*m) || !filepath.IsAbs(m.Source) {
			continue
		}
		field := fmt.Sprintf("mounts[%d] (%s)", i, m.Destination)
		if err := rootfs.CheckIdmap(m.Source, mnsfd); err != nil {
			if cfg.Userns == policy.UsernsRequire {
				return owns, nil, fmt.Errorf("hardening floor: %s: %w", field, err)
			}
			ds = append(ds, policy.Decision{Field: field, Action: "bound without an idmap",
				Reason: fmt.Sprintf("%v; its files belong to nobody inside the container's user namespace", err)})
			continue
		}
		target := filepath.Join(dir, strconv.Itoa(i))
		if err := mkTarget(m.Source, target); err != nil {
			return owns, nil, fmt.Errorf("hardening floor: %s: %w", field, err)
		}
		// Detach, then remove the empty mount point (os.Remove: a point
		// still mounted stays, with what is under it).
		owns = append(owns, container.Owned{Kind: container.OwnedMount, Path: target}, container.Owned{Kind: container.OwnedSharedDir, Path: target})
		if err := rootfs.IdmapOntoVia(m.Source, target, mnsfd); err != nil {
			return owns, nil, fmt.Errorf("hardening floor: %s: %w", field, err)
		}
		m.Source = target
	}
	return owns, ds, nil
}

// IdmapDir is where a container's idmapped bind sources are mounted: a name
// derived from its state directory under a root-owned, traversable parent.
func IdmapDir(stateDir string) string {
	h := sha256.Sum256([]byte("floor\x00" + stateDir))
	return filepath.Join(IdmapRoot, hex.EncodeToString(h[:16]))
}

// IdmapRoot holds the floor's idmapped bind sources (the person face's
// volumes are beside it).
const IdmapRoot = "/run/bulwark-floor"

// none is the answer for a config that keeps the host's user namespace.
func none(cfg policy.HardenConfig, why string) ([]container.Owned, []policy.Decision, error) {
	if cfg.Userns == policy.UsernsRequire {
		return nil, nil, fmt.Errorf("hardening floor: no user namespace can be added (%s), and policy.json says \"userns\": %q: %w", why, policy.UsernsRequire, ErrNoUserns)
	}
	return nil, []policy.Decision{{Field: "linux.namespaces", Action: "left without a user namespace", Reason: why}}, nil
}

// ErrNoUserns is wrapped by the refusal of a config that cannot have the
// floor's user namespace when the policy requires one.
var ErrNoUserns = errors.New("user namespace required by the hardening policy")

func isBind(m specs.Mount) bool {
	return m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
}

// mkTarget makes the mount point for source's idmapped clone: a directory
// or an empty file.
func mkTarget(source, target string) error {
	fi, err := os.Stat(source)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return os.Mkdir(target, 0o700)
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}
