package initproto

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Before the Go runtime starts, the init's C constructor (internal/nsenter)
// and the runtime exchange text lines on the sync socket:
//
//	runtime -> constructor: the Bootstrap script ("oom N", "join TYPE PATH",
//	                        "clone HEX", "timens CLOCK SEC NSEC", then "end")
//	constructor -> runtime: "maps PID" after unshare(CLONE_NEWUSER); the
//	                        runtime writes the id maps and answers "ok"
//	constructor -> runtime: "pid PID", the process that goes on as the init
//	constructor -> runtime: "error TEXT", then it exits
//
// Text, because C parses it with strncmp before anything else could.

// Bootstrap is the constructor's script: which namespaces the process joins
// and which it makes.
type Bootstrap struct {
	// OOMScoreAdj is written before any user namespace is entered:
	// lowering the score needs CAP_SYS_RESOURCE in the initial one.
	OOMScoreAdj *int
	// Joins are setns'd in order, the user namespace last whatever its place.
	Joins []Join
	// Clone is the CLONE_NEW* flags of the namespaces to make. Never
	// CLONE_NEWCGROUP: the init makes that one once it is in its cgroups.
	Clone uintptr
	// TimeOffsets go to /proc/self/timens_offsets with CLONE_NEWTIME.
	TimeOffsets map[string]specs.LinuxTimeOffset
}

// Join is one namespace to enter by path.
type Join struct {
	Type specs.LinuxNamespaceType
	Path string
}

var cloneFlags = map[specs.LinuxNamespaceType]uintptr{
	specs.UserNamespace: unix.CLONE_NEWUSER, specs.MountNamespace: unix.CLONE_NEWNS,
	specs.PIDNamespace: unix.CLONE_NEWPID, specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.IPCNamespace: unix.CLONE_NEWIPC, specs.UTSNamespace: unix.CLONE_NEWUTS,
	specs.CgroupNamespace: unix.CLONE_NEWCGROUP, specs.TimeNamespace: unix.CLONE_NEWTIME,
}

// procNSFiles names each namespace's file under /proc/PID/ns.
var procNSFiles = map[specs.LinuxNamespaceType]string{
	specs.UserNamespace: "user", specs.MountNamespace: "mnt", specs.PIDNamespace: "pid",
	specs.NetworkNamespace: "net", specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts",
	specs.CgroupNamespace: "cgroup", specs.TimeNamespace: "time",
}

// CreateBootstrap is the script for a new container's init. netnsFd, when
// >= 0, is the fd (in the init) of a network namespace the runtime made for
// it (pkg/netns): joined instead of made. A new cgroup namespace is left
// out: the init makes it (InitConfig.CgroupNS).
func CreateBootstrap(spec *specs.Spec, netnsFd int) *Bootstrap {
	b := &Bootstrap{OOMScoreAdj: spec.Process.OOMScoreAdj}
	if spec.Linux == nil {
		return b
	}
	for _, ns := range spec.Linux.Namespaces {
		switch {
		case ns.Path != "":
			b.Joins = append(b.Joins, Join{ns.Type, ns.Path})
		case ns.Type == specs.NetworkNamespace && netnsFd >= 0:
			b.Joins = append(b.Joins, Join{ns.Type, "/proc/self/fd/" + strconv.Itoa(netnsFd)})
		case ns.Type == specs.CgroupNamespace:
		default:
			b.Clone |= cloneFlags[ns.Type]
		}
	}
	if b.Clone&unix.CLONE_NEWTIME != 0 {
		b.TimeOffsets = spec.Linux.TimeOffsets
	}
	return b
}

// ExecBootstrap is the script for a process exec'd into a container: it
// joins every namespace the container's init (initPid) is in.
//
// oomScoreAdj is the exec'd process's own score, written, as the init's,
// before the user namespace is entered: inside it /proc/self belongs to a
// uid the namespace does not map while the process is not dumpable.
func ExecBootstrap(spec *specs.Spec, initPid int, oomScoreAdj *int) *Bootstrap {
	b := &Bootstrap{OOMScoreAdj: oomScoreAdj}
	if spec != nil && spec.Linux != nil {
		for _, ns := range spec.Linux.Namespaces {
			b.Joins = append(b.Joins, Join{ns.Type, fmt.Sprintf("/proc/%d/ns/%s", initPid, procNSFiles[ns.Type])})
		}
	}
	return b
}

// Script is the text the constructor reads.
func (b *Bootstrap) Script() string {
	var s strings.Builder
	if b.OOMScoreAdj != nil {
		fmt.Fprintf(&s, "oom %d\n", *b.OOMScoreAdj)
	}
	for _, j := range b.Joins {
		fmt.Fprintf(&s, "join %s %s\n", j.Type, j.Path)
	}
	fmt.Fprintf(&s, "clone %x\n", b.Clone)
	if b.Clone&unix.CLONE_NEWTIME != 0 {
		// Sorted so that the same config always makes the same script.
		for _, clock := range slices.Sorted(maps.Keys(b.TimeOffsets)) {
			off := b.TimeOffsets[clock]
			fmt.Fprintf(&s, "timens %s %d %d\n", clock, off.Secs, off.Nanosecs)
		}
	}
	s.WriteString("end\n")
	return s.String()
}

// Reply is a line the constructor sends: MapsRequest or InitPid.
type Reply interface{ reply() }

// MapsRequest: the constructor made its user namespace; the runtime writes
// the uid and gid maps of Pid and then calls MapsWritten.
type MapsRequest struct{ Pid int }

// InitPid is the process that goes on as the init (in its pid namespace
// when it made or joined one); the constructor is done.
type InitPid struct{ Pid int }

func (MapsRequest) reply() {}
func (InitPid) reply()     {}

// ConstructorError is what the constructor reported before it exited.
type ConstructorError struct{ Msg string }

func (e *ConstructorError) Error() string { return e.Msg }

// SendBootstrap writes the script to the constructor.
func SendBootstrap(f *os.File, b *Bootstrap) error {
	if _, err := f.WriteString(b.Script()); err != nil {
		return fmt.Errorf("sync socket: %w", err)
	}
	return nil
}

// MapsWritten answers a MapsRequest.
func MapsWritten(f *os.File) error {
	_, err := f.WriteString("ok\n")
	return err
}

// ReadReply reads the constructor's next line. It reads one byte at a time:
// whatever follows the constructor's last line belongs to the Go init's
// frames and must stay in the socket. An "error" line comes back as a
// *ConstructorError, EOF (the process died) as io.EOF.
func ReadReply(f *os.File) (Reply, error) {
	line, err := readLine(f)
	if err != nil {
		return nil, err
	}
	word, arg, _ := strings.Cut(line, " ")
	switch word {
	case "error":
		return nil, &ConstructorError{Msg: arg}
	case "maps", "pid":
		pid, err := strconv.Atoi(arg)
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("sync socket: bad line %q", line)
		}
		if word == "maps" {
			return MapsRequest{pid}, nil
		}
		return InitPid{pid}, nil
	}
	return nil, fmt.Errorf("sync socket: unexpected %q", line)
}

// maxLine bounds a constructor line (its own buffers are 512 bytes).
const maxLine = 4096

func readLine(f *os.File) (string, error) {
	var line []byte
	b := make([]byte, 1)
	for len(line) < maxLine {
		n, err := f.Read(b)
		if n == 1 {
			if b[0] == '\n' {
				return string(line), nil
			}
			line = append(line, b[0])
			continue
		}
		if err != nil {
			return string(line), err
		}
	}
	return "", errors.New("sync socket: constructor line too long")
}
