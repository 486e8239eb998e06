package floorns

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// A pod's containers join its sandbox's IPC and UTS namespaces (and, by
// default, its PID namespace) by path. Under the floor the sandbox got a
// user namespace of its own, which owns those namespaces, and the kernel
// lets only root of that user namespace mount /proc for the PID namespace
// or mqueue for the IPC one: a container with a user namespace of its own
// beside it cannot start. So a config that joins namespaces owned by a user
// namespace other than the host's joins that user namespace too, as every
// container of a Kubernetes pod with hostUsers: false joins the pod's.
//
// This never gives a container more than the config asked for: without the
// floor it would join those namespaces as host root; the user namespace
// that owns them is below the host's and must not map host id 0.

// owner is a user namespace that owns a namespace a config joins.
type owner struct {
	fd       int // the user namespace, open
	dev, ino uint64
	pid      int // a process in it, for its maps
	uid, gid []specs.LinuxIDMapping
}

func (o *owner) close() {
	if o != nil {
		unix.Close(o.fd)
	}
}

// procNSPid returns PID of a path /proc/PID/ns/NAME, or -1. Parsed by
// hand: a package-level regexp would be compiled on every start of the
// binary (TestNoRegexpCompiledAtStartup).
func procNSPid(path string) int {
	rest, ok := strings.CutPrefix(path, "/proc/")
	if !ok {
		return -1
	}
	pidStr, name, ok := strings.Cut(rest, "/ns/")
	if !ok || name == "" || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz_") != "" {
		return -1
	}
	pid, err := strconv.Atoi(pidStr)
	if err != nil || pid <= 0 || strings.Trim(pidStr, "0123456789") != "" {
		return -1
	}
	return pid
}

// joinedOwner returns the user namespace, other than the host's, that owns
// the namespaces s joins by path; nil when they are all the host's. why is
// set when the namespaces have more than one such owner, or its maps cannot
// be read: then the config cannot join one.
func joinedOwner(s *specs.Spec) (o *owner, why string, err error) {
	var host unix.Stat_t
	if err := unix.Stat("/proc/self/ns/user", &host); err != nil {
		return nil, "", fmt.Errorf("hardening floor: %w", err)
	}
	defer func() {
		if err != nil || why != "" {
			o.close()
			o = nil
		}
	}()
	for _, ns := range s.Linux.Namespaces {
		if ns.Path == "" || ns.Type == specs.UserNamespace {
			continue
		}
		fd, err := usernsOf(ns.Path)
		if err != nil {
			return o, "", fmt.Errorf("hardening floor: linux.namespaces (%s, %s): %w", ns.Type, ns.Path, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return o, "", fmt.Errorf("hardening floor: linux.namespaces (%s, %s): %w", ns.Type, ns.Path, err)
		}
		switch {
		case st.Dev == host.Dev && st.Ino == host.Ino, o != nil && st.Dev == o.dev && st.Ino == o.ino:
			unix.Close(fd)
			continue
		case o != nil:
			unix.Close(fd)
			return o, fmt.Sprintf("the namespaces it joins belong to two different user namespaces (%s is another's)", ns.Path), nil
		}
		o = &owner{fd: fd, dev: st.Dev, ino: st.Ino, pid: procNSPid(ns.Path)}
	}
	if o == nil {
		return nil, "", nil
	}
	if !o.in(o.pid) {
		o.pid = o.find()
	}
	if o.pid < 0 {
		return o, "no process is left in the user namespace that owns the namespaces it joins", nil
	}
	if o.uid, err = readMaps(o.pid, "uid_map"); err == nil {
		o.gid, err = readMaps(o.pid, "gid_map")
	}
	// The pid read may have gone and been reused meanwhile.
	if err != nil || !o.in(o.pid) {
		return o, fmt.Sprintf("the maps of the user namespace that owns the namespaces it joins cannot be read (pid %d: %v)", o.pid, err), nil
	}
	return o, "", nil
}

// usernsOf opens the user namespace that owns the namespace at path.
func usernsOf(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(fd)
	u, err := unix.IoctlRetInt(fd, unix.NS_GET_USERNS)
	if err != nil {
		return -1, fmt.Errorf("NS_GET_USERNS: %w", err)
	}
	return u, nil
}

// in reports whether process pid is in o.
func (o *owner) in(pid int) bool {
	var st unix.Stat_t
	return pid > 0 && unix.Stat(fmt.Sprintf("/proc/%d/ns/user", pid), &st) == nil && st.Dev == o.dev && st.Ino == o.ino
}

// find looks for a process in o, or returns -1.
func (o *owner) find() int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err == nil && o.in(pid) {
			return pid
		}
	}
	return -1
}

// readMaps parses /proc/PID/uid_map or gid_map.
func readMaps(pid int, name string) ([]specs.LinuxIDMapping, error) {
	f, err := os.Open(filepath.Join("/proc", fmt.Sprint(pid), name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ms []specs.LinuxIDMapping
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m specs.LinuxIDMapping
		if n, _ := fmt.Sscan(sc.Text(), &m.ContainerID, &m.HostID, &m.Size); n != 3 {
			return nil, fmt.Errorf("%s: malformed line %q", f.Name(), sc.Text())
		}
		ms = append(ms, m)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("%s: no maps written", f.Name())
	}
	return ms, nil
}

// mapped reports whether container id id is in ms.
func mapped(ms []specs.LinuxIDMapping, id uint32) bool {
	return slices.ContainsFunc(ms, func(m specs.LinuxIDMapping) bool {
		return uint64(id) >= uint64(m.ContainerID) && uint64(id) < uint64(m.ContainerID)+uint64(m.Size)
	})
}

// mappedSize is how many ids from container id 0 on are mapped without a
// gap: the gids a ping_group_range may name.
func mappedSize(ms []specs.LinuxIDMapping) uint64 {
	var n uint64
	for {
		i := slices.IndexFunc(ms, func(m specs.LinuxIDMapping) bool { return uint64(m.ContainerID) == n && m.Size > 0 })
		if i < 0 {
			return n
		}
		n += uint64(ms[i].Size)
	}
}

// blocker says why s, with its process, cannot run in o, or "".
func (o *owner) blocker(s *specs.Spec) string {
	for _, m := range slices.Concat(o.uid, o.gid) {
		if m.HostID == 0 {
			return fmt.Sprintf("the user namespace that owns the namespaces it joins maps host id 0 (%d %d %d)", m.ContainerID, m.HostID, m.Size)
		}
	}
	if p := s.Process; p != nil {
		if !mapped(o.uid, p.User.UID) {
			return fmt.Sprintf("the process runs as uid %d, which the user namespace it would join does not map", p.User.UID)
		}
		for _, g := range append([]uint32{p.User.GID}, p.User.AdditionalGids...) {
			if !mapped(o.gid, g) {
				return fmt.Sprintf("the process runs with gid %d, which the user namespace it would join does not map", g)
			}
		}
	}
	return ""
}

// mapsString is ms as /proc/PID/uid_map shows them, on one line.
func mapsString(ms []specs.LinuxIDMapping) string {
	var b strings.Builder
	for i, m := range ms {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d %d %d", m.ContainerID, m.HostID, m.Size)
	}
	return b.String()
}
