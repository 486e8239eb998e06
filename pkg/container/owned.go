package container

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/rootless/mapped"
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
