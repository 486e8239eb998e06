package container

import (
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

	"github.com/bulwark-sec/bulwark/internal/cleanup"
	"github.com/bulwark-sec/bulwark/internal/initproto"
	"github.com/bulwark-sec/bulwark/internal/phase"
	"github.com/bulwark-sec/bulwark/pkg/cgroups"
	"github.com/bulwark-sec/bulwark/pkg/hooks"
	"github.com/bulwark-sec/bulwark/pkg/netns"
	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/rootfs"
	"github.com/bulwark-sec/bulwark/pkg/rootless"
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
	// A func keeps policy decisions out of the lifecycle code. stateDir is
	// the container's state directory to be (the owner of what Harden
	// makes on the host: a user namespace range, idmapped mounts); what it
	// returns the container owns, and delete removes.
	Harden func(s *specs.Spec, bundle, stateDir string) ([]Owned, error)
	// HardenExec, when set, raises a process exec'd into a container to
	// what the floor left that container (its stored config).
	HardenExec func(container *specs.Spec, p *specs.Process) error
	// Isolation, when set (bulwark --isolation vm, an engine's second
	// runtime name), is the isolation a bundle that names none asks for.
	Isolation string
	// VM, when set, turns the spec of a container annotated for VM
	// isolation into the outer container's (pkg/vmcontainer.Wrap): QEMU
	// as its init. What it returns to own, the container owns. Without it
	// such a container is refused.
	VM func(inner *specs.Spec, rootfs, stateDir string) (*specs.Spec, []Owned, error)
	// VMNetwork, when set, bridges a VM container's network interfaces
	// into its guest (pkg/vmcontainer.Network) once the create hooks have
	// run: the files it returns (taps) are the container's init's to
	// inherit, and with it QEMU's.
	VMNetwork func(stateDir string, initPid int) ([]*os.File, error)
	// Releasers undo the Owned kinds pkg/container does not know how to
	// remove (OwnedNetwork), for delete and create's rollback.
	Releasers map[OwnedKind]Releaser
	// Rootless: this runtime has no privilege on the host (pkg/rootless
	// decides, from --rootless). User namespace maps go through newuidmap
	// and newgidmap, the rootfs is bound by the init itself (no idmapped
	// mount), and a container gets no cgroup where none is delegated.
	Rootless bool

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
	// PidfdSocket is a unix socket that gets a pidfd of the init (runc's
	// --pidfd-socket).
	PidfdSocket string
	NoPivot     bool
	PreserveFds int
	// ListenFds are socket-activation fds (systemd's LISTEN_FDS) at
	// 3..3+N-1, passed on ahead of the PreserveFds that follow them; the
	// process gets LISTEN_FDS=N and LISTEN_PID=1, as runc does.
	ListenFds int
	// Spec, when set, is used instead of reading bundle/config.json (the
	// user face generates its spec in memory).
	Spec *specs.Spec
	// Owns is what the caller made on the host for this container; the
	// container's state records it and delete removes it.
	Owns []Owned
	// Claimed, when set, is called once the container's id is claimed:
	// from then on Owns is the container's, and a failed create's own
	// undo (delete's destroy) releases it, so the caller must not.
	Claimed func()
	// Namespaces, when set, gets the init's user and network namespaces
	// (in that order, its own to close) while the container is created,
	// before its payload can run: a user-mode network (pasta,
	// slirp4netns) attaches to them. An error fails the create.
	Namespaces func(userns, netns *os.File) error
	// FuseOverlay, when set, starts fuse-overlayfs on the /dev/fuse
	// connection (its own to close) the init mounted at its rootfs (an
	// image snapshot, oci.AnnotationStorageDriver), reason being why the
	// kernel's overlayfs is not used; the init touches its rootfs only
	// once it returns. An error fails the create.
	FuseOverlay func(dev *os.File, reason string) error
	// wantConsole: the runtime stays attached and relays the terminal itself
	// (foreground run without --console-socket); the pty master lands in gotConsole.
	wantConsole bool
	gotConsole  *os.File
	// hardenOwns is what Harden made for this container.
	hardenOwns []Owned
}

