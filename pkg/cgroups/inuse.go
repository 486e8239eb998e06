package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	lib "github.com/opencontainers/cgroups"
	"golang.org/x/sys/unix"
)

// ErrInUse: the container's cgroup already holds processes, another
// container's or anybody's. Placing a new init there would mix the two
// under one set of limits, and the new container's delete would kill the
// other's processes with its own.
var ErrInUse = errors.New("the cgroup is in use")

// ErrFrozen: the container's cgroup (or a parent) is frozen; an init put
// there stops at once and create would wait for it forever.
var ErrFrozen = errors.New("the cgroup is frozen")

// CheckUnused refuses a cgroup a new container must not be placed in: one
// with processes, or a frozen one. The messages start with runc's words
// ("container's cgroup is not empty", "container's cgroup unexpectedly
// frozen"), which tools match on. Call it before anything is created.
func (m *Manager) CheckUnused() error {
	if m.cfg.None {
		return nil
	}
	if m.Exists() {
		pids, err := m.lib.GetAllPids()
		// The cgroup may go away under us: that is unused too.
		if err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, unix.ENODEV) {
			return fmt.Errorf("cgroups: cannot list the processes of %s: %w", m.where(), err)
		}
		if len(pids) > 0 {
			return fmt.Errorf("container's cgroup is not empty: %d process(es) found in %s (another container's cgroup? give this one its own linux.cgroupsPath): %w", len(pids), m.where(), ErrInUse)
		}
	}
	frozen, dir, err := m.frozen()
	if err != nil {
		return err
	}
	if frozen {
		return fmt.Errorf("container's cgroup unexpectedly frozen: %s is frozen (thaw it first): %w", dir, ErrFrozen)
	}
	return nil
}

// frozen reports whether the container's cgroup, or the closest ancestor
// that exists when it does not yet, is frozen: a cgroup made under a frozen
// parent is frozen from birth.
func (m *Manager) frozen() (bool, string, error) {
	dir, file := m.paths["freezer"], "freezer.state"
	if m.lay.v2 {
		dir, file = m.unifiedDir, "cgroup.events"
	}
	if dir == "" {
		return false, "", nil
	}
	for d := dir; strings.HasPrefix(d, "/sys/fs/cgroup/"); d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, file))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, d, fmt.Errorf("cgroups: cannot read the freezer state of %s: %w", d, err)
		}
		s := string(b)
		if m.lay.v2 {
			return strings.Contains(s, "frozen 1"), d, nil
		}
		return strings.TrimSpace(s) == string(lib.Frozen) || strings.TrimSpace(s) == "FREEZING", d, nil
	}
	return false, "", nil
}
