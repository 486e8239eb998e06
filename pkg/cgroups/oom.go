package cgroups

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	lib "github.com/opencontainers/cgroups"
)

// OOMKills returns how many processes of the cgroup the kernel's OOM killer
// has killed so far: the oom_kill counter of memory.oom_control (v1) or
// memory.events (v2). `events` compares successive readings to report "oom"
// events; a counter survives the killed process, unlike an eventfd armed by
// a command that may start after the kill.
func (m *Manager) OOMKills() (uint64, error) {
	if m.cfg.None {
		return 0, fmt.Errorf("cgroups: cannot count OOM kills: %w", ErrNoCgroup)
	}
	dir, file := m.paths["memory"], "memory.oom_control"
	if m.lay.v2 {
		dir, file = m.unifiedDir, "memory.events"
	}
	if dir == "" {
		return 0, fmt.Errorf("cgroups: no memory controller for %s: cannot count OOM kills", m.where())
	}
	s, err := lib.ReadFile(dir, file)
	if err != nil {
		return 0, fmt.Errorf("cgroups: read %s: %w", filepath.Join(dir, file), err)
	}
	for line := range strings.SplitSeq(s, "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == "oom_kill" {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("cgroups: %s: oom_kill %q: %w", filepath.Join(dir, file), v, err)
			}
			return n, nil
		}
	}
	// Kernels before 4.13 have no per-cgroup oom_kill counter.
	return 0, fmt.Errorf("cgroups: %s has no oom_kill line (kernel too old to count OOM kills)", filepath.Join(dir, file))
}
