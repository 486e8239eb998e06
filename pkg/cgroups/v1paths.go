package cgroups

import (
	"os"
	"path/filepath"
	"strings"
	"sync"

	lib "github.com/opencontainers/cgroups"
)

// v1Subsystems are the hierarchies the library's v1 driver joins, by the
// name it keys its paths with.
var v1Subsystems = []string{
	"cpuset", "devices", "memory", "cpu", "cpuacct", "pids", "blkio", "hugetlb",
	"net_cls", "net_prio", "perf_event", "freezer", "rdma", "name=systemd", "misc",
}

const v1Root = "/sys/fs/cgroup"

var v1Mounts = sync.OnceValue(func() map[string]string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	return parseV1Mounts(string(b))
})

// parseV1Mounts maps each v1 subsystem to the one mount point of its
// hierarchy directly under /sys/fs/cgroup. It returns nil when the layout
// is anything else (no tmpfs at /sys/fs/cgroup, a hierarchy mounted
// elsewhere or twice), and the library then works it out itself.
func parseV1Mounts(mountinfo string) map[string]string {
	out := map[string]string{}
	rootIsTmpfs := false
	for _, line := range strings.Split(mountinfo, "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f := strings.Fields(pre)
		g := strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		mp := f[4]
		if mp == v1Root && g[0] == "tmpfs" {
			rootIsTmpfs = true
		}
		if g[0] != "cgroup" {
			continue
		}
		if strings.Contains(mp, `\`) || filepath.Dir(mp) != v1Root {
			return nil
		}
		for _, opt := range strings.Split(g[2], ",") {
			for _, s := range v1Subsystems {
				if opt != s {
					continue
				}
				if prev, dup := out[s]; dup && prev != mp {
					return nil
				}
				out[s] = mp
			}
		}
	}
	if !rootIsTmpfs || out["devices"] == "" {
		return nil
	}
	return out
}

// fastV1Paths is what the library's v1 driver computes for an absolute
// cgroup path (mount point of each hierarchy + path), from one read of
// mountinfo per process instead of its probing of every subsystem name
// with several stat and statfs calls: about 0.4 ms of each create and again
// of each delete, kill or ps. nil means "ask the library".
func fastV1Paths(inner string) map[string]string {
	if !filepath.IsAbs(inner) {
		return nil
	}
	mounts := v1Mounts()
	if mounts == nil {
		return nil
	}
	paths := make(map[string]string, len(mounts))
	for s, mp := range mounts {
		paths[s] = filepath.Join(mp, inner)
	}
	// The library's driver joins the cgroup2 side of a hybrid host too.
	if lib.IsCgroup2HybridMode() {
		paths[""] = filepath.Join(hybridMountpoint, inner)
	}
	return paths
}
