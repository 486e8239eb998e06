package cgroups

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	lib "github.com/opencontainers/cgroups"
)

// ParseSubCgroups reads exec's --cgroup arguments, as runc takes them:
// "[CONTROLLER[,CONTROLLER...]:]PATH", PATH below the container's cgroup.
// Without a controller ("" in the map) the path applies to every
// controller, which only a single argument may say.
func ParseSubCgroups(args []string) (map[string]string, error) {
	if len(args) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(args))
	for _, a := range args {
		ctrls, path, ok := strings.Cut(a, ":")
		if !ok {
			if len(args) != 1 {
				return nil, fmt.Errorf("--cgroup %s: missing CONTROLLER: prefix (only a single --cgroup may omit it)", a)
			}
			out[""] = a
			continue
		}
		for c := range strings.SplitSeq(ctrls, ",") {
			if c == "" {
				return nil, fmt.Errorf("--cgroup %s: empty controller name", a)
			}
			if _, dup := out[c]; dup {
				return nil, fmt.Errorf("--cgroup %s: controller %s given twice", a, c)
			}
			out[c] = path
		}
	}
	return out, nil
}

// ApplySub adds pid to the container's cgroups like Apply, then moves it
// into the sub-cgroups sub names (ParseSubCgroups), which must exist: a
// process exec'd into a container that manages its own cgroup tree (a
// systemd or a nested runtime inside) joins the part of the tree it
// belongs to. A path can never leave the container's cgroup.
func (m *Manager) ApplySub(pid int, sub map[string]string) error {
	if len(sub) == 0 {
		return m.Apply(pid)
	}
	if m.cfg.None {
		return fmt.Errorf("--cgroup: %w", ErrNoCgroup)
	}
	targets := map[string]string{} // directory -> what named it
	for ctrl, p := range sub {
		rel, err := subPath(p)
		if err != nil {
			return err
		}
		if ctrl == "" {
			for c, dir := range m.paths {
				// On a hybrid host the unified side holds no
				// controllers; a v1 path does not name it.
				if c != "" || m.lay.v2 {
					targets[filepath.Join(dir, rel)] = c
				}
			}
			continue
		}
		dir, ok := m.paths[ctrl]
		if !ok {
			known := make([]string, 0, len(m.paths))
			for c := range m.paths {
				if c != "" {
					known = append(known, c)
				}
			}
			slices.Sort(known)
			return fmt.Errorf("--cgroup %s:%s: unknown controller %s (this container has: %s)", ctrl, p, ctrl, strings.Join(known, ", "))
		}
		targets[filepath.Join(dir, rel)] = ctrl
	}
	if err := m.Apply(pid); err != nil {
		return err
	}
	var errs []error
	for dir := range targets {
		if err := lib.WriteCgroupProc(dir, pid); err != nil {
			errs = append(errs, fmt.Errorf("cgroups: adding pid %d to %s: %w", pid, dir, err))
		}
	}
	return errors.Join(errs...)
}

// subPath is a --cgroup path relative to the container's cgroup: "/" is
// the container's cgroup itself, and nothing may climb out of it.
func subPath(p string) (string, error) {
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return "", fmt.Errorf("--cgroup %s: bad sub cgroup path (it must stay inside the container's cgroup)", p)
		}
	}
	rel := strings.TrimPrefix(filepath.Clean("/"+p), "/")
	if rel == "" {
		return ".", nil
	}
	return rel, nil
}
