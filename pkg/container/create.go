package container

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/phase"
	"github.com/bulwark-sec/bulwark/pkg/cgroups"
	"github.com/bulwark-sec/bulwark/pkg/hooks"
	"github.com/bulwark-sec/bulwark/pkg/linux"
	"github.com/bulwark-sec/bulwark/pkg/netns"
	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/rootfs"
	"github.com/bulwark-sec/bulwark/pkg/seccomp"
	"github.com/bulwark-sec/bulwark/pkg/selfexe"
)

const execFifo = "exec.fifo"

// Runtime holds the global options every command shares.
type Runtime struct {
	Root          string
	SystemdCgroup bool
	// Warnf reports something the user should know that is not an error.
	Warnf func(format string, args ...any)
	// Harden, when set, raises each config to the host's hardening floor
	// right after it is loaded (bulwark --harden, /etc/bulwark/policy.json).
	// A func keeps policy decisions out of the lifecycle code.
	Harden func(*specs.Spec) error

	states stateCache
}

func (r *Runtime) warnf(format string, args ...any) {
	if r.Warnf != nil {
		r.Warnf(format, args...)
	}
}

// CreateOpts are create's per-command flags.
type CreateOpts struct {
	PidFile       string
	ConsoleSocket string
	NoPivot       bool
	PreserveFds   int
	// Spec, when set, is used instead of reading bundle/config.json (the
	// user face generates its spec in memory).
	Spec *specs.Spec
	// Owns is what the caller made on the host for this container; the
	// container's state records it and delete removes it.
	Owns []Owned
	// wantConsole: the runtime stays attached and relays the terminal itself
	// (foreground run without --console-socket); the pty master lands in gotConsole.
	wantConsole bool
	gotConsole  *os.File
}