// Create builds the container up to the created state: namespaces, rootfs and
// process set up, the payload not yet started. Whatever fails once the
// container's directory exists is undone by delete's own code (destroy), so
// a failed create leaves behind exactly what delete would remove: nothing.
func (r *Runtime) Create(id, bundle string, o *CreateOpts) error {
	if err := oci.ValidateID(id); err != nil {
		return err
	}
	bundle, err := filepath.Abs(bundle)
	if err != nil {
		return err
	}
	spec, err := r.loadSpec(bundle, id, o)
	if err != nil {
		return err
	}
	// What Harden made is undone here until the state records it and
	// destroy takes over.
	recorded := false
	defer func() {
		for _, own := range o.hardenOwns {
			if !recorded {
				_ = r.Release(own, r.dir(id))
			}
		}
	}()
	o.Owns = append(o.Owns, o.hardenOwns...)
	var files initFiles
	defer files.close()
	// The network namespace is made on a thread of ours while create goes
	// on (pkg/netns), when the init would make it from our user namespace.
	if oci.CreatesNamespace(spec, specs.NetworkNamespace) && !oci.HasNamespace(spec, specs.UserNamespace) {
		files.netnsWait = netns.New()
	}
	l, err := r.claim(id)
	if err != nil {
		return err
	}
	defer l.Unlock()
	cg, err := r.cgroupConfig(spec, id)
	if err != nil {
		os.RemoveAll(r.dir(id))
		return err
	}
	// Refused before destroy is armed (it would kill what runs in the
	// cgroup and remove it, and neither is this container's) and before
	// the caller hands over what it made (Claimed).
	if err := checkCgroupUnused(cg); err != nil {
		os.RemoveAll(r.dir(id))
		return err
	}
	// Both faces, a bundle's and a person's run, get the same VM
	// container: QEMU as the init, in the container's namespaces and
	// cgroup.
	if isVMSpec(spec) {
		if r.VM == nil {
			os.RemoveAll(r.dir(id))
			return &oci.FieldError{File: oci.ConfigFile, Field: "annotations." + oci.AnnotationIsolation, Msg: fmt.Sprintf("%q: this runtime cannot run VM containers", spec.Annotations[oci.AnnotationIsolation]), Err: oci.ErrInvalidConfig}
		}
		outer, owns, err := r.VM(spec, oci.RootfsPath(bundle, spec), r.dir(id))
		if err != nil {
			for _, own := range owns {
				_ = r.Release(own, r.dir(id))
			}
			os.RemoveAll(r.dir(id))
			return err
		}
		o.Owns = append(o.Owns, owns...)
		spec = outer
	}
	if o.Claimed != nil {
		o.Claimed()
	}
	st := &State{
		ID:          id,
		Bundle:      bundle,
		Rootfs:      oci.RootfsPath(bundle, spec),
		Phase:       PhaseCreating,
		Created:     time.Now().UTC(),
		Annotations: spec.Annotations,
		Config:      spec,
		Owner:       strconv.Itoa(os.Geteuid()),
		Cgroup:      cg,
		Owns:        o.Owns,
	}
	// Steps that make something destroy cannot find from st alone push
	// what records it in st; destroy, run last, removes it all.
	var undo cleanup.Stack
	defer undo.Clean()
	undo.Add(func() {
		_ = r.destroy(st)
		r.runPoststop(st)
	})
	recorded = true
	if err := r.build(st, spec, o, &files, &undo); err != nil {
		return err
	}
	undo.Release()
	return nil
}

// isVMSpec: the outer spec of a VM container (Wrap keeps the annotation).
func isVMSpec(s *specs.Spec) bool {
	v := s.Annotations[oci.AnnotationIsolation]
	return v == oci.IsolationVM || v == oci.IsolationVMStrict
}

