package userface

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/cleanup"
	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/policy"
	"github.com/bulwark-sec/bulwark/pkg/userns"
)

// Paths are where a person's run keeps its files on the host.
type Paths struct {
	// Bundle holds the generated config.json, for `bulwark state` and for
	// people debugging; the rootfs stays where the person has it. Its
	// parent, "@run" under --root, can never be mistaken for a container:
	// '@' is not allowed in an id.
	Bundle string
	// Dev holds private device nodes for a user-namespaced container
	// (owned by its root, so it can open them). It is on /dev, the one
	// filesystem certain to allow device nodes and to be reachable by an
	// unprivileged uid, and named after root and id so that two roots
	// never collide.
	Dev string
	// Files holds the files the container binds read-only (its
	// /etc/hostname, hosts, resolv.conf). The init mounts them as the
	// container's unprivileged root, which must reach them whatever
	// --root's permissions are, so they live outside it, under a
	// directory anyone may traverse but not list, named like Dev.
	Files string
	// Volumes holds the idmapped mounts of the -v directories, bound in
	// from there; made like Dev, passable only by the container's root.
	Volumes string
}

// PathsOf returns the paths of container id under the state root.
func PathsOf(root, id string) Paths {
	h := sha256.Sum256([]byte(root + "\x00" + id))
	name := hex.EncodeToString(h[:16])
	return Paths{
		Bundle:  filepath.Join(root, "@run", id),
		Dev:     "/dev/bulwark/" + name,
		Files:   "/run/bulwark-files/" + name,
		Volumes: "/run/bulwark-volumes/" + name,
	}
}

// pathsFor is PathsOf for rt: a rootless runtime can make nothing under
// /dev or /run, so its per-container directories live under its own
// --root (the caller's runtime directory), which the container's root, the
// caller's own uid, can reach. It makes no device nodes (Dev is unused).
func pathsFor(rt *container.Runtime, id string) Paths {
	p := PathsOf(rt.Root, id)
	if rt.Rootless {
		name := filepath.Base(p.Files)
		p.Dev = ""
		p.Files = filepath.Join(rt.Root, "@files", name)
		p.Volumes = filepath.Join(rt.Root, "@volumes", name)
	}
	return p
}

// host is what a run has made on the host so far.
type host struct {
	rt       *container.Runtime // releases what it owns
	stateDir string             // the container's, owner of its user namespace range
	owns     []container.Owned
	undo     *cleanup.Stack
	// fuse serves a rootless image snapshot with fuse-overlayfs when
	// the init asks for it; nil: the driver is the kernel's alone.
	fuse *fuseOverlayRun
	// etcRoot, when set, holds the image's /etc/passwd and /etc/group
	// where the rootfs is not mounted on the host (Options.lookupRoot).
	etcRoot string
	// journal, when set, is where own writes each record before the
	// thing is made (ownJournal), so that Remove finds what a run killed
	// before its container existed made.
	journal string
}

// rootless: the run is a rootless runtime's (pkg/rootless decided).
func (h *host) rootless() bool { return h.rt != nil && h.rt.Rootless }

// own records resources about to be made: the container will own them,
// and until it does the stack releases them in the order given.
func (h *host) own(rs ...container.Owned) {
	h.owns = append(h.owns, rs...)
	if h.journal != "" {
		// Best effort: the journal serves only a run killed before its
		// container exists; the stack below undoes every other ending.
		_ = appendJournal(h.journal, rs)
	}
	h.undo.Add(func() {
		for _, o := range rs {
			_ = h.rt.Release(o, h.stateDir)
		}
	})
}

// ownDir records dir and its parent, which other containers share.
func (h *host) ownDir(dir string) {
	h.own(container.Owned{Kind: container.OwnedDir, Path: dir},
		container.Owned{Kind: container.OwnedSharedDir, Path: filepath.Dir(dir)})
}

// prepare makes on the host what the container needs beside its state and
// completes s to use it: the user namespace range (unless the person gave
// one), the bundle, the device nodes, the /etc files and the idmapped
// volumes.
func (h *host) prepare(s *specs.Spec, p Paths, allocate bool, vols []volumeFlag) error {
	if allocate && h.rootless() {
		if err := rootlessUserNamespace(s); err != nil {
			return err
		}
	} else if allocate {
		pool := userns.Default()
		// Journaled before it is allocated, as everything own records: a
		// run killed between the two left a range rm -f never released.
		// Releasing a range the owner does not hold is a no-op.
		h.own(container.Owned{Kind: container.OwnedUsernsRange, Path: pool.Dir})
		rg, err := pool.Allocate(h.stateDir)
		if err != nil {
			return fmt.Errorf("user namespace range: %w", err)
		}
		if err := policy.WithUserNamespace(rg.HostID, rg.Size)(s); err != nil {
			return err
		}
	}
	// The bundle directory is the run's claim on its name (claimName).
	// Without root no node can be made: the init binds the host's.
	if !h.rootless() {
		if err := h.deviceNodes(s, p.Dev); err != nil {
			return fmt.Errorf("--device: %w", err)
		}
	}
	if err := h.etcFiles(s, p.Files); err != nil {
		return err
	}
	if err := h.userEntries(s, p.Files); err != nil {
		return err
	}
	if err := h.idmapVolumes(s, p.Volumes, vols); err != nil {
		return err
	}
	if writesRootfsThroughIdmap(s) {
		if err := noSetIDFiles(s, "the writable rootfs "+s.Root.Path); err != nil {
			return err
		}
	}
	b, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(p.Bundle, "config.json"), append(b, '\n'), 0o600)
}

