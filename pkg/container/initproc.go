package container

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/initproto"
	"github.com/bulwark-sec/bulwark/internal/phase"
	"github.com/bulwark-sec/bulwark/pkg/cgroups"
	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/rlimit"
	"github.com/bulwark-sec/bulwark/pkg/rootless"
	"github.com/bulwark-sec/bulwark/pkg/sched"
	"github.com/bulwark-sec/bulwark/pkg/selfexe"
)

// initParams are what startInit gives the init: fds, the constructor's
// script, and what to do with the init once its pid is known. Starting a
// container's init (create) or a process in it (exec) and talking to it is
// this file: the runtime's side of internal/initproto.
type initParams struct {
	preserveFds int
	fifo        *os.File
	console     *os.File
	cgroup      *cgroups.Manager
	// subCgroups: exec --cgroup, sub-cgroups of cgroup to join.
	subCgroups map[string]string
	resources  *specs.LinuxResources
	// pids is linux.resources.pids, held out of resources until the init
	// asks for its hooks (setLate).
	pids *specs.LinuxPids
	// lateDevices: the device rules in resources are written then too,
	// after the init has made its device nodes.
	lateDevices bool
	// bootstrap is the constructor's script; netnsFd is the fd number
	// the netns file gets in the init, -1 without one.
	bootstrap func(netnsFd int) *initproto.Bootstrap
	// netns is a network namespace made ahead for the init (pkg/netns).
	netns *os.File
	// pidfdSocket, when set, gets a pidfd of the init once its pid is
	// known (--pidfd-socket).
	pidfdSocket *os.File
	// rlimits are set on the init from here: inside a user namespace the
	// init could not raise a hard limit above the runtime's.
	rlimits []specs.POSIXRlimit
	// affinity is an exec'd process's process.execCPUAffinity: the
	// process starts on Initial and moves to Final once in its cgroups.
	// Without either (and always for a create's init) the caller's
	// affinity is reset, as runc does.
	affinity *specs.CPUAffinity
	// deferPlace: startInit returns once the init's pid is known and the
	// caller places it (place) after sending the config, so that the
	// init's rootfs work overlaps the cgroup writes. Not without a mount
	// namespace (a killed init would leave its mounts in the host's
	// table).
	deferPlace bool
}

// initProc is a started init and the fd numbers it has its files at.
type initProc struct {
	ip        initParams
	pid       int
	conn      *initproto.Conn
	consoleFd int
	fifoFd    int
	// netnsFd is where the init holds the network namespace made ahead
	// (pkg/netns), -1 without one; the init closes it once joined.
	netnsFd int
	// sendFds go with the config frame (InitConfig.RootTree, Sources).
	sendFds []int
}

// startInit starts `bulwark init` from the read-only view of our binary and
// walks the C constructor through its namespace setup. On failure it has
// killed what it started.
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
	p := &initProc{ip: ip, consoleFd: -1, fifoFd: -1, conn: initproto.NewConn(parent)}
	if ip.fifo != nil {
		p.fifoFd = 3 + len(extra)
		extra = append(extra, ip.fifo)
	}
	if ip.console != nil {
		p.consoleFd = 3 + len(extra)
		extra = append(extra, ip.console)
	}
	netnsFd := -1
	if ip.netns != nil {
		netnsFd = 3 + len(extra)
		extra = append(extra, ip.netns)
	}
	p.netnsFd = netnsFd
	cmd.ExtraFiles = extra
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = []string{initproto.EnvInitPipe + "=" + strconv.Itoa(syncFd)}
	if phase.On() {
		cmd.Env = append(cmd.Env, "BULWARK_PHASES=1")
	}
	if err := startOn(cmd, ip.affinity); err != nil {
		parent.Close()
		return nil, fmt.Errorf("start container init: %w", err)
	}
	child.Close()
	stage0 := cmd.Process.Pid
	phase.Mark("cmd started")
	fail := func(err error) (*initProc, error) {
		if p.pid > 0 && p.pid != stage0 {
			unix.Kill(p.pid, unix.SIGKILL)
		}
		unix.Kill(stage0, unix.SIGKILL)
		cmd.Wait()
		parent.Close()
		return nil, err
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
			if err := r.writeIDMaps(stage0, spec); err != nil {
				return fail(err)
			}
			if err := initproto.MapsWritten(parent); err != nil {
				return fail(err)
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
			if ip.pidfdSocket != nil {
				name := "exec"
				if st != nil {
					name = "init"
				}
				if err := sendPidfd(ip.pidfdSocket, pid, name); err != nil {
					return fail(err)
				}
			}
			if ip.deferPlace {
				return p, nil
			}
			if err := ip.place(pid); err != nil {
				return fail(err)
			}
			return p, nil
		}
	}
}