// loadSpec reads and checks the config (or takes the one in o), raises it to
// the hardening floor and resolves its relative paths.
func (r *Runtime) loadSpec(bundle, id string, o *CreateOpts) (*specs.Spec, error) {
	spec := o.Spec
	if spec == nil {
		var warnings []string
		var err error
		spec, warnings, err = oci.LoadBundle(bundle, seccomp.Validate)
		if err != nil {
			return nil, err
		}
		for _, w := range warnings {
			r.warnf("%s", w)
		}
		// A learning init waits in execve for a listener: from a bundle,
		// the recorder create starts (learnOutput), which writes the
		// profile where the annotation says.
		if _, err := learnOutput(spec); err != nil {
			return nil, err
		}
		// A Kubernetes pod's sandbox runs its pause process only, which
		// holds the pod's namespaces for the containers the handler runs
		// in VMs of their own: a VM of its own would guard nothing and cost
		// a boot and a guest's RAM per pod (docs/vm.md, Kubernetes).
		if _, ok := spec.Annotations[oci.AnnotationIsolation]; !ok && r.Isolation != "" && r.Isolation != "namespace" && !oci.IsPodSandbox(spec) {
			if spec.Annotations == nil {
				spec.Annotations = map[string]string{}
			}
			spec.Annotations[oci.AnnotationIsolation] = r.Isolation
		}
		// Layers a bundle names are host paths the init would mount as
		// the rootfs: only a person's run, which made them, says so.
		for _, k := range []string{oci.AnnotationRootfsOverlay, oci.AnnotationStorageDriver} {
			if _, ok := spec.Annotations[k]; ok {
				return nil, &oci.FieldError{File: oci.ConfigFile, Field: "annotations." + k, Msg: "set only by `bulwark run IMAGE` without root, not in a bundle's config", Err: oci.ErrInvalidConfig}
			}
		}
		// An engine asking for a VM must get one or an error: running
		// the container with namespaces alone would be a silent downgrade.
		if v, ok := spec.Annotations[oci.AnnotationIsolation]; ok && v != "namespace" {
			if v != oci.IsolationVM && v != oci.IsolationVMStrict {
				return nil, &oci.FieldError{File: oci.ConfigFile, Field: "annotations." + oci.AnnotationIsolation, Msg: fmt.Sprintf("%q: want namespace, vm or vm-strict", v), Err: oci.ErrInvalidConfig}
			}
			if r.VM == nil {
				return nil, &oci.FieldError{File: oci.ConfigFile, Field: "annotations." + oci.AnnotationIsolation, Msg: fmt.Sprintf("%q: this runtime cannot run VM containers", v), Err: oci.ErrInvalidConfig}
			}
		}
	}
	phase.Mark("loaded bundle")
	if spec.Process == nil {
		return nil, &oci.FieldError{File: oci.ConfigFile, Field: "process", Msg: "required to create a container", Err: oci.ErrInvalidConfig}
	}
	if !oci.HasNamespace(spec, specs.MountNamespace) {
		if err := checkHostMountNS(spec); err != nil {
			return nil, err
		}
	}
	if o.ListenFds > 0 {
		// Appended: the last of a name wins, so the runtime's count is
		// what the payload reads whatever the config says.
		spec.Process.Env = append(spec.Process.Env, "LISTEN_FDS="+strconv.Itoa(o.ListenFds), "LISTEN_PID=1")
	}
	if spec.Process.Terminal && o.ConsoleSocket == "" && !o.wantConsole {
		return nil, &oci.FieldError{File: oci.ConfigFile, Field: "process.terminal", Msg: "a terminal needs --console-socket when the runtime does not stay attached", Err: oci.ErrInvalidConfig}
	}
	absBindSources(spec, bundle)
	absDestinations(spec, oci.RootfsPath(bundle, spec))
	// Last: what Harden makes on the host is undone by Create from here.
	if r.Harden != nil {
		owns, err := r.Harden(spec, bundle, r.dir(id))
		if err != nil {
			return nil, err
		}
		o.hardenOwns = owns
	}
	return spec, nil
}

// claim makes the container's directory, which fails if the id is taken,
// and locks it.
func (r *Runtime) claim(id string) (*lock, error) {
	if err := os.MkdirAll(r.Root, 0o700); err != nil {
		return nil, fmt.Errorf("--root %s: %w", r.Root, err)
	}
	// Another user who can write --root can plant state and cache entries
	// (a seccomp program) that the next container trusts.
	if err := safefile.CheckDir(r.Root); err != nil {
		return nil, fmt.Errorf("--root: %w", err)
	}
	if err := os.Mkdir(r.dir(id), 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("container %q: %w", id, ErrExist)
		}
		return nil, fmt.Errorf("container %q: %w", id, err)
	}
	l, err := r.lock(id)
	if err != nil {
		os.RemoveAll(r.dir(id))
		return nil, err
	}
	return l, nil
}

