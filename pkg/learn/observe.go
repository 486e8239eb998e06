package learn

import (
	"encoding/binary"
	"path"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/seccomp/profiles"
)

// Observed is what recording runs saw, kept raw so that runs merge
// (--merge) and the profile is rebuilt from their union.
type Observed struct {
	// Syscalls maps each syscall the workload made to the argument values
	// it passed where the learned rules look at them (watched): for
	// socket "2/1" (family/type), for ioctl the request, ... An empty list
	// means the call is allowed whatever its arguments (as the base
	// profile allows it).
	Syscalls map[string][]string `json:"syscalls"`
	Written  []string            `json:"written,omitempty"`  // files created, written, removed or renamed
	Executed []string            `json:"executed,omitempty"` // programs exec'd
	Devices  []string            `json:"devices,omitempty"`  // /dev nodes opened
	Ports    []string            `json:"ports,omitempty"`    // "inet/8080", "inet6/443", "unix/PATH" bound
}

// maxPaths bounds each path list: a workload that writes a million files
// must not make a profile of a million lines.
const maxPaths = 2000

// NewObserved is an empty record.
func NewObserved() *Observed { return &Observed{Syscalls: map[string][]string{}} }

// watch is one syscall whose arguments the learned rules pin, as the base
// profile's rules do: which arguments, and under which mask.
type watch struct {
	args []int
	mask []uint64 // 0: the whole 64-bit value
}

// watched lists the arguments Bulwark's own rules look at: socket family
// and type, clone's namespace and thread flags, the ioctl request,
// personality, the prctl option, PROT_EXEC of mmap/mprotect and the
// setsockopt level.
var watched = map[string]watch{
	"socket":        {[]int{0, 1}, []uint64{0, 0xf}},
	"socketpair":    {[]int{0, 1}, []uint64{0, 0xf}},
	"clone":         {[]int{0}, []uint64{profiles.NamespaceFlags | unix.CLONE_THREAD}},
	"ioctl":         {[]int{1}, []uint64{0xffffffff}},
	"personality":   {[]int{0}, []uint64{0}},
	"prctl":         {[]int{0}, []uint64{0}},
	"mmap":          {[]int{2}, []uint64{unix.PROT_EXEC}},
	"mprotect":      {[]int{2}, []uint64{unix.PROT_EXEC}},
	"pkey_mprotect": {[]int{2}, []uint64{unix.PROT_EXEC}},
	"setsockopt":    {[]int{1}, []uint64{0}},
}

func (w watch) key(args [6]uint64) string {
	parts := make([]string, len(w.args))
	for i, a := range w.args {
		v := args[a]
		if w.mask[i] != 0 {
			v &= w.mask[i]
		}
		parts[i] = "0x" + strconv.FormatUint(v, 16)
	}
	return strings.Join(parts, "/")
}

func addUnique(list []string, v string, limit int) []string {
	if v == "" || len(list) >= limit || slices.Contains(list, v) {
		return list
	}
	return append(list, v)
}

// memory reads a stopped caller's memory: a NUL-terminated string, n raw
// bytes, and the directory a relative path starts from (its cwd or a
// dirfd), as the container sees them.
type memory interface {
	str(addr uint64) string
	bytes(addr uint64, n int) []byte
	dir(dirfd int32) string
	// exists: path (absolute, in the container) exists now.
	exists(path string) bool
}

