package container

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/procstat"
	"github.com/bulwark-sec/bulwark/pkg/rootless/mapped"
	"github.com/bulwark-sec/bulwark/pkg/safefile"
	"github.com/bulwark-sec/bulwark/pkg/userns"
)

// OwnedKind says how delete removes an Owned resource.
type OwnedKind string

const (
	// OwnedDir is a directory removed with everything in it.
	OwnedDir OwnedKind = "dir"
	// OwnedMappedDir is a rootless container's directory whose files may
	// belong to the caller's subordinate ids (an image snapshot's upper
	// dir, its volumes): removed as the caller, then what is left in the
	// caller's rootless user namespace (pkg/rootless/mapped).
	OwnedMappedDir OwnedKind = "mappedDir"
	// OwnedSharedDir is a parent several containers' directories share:
	// removed only once it is empty.
	OwnedSharedDir OwnedKind = "sharedDir"
	// OwnedMount is a mount point on the host (an image snapshot's
	// overlay): detached, so that the OwnedDir after it removes only files.
	OwnedMount OwnedKind = "mount"
	// OwnedUsernsRange is a host id range of the userns pool whose
	// directory is Path, allocated to the container's state directory.
	OwnedUsernsRange OwnedKind = "usernsRange"
	// OwnedNetwork is a network attachment whose record is Path. Only a
	// Releaser given to the Runtime can undo it (pkg/network): the
	// lifecycle code never links the networking code itself.
	OwnedNetwork OwnedKind = "network"
	// OwnedProcessGroup is a process group of helpers on the host (a
	// user-mode network's relay) whose record, "PGID STARTTIME", is the
	// file Path: its leader's start time tells it from a later group of
	// the same number. Killed with SIGKILL; a missing record is nothing to
	// kill.
	OwnedProcessGroup OwnedKind = "processGroup"
)

// Releaser removes an Owned resource of a kind whose undo lives outside
// pkg/container; owner is the container's state directory.
type Releaser func(o Owned, owner string) error

// Owned is a host resource made for a container outside its state directory
// by whoever set the container up (the person face, pkg/userface). State
// records the list at create, before the init exists, so that delete, and
// create's own rollback, remove it without knowing who made it or why.
type Owned struct {
	Kind OwnedKind `json:"kind"`
	Path string    `json:"path"`
}

// Release removes o; owner is the container's state directory. Removing
// what is already gone is not an error, so the maker's own rollback and a
// delete may both run it.
func (o Owned) Release(owner string) error {
	// state.json is ours, but a path that is not absolute, or is the
	// root, could only come from a bug: never remove what it would name.
	if !filepath.IsAbs(o.Path) || filepath.Clean(o.Path) == "/" {
		return fmt.Errorf("owned %s %q: not an absolute path below /", o.Kind, o.Path)
	}
	switch o.Kind {
	case OwnedDir:
		// A maker killed midway may have left mounts below (an image
		// snapshot's attached layers): removing through one would
		// delete what it shows, a layer other containers share.
		if err := detachAtOrBelow(o.Path); err != nil {
			return err
		}
		return removeAll(o.Path)
	case OwnedMappedDir:
		if err := removeAll(o.Path); err == nil || !errors.Is(err, os.ErrPermission) {
			return err
		}
		return mapped.RemoveAll(o.Path)
	case OwnedSharedDir:
		// Another container's entries keep it; that is not an error.
		_ = os.Remove(o.Path)
		return nil
	case OwnedUsernsRange:
		return (&userns.Pool{Dir: o.Path}).Release(owner)
	case OwnedProcessGroup:
		return KillRecordedGroup(o.Path)
	case OwnedMount:
		err := unix.Unmount(o.Path, unix.MNT_DETACH)
		if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			return nil // not (or no longer) a mount point
		}
		return fmt.Errorf("owned mount %s: %w", o.Path, err)
	}
	return fmt.Errorf("owned %q: unknown kind %q (a kind another package releases needs its Releaser in the Runtime)", o.Path, o.Kind)
}

// Release removes o with the Releaser the Runtime has for its kind, or
// with Owned.Release (also for a nil Runtime).
func (r *Runtime) Release(o Owned, owner string) error {
	if r == nil {
		return o.Release(owner)
	}
	if f := r.Releasers[o.Kind]; f != nil {
		return f(o, owner)
	}
	return o.Release(owner)
}