// initFiles are the files create hands to its init as fds; they are closed
// once it returns, whatever happened.
type initFiles struct {
	fifo, console, rootTree, netns, pidfdSocket *os.File
	// netnsWait, until called, is the network namespace still being made.
	netnsWait func() (*os.File, error)
}

func (f *initFiles) waitNetns() error {
	if f.netnsWait == nil {
		return nil
	}
	nf, err := f.netnsWait()
	f.netnsWait = nil
	f.netns = nf
	return err
}

func (f *initFiles) close() {
	if f.netnsWait != nil {
		_ = f.waitNetns()
	}
	for _, file := range []*os.File{f.fifo, f.console, f.rootTree, f.netns, f.pidfdSocket} {
		if file != nil {
			file.Close()
		}
	}
}

// build takes a claimed container from its first state.json to created.
func (r *Runtime) build(st *State, spec *specs.Spec, o *CreateOpts, files *initFiles, undo *cleanup.Stack) error {
	if err := r.saveState(st); err != nil {
		return err
	}
	phase.Mark("saveState")
	ip, err := r.initParams(st, spec, o, files)
	if err != nil {
		return err
	}
	var hostMountsBefore map[int]string
	if !oci.HasNamespace(spec, specs.MountNamespace) {
		// Without a mount namespace the init mounts in the host's table.
		if hostMountsBefore, err = mountsBelow(st.Rootfs); err != nil {
			return err
		}
		// What it has mounted so far belongs to the container: recorded
		// for destroy to unmount.
		undo.Add(func() {
			if ids, err := newMountsBelow(st.Rootfs, hostMountsBefore); err == nil {
				st.HostMounts = ids
			}
		})
	}
	// Compile the seccomp program while the init enters its namespaces.
	bpf := r.compileSeccomp(spec)
	if err := files.waitNetns(); err != nil {
		return err
	}
	ip.netns = files.netns
	p, err := r.startInit(spec, st, ip)
	if err != nil {
		return err
	}
	defer p.conn.Close()
	phase.Mark("startInit done")
	cfg := &initproto.InitConfig{
		ID: st.ID, Bundle: st.Bundle, Rootfs: st.Rootfs, Spec: spec, Process: spec.Process,
		NoPivot: o.NoPivot, NewUserNS: oci.CreatesNamespace(spec, specs.UserNamespace), CgroupNS: oci.CreatesNamespace(spec, specs.CgroupNamespace),
		PreserveFds: o.ListenFds + o.PreserveFds, ConsoleFd: p.consoleFd, FifoFd: p.fifoFd,
		NetNSReady:     files.netns != nil,
		NetNSFd:        p.netnsFd,
		SendNamespaces: o.Namespaces != nil,
		State:          &specs.State{Version: specs.Version, ID: st.ID, Status: specs.StateCreating, Bundle: st.Bundle, Annotations: spec.Annotations},
	}
	if cfg.SeccompProgram, err = bpf(); err != nil {
		return err
	}
	if files.rootTree, err = r.openRootTree(st.Rootfs, spec, p.pid); err != nil {
		return err
	}
	var fds []int
	if files.rootTree != nil {
		cfg.RootTree = true
		fds = append(fds, int(files.rootTree.Fd()))
	}
	sources, err := r.openBindSources(spec, st, p.pid)
	if err != nil {
		return err
	}
	defer closeOpened(sources)
	var srcFds []int
	cfg.Sources, srcFds = mountSources(sources)
	p.sendFds = append(fds, srcFds...)
	// One check, where every descriptor the config frame carries is
	// known: the root tree's (if any) shares the frame with the sources.
	if len(p.sendFds) > initproto.MaxFds {
		return &oci.FieldError{File: oci.ConfigFile, Field: "mounts", Msg: fmt.Sprintf("%d bind mounts from outside the rootfs in a user namespace; at most %d are supported", len(srcFds), initproto.MaxFds-len(fds)), Err: oci.ErrInvalidConfig}
	}
	if err := p.sendConfig(cfg); err != nil {
		return err
	}
	c := conversation{
		hooks: func() ([]*os.File, error) {
			if err := ip.setLate(); err != nil {
				return nil, err
			}
			if err := runCreateHooks(st, spec); err != nil {
				return nil, err
			}
			// After the hooks: an engine's prestart hook is what puts
			// the container's interface in its network namespace.
			if r.VMNetwork != nil && isVMSpec(spec) {
				return r.VMNetwork(r.dir(st.ID), p.pid)
			}
			return nil, nil
		},
		seccomp: func(fds []*os.File) error { return r.sendSeccomp(spec, st, fds) },
		idmap: func(m initproto.IdmapSource, src *os.File) (*os.File, error) {
			if r.Rootless {
				return nil, errors.New("init asked a rootless runtime for an id-mapped mount")
			}
			tree, err := rootfs.IdmapInRoot(spec, st.Rootfs, m.Mount, src, p.pid)
			if err != nil {
				return nil, &oci.FieldError{File: oci.ConfigFile, Field: "mounts", Err: err}
			}
			return tree, nil
		},
		ready: func() error {
			phase.Mark("got ready")
			st.Phase = PhaseCreated
			if hostMountsBefore != nil {
				ids, err := newMountsBelow(st.Rootfs, hostMountsBefore)
				if err != nil {
					return err
				}
				st.HostMounts = ids
			}
			if err := r.saveState(st); err != nil {
				return err
			}
			if out, _ := learnOutput(spec); out != "" && o.Spec == nil {
				if err := r.startRecorder(st.ID); err != nil {
					return err
				}
			}
			if o.PidFile != "" {
				return WritePidFile(o.PidFile, st.Pid)
			}
			return nil
		},
		lost: func(err error) error {
			return fmt.Errorf("container init exited before the container was created: %w", err)
		},
	}
	if o.Namespaces != nil {
		c.namespaces = func(fs []*os.File) error { return o.Namespaces(fs[0], fs[1]) }
	}
	c.fuseOverlay = o.FuseOverlay
	if o.wantConsole {
		c.console = func(f *os.File) { o.gotConsole = f }
	}
	return p.converse(c)
}

