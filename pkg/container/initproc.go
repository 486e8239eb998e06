package container

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/initproto"
	"github.com/bulwark-sec/bulwark/internal/phase"
	"github.com/bulwark-sec/bulwark/pkg/cgroups"
	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/rlimit"
	"github.com/bulwark-sec/bulwark/pkg/selfexe"
)

// Starting a container's init (or an exec'd process) and talking to it:
// the runtime's side of internal/initproto.

type initParams struct {
	preserveFds int
	fifo        *os.File
	console     *os.File
	cgroup      *cgroups.Manager
	resources   *specs.LinuxResources
	// bootstrap is the constructor's script; netnsFd is the fd number
	// the netns file gets in the init, -1 without one.
	bootstrap func(netnsFd int) *initproto.Bootstrap
	// netns is a network namespace made ahead for the init (pkg/netns).
	netns *os.File
	// userns, when set, is called with an fd of the init's new user
	// namespace as soon as its maps are written.
	userns   func(nsfd int) error
	rootTree *os.File
	// rlimits are set on the init from here: inside a user namespace the
	// init could not raise a hard limit above the runtime's.
	rlimits []specs.POSIXRlimit
	// deferPlace: startInit returns once the init's pid is known and the
	// caller places it (place) after sending the config, so that the
	// init's rootfs work overlaps the cgroup writes. Not without a mount
	// namespace (a killed init would leave its mounts in the host's
	// table).
	deferPlace bool
}

type initProc struct {
	pid        int
	conn       *initproto.Conn
	consoleFd  int
	fifoFd     int
	rootTreeFd int
}

// startInit starts `bulwark init` from the read-only view of our binary and
// walks the C constructor through its namespace setup.
func (r *Runtime) startInit(spec *specs.Spec, st *State, ip initParams) (*initProc, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("sync socket: %w", err)
	}
	parent := os.NewFile(uintptr(fds[0]), "sync-parent")
	child := os.NewFile(uintptr(fds[1]), "sync-child")
	defer child.Close()

	cmd, exe, err := selfexe.Command("init")
	if err != nil {
		parent.Close()
		return nil, err
	}
	defer exe.Close()
	extra := make([]*os.File, 0, ip.preserveFds+3)
	for i := 0; i < ip.preserveFds; i++ {
		extra = append(extra, os.NewFile(uintptr(3+i), "preserved"))
	}
	syncFd := 3 + len(extra)
	extra = append(extra, child)
	p := &initProc{consoleFd: -1, fifoFd: -1, conn: initproto.NewConn(parent)}
	if ip.fifo != nil {
		p.fifoFd = 3 + len(extra)
		extra = append(extra, ip.fifo)
	}
	if ip.console != nil {
		p.consoleFd = 3 + len(extra)
		extra = append(extra, ip.console)
	}
	if ip.rootTree != nil {
		p.rootTreeFd = 3 + len(extra)
		extra = append(extra, ip.rootTree)
	}
	netnsFd := -1
	if ip.netns != nil {
		netnsFd = 3 + len(extra)
		extra = append(extra, ip.netns)
	}
	cmd.ExtraFiles = extra
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = []string{initproto.EnvInitPipe + "=" + strconv.Itoa(syncFd)}
	if phase.On() {
		cmd.Env = append(cmd.Env, "BULWARK_PHASES=1")
	}
	if err := cmd.Start(); err != nil {
		parent.Close()
		return nil, fmt.Errorf("start container init: %w", err)
	}
	child.Close()
	stage0 := cmd.Process.Pid
	phase.Mark("cmd started")
	fail := func(err error) (*initProc, error) {
		unix.Kill(stage0, unix.SIGKILL)
		cmd.Wait()
		parent.Close()
		return p, err
	}
	if err := initproto.SendBootstrap(parent, ip.bootstrap(netnsFd)); err != nil {
		return fail(err)
	}
	for {
		reply, err := initproto.ReadReply(parent)
		var cerr *initproto.ConstructorError
		switch {
		case errors.As(err, &cerr):
			return fail(err)
		case err != nil:
			return fail(fmt.Errorf("container init exited while entering its namespaces: %w", err))
		}
		switch reply := reply.(type) {
		case initproto.MapsRequest:
			if err := writeIDMaps(stage0, spec); err != nil {
				return fail(err)
			}
			// Opened before answering: stage0 may exit once it has
			// forked into the pid namespace.
			nsfd := -1
			if ip.userns != nil {
				if nsfd, err = unix.Open(fmt.Sprintf("/proc/%d/ns/user", stage0), unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
					return fail(fmt.Errorf("container init's user namespace: %w", err))
				}
			}
			if err := initproto.MapsWritten(parent); err != nil {
				if nsfd >= 0 {
					unix.Close(nsfd)
				}
				return fail(err)
			}
			if nsfd >= 0 {
				err := ip.userns(nsfd)
				unix.Close(nsfd)
				if err != nil {
					return fail(err)
				}
			}
		case initproto.InitPid:
			pid := reply.Pid
			p.pid = pid
			phase.Mark("got pid")
			if pid != stage0 {
				// The constructor forked into the pid namespace; its
				// parent exits now.
				cmd.Wait()
			}
			if st != nil {
				start, _, err := procStat(pid)
				if err != nil {
					return fail(fmt.Errorf("container init %d: %w", pid, err))
				}
				st.Pid, st.PidStart = pid, start
			}
			if ip.deferPlace {
				return p, nil
			}
			if err := ip.place(pid); err != nil {
				unix.Kill(pid, unix.SIGKILL)
				return fail(err)
			}
			return p, nil
		}
	}
}

// place puts the init in its cgroups, applies linux.resources and sets its
// rlimits.
func (ip initParams) place(pid int) error {
	if ip.cgroup != nil {
		if err := ip.cgroup.Apply(pid); err != nil {
			return fmt.Errorf("cgroup: %w", err)
		}
		phase.Mark("cgroup applied")
		if ip.resources != nil {
			if err := ip.cgroup.Set(ip.resources); err != nil {
				return &oci.FieldError{File: oci.ConfigFile, Field: "linux.resources", Err: err}
			}
		}
	}
	if err := rlimit.Set(pid, ip.rlimits); err != nil {
		return err
	}
	phase.Mark("cgroup set+rlimits")
	return nil
}

func writeIDMaps(pid int, spec *specs.Spec) error {
	write := func(file string, ms []specs.LinuxIDMapping) error {
		var b strings.Builder
		for _, m := range ms {
			fmt.Fprintf(&b, "%d %d %d\n", m.ContainerID, m.HostID, m.Size)
		}
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/%s", pid, file), []byte(b.String()), 0); err != nil {
			return &oci.FieldError{File: oci.ConfigFile, Field: "linux." + strings.Replace(file, "_map", "Mappings", 1), Msg: fmt.Sprintf("writing %s: %v", file, err), Err: err}
		}
		return nil
	}
	if err := write("uid_map", spec.Linux.UIDMappings); err != nil {
		return err
	}
	return write("gid_map", spec.Linux.GIDMappings)
}