// detachAtOrBelow detaches every mount at or below dir, deepest first,
// and fails rather than leave one in place. Only listed mount points are
// unmounted: without root, unmounting anything else is EPERM.
func detachAtOrBelow(dir string) error {
	real, err := filepath.EvalSymlinks(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("owned dir %s: %w", dir, err)
	}
	ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(real))
	if err != nil {
		return fmt.Errorf("owned dir %s: reading the mount table: %w", dir, err)
	}
	sort.Slice(ms, func(i, j int) bool { return len(ms[i].Mountpoint) > len(ms[j].Mountpoint) })
	for _, m := range ms {
		err := unix.Unmount(m.Mountpoint, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
		if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("owned dir %s: detaching the mount at %s before removing it: %w", dir, m.Mountpoint, err)
		}
	}
	return nil
}

// removeAll is os.RemoveAll that also removes directories the caller owns
// but may not write or search: without root, an overlay's work/work
// (which the kernel makes with mode 0) is otherwise left behind.
func removeAll(path string) error {
	err := os.RemoveAll(path)
	if err == nil || !errors.Is(err, os.ErrPermission) {
		return err
	}
	_ = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(path)
}

// RecordGroup writes the record of process group pgid (its leader's pid)
// for OwnedProcessGroup. The record appears whole or not at all: a writer
// killed between the create and the write left an empty one, which delete
// could not read, so the container could never be removed.
func RecordGroup(path string, pgid int) error {
	start, _, err := procStat(pgid)
	if err != nil {
		return fmt.Errorf("recording process group %d: %w", pgid, err)
	}
	return safefile.WriteAtomic(path, []byte(fmt.Sprintf("%d %d\n", pgid, start)), 0o600)
}

// KillRecordedGroup kills the process group a RecordGroup record names,
// unless its number now belongs to another process: the leader's pid is
// that of a process started at another time. A leader gone while others
// of its group live keeps the number from reuse, so the group is killed
// then too.
func KillRecordedGroup(path string) error {
	pgid, live, err := recordedGroup(path)
	if err != nil || !live {
		return err
	}
	if err := unix.Kill(-pgid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("killing process group %d (%s): %w", pgid, path, err)
	}
	return nil
}

// recordedGroup reads a RecordGroup record and tells whether its group
// may still have processes of its own: its leader is the recorded
// process, or is gone (its number stays reserved while the group has
// members, so a process of that number is the leader of a later group
// only once ours is empty). A missing record is no group.
func recordedGroup(path string) (pgid int, live bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	var start uint64
	if _, err := fmt.Sscanf(string(b), "%d %d", &pgid, &start); err != nil || pgid <= 1 {
		return 0, false, fmt.Errorf("process group record %s: %q is not \"PGID STARTTIME\"", path, b)
	}
	if now, _, err := procStat(pgid); err == nil && now != start {
		return pgid, false, nil
	}
	return pgid, unix.Kill(-pgid, 0) == nil, nil
}

// CollectGroups kills the recorded helper process groups
// (OwnedProcessGroup: a user-mode network's keeper, watcher and relay) of
// the containers under the root whose init is gone and whose group still
// has a process that is not a zombie. The keeper kills the relay when the
// init ends, and the watcher kills it when the keeper dies, so a group is
// left only where neither could act (both stopped, or the watcher killed
// before the keeper); without this it would wait for a delete that may
// never come for a stopped container nobody removes. It returns the ids of
// the containers whose groups it killed; a group whose number now belongs
// to another process is never signalled.
func (r *Runtime) CollectGroups() ([]string, error) {
	states, err := r.List()
	if err != nil {
		return nil, err
	}
	var ids []string
	var errs []error
	for _, s := range states {
		if r.Status(s) != specs.StateStopped {
			continue
		}
		killed := false
		for _, o := range s.Owns {
			if o.Kind != OwnedProcessGroup {
				continue
			}
			pgid, live, err := recordedGroup(o.Path)
			if err != nil {
				errs = append(errs, fmt.Errorf("container %s: %w", s.ID, err))
			}
			// Zombies hold nothing (no port, no socket) and are their
			// parent's to reap: a group of only those is done.
			if !live || !groupRuns(pgid) {
				continue
			}
			if err := KillRecordedGroup(o.Path); err != nil {
				errs = append(errs, fmt.Errorf("container %s: %w", s.ID, err))
				continue
			}
			killed = true
		}
		if killed {
			ids = append(ids, s.ID)
		}
	}
	return ids, errors.Join(errs...)
}

// groupRuns tells whether a process of group pgid is not a zombie.
func groupRuns(pgid int) bool {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		s, err := procstat.ReadFile("/proc/" + e.Name() + "/stat")
		if err == nil && s.Field(5) == strconv.Itoa(pgid) && !s.Dead() {
			return true
		}
	}
	return false
}