// initParams makes what the init is started with: the exec fifo, the
// cgroup manager, the rootfs tree, the console socket.
func (r *Runtime) initParams(st *State, spec *specs.Spec, o *CreateOpts, files *initFiles) (initParams, error) {
	ip := initParams{
		preserveFds: o.ListenFds + o.PreserveFds,
		bootstrap:   func(fd int) *initproto.Bootstrap { return initproto.CreateBootstrap(spec, fd) },
		rlimits:     spec.Process.Rlimits,
		// Not without a mount namespace: a killed init would leave its
		// mounts in the host's table.
		deferPlace: oci.HasNamespace(spec, specs.MountNamespace),
	}
	var err error
	if files.fifo, err = makeExecFifo(filepath.Join(r.dir(st.ID), execFifo)); err != nil {
		return ip, err
	}
	ip.fifo = files.fifo
	ip.resources, ip.pids = withoutPids(resourcesWithDevices(spec))
	// systemd's legacy scope denies devices from its start
	// (legacyDevicePolicy in pkg/cgroups): there the rules go in at once.
	ip.lateDevices = !st.Cgroup.Systemd
	if ip.cgroup, err = cgroups.New(st.Cgroup, ip.resources); err != nil {
		return ip, &oci.FieldError{File: oci.ConfigFile, Field: "linux.cgroupsPath", Err: err}
	}
	phase.Mark("cgroups.New")
	if r.Rootless {
		if err := rootlessRootTree(spec); err != nil {
			return ip, err
		}
	}
	if o.PidfdSocket != "" {
		if files.pidfdSocket, err = dialUnix("--pidfd-socket", o.PidfdSocket); err != nil {
			return ip, err
		}
		ip.pidfdSocket = files.pidfdSocket
	}
	if spec.Process.Terminal && o.ConsoleSocket != "" {
		if files.console, err = dialConsole(o.ConsoleSocket); err != nil {
			return ip, err
		}
		ip.console = files.console
	}
	return ip, nil
}