// Create builds the container up to the created state: namespaces, rootfs and
// process set up, the payload not yet started.
func (r *Runtime) Create(id, bundle string, o *CreateOpts) (err error) {
	if err := oci.ValidateID(id); err != nil {
		return err
	}
	bundle, err = filepath.Abs(bundle)
	if err != nil {
		return err
	}
	spec := o.Spec
	if spec == nil {
		var warnings []string
		spec, warnings, err = oci.LoadBundle(bundle, seccomp.Validate)
		if err != nil {
			return err
		}
		for _, w := range warnings {
			r.warnf("%s", w)
		}
	}
	phase.Mark("loaded bundle")
	if spec.Process == nil {
		return &oci.FieldError{File: oci.ConfigFile, Field: "process", Msg: "required to create a container", Err: oci.ErrInvalidConfig}
	}
	if r.Harden != nil {
		if err := r.Harden(spec); err != nil {
			return err
		}
	}
	hostMountNS := !oci.HasNamespace(spec, specs.MountNamespace)
	if hostMountNS {
		if err := checkHostMountNS(spec); err != nil {
			return err
		}
	}
	if spec.Process.Terminal && o.ConsoleSocket == "" && !o.wantConsole {
		return &oci.FieldError{File: oci.ConfigFile, Field: "process.terminal", Msg: "a terminal needs --console-socket when the runtime does not stay attached", Err: oci.ErrInvalidConfig}
	}
	absBindSources(spec, bundle)
	absDestinations(spec)
	// The network namespace is made on a thread of ours while create goes
	// on (pkg/netns), when the init would make it from our user namespace.
	var netnsWait func() (*os.File, error)
	if oci.CreatesNamespace(spec, specs.NetworkNamespace) && !oci.HasNamespace(spec, specs.UserNamespace) {
		netnsWait = netns.New()
		defer func() {
			if netnsWait != nil {
				if f, err := netnsWait(); err == nil {
					f.Close()
				}
			}
		}()
	}
	if err := os.MkdirAll(r.Root, 0o700); err != nil {
		return fmt.Errorf("--root %s: %w", r.Root, err)
	}
	if err := os.Mkdir(r.dir(id), 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("container %q: %w", id, ErrExist)
		}
		return fmt.Errorf("container %q: %w", id, err)
	}
	l, err := r.lock(id)
	if err != nil {
		os.RemoveAll(r.dir(id))
		return err
	}
	defer l.Unlock()

	st := &State{
		ID:          id,
		Bundle:      bundle,
		Rootfs:      oci.RootfsPath(bundle, spec),
		Phase:       PhaseCreating,
		Created:     time.Now().UTC(),
		Annotations: spec.Annotations,
		Config:      spec,
		Owner:       strconv.Itoa(os.Geteuid()),
		Cgroup:      cgroups.Config{Path: cgroupsPath(spec), Systemd: r.SystemdCgroup, ID: id},
		Owns:        o.Owns,
	}
	var cg *cgroups.Manager
	var hostMountsBefore map[int]string
	defer func() {
		if err == nil {
			return
		}
		// Undo everything: kill what we started, then remove cgroup and state.
		if st.Pid > 0 {
			unix.Kill(st.Pid, unix.SIGKILL)
		}
		if cg != nil {
			_ = cg.KillAll(unix.SIGKILL)
			waitEmpty(cg)
			_ = cg.Destroy()
		}
		if hostMountsBefore != nil {
			if ids, merr := newMountsBelow(st.Rootfs, hostMountsBefore); merr == nil {
				_ = unmountHostMounts(st.Rootfs, ids)
			}
		}
		os.RemoveAll(r.dir(id))
	}()
	if err = r.saveState(st); err != nil {
		return err
	}
	phase.Mark("saveState")
	fifo := filepath.Join(r.dir(id), execFifo)
	if err = unix.Mkfifo(fifo, 0o622); err != nil {
		return fmt.Errorf("exec fifo: %w", err)
	}
	// mkfifo honours the umask; the payload may run as any uid.
	if err = os.Chmod(fifo, 0o622); err != nil {
		return err
	}
	res := resourcesWithDevices(spec)
	cg, err = cgroups.New(st.Cgroup, res)
	if err != nil {
		return &oci.FieldError{File: oci.ConfigFile, Field: "linux.cgroupsPath", Err: err}
	}
	phase.Mark("cgroups.New")

	fifoFd, err := unix.Open(fifo, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("exec fifo: %w", err)
	}
	fifoFile := os.NewFile(uintptr(fifoFd), "exec.fifo")
	defer fifoFile.Close()

	// An idmapped (or nosuid/nodev) rootfs is mounted here, in the host's
	// user namespace, which the init has left behind by the time it mounts.
	rootTree, idmap, err := rootfs.OpenRootTree(st.Rootfs, spec)
	if err != nil {
		return err
	}
	var idmapTree func(nsfd int) error
	if rootTree != nil {
		defer rootTree.Close()
		idmapTree = func(nsfd int) error {
			warning, err := rootfs.IdmapRootTree(rootTree, st.Rootfs, nsfd)
			if warning != "" {
				r.warnf("%s", warning)
			}
			return err
		}
	}
	// The idmap goes through the init's own user namespace once its maps
	// are written (initParams.userns); that saves making one in a
	// throwaway process (an execve of this binary) on every start. An init
	// that joins a user namespace instead makes none to borrow.
	if idmap && !oci.CreatesNamespace(spec, specs.UserNamespace) {
		nsfd, err := rootfs.NewUserNSFd(spec)
		if err != nil {
			return err
		}
		err = idmapTree(nsfd)
		unix.Close(nsfd)
		if err != nil {
			return err
		}
		idmap = false
	}
	var onUserNS func(nsfd int) error
	idmapped := false
	if idmap {
		onUserNS = func(nsfd int) error {
			idmapped = true
			return idmapTree(nsfd)
		}
	}

	var consoleConn *os.File
	if spec.Process.Terminal && o.ConsoleSocket != "" {
		consoleConn, err = dialConsole(o.ConsoleSocket)
		if err != nil {
			return err
		}
		defer consoleConn.Close()
	}

	if hostMountNS {
		if hostMountsBefore, err = mountsBelow(st.Rootfs); err != nil {
			return err
		}
	}
	// Compile the seccomp program while the init enters its namespaces.
	bpf := r.compileSeccomp(spec)
	var netnsFile *os.File
	if netnsWait != nil {
		f, nerr := netnsWait()
		netnsWait = nil
		if nerr != nil {
			return nerr
		}
		netnsFile = f
		defer netnsFile.Close()
	}
	deferPlace := !hostMountNS
	ip := initParams{
		preserveFds: o.PreserveFds,
		fifo:        fifoFile,
		console:     consoleConn,
		cgroup:      cg,
		resources:   res,
		bootstrap:   func(fd int) string { return createBootstrap(spec, fd) },
		netns:       netnsFile,
		userns:      onUserNS,
		rootTree:    rootTree,
		rlimits:     spec.Process.Rlimits,
		deferPlace:  deferPlace,
	}
	p, err := r.startInit(spec, st, ip)
	if p != nil && p.pid > 0 {
		st.Pid = p.pid
	}
	if err != nil {
		return err
	}
	defer p.conn.Close()
	phase.Mark("startInit done")
	if idmap && !idmapped {
		return errors.New("internal error: the init made no user namespace to idmap the rootfs through")
	}

	cfg := &linux.InitConfig{
		ID: id, Bundle: bundle, Rootfs: st.Rootfs, Spec: spec, Process: spec.Process,
		NoPivot: o.NoPivot, NewUserNS: oci.CreatesNamespace(spec, specs.UserNamespace), CgroupNS: oci.CreatesNamespace(spec, specs.CgroupNamespace),
		PreserveFds: o.PreserveFds, ConsoleFd: p.consoleFd, FifoFd: p.fifoFd, RootTreeFd: p.rootTreeFd,
		NetNSReady: netnsFile != nil,
		State:      &specs.State{Version: specs.Version, ID: id, Status: specs.StateCreating, Bundle: bundle, Annotations: spec.Annotations},
	}
	if cfg.SeccompProgram, err = bpf(); err != nil {
		return err
	}
	cfg.CgroupPending = deferPlace
	if err = p.conn.Send(&linux.Msg{Type: linux.MsgConfig, Config: cfg}); err != nil {
		return err
	}
	if deferPlace {
		if err = ip.place(p.pid); err != nil {
			return err
		}
		if err = p.conn.Send(&linux.Msg{Type: linux.MsgCgroup}); err != nil {
			return err
		}
	}
	for {
		m, files, rerr := p.conn.Recv()
		if rerr != nil {
			return fmt.Errorf("container init exited before the container was created: %w", rerr)
		}
		switch m.Type {
		case linux.MsgError:
			return errors.New(m.Error)
		case linux.MsgHooks:
			hs := &specs.State{Version: specs.Version, ID: id, Status: specs.StateCreating, Pid: st.Pid, Bundle: bundle, Annotations: spec.Annotations}
			if spec.Hooks != nil {
				// prestart predates createRuntime and was specified to run
				// once the container exists; its consumers (and the
				// runtime-tools suite, and crun) expect "created".
				pre := *hs
				pre.Status = specs.StateCreated
				//lint:ignore SA1019 prestart is deprecated but engines still use it
				if err = hooks.Run("prestart", spec.Hooks.Prestart, &pre); err != nil {
					return err
				}
				if err = hooks.Run("createRuntime", spec.Hooks.CreateRuntime, hs); err != nil {
					return err
				}
			}
			if err = p.conn.Send(&linux.Msg{Type: linux.MsgResume}); err != nil {
				return err
			}
		case linux.MsgConsole:
			if len(files) != 1 || !o.wantConsole {
				closeFiles(files)
				return errors.New("init sent an unexpected console")
			}
			o.gotConsole = files[0]
		case linux.MsgSeccomp:
			if err = r.sendSeccomp(spec, st, files); err != nil {
				return err
			}
			if err = p.conn.Send(&linux.Msg{Type: linux.MsgResume}); err != nil {
				return err
			}
		case linux.MsgReady:
			phase.Mark("got ready")
			st.Phase = PhaseCreated
			if hostMountNS {
				if st.HostMounts, err = newMountsBelow(st.Rootfs, hostMountsBefore); err != nil {
					return err
				}
			}
			if err = r.saveState(st); err != nil {
				return err
			}
			if o.PidFile != "" {
				if err = writePidFile(o.PidFile, st.Pid); err != nil {
					return err
				}
			}
			// Only now may the init wait for start: a create killed
			// before this line takes its init with it (EOF instead).
			if err = p.conn.Send(&linux.Msg{Type: linux.MsgResume}); err != nil {
				return fmt.Errorf("container init exited before the container was created: %w", err)
			}
			return nil
		default:
			closeFiles(files)
			return fmt.Errorf("init sent unexpected %q", m.Type)
		}
	}
}

