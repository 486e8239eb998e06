package rootless

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// CgroupRoot is where the cgroup v2 hierarchy is mounted.
var CgroupRoot = "/sys/fs/cgroup"

// neededControllers are the controllers a person's rootless run limits by
// default (pids 1024, memory): a delegated subtree without them cannot
// enforce the defaults.
var neededControllers = []string{"memory", "pids"}

// Delegation is a cgroup v2 subtree handed to the caller: Dir (relative
// to the hierarchy's root, starting with /) whose cgroup.procs and
// cgroup.subtree_control the caller may write, as systemd makes
// user@UID.service with Delegate=yes, or root by chowning a directory and
// those files. A rootless container's cgroup is Dir/bulwark-ID.
type Delegation struct {
	Dir string
}

// ContainerPath is container id's cgroup under the delegated subtree, a
// linux.cgroupsPath.
func (d Delegation) ContainerPath(id string) string {
	return d.Dir + "/bulwark-" + id
}

// Cgroups reports whether a rootless runtime can give its containers
// cgroups of their own (and where), and if not, why: the reason the one
// line a person's rootless run prints names.
//
// On cgroup v1 it never can: each hierarchy belongs to root, and the
// kernel has no way to hand a subtree to a user that would stop that user
// from escaping the limits (v1 has no delegation model). On cgroup v2 it
// can where a subtree above the caller's own cgroup is delegated to the
// caller: the kernel lets its owner make children, enable controllers
// for them and move its own processes between them, never raise the
// limits set on the subtree from above, nor reach processes outside it.
var Cgroups = sync.OnceValues(func() (Delegation, error) {
	return findDelegation(CgroupRoot, "/proc/self/cgroup", os.Geteuid())
})

func findDelegation(root, selfCgroup string, uid int) (Delegation, error) {
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err != nil {
		return Delegation{}, fmt.Errorf("this host uses cgroup v1, whose hierarchies belong to root and cannot be delegated to a user")
	}
	own, err := ownCgroup(selfCgroup)
	if err != nil {
		return Delegation{}, err
	}
	// The topmost ancestor the caller owns: children of the caller's own
	// leaf could not get controllers (a cgroup with processes cannot
	// enable them for its children, cgroup v2's no-internal-process rule).
	var top string
	for d := own; d != "/"; d = filepath.Dir(d) {
		if !delegatedTo(filepath.Join(root, d), uid) {
			break
		}
		top = d
	}
	how := fmt.Sprintf("as systemd does for user@%d.service with Delegate=yes, or as root: mkdir %s/u%d %s/u%d/shell; chown %d %s/u%d %s/u%d/cgroup.procs %s/u%d/cgroup.subtree_control %s/u%d/shell %s/u%d/shell/cgroup.procs; then run bulwark from a process moved into %s/u%d/shell",
		uid, root, uid, root, uid, uid, root, uid, root, uid, root, uid, root, uid, root, uid, root, uid)
	if top == "" {
		return Delegation{}, fmt.Errorf("no cgroup v2 subtree is delegated to uid %d: neither your cgroup %s nor any parent of it has a cgroup.procs and cgroup.subtree_control of yours (%s)", uid, own, how)
	}
	if top == own {
		return Delegation{}, fmt.Errorf("the cgroup delegated to uid %d, %s, is the one you run in: a cgroup holding processes cannot enable controllers for its children (cgroup v2's no-internal-process rule); run bulwark from a child of it (mkdir %s/shell; echo $$ > %s/shell/cgroup.procs)",
			uid, own, filepath.Join(root, own), filepath.Join(root, own))
	}
	b, err := os.ReadFile(filepath.Join(root, top, "cgroup.controllers"))
	if err != nil {
		return Delegation{}, fmt.Errorf("the delegated cgroup %s: %w", top, err)
	}
	have := strings.Fields(string(b))
	var missing []string
	for _, c := range neededControllers {
		if !contains(have, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return Delegation{}, fmt.Errorf("the cgroup delegated to uid %d, %s, lacks the %s controller(s) (it has: %s); as root, enable them in its parent's cgroup.subtree_control (echo +%s > %s/cgroup.subtree_control)",
			uid, top, strings.Join(missing, ", "), strings.Join(have, " "), strings.Join(missing, " +"), filepath.Join(root, filepath.Dir(top)))
	}
	return Delegation{Dir: top}, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ownCgroup is the caller's cgroup v2 path (the "0::" line).
func ownCgroup(selfCgroup string) (string, error) {
	b, err := os.ReadFile(selfCgroup)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", selfCgroup, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "0::"); ok && strings.HasPrefix(p, "/") {
			return filepath.Clean(p), nil
		}
	}
	return "", fmt.Errorf("%s has no cgroup v2 line (0::/...)", selfCgroup)
}

// delegatedTo: uid owns dir and the files that let it make children with
// controllers and move processes into them.
func delegatedTo(dir string, uid int) bool {
	for _, p := range []string{dir, filepath.Join(dir, "cgroup.procs"), filepath.Join(dir, "cgroup.subtree_control")} {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil || int(st.Uid) != uid {
			return false
		}
	}
	return true
}