// openBindSources opens, as host root, the bind sources of an init that
// enters a user namespace, where container root may not reach them (a
// rootless runtime can do no better than its init).
func (r *Runtime) openBindSources(spec *specs.Spec, st *State, pid int) ([]rootfs.OpenedSource, error) {
	if r.Rootless {
		for i, m := range spec.Mounts {
			if rootfs.IsIDMapped(m) {
				return nil, &oci.FieldError{File: oci.ConfigFile, Field: fmt.Sprintf("mounts[%d]", i),
					Msg: "an id-mapped mount needs root on the host (as in runc); a rootless container's files are your own uid's already", Err: oci.ErrInvalidConfig}
			}
		}
		return nil, nil
	}
	if !oci.HasNamespace(spec, specs.UserNamespace) {
		return nil, nil
	}
	opened, err := rootfs.OpenSources(spec, st.Rootfs, pid)
	if err != nil {
		return nil, &oci.FieldError{File: oci.ConfigFile, Field: "mounts", Err: err}
	}
	return opened, nil
}

// mountSources is the config's view of the opened sources and the fds
// the config frame carries for them (after the root tree's, which the init
// takes off first).
func mountSources(opened []rootfs.OpenedSource) ([]initproto.MountSource, []int) {
	var out []initproto.MountSource
	var fds []int
	for _, o := range opened {
		ms := initproto.MountSource{Mount: o.Mount, File: -1, Tree: o.Tree, InRoot: o.InRoot}
		if o.File != nil {
			ms.File = len(fds)
			fds = append(fds, int(o.File.Fd()))
		}
		out = append(out, ms)
	}
	return out, fds
}

func closeOpened(opened []rootfs.OpenedSource) {
	for _, o := range opened {
		if o.File != nil {
			o.File.Close()
		}
	}
}

// runCreateHooks runs the prestart and createRuntime hooks, in the runtime's
// namespaces, once the init has made the container's.
func runCreateHooks(st *State, spec *specs.Spec) error {
	if spec.Hooks == nil {
		return nil
	}
	hs := &specs.State{Version: specs.Version, ID: st.ID, Status: specs.StateCreating, Pid: st.Pid, Bundle: st.Bundle, Annotations: spec.Annotations}
	// prestart predates createRuntime and was specified to run once the
	// container exists; its consumers (and the runtime-tools suite, and
	// crun) expect "created".
	pre := *hs
	pre.Status = specs.StateCreated
	//lint:ignore SA1019 prestart is deprecated but engines still use it
	if err := hooks.Run("prestart", spec.Hooks.Prestart, &pre); err != nil {
		return err
	}
	return hooks.Run("createRuntime", spec.Hooks.CreateRuntime, hs)
}

// makeExecFifo makes the FIFO whose opening by start lets the payload run,
// and returns an O_PATH handle on it for the init.
func makeExecFifo(path string) (*os.File, error) {
	if err := unix.Mkfifo(path, 0o622); err != nil {
		return nil, fmt.Errorf("exec fifo: %w", err)
	}
	// mkfifo honours the umask; the payload may run as any uid.
	if err := os.Chmod(path, 0o622); err != nil {
		return nil, err
	}
	fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("exec fifo: %w", err)
	}
	return os.NewFile(uintptr(fd), execFifo), nil
}

// rootlessRootTree refuses what a rootless runtime cannot make of the
// rootfs. A detached clone of a host mount needs privilege on the host; the
// init binds the rootfs in its own user namespace and sets nosuid and nodev
// there (rootfs.Prepare). An idmapped mount has no such way round it.
func rootlessRootTree(spec *specs.Spec) error {
	idmap, _, _, err := rootfs.RootTreeOptions(spec)
	if err == nil && idmap {
		err = &oci.FieldError{File: oci.ConfigFile, Field: "annotations." + oci.AnnotationRootfsOptions,
			Msg: "idmap needs root on the host (an idmapped mount); a rootless container's root is your own uid, so the rootfs needs none", Err: oci.ErrInvalidConfig}
	}
	return err
}

