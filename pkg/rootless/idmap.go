package rootless

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Files naming the subordinate ids granted to users (shadow's subuid(5)).
var (
	SubUIDFile = "/etc/subuid"
	SubGIDFile = "/etc/subgid"
)

// ErrNoSubIDs: the caller has no subordinate range to map.
var ErrNoSubIDs = errors.New("no subordinate id range")

// ErrNoIDMapTool: newuidmap or newgidmap is missing.
var ErrNoIDMapTool = errors.New("newuidmap/newgidmap not found")

func ownedBy(fi fs.FileInfo, uid int) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == uid
}

// subIDs returns the ranges path grants to the user named name or with
// the numeric id, in file order, each as [start, count].
func subIDs(path, name string, id int) ([][2]uint32, error) {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out [][2]uint32
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) != 3 || (f[0] != name && f[0] != strconv.Itoa(id)) {
			continue
		}
		start, err1 := strconv.ParseUint(f[1], 10, 32)
		n, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil || n == 0 || start+n > 1<<32-1 {
			continue
		}
		out = append(out, [2]uint32{uint32(start), uint32(n)})
	}
	return out, nil
}

// IDMaps returns a rootless container's uid and gid maps, as Podman makes
// them: container id 0 is the caller's own id, so the files the caller
// owns (the rootfs, volumes) are root's in the container and what the
// container's root writes is the caller's on the host; container ids 1..N
// are the caller's subordinate ranges, in the order the files list them.
// A caller without a range gets an error that names the file and the
// command that grants one.
func IDMaps() (uids, gids []specs.LinuxIDMapping, err error) {
	uid, gid := os.Geteuid(), os.Getegid()
	name := strconv.Itoa(uid)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	build := func(path string, own int, kind string) ([]specs.LinuxIDMapping, error) {
		rs, err := subIDs(path, name, uid)
		if err != nil {
			return nil, err
		}
		if len(rs) == 0 {
			return nil, fmt.Errorf("%s has no line for user %s (uid %d): a rootless container maps its ids above 0 to a subordinate %s range granted there; "+
				"as root, run: usermod --add-subuids 1000000-1065535 --add-subgids 1000000-1065535 %s (any free range of 65536 ids): %w",
				path, name, uid, kind, name, ErrNoSubIDs)
		}
		m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(own), Size: 1}}
		next := uint32(1)
		for _, r := range rs {
			if uint64(next)+uint64(r[1]) > 1<<32-1 {
				break
			}
			m = append(m, specs.LinuxIDMapping{ContainerID: next, HostID: r[0], Size: r[1]})
			next += r[1]
		}
		return m, nil
	}
	if uids, err = build(SubUIDFile, uid, "uid"); err != nil {
		return nil, nil, err
	}
	if gids, err = build(SubGIDFile, gid, "gid"); err != nil {
		return nil, nil, err
	}
	return uids, gids, nil
}

// WriteIDMaps writes the uid and gid maps of process pid, which has just
// made its user namespace, through newuidmap and newgidmap: they check
// every range against /etc/subuid and /etc/subgid (a map of the caller's
// own id alone, as `bulwark spec --rootless` writes it, needs no range).
// The runtime could write that one itself only if the process were
// dumpable, which the init is not until it execs its payload (its /proc
// files are root's). Errors name the config field, the tool and what it
// said.
func WriteIDMaps(pid int, uids, gids []specs.LinuxIDMapping) error {
	p := strconv.Itoa(pid)
	if err := runIDMapTool("newuidmap", p, uids, SubUIDFile); err != nil {
		return err
	}
	return runIDMapTool("newgidmap", p, gids, SubGIDFile)
}

func field(tool string) string {
	if strings.Contains(tool, "gid") {
		return "linux.gidMappings"
	}
	return "linux.uidMappings"
}

func runIDMapTool(tool, pid string, ms []specs.LinuxIDMapping, granted string) error {
	path, err := exec.LookPath(tool)
	if err != nil {
		return fmt.Errorf("%s: %s is needed to map more than your own id: install Debian's uidmap package (apt-get install uidmap): %w", field(tool), tool, ErrNoIDMapTool)
	}
	args := []string{pid}
	for _, m := range ms {
		args = append(args, strconv.FormatUint(uint64(m.ContainerID), 10), strconv.FormatUint(uint64(m.HostID), 10), strconv.FormatUint(uint64(m.Size), 10))
	}
	cmd := exec.Command(path, args...)
	cmd.Env = []string{}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %s %s: %v: %s (the ranges must be granted to you in %s, and %s must be setuid root)",
			field(tool), tool, strings.Join(args, " "), err, strings.TrimSpace(string(out)), granted, path)
	}
	return nil
}
