package cgroups

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	lib "github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/systemd"
)

// Config is what the runtime persists in a container's state.json so that
// later commands can find the same cgroup again.
type Config struct {
	// Path is linux.cgroupsPath from the spec, unmodified.
	Path string `json:"path"`
	// Systemd selects the systemd driver (runc's --systemd-cgroup).
	Systemd bool `json:"systemd"`
	// ID is the container ID; it names the default cgroup.
	ID string `json:"id"`
	// None: the container has no cgroup of its own, because its runtime
	// runs rootless where no cgroup is delegated to it (pkg/rootless).
	// Its manager changes nothing; pause, stats and OOM counts, which
	// need a cgroup, fail with ErrNoCgroup.
	None bool `json:"none,omitempty"`
	// Rootless: the cgroup is under a subtree delegated to the
	// unprivileged runtime; what needs privilege beyond it (the eBPF
	// device filter) is skipped, as the library does for runc's rootless
	// mode.
	Rootless bool `json:"rootless,omitempty"`
}

// ErrNoCgroup is wrapped by what a container without a cgroup
// (Config.None) cannot do.
var ErrNoCgroup = errors.New("the container has no cgroup of its own (rootless, and no cgroup is delegated to this user)")

const (
	// defaultParent is the cgroupfs directory that holds every container
	// without an explicit cgroupsPath. Destroy removes it when it is empty so
	// that no trace is left behind.
	defaultParent = "/bulwark"
	// defaultSlice and defaultScopePrefix form runc's systemd default with our
	// own name, so units show up as bulwark-<id>.scope.
	defaultSlice       = "system.slice"
	defaultScopePrefix = "bulwark"
)

// ErrSystemdUnavailable is returned when the systemd driver is requested on a
// host where systemd is not the init system.
var ErrSystemdUnavailable = errors.New("the systemd cgroup driver was requested (--systemd-cgroup) but systemd is not running on this host (/run/systemd/system is missing); run without --systemd-cgroup to use the cgroupfs driver")

// ErrInvalidPath is wrapped by every error about linux.cgroupsPath.
var ErrInvalidPath = errors.New("invalid linux.cgroupsPath")

// pathError builds an error that names the spec field so that the user knows
// which line of config.json to fix.
func pathError(path, format string, args ...any) error {
	return fmt.Errorf("%w %q: %s", ErrInvalidPath, path, fmt.Sprintf(format, args...))
}

// libCgroup translates cfg into the library's Cgroup (without resources).
// cleanupParent is the default parent directory Bulwark chose (relative to
// each hierarchy's root), or "" when the user chose the path.
func (cfg Config) libCgroup() (cg *lib.Cgroup, cleanupParent string, err error) {
	if cfg.Systemd {
		parent, prefix, name, err := parseSystemdPath(cfg.Path, cfg.ID)
		if err != nil {
			return nil, "", err
		}
		return &lib.Cgroup{Systemd: true, Parent: parent, ScopePrefix: prefix, Name: name}, "", nil
	}

	if cfg.Path == "" {
		if err := checkIDForPath(cfg.ID); err != nil {
			return nil, "", err
		}
		return &lib.Cgroup{Path: defaultParent + "/" + cfg.ID}, defaultParent, nil
	}

	// A relative path with colons ("test.slice:cri-containerd:ID") is what
	// containerd hands a runtime started without --systemd-cgroup when the
	// pod's parent is a *.slice; runc takes it as a literal cgroup name, so
	// refusing it would fail every such pod sandbox.
	// Cleaning "/"+path removes every "..", so the result cannot climb
	// above the hierarchy root whatever the spec says.
	p := filepath.Clean("/" + cfg.Path)
	if p == "/" {
		return nil, "", pathError(cfg.Path, "resolves to the cgroup root; a container needs a cgroup of its own")
	}
	return &lib.Cgroup{Path: p}, "", nil
}

func checkIDForPath(id string) error {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\x00") {
		return fmt.Errorf("%w: container id %q cannot name a cgroup (empty, '.', '..' or containing '/'); set linux.cgroupsPath or use a valid id", ErrInvalidPath, id)
	}
	return nil
}

// parseSystemdPath splits "slice:prefix:name" (runc's format, used by
// containerd, CRI-O and Docker with the systemd driver).
func parseSystemdPath(path, id string) (slice, prefix, name string, err error) {
	if path == "" {
		if err := checkIDForPath(id); err != nil {
			return "", "", "", err
		}
		return defaultSlice, defaultScopePrefix, id, nil
	}
	parts := strings.Split(path, ":")
	if len(parts) != 3 {
		return "", "", "", pathError(path, `the systemd cgroup driver needs the form "slice:prefix:name" (for example "system.slice:bulwark:<id>")`)
	}
	slice, prefix, name = parts[0], parts[1], parts[2]
	if slice == "" {
		slice = defaultSlice
	}
	if _, err := systemd.ExpandSlice(slice); err != nil {
		return "", "", "", pathError(path, "slice %q is not a valid systemd slice name (it must end in \".slice\" and contain no '/'): %v", slice, err)
	}
	if name == "" {
		return "", "", "", pathError(path, "the unit name (third field of slice:prefix:name) is empty")
	}
	if strings.Contains(prefix, "/") || strings.Contains(name, "/") {
		return "", "", "", pathError(path, "prefix and name must not contain '/'")
	}
	return slice, prefix, name, nil
}