// openRootTree opens the rootfs as a detached mount when the config needs
// one (idmapped, nosuid, nodev): it is made here, as host root, because the
// init has left the host's user namespace, and in the init's mount
// namespace (pid), so the host's locked flags hold (rootfs.OpenRootTree).
// An idmap goes through the init's own user namespace, whose maps are
// written by now.
func (r *Runtime) openRootTree(rootfsPath string, spec *specs.Spec, pid int) (*os.File, error) {
	if r.Rootless {
		return nil, nil
	}
	tree, idmap, err := rootfs.OpenRootTree(rootfsPath, spec, pid)
	if err != nil || !idmap {
		return tree, err
	}
	var nsfd int
	if oci.CreatesNamespace(spec, specs.UserNamespace) {
		nsfd, err = unix.Open(fmt.Sprintf("/proc/%d/ns/user", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	} else {
		// An init that joins a user namespace makes none to borrow.
		nsfd, err = rootfs.NewUserNSFd(spec)
	}
	if err != nil {
		tree.Close()
		return nil, fmt.Errorf("the user namespace to idmap the rootfs through: %w", err)
	}
	warning, err := rootfs.IdmapRootTree(tree, rootfsPath, nsfd)
	unix.Close(nsfd)
	if warning != "" {
		r.warnf("%s", warning)
	}
	if err != nil {
		tree.Close()
		return nil, err
	}
	return tree, nil
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

// checkCgroupUnused refuses, as runc does, a cgroup that already holds
// processes or is frozen (an init placed there would never report back).
func checkCgroupUnused(cfg cgroups.Config) error {
	m, err := cgroups.New(cfg, nil)
	if err != nil {
		return &oci.FieldError{File: oci.ConfigFile, Field: "linux.cgroupsPath", Err: err}
	}
	if err := m.CheckUnused(); err != nil {
		return &oci.FieldError{File: oci.ConfigFile, Field: "linux.cgroupsPath", Err: err}
	}
	return nil
}

func cgroupsPath(s *specs.Spec) string {
	if s.Linux == nil {
		return ""
	}
	return s.Linux.CgroupsPath
}

// resourcesWithDevices adds the device rules every container needs: the
// default device nodes and the ones the config asks for. Everything else
// stays denied. The order matters because later rules win: allows for
// linux.devices come before linux.resources.devices, so a config that
// lists a node but denies it in resources keeps it denied (runc gives the
// resources rules the last word over linux.devices; it adds no rule for
// them at all). The default nodes come last, as in runc.
func resourcesWithDevices(s *specs.Spec) *specs.LinuxResources {
	var res specs.LinuxResources
	if s.Linux != nil && s.Linux.Resources != nil {
		res = *s.Linux.Resources
	}
	rules := []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
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
	rules = append(rules, res.Devices...)
	rules = append(rules, rootfs.DefaultDeviceRules()...)
	res.Devices = rules
	return &res
}

// withoutPids takes linux.resources.pids out of r for initParams.setLate.
// The init is a Go program whose runtime starts its threads as it comes
// up, and each thread counts against pids.max: with a limit smaller than
// that (0 is one, written as pids.max 1 as runc does) the init died in
// pthread_create before it could report anything.
func withoutPids(r *specs.LinuxResources) (*specs.LinuxResources, *specs.LinuxPids) {
	if r.Pids == nil {
		return r, nil
	}
	pids := r.Pids
	r.Pids = nil
	return r, pids
}

func dialConsole(path string) (*os.File, error) {
	return dialUnix("--console-socket", path)
}

// dialUnix connects to the unix socket a flag names.
func dialUnix(flag, path string) (*os.File, error) {
	c, err := net.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, path, err)
	}
	defer c.Close()
	f, err := c.(*net.UnixConn).File()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, path, err)
	}
	return f, nil
}

// sendPidfd sends a pidfd of pid over sock (--pidfd-socket): a supervisor
// holding it can signal and wait for exactly this process, never one that
// reused its pid. name is the message's data, as runc sends the kind of
// init.
func sendPidfd(sock *os.File, pid int, name string) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("--pidfd-socket: pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(fd)
	if err := unix.Sendmsg(int(sock.Fd()), []byte(name), unix.UnixRights(fd), nil, 0); err != nil {
		return fmt.Errorf("--pidfd-socket: sending the pidfd: %w", err)
	}
	return nil
}