// record notes one call.
func (o *Observed) record(name string, args [6]uint64, m memory) {
	str, dir := m.str, m.dir
	if name == "" {
		return
	}
	vals, seen := o.Syscalls[name]
	if w, ok := watched[name]; ok {
		vals = addUnique(vals, w.key(args), 4096)
	} else if !seen {
		vals = []string{}
	}
	o.Syscalls[name] = vals
	abs := func(dirfd int32, p string) string {
		if p == "" {
			return ""
		}
		if !path.IsAbs(p) {
			d := dir(dirfd)
			if d == "" {
				return ""
			}
			p = path.Join(d, p)
		}
		return path.Clean(p)
	}
	const cwd = unix.AT_FDCWD
	wrote := func(p string) { o.Written = addUnique(o.Written, p, maxPaths) }
	opened := func(p string, flags uint64) {
		if strings.HasPrefix(p, "/dev/") {
			o.Devices = addUnique(o.Devices, p, maxPaths)
			return
		}
		if flags&(unix.O_WRONLY|unix.O_RDWR|unix.O_CREAT|unix.O_TRUNC) != 0 {
			wrote(p)
		}
	}
	switch name {
	case "open":
		opened(abs(cwd, str(args[0])), args[1])
	case "creat":
		opened(abs(cwd, str(args[0])), unix.O_CREAT)
	case "openat":
		opened(abs(int32(args[0]), str(args[1])), args[2])
	case "openat2":
		// struct open_how starts with the 64-bit flags.
		if b := m.bytes(args[2], 8); len(b) == 8 {
			opened(abs(int32(args[0]), str(args[1])), binary.LittleEndian.Uint64(b))
		} else {
			opened(abs(int32(args[0]), str(args[1])), unix.O_RDWR)
		}
	case "execve":
		o.Executed = addUnique(o.Executed, abs(cwd, str(args[0])), maxPaths)
	case "execveat":
		o.Executed = addUnique(o.Executed, abs(int32(args[0]), str(args[1])), maxPaths)
	case "mkdir":
		// mkdir -p tries every ancestor; one that exists is no write.
		if p := abs(cwd, str(args[0])); !m.exists(p) {
			wrote(p)
		}
	case "mkdirat":
		if p := abs(int32(args[0]), str(args[1])); !m.exists(p) {
			wrote(p)
		}
	case "rmdir", "unlink", "truncate", "mknod":
		wrote(abs(cwd, str(args[0])))
	case "unlinkat", "mknodat":
		wrote(abs(int32(args[0]), str(args[1])))
	case "rename", "link":
		wrote(abs(cwd, str(args[0])))
		wrote(abs(cwd, str(args[1])))
	case "renameat", "renameat2", "linkat":
		wrote(abs(int32(args[0]), str(args[1])))
		wrote(abs(int32(args[2]), str(args[3])))
	case "symlink":
		wrote(abs(cwd, str(args[1])))
	case "symlinkat":
		wrote(abs(int32(args[1]), str(args[2])))
	case "bind":
		o.Ports = addUnique(o.Ports, sockaddr(m, args[1], args[2]), maxPaths)
	}
}

// sockaddr names a bound address: the port of an inet one, the path of a
// unix one.
func sockaddr(m memory, addr, n uint64) string {
	if addr == 0 || n < 2 {
		return ""
	}
	b := m.bytes(addr, 4)
	if len(b) < 2 {
		return ""
	}
	switch binary.LittleEndian.Uint16(b) {
	case unix.AF_UNIX:
		if p := m.str(addr + 2); p != "" {
			return "unix/" + p
		}
		return "unix/@abstract"
	case unix.AF_INET:
		if len(b) == 4 {
			return "inet/" + strconv.Itoa(int(binary.BigEndian.Uint16(b[2:])))
		}
	case unix.AF_INET6:
		if len(b) == 4 {
			return "inet6/" + strconv.Itoa(int(binary.BigEndian.Uint16(b[2:])))
		}
	}
	return ""
}

// Merge adds other's observations to o.
func (o *Observed) Merge(other *Observed) {
	for name, vals := range other.Syscalls {
		cur, seen := o.Syscalls[name]
		if !seen {
			cur = []string{}
		}
		for _, v := range vals {
			cur = addUnique(cur, v, 4096)
		}
		o.Syscalls[name] = cur
	}
	for _, p := range other.Written {
		o.Written = addUnique(o.Written, p, maxPaths)
	}
	for _, p := range other.Executed {
		o.Executed = addUnique(o.Executed, p, maxPaths)
	}
	for _, p := range other.Devices {
		o.Devices = addUnique(o.Devices, p, maxPaths)
	}
	for _, p := range other.Ports {
		o.Ports = addUnique(o.Ports, p, maxPaths)
	}
}

// sorted puts every list in order, so that a profile's text depends only
// on what was seen.
func (o *Observed) sorted() {
	for _, v := range o.Syscalls {
		slices.Sort(v)
	}
	slices.Sort(o.Written)
	slices.Sort(o.Executed)
	slices.Sort(o.Devices)
	slices.Sort(o.Ports)
}