// startOn starts cmd with the CPU affinity aff.Initial (nil or empty: the
// caller's). The child inherits the affinity of the thread that forks it,
// so that thread is pinned and then dropped: a locked goroutine that exits
// takes its thread with it, and no other goroutine ever runs pinned.
func startOn(cmd *exec.Cmd, aff *specs.CPUAffinity) error {
	if aff == nil || aff.Initial == "" {
		return cmd.Start()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := sched.SetAffinity(0, aff.Initial); err != nil {
			errc <- &oci.FieldError{File: oci.ConfigFile, Field: "process.execCPUAffinity.initial", Err: err}
			return
		}
		errc <- cmd.Start()
	}()
	return <-errc
}

// place puts the init in its cgroups, applies linux.resources and raises
// the hard rlimits its payload needs.
func (ip initParams) place(pid int) error {
	if ip.cgroup != nil {
		if err := ip.cgroup.ApplySub(pid, ip.subCgroups); err != nil {
			return fmt.Errorf("cgroup: %w", err)
		}
		phase.Mark("cgroup applied")
		if ip.resources != nil {
			set := ip.cgroup.Set
			if ip.lateDevices {
				set = ip.cgroup.SetExceptDevices
			}
			if err := set(ip.resources); err != nil {
				return &oci.FieldError{File: oci.ConfigFile, Field: "linux.resources", Err: err}
			}
		}
	}
	// Raised only: the init applies the exact limits itself just before
	// execve, so none binds its Go runtime meanwhile (pkg/rlimit).
	if err := rlimit.Raise(pid, ip.rlimits); err != nil {
		return err
	}
	// After the cgroups, so that a reset lands on the cpuset's CPUs. pid
	// is the thread that execs the payload.
	if a := ip.affinity; a != nil && a.Final != "" {
		if err := sched.SetAffinity(pid, a.Final); err != nil {
			return &oci.FieldError{File: oci.ConfigFile, Field: "process.execCPUAffinity.final", Err: err}
		}
	} else if a == nil || a.Initial == "" {
		// Best effort, as in runc: a thread that cannot be moved keeps
		// running where it was, which is no reason to fail the start.
		_ = sched.ResetAffinity(pid)
	}
	phase.Mark("cgroup set+rlimits")
	return nil
}

// setLate writes linux.resources.pids, and with lateDevices the device
// rules, once the init has come up and made its rootfs, when it asks for
// the prestart and createRuntime hooks, where runc writes all of
// linux.resources: before any hook and long before the payload runs, but
// after the init's own threads exist, which a pids limit below their number
// would not let start (pthread_create fails with EAGAIN), and after its
// mknod of the config's device nodes, which rules that deny a node would
// refuse.
func (ip initParams) setLate() error {
	if ip.cgroup == nil {
		return nil
	}
	if ip.lateDevices && ip.resources != nil {
		if err := ip.cgroup.Set(&specs.LinuxResources{Devices: ip.resources.Devices}); err != nil {
			return &oci.FieldError{File: oci.ConfigFile, Field: "linux.resources.devices", Err: err}
		}
	}
	if ip.pids == nil {
		return nil
	}
	if err := ip.cgroup.Set(&specs.LinuxResources{Pids: ip.pids}); err != nil {
		return &oci.FieldError{File: oci.ConfigFile, Field: "linux.resources.pids", Err: err}
	}
	return nil
}