// WritePidFile writes pid to path whole or not at all (a temporary file
// beside it, renamed over it): an engine that reads it while, or after,
// the runtime is killed finds the pid or no file, never an empty one.
func WritePidFile(path string, pid int) error {
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
// A destination spelled as a host path under the rootfs (BUNDLE/rootfs/mnt)
// is taken relative to the rootfs (/mnt), as runc takes it: configs written
// for runc (its own test suite among them) name mount points that way. The
// result is still only a path inside the container, resolved there like any
// other destination; the rootfs path is compared lexically, never followed.
func absDestinations(s *specs.Spec, rootfs string) {
	root := filepath.Clean(rootfs)
	for i, m := range s.Mounts {
		d := m.Destination
		if d == "" {
			continue
		}
		if !filepath.IsAbs(d) {
			d = "/" + d
		}
		if filepath.IsAbs(root) && root != "/" {
			switch c := filepath.Clean(d); {
			case c == root:
				d = "/"
			case strings.HasPrefix(c, root+"/"):
				d = c[len(root):]
			}
		}
		s.Mounts[i].Destination = d
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

// cgroupConfig is the container's cgroup: linux.cgroupsPath under the
// chosen driver; for a rootless runtime, one under the cgroup v2 subtree
// delegated to the caller or, where none is (pkg/rootless.Cgroups), none
// at all. Without one, limits cannot be
// enforced: as runc's rootless mode does, a config that sets any is
// refused rather than run unlimited (the person's run drops its own
// defaults first, and says so).
func (r *Runtime) cgroupConfig(spec *specs.Spec, id string) (cgroups.Config, error) {
	cg := cgroups.Config{Path: cgroupsPath(spec), Systemd: r.SystemdCgroup, ID: id}
	if !r.Rootless {
		return cg, nil
	}
	// As runc: without root, every namespace but a user namespace needs
	// privilege to make, and only a user namespace's maps can give the
	// container a root of its own.
	if !oci.HasNamespace(spec, specs.UserNamespace) {
		return cg, &oci.FieldError{File: oci.ConfigFile, Field: "linux.namespaces",
			Msg: "a rootless container needs a user namespace (with linux.uidMappings and linux.gidMappings); `bulwark spec --rootless` writes one", Err: oci.ErrInvalidConfig}
	}
	d, err := rootless.Cgroups()
	if err != nil {
		if f := limitsSet(spec); f != "" {
			return cg, &oci.FieldError{File: oci.ConfigFile, Field: f,
				Msg: "a limit needs a cgroup, and this rootless runtime has none: " + err.Error() + "; remove the limit or run as root", Err: oci.ErrInvalidConfig}
		}
		cg.None = true
		return cg, nil
	}
	// A cgroup of its own under the subtree delegated to the caller (a
	// linux.cgroupsPath elsewhere, an engine's systemd-style name, could
	// not be made there); the device rules stay unenforced (an eBPF device
	// filter needs privilege), as without a cgroup: no node can be made
	// rootless.
	if !strings.HasPrefix(cg.Path, d.Dir+"/") {
		cg.Path = d.ContainerPath(id)
	}
	cg.Rootless, cg.Systemd = true, false
	return cg, nil
}

// limitsSet names the first linux.resources field that asks for a limit
// (device rules do not: without privilege no device node can be made, and
// the host's own nodes keep their permissions).
func limitsSet(s *specs.Spec) string {
	if s.Linux == nil || s.Linux.Resources == nil {
		return ""
	}
	r := s.Linux.Resources
	switch {
	case r.Memory != nil && (r.Memory.Limit != nil || r.Memory.Reservation != nil || r.Memory.Swap != nil):
		return "linux.resources.memory"
	case r.CPU != nil && (r.CPU.Shares != nil || r.CPU.Quota != nil || r.CPU.Cpus != "" || r.CPU.Mems != ""):
		return "linux.resources.cpu"
	case r.Pids != nil:
		return "linux.resources.pids"
	case r.BlockIO != nil:
		return "linux.resources.blockIO"
	case len(r.HugepageLimits) > 0:
		return "linux.resources.hugepageLimits"
	case len(r.Unified) > 0:
		return "linux.resources.unified"
	}
	return ""
}