func (r *Runtime) sendSeccomp(spec *specs.Spec, st *State, files []*os.File) error {
	defer closeFiles(files)
	if len(files) != 1 {
		return errors.New("seccomp: init sent no notify fd")
	}
	return seccomp.SendToListener(spec.Linux.Seccomp.ListenerPath, int(files[0].Fd()), &specs.ContainerProcessState{
		Version:  specs.Version,
		Fds:      []string{specs.SeccompFdName},
		Pid:      st.Pid,
		Metadata: spec.Linux.Seccomp.ListenerMetadata,
		State:    specs.State{Version: specs.Version, ID: st.ID, Status: specs.StateCreating, Pid: st.Pid, Bundle: st.Bundle, Annotations: st.Annotations},
	})
}

type initParams struct {
	preserveFds int
	fifo        *os.File
	console     *os.File
	cgroup      *cgroups.Manager
	resources   *specs.LinuxResources
	// bootstrap is the constructor's script; netnsFd is the fd number
	// the netns file gets in the init, -1 without one.
	bootstrap func(netnsFd int) string
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
	conn       *linux.Conn
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
	p := &initProc{consoleFd: -1, fifoFd: -1, conn: linux.NewConn(parent)}
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
	cmd.Env = []string{linux.EnvInitPipe + "=" + strconv.Itoa(syncFd)}
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
	if _, err := parent.WriteString(ip.bootstrap(netnsFd)); err != nil {
		return fail(fmt.Errorf("sync socket: %w", err))
	}
	rd := bufio.NewReaderSize(&rawReader{parent}, 1)
	for {
		line, err := readLine(rd)
		if err != nil {
			return fail(fmt.Errorf("container init exited while entering its namespaces: %w", err))
		}
		switch {
		case strings.HasPrefix(line, "error "):
			return fail(errors.New(strings.TrimPrefix(line, "error ")))
		case strings.HasPrefix(line, "maps "):
			if err := writeIDMaps(stage0, spec); err != nil {
				return fail(err)
			}
			// Opened before "ok": stage0 may exit once it has forked
			// into the pid namespace.
			nsfd := -1
			if ip.userns != nil {
				if nsfd, err = unix.Open(fmt.Sprintf("/proc/%d/ns/user", stage0), unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
					return fail(fmt.Errorf("container init's user namespace: %w", err))
				}
			}
			if _, err := parent.WriteString("ok\n"); err != nil {
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
		case strings.HasPrefix(line, "pid "):
			pid, err := strconv.Atoi(strings.TrimPrefix(line, "pid "))
			if err != nil {
				return fail(fmt.Errorf("sync socket: bad line %q", line))
			}
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
		default:
			return fail(fmt.Errorf("sync socket: unexpected %q", line))
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
	if err := linux.SetRlimits(pid, ip.rlimits); err != nil {
		return err
	}
	phase.Mark("cgroup set+rlimits")
	return nil
}

// rawReader reads the socket without Go's buffering so that nothing beyond
// the constructor's lines is consumed.
type rawReader struct{ f *os.File }

func (r *rawReader) Read(b []byte) (int, error) { return r.f.Read(b[:1]) }

func readLine(rd *bufio.Reader) (string, error) {
	s, err := rd.ReadString('\n')
	return strings.TrimSuffix(s, "\n"), err
}

var nsNames = map[specs.LinuxNamespaceType]uintptr{
	specs.UserNamespace: unix.CLONE_NEWUSER, specs.MountNamespace: unix.CLONE_NEWNS,
	specs.PIDNamespace: unix.CLONE_NEWPID, specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.IPCNamespace: unix.CLONE_NEWIPC, specs.UTSNamespace: unix.CLONE_NEWUTS,
	specs.CgroupNamespace: unix.CLONE_NEWCGROUP, specs.TimeNamespace: unix.CLONE_NEWTIME,
}

// createBootstrap is the constructor's script for a new container.
// netnsFd, when >= 0, is the fd (in the init) of a network namespace the
// runtime created for it: joined instead of created.
func createBootstrap(spec *specs.Spec, netnsFd int) string {
	var b strings.Builder
	if spec.Process.OOMScoreAdj != nil {
		fmt.Fprintf(&b, "oom %d\n", *spec.Process.OOMScoreAdj)
	}
	var flags uintptr
	for _, ns := range spec.Linux.Namespaces {
		switch {
		case ns.Path != "":
			fmt.Fprintf(&b, "join %s %s\n", ns.Type, ns.Path)
		case ns.Type == specs.NetworkNamespace && netnsFd >= 0:
			fmt.Fprintf(&b, "join %s /proc/self/fd/%d\n", ns.Type, netnsFd)
		case ns.Type == specs.CgroupNamespace:
			// Made by the init once it is in its cgroups
			// (InitConfig.CgroupNS).
		default:
			flags |= nsNames[ns.Type]
		}
	}
	fmt.Fprintf(&b, "clone %x\n", flags)
	if flags&unix.CLONE_NEWTIME != 0 {
		for clock, off := range spec.Linux.TimeOffsets {
			fmt.Fprintf(&b, "timens %s %d %d\n", clock, off.Secs, off.Nanosecs)
		}
	}
	b.WriteString("end\n")
	return b.String()
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

func cgroupsPath(s *specs.Spec) string {
	if s.Linux == nil {
		return ""
	}
	return s.Linux.CgroupsPath
}

// resourcesWithDevices adds the device rules every container needs: the
// default device nodes and the ones the config asks for. Everything else
// stays denied.
func resourcesWithDevices(s *specs.Spec) *specs.LinuxResources {
	var res specs.LinuxResources
	if s.Linux != nil && s.Linux.Resources != nil {
		res = *s.Linux.Resources
	}
	rules := []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	rules = append(rules, res.Devices...)
	rules = append(rules, rootfs.DefaultDeviceRules()...)
	if s.Linux != nil {
		for _, d := range s.Linux.Devices {
			if d.Type == "p" {
				// The devices cgroup knows only block and char devices;
				// a FIFO is opened like any file.
				continue
			}
			maj, min := d.Major, d.Minor
			rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: d.Type, Major: &maj, Minor: &min, Access: "rwm"})
		}
	}
	res.Devices = rules
	return &res
}

func dialConsole(path string) (*os.File, error) {
	c, err := net.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("--console-socket %s: %w", path, err)
	}
	defer c.Close()
	f, err := c.(*net.UnixConn).File()
	if err != nil {
		return nil, fmt.Errorf("--console-socket %s: %w", path, err)
	}
	return f, nil
}

func writePidFile(path string, pid int) error {
	path, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("--pid-file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("--pid-file: %w", err)
	}
	return nil
}

func closeFiles(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// waitEmpty gives killed processes a moment to leave the cgroup so it can be
// removed; it does not wait forever on an unkillable (D state) task.
func waitEmpty(m *cgroups.Manager) {
	for i := 0; i < 200; i++ {
		pids, err := m.Pids()
		if err != nil || len(pids) == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// absDestinations anchors relative mount destinations at the container's /:
// runtime-spec 1.0 allowed them and oci.LoadBundle warns that they are taken
// that way, so the mount code, which insists on absolute paths, must get one.
func absDestinations(s *specs.Spec) {
	for i, m := range s.Mounts {
		if m.Destination != "" && !filepath.IsAbs(m.Destination) {
			s.Mounts[i].Destination = "/" + m.Destination
		}
	}
}

// absBindSources makes relative bind sources relative to the bundle, as runc
// does; the init's working directory is no place to resolve them against.
func absBindSources(s *specs.Spec, bundle string) {
	for i, m := range s.Mounts {
		if m.Source == "" || filepath.IsAbs(m.Source) {
			continue
		}
		bind := m.Type == "bind"
		for _, o := range m.Options {
			if o == "bind" || o == "rbind" {
				bind = true
			}
		}
		if bind {
			s.Mounts[i].Source = filepath.Join(bundle, m.Source)
		}
	}
}

// compileSeccomp starts compiling linux.seccomp to BPF, through the cache
// under --root, and returns a function that waits for the result.
func (r *Runtime) compileSeccomp(s *specs.Spec) func() ([]byte, error) {
	if s.Linux == nil || s.Linux.Seccomp == nil {
		return func() ([]byte, error) { return nil, nil }
	}
	type result struct {
		prog []byte
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		prog, err := seccomp.Compile(s.Linux.Seccomp, filepath.Join(r.Root, seccompCacheDir))
		ch <- result{prog, oci.InConfig(err)}
	}()
	return func() ([]byte, error) {
		res := <-ch
		return res.prog, res.err
	}
}

// seccompCacheDir holds compiled seccomp programs under --root; '@' keeps
// it from ever being taken for a container id.
const seccompCacheDir = "@seccomp-cache"
