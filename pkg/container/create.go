package container

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/initproto"
	"github.com/bulwark-sec/bulwark/internal/phase"
	"github.com/bulwark-sec/bulwark/pkg/cgroups"
	"github.com/bulwark-sec/bulwark/pkg/hooks"
	"github.com/bulwark-sec/bulwark/pkg/netns"
	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/rootfs"
	"github.com/bulwark-sec/bulwark/pkg/safefile"
	"github.com/bulwark-sec/bulwark/pkg/seccomp"
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
	// Another user who can write --root can plant state and cache entries
	// (a seccomp program) that the next container trusts.
	if err := safefile.CheckDir(r.Root); err != nil {
		return fmt.Errorf("--root: %w", err)
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
		bootstrap:   func(fd int) *initproto.Bootstrap { return initproto.CreateBootstrap(spec, fd) },
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

	cfg := &initproto.InitConfig{
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
	if err = p.conn.Send(cfg); err != nil {
		return err
	}
	if deferPlace {
		if err = ip.place(p.pid); err != nil {
			return err
		}
		if err = p.conn.Send(initproto.Cgroup{}); err != nil {
			return err
		}
	}
	for {
		m, files, rerr := p.conn.Recv()
		if rerr != nil {
			return fmt.Errorf("container init exited before the container was created: %w", rerr)
		}
		switch m := m.(type) {
		case initproto.Error:
			return errors.New(m.Msg)
		case initproto.Hooks:
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
			if err = p.conn.Send(initproto.Resume{}); err != nil {
				return err
			}
		case initproto.Console:
			if len(files) != 1 || !o.wantConsole {
				closeFiles(files)
				return errors.New("init sent an unexpected console")
			}
			o.gotConsole = files[0]
		case initproto.Seccomp:
			if err = r.sendSeccomp(spec, st, files); err != nil {
				return err
			}
			if err = p.conn.Send(initproto.Resume{}); err != nil {
				return err
			}
		case initproto.Ready:
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
			if err = p.conn.Send(initproto.Resume{}); err != nil {
				return fmt.Errorf("container init exited before the container was created: %w", err)
			}
			return nil
		default:
			closeFiles(files)
			return fmt.Errorf("init sent unexpected %q", initproto.Name(m))
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