func (r *Runtime) writeIDMaps(pid int, spec *specs.Spec) error {
	if r.Rootless {
		if err := rootless.WriteIDMaps(pid, spec.Linux.UIDMappings, spec.Linux.GIDMappings); err != nil {
			return fmt.Errorf("%s: %w", oci.ConfigFile, err)
		}
		return nil
	}
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

// sendConfig sends the config frame and, when the caller deferred it
// (initParams.deferPlace), places the init in its cgroups while the init
// already works on its rootfs, then tells it so.
func (p *initProc) sendConfig(cfg *initproto.InitConfig) error {
	ip := p.ip
	cfg.CgroupPending = ip.deferPlace
	if err := p.conn.Send(cfg, p.sendFds...); err != nil {
		return err
	}
	if !ip.deferPlace {
		return nil
	}
	if err := ip.place(p.pid); err != nil {
		return err
	}
	return p.conn.Send(initproto.Cgroup{})
}

// conversation is what create or exec does with the init's frames after
// the config.
type conversation struct {
	// hooks runs the prestart and createRuntime hooks; nil: the init must
	// not ask (exec). The files it returns go to the init with its Resume,
	// for the payload to inherit (a VM container's taps), and are closed
	// here once sent.
	hooks func() ([]*os.File, error)
	// console takes the pty master the init sent; nil: none is expected.
	console func(*os.File)
	// seccomp passes the notify fd on; it owns the files.
	seccomp func([]*os.File) error
	// namespaces takes the init's user and network namespaces
	// (CreateOpts.Namespaces); nil: none are expected.
	namespaces func([]*os.File) error
	// fuseOverlay starts fuse-overlayfs on the init's rootfs connection
	// (CreateOpts.FuseOverlay); nil: the init must not ask.
	fuseOverlay func(dev *os.File, reason string) error
	// idmap makes the id-mapped clone the init asks for (IdmapSource,
	// its O_PATH handle on the source); nil: the init must not ask.
	idmap func(m initproto.IdmapSource, src *os.File) (*os.File, error)
	// ready is called when the process is set up, before the init is let
	// go: a create's init then waits for start, an exec'd process execs.
	ready func() error
	// untilExec: after ready, go on until EOF, which means the process has
	// exec'd (exec); without, the conversation ends at ready (create).
	untilExec bool
	// lost wraps a failure of the socket itself (the init died), which
	// converse returns unwrapped without it; io.EOF stays detectable.
	lost func(error) error
}

// converse handles the init's frames: create's and exec's one message loop.
// An Error frame comes back as the initproto.Error.
func (p *initProc) converse(c conversation) error {
	lost := func(err error) error {
		if c.lost != nil {
			return c.lost(err)
		}
		return err
	}
	resume := func(files ...*os.File) error {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = int(f.Fd())
		}
		err := p.conn.Send(initproto.Resume{}, fds...)
		closeFiles(files)
		if err != nil {
			return lost(err)
		}
		return nil
	}
	for {
		m, files, err := p.conn.Recv()
		if err != nil {
			return lost(err)
		}
		switch m := m.(type) {
		case initproto.Error:
			closeFiles(files)
			return m
		case initproto.Hooks:
			closeFiles(files)
			if c.hooks == nil {
				return fmt.Errorf("init sent unexpected %q", initproto.Name(m))
			}
			passed, err := c.hooks()
			if err != nil {
				return err
			}
			if err := resume(passed...); err != nil {
				return err
			}
		case initproto.Console:
			if len(files) != 1 || c.console == nil {
				closeFiles(files)
				return errors.New("init sent an unexpected console")
			}
			c.console(files[0])
		case initproto.Seccomp:
			if err := c.seccomp(files); err != nil {
				return err
			}
			if err := resume(); err != nil {
				return err
			}
		case initproto.Namespaces:
			if len(files) != 2 || c.namespaces == nil {
				closeFiles(files)
				return errors.New("init sent unexpected namespaces")
			}
			if err := c.namespaces(files); err != nil {
				return err
			}
		case initproto.FuseOverlay:
			if len(files) != 1 || c.fuseOverlay == nil {
				closeFiles(files)
				return errors.New("init asked for fuse-overlayfs on its rootfs, which only `bulwark run IMAGE` without root provides")
			}
			err := c.fuseOverlay(files[0], m.Reason)
			files[0].Close()
			if err != nil {
				return err
			}
			if err := resume(); err != nil {
				return err
			}
		case initproto.IdmapSource:
			if len(files) != 1 || c.idmap == nil {
				closeFiles(files)
				return errors.New("init sent an unexpected id-mapped bind source")
			}
			tree, err := c.idmap(m, files[0])
			files[0].Close()
			if err != nil {
				return err
			}
			err = p.conn.Send(initproto.IdmapTree{}, int(tree.Fd()))
			tree.Close()
			if err != nil {
				return lost(err)
			}
		case initproto.Ready:
			closeFiles(files)
			if err := c.ready(); err != nil {
				return err
			}
			// Only now may the init go on: a runtime killed before
			// this line (state.json and the pid file not yet written)
			// takes its init with it, which reads EOF instead.
			if err := resume(); err != nil {
				return err
			}
			if !c.untilExec {
				return nil
			}
		default:
			closeFiles(files)
			return fmt.Errorf("init sent unexpected %q", initproto.Name(m))
		}
	}
}