// deviceNodes makes the nodes policy.DeviceNodes asks for in dir and binds
// them in.
func (h *host) deviceNodes(s *specs.Spec, dir string) error {
	nodes, err := policy.DeviceNodes(s)
	if err != nil || len(nodes) == 0 {
		return err
	}
	h.ownDir(dir)
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return fmt.Errorf("device nodes: %w", err)
	}
	// The nodes are owned by the container's root, which can chmod them
	// 0666 through its binds: search for others (0711) would let any local
	// user who knows the name (from --root and the id in ps) open the
	// device the container was given, a raw disk with rawdisk. Only the
	// group of the container's mapped root may pass.
	gid, ok := containerRootGID(s)
	if !ok {
		return fmt.Errorf("device nodes: the container's root group is not mapped (linux.gidMappings)")
	}
	if err := os.Chown(dir, 0, int(gid)); err != nil {
		return fmt.Errorf("device nodes in %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o710); err != nil {
		return fmt.Errorf("device nodes in %s: %w", dir, err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("device nodes in %s: %w", dir, err)
	}
	if st.Flags&unix.ST_NODEV != 0 {
		return fmt.Errorf("device nodes in %s: the filesystem is mounted nodev, so the container could not open them; /dev itself should never be nodev", dir)
	}
	srcs := make([]string, len(nodes))
	for i, n := range nodes {
		node := filepath.Join(dir, strconv.Itoa(i))
		if err := os.Remove(node); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if err := unix.Mknod(node, n.Mode, int(unix.Mkdev(uint32(n.Major), uint32(n.Minor)))); err != nil {
			return fmt.Errorf("linux.devices[%d] %s: mknod: %w", i, n.Path, err)
		}
		if err := os.Lchown(node, int(n.UID), int(n.GID)); err != nil {
			return fmt.Errorf("linux.devices[%d] %s: chown: %w", i, n.Path, err)
		}
		srcs[i] = node
	}
	return policy.WithDeviceNodes(srcs)(s)
}

// containerRootGID is the host gid of the container's group 0.
func containerRootGID(s *specs.Spec) (uint32, bool) {
	for _, m := range s.Linux.GIDMappings {
		if m.ContainerID == 0 && m.Size > 0 {
			return m.HostID, true
		}
	}
	return 0, false
}

// etcFiles writes the container's own /etc files (policy.EtcFiles) in dir
// and binds them in read-only.
func (h *host) etcFiles(s *specs.Spec, dir string) error {
	h.ownDir(dir)
	// Traversable, not listable: the init, as the container's mapped root,
	// opens these by name; nobody else learns which containers exist.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return fmt.Errorf("container /etc files: %w", err)
		}
		if err := os.Chmod(d, 0o711); err != nil {
			return fmt.Errorf("container /etc files: %w", err)
		}
	}
	for _, f := range policy.EtcFiles(s) {
		content := []byte(f.Content)
		if f.CopyOf != "" {
			b, err := os.ReadFile(f.CopyOf)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("container /etc/%s: reading the host's: %w", f.Name, err)
			}
			content = b
		}
		src := filepath.Join(dir, f.Name)
		if err := os.WriteFile(src, content, 0o644); err != nil {
			return fmt.Errorf("container /etc/%s: %w", f.Name, err)
		}
		if err := policy.WithMount(src, "/etc/"+f.Name, true)(s); err != nil {
			return fmt.Errorf("container /etc/%s: %w", f.Name, err)
		}
	}
	return nil
}

// ownJournal, in the run's bundle directory (its claim on the name), lists
// what the run made on the host before its container existed, one JSON
// array of records per own call, written before the thing is made. A run
// SIGKILLed in that window has no state to delete from and no stack left
// to unwind: without the journal an image's snapshot stayed mounted under
// the data root and its user namespace range stayed allocated, and `rm`
// could only free the name.
const ownJournal = "owned.journal"

func appendJournal(path string, rs []container.Owned) error {
	b, err := json.Marshal(rs)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// releaseJournal releases what the journal at path records, as the run's
// own stack would have: the last own call's records first, each call's in
// its order. A missing journal is a run that made nothing yet. It stops at
// the first failure, so that a retry finds the journal whole.
func releaseJournal(rt *container.Runtime, path, owner string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if lines[i] == "" {
			continue
		}
		var rs []container.Owned
		if err := json.Unmarshal([]byte(lines[i]), &rs); err != nil {
			// A line cut by the kill is the last one written: what it
			// names was not made yet.
			if i == len(lines)-1 {
				continue
			}
			return fmt.Errorf("%s line %d: %w", path, i+1, err)
		}
		for _, o := range rs {
			if err := rt.Release(o, owner); err != nil {
				return fmt.Errorf("releasing what a killed run made (%s): %w", path, err)
			}
		}
	}
	return nil
}
