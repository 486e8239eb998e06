package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	lib "github.com/opencontainers/cgroups"
)

// createV2Dir makes dir (below the cgroup2 mount root) and every missing
// ancestor, delegating each ancestor's available controllers to its children
// so the container's cgroup can use them (what runc does). We do this
// ourselves rather than through fs2.Manager.Apply because the library assumes
// the mount is at /sys/fs/cgroup, which is not true on hybrid hosts.
func createV2Dir(root, dir string) error {
	rel, err := filepath.Rel(root, dir)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("cgroup %s is not below the cgroup2 mount %s", dir, root)
	}
	cur := root
	for _, e := range strings.Split(rel, "/") {
		delegateControllers(cur)
		cur = filepath.Join(cur, e)
		if err := os.Mkdir(cur, 0o755); err != nil && !os.IsExist(err) {
			return fmt.Errorf("mkdir %s: %w", cur, err)
		}
		typ, err := lib.ReadFile(cur, "cgroup.type")
		if err != nil {
			return err
		}
		if t := strings.TrimSpace(typ); t != "domain" {
			// Threaded cgroups cannot hold memory/io limits; refusing is
			// better than silently running without them.
			return fmt.Errorf("cgroup %s is of type %q; a container needs a \"domain\" cgroup (choose another linux.cgroupsPath)", cur, t)
		}
	}
	return nil
}

// delegateControllers enables in dir's subtree_control every controller dir
// has. Each is written alone: one that cannot be enabled (say, because dir
// holds processes) must not keep the others off. Missing ones surface later
// as a clear error from Set.
func delegateControllers(dir string) {
	avail, err := lib.ReadFile(dir, "cgroup.controllers")
	if err != nil {
		return
	}
	on, _ := lib.ReadFile(dir, "cgroup.subtree_control")
	for c := range strings.FieldsSeq(avail) {
		if !hasField(on, c) {
			_ = lib.WriteFile(dir, "cgroup.subtree_control", "+"+c)
		}
	}
}

// enableInAncestors makes ctrl available in dir by enabling it in the
// subtree_control of every ancestor from root down, reporting failure.
func enableInAncestors(root, dir, ctrl string) error {
	rel, err := filepath.Rel(root, dir)
	if err != nil || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("cgroup %s is not below the cgroup2 mount %s", dir, root)
	}
	cur := root
	for _, e := range strings.Split(rel, "/") {
		on, err := lib.ReadFile(cur, "cgroup.subtree_control")
		if err != nil {
			return err
		}
		if !hasField(on, ctrl) {
			if err := lib.WriteFile(cur, "cgroup.subtree_control", "+"+ctrl); err != nil {
				hint := ""
				if errors.Is(err, os.ErrNotExist) || strings.Contains(err.Error(), "no such") {
					hint = " (controller not available here)"
				}
				return fmt.Errorf("cannot enable the %s controller in %s%s: %w", ctrl, cur, hint, err)
			}
		}
		cur = filepath.Join(cur, e)
	}
	return nil
}
