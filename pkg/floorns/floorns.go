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
// it made on the host (for the container to own) and its decisions. A
// config that joins namespaces another user namespace owns (a pod's
// container, whose sandbox got one) joins that one (join.go).
// stateDir is the container's state directory (the pool's owner of the
// range); the idmapped mounts live beside it. On error nothing is left.
func Apply(s *specs.Spec, cfg policy.HardenConfig, rootfsPath, stateDir string) (owns []container.Owned, ds []policy.Decision, err error) {
	if why := policy.FloorUsernsBlocker(s, cfg, hostNS(s)); why != "" {
		return none(cfg, why)
	}
	pod, why, err := joinedOwner(s)
	if err != nil {
		return nil, nil, err
	}
	defer pod.close()
	if why == "" && pod != nil {
		why = pod.blocker(s)
	}
	if why != "" {
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
	// The init reaches the rootfs and the bind sources by path after
	// entering the user namespace, as the container's root: engines keep
	// them below directories only the host's root may traverse
	// (/var/lib/docker, containerd's state). So they are bound where the
	// container's root can reach them and nobody else can: dir is
	// root's, searchable by the group of the container's root alone
	// (below, once the maps are known). Searchable by all, any local
	// user who computed the name from the container's id walked into
	// its rootfs and volumes, around the engine's own 0700 directories.
	dir := IdmapDir(stateDir)
	if err := os.MkdirAll(filepath.Dir(dir), 0o711); err != nil {
		return owns, nil, fmt.Errorf("hardening floor: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return owns, nil, fmt.Errorf("hardening floor: %w", err)
	}
	defer func() {
		// Last, once every mount point in it is gone.
		owns = append(owns, container.Owned{Kind: container.OwnedSharedDir, Path: dir})
	}()
	if pod != nil {
		owns, ds, err = joinPod(s, pod, dir, owns)
	} else {
		owns, ds, err = newUserns(s, stateDir, owns)
	}
	if err != nil {
		return owns, nil, err
	}
	if err := searchableBy(dir, s.Linux.GIDMappings); err != nil {
		return owns, nil, fmt.Errorf("hardening floor: %w", err)
	}
	// Docker allows ping to every gid ("0 2147483647"); inside the user
	// namespace only its own gids can be named.
	if v, ok := s.Linux.Sysctl["net.ipv4.ping_group_range"]; ok {
		var lo, hi uint64
		size := mappedSize(s.Linux.GIDMappings)
		if n, _ := fmt.Sscanf(v, "%d %d", &lo, &hi); n == 2 && hi >= size && size > 0 {
			nv := fmt.Sprintf("%d %d", min(lo, size-1), size-1)
			s.Linux.Sysctl["net.ipv4.ping_group_range"] = nv
			ds = append(ds, policy.Decision{Field: `linux.sysctl["net.ipv4.ping_group_range"]`, Action: fmt.Sprintf("set to %q", nv),
				Reason: "inside the user namespace only its own gids exist"})
		}
	}

	maps := s.Linux.UIDMappings
	mnsfd, err := rootfs.UsernsFd(maps, s.Linux.GIDMappings)
	if err != nil {
		return owns, nil, err
	}
	defer unix.Close(mnsfd)
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
		target := filepath.Join(dir, strconv.Itoa(i))
		if err := mkTarget(m.Source, target); err != nil {
			return owns, nil, fmt.Errorf("hardening floor: %s: %w", field, err)
		}
		// Detach, then remove the empty mount point (os.Remove: a point
		// still mounted stays, with what is under it).
		owns = append(owns, container.Owned{Kind: container.OwnedMount, Path: target}, container.Owned{Kind: container.OwnedSharedDir, Path: target})
		// Tried rather than probed: only the attempt knows (a source that
		// is an overlayfs mount point has layers that could be idmapped,
		// but the overlay itself cannot).
		err := rootfs.IdmapOntoVia(m.Source, target, mnsfd)
		if errors.Is(err, rootfs.ErrNoIdmap) && cfg.Userns != policy.UsernsRequire {
			ds = append(ds, policy.Decision{Field: field, Action: "bound without an idmap",
				Reason: fmt.Sprintf("%v; its files belong to nobody inside the container's user namespace", err)})
			// Still bound here: its source may be below a directory the
			// container's root cannot traverse either.
			flags := uintptr(unix.MS_BIND)
			if slices.Contains(m.Options, "rbind") {
				flags |= unix.MS_REC
			}
			if err = unix.Mount(m.Source, target, "", flags, ""); err != nil {
				err = fmt.Errorf("binding %s where the container's root reaches it: %w", m.Source, err)
			}
		}
		if err != nil {
			return owns, nil, fmt.Errorf("hardening floor: %s: %w", field, err)
		}
		m.Source = target
	}
	return owns, ds, nil
}

// newUserns gives s a user namespace of its own, with a range from the
// pool.
func newUserns(s *specs.Spec, stateDir string, owns []container.Owned) ([]container.Owned, []policy.Decision, error) {
	pool := userns.Default()
	rg, err := pool.Allocate(stateDir)
	if err != nil {
		return owns, nil, fmt.Errorf("hardening floor: user namespace range: %w", err)
	}
	owns = append(owns, container.Owned{Kind: container.OwnedUsernsRange, Path: pool.Dir})
	if rg.Size < policy.FloorUsernsSize {
		return owns, nil, fmt.Errorf("hardening floor: the user namespace pool's ranges hold %d ids, fewer than the %d the floor maps", rg.Size, policy.FloorUsernsSize)
	}
	if err := policy.WithUserNamespace(rg.HostID, policy.FloorUsernsSize)(s); err != nil {
		return owns, nil, err
	}
	return owns, []policy.Decision{{Field: "linux.namespaces", Action: fmt.Sprintf("added a user namespace: container ids 0-%d are host ids %d-%d", policy.FloorUsernsSize-1, rg.HostID, uint64(rg.HostID)+policy.FloorUsernsSize-1),
		Reason: "container root must not be host root; the rootfs and bind mounts are idmapped, so files keep the owners they have on disk"}}, nil
}

// joinPod puts s in pod's user namespace, pinned by a bind mount of it in
// dir: the config then names a file that stays that user namespace however
// long the process in it lives, where /proc/PID/ns/user could name another
// one (a host's) once PID is reused.
func joinPod(s *specs.Spec, pod *owner, dir string, owns []container.Owned) ([]container.Owned, []policy.Decision, error) {
	pin := filepath.Join(dir, "user")
	f, err := os.OpenFile(pin, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o400)
	if err != nil {
		return owns, nil, fmt.Errorf("hardening floor: %w", err)
	}
	f.Close()
	owns = append(owns, container.Owned{Kind: container.OwnedMount, Path: pin}, container.Owned{Kind: container.OwnedSharedDir, Path: pin})
	if err := unix.Mount(fmt.Sprintf("/proc/self/fd/%d", pod.fd), pin, "", unix.MS_BIND, ""); err != nil {
		return owns, nil, fmt.Errorf("hardening floor: pinning the pod's user namespace at %s: %w", pin, err)
	}
	if err := policy.WithJoinedUserNamespace(pin, pod.uid, pod.gid)(s); err != nil {
		return owns, nil, fmt.Errorf("hardening floor: %w", err)
	}
	return owns, []policy.Decision{{Field: "linux.namespaces", Action: fmt.Sprintf("joined the user namespace of process %d (uid_map %s)", pod.pid, mapsString(pod.uid)),
		Reason: "the namespaces the config joins (a pod's) belong to it, and only its root may act in them; the rootfs and bind mounts are idmapped through its maps"}}, nil
}

// searchableBy lets the host group that container gid 0 maps to (and
// nobody else but root) search dir.
func searchableBy(dir string, gids []specs.LinuxIDMapping) error {
	for _, m := range gids {
		if m.ContainerID == 0 && m.Size > 0 {
			if err := os.Chown(dir, 0, int(m.HostID)); err != nil {
				return err
			}
			return os.Chmod(dir, 0o710)
		}
	}
	return fmt.Errorf("%s: container gid 0 is not mapped", dir)
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
