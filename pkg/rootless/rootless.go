// Package rootless is the one place that decides whether Bulwark runs
// without root and, when it does, what that changes: where state lives
// ($XDG_RUNTIME_DIR/bulwark), which host ids a container maps (the
// caller's own uid as the container's root, then the subordinate ranges
// /etc/subuid and /etc/subgid grant the caller), how those maps are
// written (through the setuid newuidmap and newgidmap of Debian's uidmap
// package), and where its containers' cgroups go (a cgroup v2 subtree
// delegated to the caller) or why cgroup limits cannot be enforced.
//
// Threat: a user who could map ids the administrator did not grant would
// own other users' files, or root's, through the container. The maps are
// therefore never written by Bulwark for more than the caller's own id:
// newuidmap and newgidmap check every range against /etc/subuid and
// /etc/subgid before the kernel sees it, and the kernel itself refuses a
// map of an id the writer does not hold. Bulwark only reads those files to
// ask for what they grant, and to name the fix when they grant nothing.
//
// Not for root: a root caller maps containers from pkg/userns's pool.
package rootless

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Flag values of the global --rootless, as runc spells them.
const (
	Auto  = "auto"
	True  = "true"
	False = "false"
)

// Enabled decides from --rootless whether this process runs rootless:
// "auto" (runc's default) and "true" are rootless exactly when the
// effective uid is not 0 (root has the privileges rootless mode works
// around, so "true" changes nothing for it, as runc's --rootless true
// changes only which cgroup errors root may ignore, and root gets none);
// "false" is never rootless, and a caller who is not root then fails at
// the first step that needs root, as runc does.
func Enabled(flag string) (bool, error) {
	switch flag {
	case "", Auto, True:
		return os.Geteuid() != 0, nil
	case False:
		return false, nil
	}
	return false, fmt.Errorf("--rootless %q: want auto, true or false", flag)
}

// ErrNoRuntimeDir: neither $XDG_RUNTIME_DIR nor /run/user/UID can hold the
// caller's container state.
var ErrNoRuntimeDir = errors.New("no runtime directory for rootless state")

// StateDir is where a rootless caller's containers keep their state:
// $XDG_RUNTIME_DIR/bulwark, or /run/user/UID/bulwark when the variable is
// unset (a login through su or sudo) and that directory exists and is the
// caller's. Both are on a tmpfs that is the caller's alone and goes away at
// logout or reboot, as /run/bulwark does for root.
func StateDir() (string, error) {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		if !filepath.IsAbs(d) {
			return "", fmt.Errorf("XDG_RUNTIME_DIR=%q is not an absolute path: %w", d, ErrNoRuntimeDir)
		}
		return filepath.Join(d, "bulwark"), nil
	}
	uid := os.Geteuid()
	d := "/run/user/" + strconv.Itoa(uid)
	if fi, err := os.Stat(d); err == nil && fi.IsDir() && ownedBy(fi, uid) {
		return filepath.Join(d, "bulwark"), nil
	}
	return "", fmt.Errorf("XDG_RUNTIME_DIR is not set and %s is not a directory of uid %d: %w; "+
		"log in through a session that makes it (systemd-logind), set XDG_RUNTIME_DIR to a directory only you can write, or pass --root DIR", d, uid, ErrNoRuntimeDir)
}

// DataRoot is where a rootless caller's images live:
// $XDG_DATA_HOME/bulwark, else ~/.local/share/bulwark.
func DataRoot() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "bulwark"), nil
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("rootless image store: %w; set HOME, XDG_DATA_HOME or --data-root", err)
	}
	return filepath.Join(h, ".local/share/bulwark"), nil
}
