// Package containerinit is the init side of a container: the process that
// runs inside the new namespaces, builds the container's view of the system
// and finally becomes the container's first process (or, for exec, another
// process in it). It hears from the runtime only through internal/initproto
// and imports nothing of the runtime's (pkg/container), only the
// kernel-facing packages it drives (rootfs, caps, seccomp, landlock, hooks).
//
// Threat: the order of these steps is itself a security control. Mounts and
// pivot_root need privileges and must happen before they are dropped; file
// descriptors from the host must be closed before the payload runs
// (CVE-2024-21626); capabilities go before no_new_privs, and seccomp is loaded
// last, just before execve, so the filter never has to allow the runtime's own
// syscalls and the payload can never run unfiltered.
package containerinit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"unsafe"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/initproto"
	"github.com/bulwark-sec/bulwark/internal/nsenter"
	"github.com/bulwark-sec/bulwark/internal/phase"
	"github.com/bulwark-sec/bulwark/pkg/caps"
	"github.com/bulwark-sec/bulwark/pkg/hooks"
	"github.com/bulwark-sec/bulwark/pkg/landlock"
	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/passwd"
	"github.com/bulwark-sec/bulwark/pkg/rlimit"
	"github.com/bulwark-sec/bulwark/pkg/rootfs"
	"github.com/bulwark-sec/bulwark/pkg/sched"
	"github.com/bulwark-sec/bulwark/pkg/seccomp"
)

// The init's main goroutine must run on the process's main thread, the one
// /proc/PID names: the init makes per-thread state on its locked thread
// (the cgroup namespace, its name) that exec, hooks and engines read
// through /proc/PID/ns and /proc/PID/comm of a created container. Locking
// during package initialisation keeps main.main on that thread.
func init() {
	if len(os.Args) > 1 && os.Args[1] == "init" && os.Getenv(initproto.EnvInitPipe) != "" {
		runtime.LockOSThread()
	}
}

// Init runs in the container's init after the C constructor has placed it in
// its namespaces. It never returns on success: it execs the payload.
func Init() error {
	phase.Mark("init main")
	runtime.LockOSThread()
	// We were exec'd through /proc/self/fd/N, so comm reads "N"; name the
	// process for ps and for people reading the host's process list.
	_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&[]byte("bulwark:init\x00")[0])), 0, 0, 0)
	fdStr := os.Getenv(initproto.EnvInitPipe)
	fd, err := strconv.Atoi(fdStr)
	if err != nil {
		return fmt.Errorf("init: bad %s=%q", initproto.EnvInitPipe, fdStr)
	}
	os.Unsetenv(initproto.EnvInitPipe)
	conn := initproto.NewConn(os.NewFile(uintptr(fd), "sync"))
	cfg, files, err := initproto.Expect[*initproto.InitConfig](conn)
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if cfg != nil && cfg.NetNSReady && cfg.NetNSFd > 2 {
		// Joined already; held on, it would sit among the fds of a
		// created container's init.
		unix.Close(cfg.NetNSFd)
	}
	if cfg != nil {
		closeLeakedFds(cfg, fd)
	}
	var tree *os.File
	if cfg != nil && cfg.RootTree {
		if len(files) == 0 {
			return errors.New("init: the runtime's rootfs tree did not arrive with the config")
		}
		tree, files = files[0], files[1:]
	}
	sources, err := bindSources(cfg, files)
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	phase.Mark("init got config")
	var cg *cgroupEntry
	if cfg != nil {
		cg = &cgroupEntry{conn: conn, pending: cfg.CgroupPending, newNS: cfg.CgroupNS}
	}
	if cfg == nil || cfg.Process == nil {
		err = errors.New("init: config without process")
	} else if cfg.Exec {
		err = initExec(conn, cfg)
	} else {
		err = initContainer(conn, cfg, cg, tree, sources)
	}
	var late *afterCreate
	if errors.As(err, &late) {
		fmt.Fprintf(os.Stderr, "bulwark: %v\n", late.err)
		return err
	}
	// Only reached on failure: tell the runtime why, it prints it. A
	// runtime still placing us in cgroups reads nothing before the
	// Cgroup frame is taken.
	if cg != nil {
		_ = cg.await()
	}
	_ = conn.Send(initproto.Error{Msg: err.Error()})
	return err
}

// cgroupEntry is how the init gets into its cgroups: the runtime may place
// it there while the init already works (InitConfig.CgroupPending), and the
// container's new cgroup namespace must wait until then.
type cgroupEntry struct {
	conn    *initproto.Conn
	pending bool // a Cgroup frame is still to come
	newNS   bool // InitConfig.CgroupNS
	nsMade  bool
}

// await reads the Cgroup frame if the config said one follows; later calls
// return at once.
func (c *cgroupEntry) await() error {
	if !c.pending {
		return nil
	}
	c.pending = false
	if _, _, err := initproto.Expect[initproto.Cgroup](c.conn); err != nil {
		return fmt.Errorf("init: waiting to be placed in the container's cgroups: %w", err)
	}
	phase.Mark("init in cgroup")
	return nil
}

// enter is await, then the container's new cgroup namespace if it has one.
// It is made here rather than by the constructor so that the init need not
// wait for its cgroups before its Go runtime starts, and only now, in those
// cgroups, which become the namespace's root. unshare(CLONE_NEWCGROUP)
// concerns the calling thread alone: this is the init's locked thread,
// which makes the mounts, runs the hooks and execs the payload. Later calls
// return at once.
func (c *cgroupEntry) enter() error {
	if err := c.await(); err != nil {
		return err
	}
	if c.newNS && !c.nsMade {
		c.nsMade = true
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("init: creating the cgroup namespace: %w", err)
		}
	}
	return nil
}

// bindSources pairs the runtime's bind sources with the fds that came
// with the config.
func bindSources(cfg *initproto.InitConfig, files []*os.File) (map[int]rootfs.Source, error) {
	if cfg == nil || len(cfg.Sources) == 0 {
		for _, f := range files {
			f.Close()
		}
		return nil, nil
	}
	out := make(map[int]rootfs.Source, len(cfg.Sources))
	for _, s := range cfg.Sources {
		src := rootfs.Source{Tree: s.Tree, InRoot: s.InRoot}
		if s.File >= 0 {
			if s.File >= len(files) {
				return nil, fmt.Errorf("mounts[%d]: the runtime's bind source fd %d did not arrive (%d did)", s.Mount, s.File, len(files))
			}
			src.File = files[s.File]
		}
		out[s.Mount] = src
	}
	return out, nil
}

// askIdmapTree has the runtime id-map the bind source src of
// mounts[mount], inside the rootfs (rootfs.IdmapInRoot), and returns the
// detached tree it sends back. A Cgroup frame still to come is taken
// first, so that the answer is the next frame.
func askIdmapTree(conn *initproto.Conn, cg *cgroupEntry, mount int, src *os.File) (*os.File, error) {
	if err := cg.await(); err != nil {
		return nil, err
	}
	if err := conn.Send(initproto.IdmapSource{Mount: mount}, int(src.Fd())); err != nil {
		return nil, err
	}
	_, files, err := initproto.Expect[initproto.IdmapTree](conn)
	if err != nil {
		return nil, fmt.Errorf("waiting for the runtime's id-mapped clone: %w", err)
	}
	if len(files) != 1 {
		for _, f := range files {
			f.Close()
		}
		return nil, fmt.Errorf("the runtime's id-mapped clone came with %d fds, want 1", len(files))
	}
	return files[0], nil
}

// askFuseOverlay hands the runtime the FUSE connection mounted at the
// rootfs and waits until it has started fuse-overlayfs on it. A Cgroup
// frame still to come is taken first, so that the answer is the next frame.
func askFuseOverlay(conn *initproto.Conn, cg *cgroupEntry, dev *os.File, reason string) error {
	if err := cg.await(); err != nil {
		return err
	}
	if err := conn.Send(initproto.FuseOverlay{Reason: reason}, int(dev.Fd())); err != nil {
		return err
	}
	if _, _, err := initproto.Expect[initproto.Resume](conn); err != nil {
		return fmt.Errorf("waiting for the runtime's fuse-overlayfs: %w", err)
	}
	return nil
}

func initContainer(conn *initproto.Conn, cfg *initproto.InitConfig, cg *cgroupEntry, tree *os.File, sources map[int]rootfs.Source) error {
	s := cfg.Spec
	p := cfg.Process
	if p.Terminal {
		if _, err := unix.Setsid(); err != nil {
			return fmt.Errorf("setsid: %w", err)
		}
	}
	err := rootfs.Prepare(s, cfg.Rootfs, rootfs.Options{
		NoPivot:     cfg.NoPivot,
		InUserNS:    cfg.NewUserNS || oci.HasNamespace(s, specs.UserNamespace),
		CgroupNS:    cfg.CgroupNS,
		RootTree:    tree,
		Sources:     sources,
		HostMountNS: sharesHostMountNS(s),
		IdmapInRoot: func(mount int, src *os.File) (*os.File, error) {
			return askIdmapTree(conn, cg, mount, src)
		},
		BeforeCgroupMount: func() error {
			return cg.enter()
		},
		FuseOverlay: func(dev *os.File, reason string) error {
			return askFuseOverlay(conn, cg, dev, reason)
		},
	})
	if tree != nil {
		// Attached or not, the payload must never hold a handle on it.
		tree.Close()
	}
	for _, src := range sources {
		if src.File != nil {
			src.File.Close()
		}
	}
	phase.Mark("init prepared rootfs")
	if err != nil {
		return err
	}
	if err := cg.enter(); err != nil {
		return err
	}
	if cfg.SendNamespaces {
		if err := sendNamespaces(conn); err != nil {
			return err
		}
	}
	// prestart and createRuntime hooks run in the runtime's namespaces, now
	// that ours exist and before pivot_root.
	if err := conn.Send(initproto.Hooks{}); err != nil {
		return err
	}
	_, passed, err := initproto.Expect[initproto.Resume](conn)
	if err != nil {
		return err
	}
	// What came with the Resume is the payload's to inherit (a VM
	// container's taps, which QEMU gets as file descriptors): kept open
	// across execve once cloexecHostFds has marked everything else.
	inherit = passed
	if s.Hooks != nil && len(s.Hooks.CreateContainer) > 0 {
		// In the container's rootfs, as runc runs them: a hook written
		// for runc works on "./lib" and the like.
		if err := unix.Chdir(cfg.Rootfs); err != nil {
			return fmt.Errorf("createContainer hooks: entering the rootfs %s: %w", cfg.Rootfs, err)
		}
		st := *cfg.State
		st.Pid = os.Getpid()
		if err := hooks.Run("createContainer", s.Hooks.CreateContainer, &st); err != nil {
			return err
		}
	}
	if !cfg.NetNSReady {
		if err := loopbackUp(s); err != nil {
			return err
		}
	}
	if sharesHostMountNS(s) {
		if err := rootfs.Chroot(cfg.Rootfs); err != nil {
			return err
		}
	} else if err := rootfs.Pivot(cfg.Rootfs, cfg.NoPivot); err != nil {
		return err
	}
	if p.Terminal {
		if err := setupConsole(conn, cfg); err != nil {
			return err
		}
	}
	if s.Hostname != "" {
		if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
			return &oci.FieldError{File: oci.ConfigFile, Field: "hostname", Err: err}
		}
	}
	if s.Domainname != "" {
		if err := unix.Setdomainname([]byte(s.Domainname)); err != nil {
			return &oci.FieldError{File: oci.ConfigFile, Field: "domainname", Err: err}
		}
	}
	if s.Linux != nil {
		if err := writeSysctls(s.Linux.Sysctl); err != nil {
			return err
		}
	}
	if err := rootfs.Finish(s); err != nil {
		return err
	}
	if ro, err := procMountReadOnly(s, landlock.ABI); err != nil {
		return err
	} else if ro {
		if err := rootfs.ReadOnlyProc(s); err != nil {
			return err
		}
	}
	phase.Mark("init pivoted+finished")
	ll, sc, err := dropPrivileges(conn, cfg, false)
	if err != nil {
		return err
	}
	for _, f := range inherit {
		if _, err := unix.FcntlInt(f.Fd(), unix.F_SETFD, 0); err != nil {
			return fmt.Errorf("keeping the runtime's fd %d for the payload: %w", f.Fd(), err)
		}
	}
	phase.Mark("init dropped privs")
	defer ll.Close()
	path, err := lookPath(p)
	if err != nil {
		return err
	}
	if err := readyAndWait(conn, "the container was created"); err != nil {
		return err
	}
	// startPayload returns only when it failed: it ends in execve.
	return &afterCreate{startPayload(cfg, s, path, ll, sc)}
}

// inherit holds the files the runtime passed for the payload to inherit
// (InitConfig has no fd numbers for them: they arrive after it). Held
// here so that no finalizer closes them before execve.
var inherit []*os.File

// afterCreate is a failure once create has returned: nobody reads the sync
// socket any more, so Init writes it to the container's stderr, as runc
// does, rather than exit 1 without a word.
type afterCreate struct{ err error }

func (e *afterCreate) Error() string { return e.err.Error() }
func (e *afterCreate) Unwrap() error { return e.err }

// startPayload is the init's part of `start`: it waits for the exec fifo,
// runs the startContainer hooks, confines itself and execs the payload.
func startPayload(cfg *initproto.InitConfig, s *specs.Spec, path string, ll *landlock.Ruleset, sc *specs.LinuxSeccomp) error {
	p := cfg.Process
	// Block here until `start` opens the FIFO for reading.
	fifo, err := unix.Open("/proc/self/fd/"+strconv.Itoa(cfg.FifoFd), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	if _, err := unix.Write(fifo, []byte("0")); err != nil {
		return fmt.Errorf("write exec fifo: %w", err)
	}
	// fifo stays open: execve closes it (O_CLOEXEC), and that EOF tells
	// `start` the payload now runs, so its poststart hooks come after.
	unix.Close(cfg.FifoFd)
	phase.Mark("init fifo done")
	if s.Hooks == nil || len(s.Hooks.StartContainer) == 0 {
		return execConfined(cfg, path, ll, sc)
	}
	// startContainer hooks run confined as the payload will be (runc loads
	// the filter before them too): they run inside the container, and a
	// hook must not be a way around its seccomp profile or Landlock. The
	// init's Go runtime then runs under the filter until execve, so the
	// profile must allow its calls (futex, mmap, clone of a thread, ...).
	if err := confine(ll, sc, cfg.SeccompProgram); err != nil {
		return err
	}
	st := *cfg.State
	st.Pid = os.Getpid()
	st.Status = specs.StateCreated
	if err := hooks.Run("startContainer", withProcessEnv(s.Hooks.StartContainer, p.Env), &st); err != nil {
		return err
	}
	return execve(path, p)
}

// execConfined enforces Landlock, then installs the payload's seccomp
// filter and executes the payload back to back (seccomp.Exec): no
// call of the init's Go runtime runs under the filter, so a profile need
// not allow them (a learned one holds the workload's calls only).
func execConfined(cfg *initproto.InitConfig, path string, ll *landlock.Ruleset, sc *specs.LinuxSeccomp) error {
	p := cfg.Process
	if err := confine(ll, nil, nil); err != nil {
		return err
	}
	var in *seccomp.Installable
	if sc != nil {
		var err error
		if in, err = seccomp.PrepareThread(sc, cfg.SeccompProgram); err != nil {
			return oci.InConfig(err)
		}
		if in != nil && learning(cfg.Spec) {
			in.WaitKillableRecv()
		}
	}
	return execPayload(path, p, in)
}

// payloadLimits are the rlimits the payload is to have, applied last
// before execve (pkg/rlimit): process.rlimits exactly (the runtime, or for
// an exec'd process setupProcess, raised the hard limits they need while it
// could), and RLIMIT_NOFILE as this process started (internal/nsenter read
// it before Go ran) when they do not name it: the Go runtime raised the
// soft limit when it started, and syscall.Exec would have put it back;
// seccomp.Exec is not syscall.Exec.
func payloadLimits(p *specs.Process) (*rlimit.Limits, error) {
	var extra []specs.POSIXRlimit
	if soft, hard, ok := nsenter.StartNofile(); ok {
		extra = append(extra, specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Soft: soft, Hard: hard})
	}
	return rlimit.Prepare(p.Rlimits, extra...)
}

// confine enforces Landlock and then loads the payload's seccomp filter
// (nil: nothing to do). Landlock goes on after the runtime's last access to
// a host path (the exec fifo) and before the filter, which then need not
// allow landlock_restrict_self.
func confine(ll *landlock.Ruleset, sc *specs.LinuxSeccomp, prog []byte) error {
	if ll != nil {
		if err := ll.Restrict(); err != nil {
			return err
		}
	}
	if sc != nil {
		if _, err := installSeccomp(sc, prog); err != nil {
			return err
		}
	}
	return nil
}

// withProcessEnv gives the hooks that set no env the payload's, as runc
// does for startContainer hooks (not in the runtime-spec, but what hooks
// written for runc expect: PATH, above all).
func withProcessEnv(hs []specs.Hook, env []string) []specs.Hook {
	out := make([]specs.Hook, len(hs))
	for i, h := range hs {
		if len(h.Env) == 0 {
			h.Env = env
		}
		out[i] = h
	}
	return out
}

func initExec(conn *initproto.Conn, cfg *initproto.InitConfig) error {
	p := cfg.Process
	s := cfg.Spec
	// Joining the host's mount namespace leaves us at the host's root: the
	// container's root is only a chroot, which setns does not carry over.
	if sharesHostMountNS(s) {
		if err := rootfs.Chroot(cfg.Rootfs); err != nil {
			return err
		}
	}
	if p.Terminal {
		if _, err := unix.Setsid(); err != nil {
			return fmt.Errorf("setsid: %w", err)
		}
		if err := setupConsole(conn, cfg); err != nil {
			return err
		}
	}
	ll, sc, err := dropPrivileges(conn, cfg, true)
	if err != nil {
		return err
	}
	defer ll.Close()
	path, err := lookPath(p)
	if err != nil {
		return err
	}
	if err := readyAndWait(conn, "the process was started"); err != nil {
		return err
	}
	if sc != nil && hasNotify(sc) {
		// The listener goes to the runtime first: not back to back.
		if err := confine(ll, nil, nil); err != nil {
			return err
		}
		if err := loadSeccomp(conn, sc, cfg.SeccompProgram); err != nil {
			return err
		}
		return execve(path, p)
	}
	return execConfined(cfg, path, ll, sc)
}

// readyAndWait reports the init ready and waits for the runtime's go-ahead,
// which it sends once it has saved the state and written the pid file. If
// the runtime is killed before that (an engine's timeout), nobody knows this
// process to start, signal or delete it, and waiting on the exec fifo or
// running it would hold the engine's stdio pipes forever (conmon, and
// podman's lock on the container, wait for their EOF): EOF here ends it.
func readyAndWait(conn *initproto.Conn, what string) error {
	if err := conn.Send(initproto.Ready{Pid: os.Getpid()}); err != nil {
		return err
	}
	if _, _, err := initproto.Expect[initproto.Resume](conn); err != nil {
		return fmt.Errorf("the runtime exited before %s: %w", what, err)
	}
	return nil
}

// dropPrivileges is what create and exec do alike once the process's view
// of the system is in place, in this order: the Landlock ruleset is built
// (it needs to open every mountpoint), rlimits and the like are applied,
// host fds are marked close-on-exec (CVE-2024-21626) and the cwd checked,
// then capabilities and user are dropped (finalize) and no_new_privs is
// set. A create loads a
// notify filter right after no_new_privs, while the runtime still waits to
// pass its fd on. What is returned is left for the last moment before
// execve: the Landlock ruleset and the seccomp filter.
func dropPrivileges(conn *initproto.Conn, cfg *initproto.InitConfig, isExec bool) (*landlock.Ruleset, *specs.LinuxSeccomp, error) {
	p, s := cfg.Process, cfg.Spec
	ll, err := prepareLandlock(s, p)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*landlock.Ruleset, *specs.LinuxSeccomp, error) {
		ll.Close()
		return nil, nil, err
	}
	if err := setupProcess(p, s, isExec); err != nil {
		return fail(err)
	}
	p.Env = passwd.WithHome(p.Env, p.User.UID)
	if err := cloexecHostFds(cfg.PreserveFds); err != nil {
		return fail(err)
	}
	cwdChecked, err := checkCwd(p.Cwd)
	if err != nil {
		return fail(err)
	}
	sc := seccompOf(s)
	if !isExec && learning(s) {
		// The recording filter goes in last, like any payload filter,
		// with or without no_new_privs as the config says.
		prog, rec, err := seccomp.RecordingProgram(sc)
		if err != nil {
			return fail(oci.InConfig(err))
		}
		sc, cfg.SeccompProgram = rec, prog
	}
	// Without no_new_privs the kernel lets only a thread with
	// CAP_SYS_ADMIN load a filter. Rather than load it now, before the
	// capabilities go, as runc does (the filter would then have to allow
	// every call of the init from here to execve, which a learned profile
	// does not), this thread keeps CAP_SYS_ADMIN in its effective and
	// permitted sets alone, which execve recomputes without it: the
	// filter goes in right before execve with or without no_new_privs.
	holdAdmin := sc != nil && !p.NoNewPrivileges
	if err := finalize(p, cwdChecked, holdAdmin); err != nil {
		return fail(err)
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fail(fmt.Errorf("no_new_privs: %w", err))
		}
	}
	if sc != nil && !isExec && hasNotify(sc) && !learning(s) {
		if err := loadSeccomp(conn, sc, cfg.SeccompProgram); err != nil {
			return fail(err)
		}
		sc = nil
	}
	return ll, sc, nil
}

// prepareLandlock builds the Landlock ruleset the annotation asks for. It
// runs after the last mount (a confined process may not mount) and before
// finalize, while the init can still open every mountpoint whatever its
// permissions. Enforcing it needs no_new_privs (an unprivileged
// landlock_restrict_self requires it), so the process gets no_new_privs
// here already: that also moves the payload's seccomp filter to the load
// just before execve, after Landlock.
func prepareLandlock(s *specs.Spec, p *specs.Process) (*landlock.Ruleset, error) {
	if s == nil {
		return nil, nil
	}
	mode, err := landlock.ModeOf(s.Annotations)
	if err != nil {
		return nil, err
	}
	writable, err := landlock.WritableOf(s.Annotations)
	if err != nil {
		return nil, err
	}
	procWrites, err := landlock.ProcWritesOf(s.Annotations)
	if err != nil {
		return nil, err
	}
	ll, err := landlock.PrepareWith(mode, procWrites, writable)
	if err != nil {
		return nil, err
	}
	if ll != nil {
		p.NoNewPrivileges = true
	}
	return ll, nil
}

// procMountReadOnly says whether the container's procfs mounts must be
// read-only. A payload under Landlock gets no write access beneath /proc
// unless run.bulwark.landlock-proc says rw (pkg/landlock): two processes of
// one payload share a Landlock domain and a uid, so nothing else keeps one
// from opening the other's /proc/PID/mem for writing. Landlock's rights add
// up along a path, and a writable rootfs's rule grants write beneath /,
// /proc included; there (and on a kernel without Landlock, abi 0) the
// procfs mount is made read-only instead (rootfs.ReadOnlyProc). A read-only
// rootfs keeps Landlock's refusal alone, and a container in the host's
// mount namespace is left alone: the mount would be the host's.
func procMountReadOnly(s *specs.Spec, abi func() int) (bool, error) {
	if s == nil || sharesHostMountNS(s) {
		return false, nil
	}
	mode, err := landlock.ModeOf(s.Annotations)
	if err != nil || mode == landlock.ModeOff {
		return false, err
	}
	procWrites, err := landlock.ProcWritesOf(s.Annotations)
	if err != nil || procWrites {
		return false, err
	}
	// The ABI probe is a system call: asked only where the answer counts.
	rootWritable := s.Root == nil || !s.Root.Readonly
	return rootWritable || abi() == 0, nil
}

// sharesHostMountNS: the config names no mount namespace at all, so the
// container lives in the host's mount table.
func sharesHostMountNS(s *specs.Spec) bool {
	return !oci.HasNamespace(s, specs.MountNamespace)
}

func seccompOf(s *specs.Spec) *specs.LinuxSeccomp {
	if s == nil || s.Linux == nil {
		return nil
	}
	return s.Linux.Seccomp
}

// learning: a learning run (oci.AnnotationLearn). Its recording filter is
// loaded just before execve and its listener fd is never sent: the runtime
// takes it from this process with pidfd_getfd while execve waits for it,
// so no call of the init can wait on a listener that does not exist yet.
func learning(s *specs.Spec) bool {
	return s != nil && s.Annotations[oci.AnnotationLearn] != ""
}

func hasNotify(sc *specs.LinuxSeccomp) bool {
	if sc.DefaultAction == specs.ActNotify {
		return true
	}
	for _, r := range sc.Syscalls {
		if r.Action == specs.ActNotify {
			return true
		}
	}
	return false
}

// loadSeccomp loads the filter and, for notify filters, hands the listener fd
// to the runtime, which passes it on to linux.seccomp.listenerPath.
func loadSeccomp(conn *initproto.Conn, sc *specs.LinuxSeccomp, prog []byte) error {
	fd, err := installSeccomp(sc, prog)
	if err != nil {
		return err
	}
	if fd >= 0 {
		if err := conn.Send(initproto.Seccomp{}, fd); err != nil {
			return err
		}
		unix.Close(fd)
		if _, _, err := initproto.Expect[initproto.Resume](conn); err != nil {
			return err
		}
	}
	return nil
}

// installSeccomp installs the program the runtime compiled (and cached) for
// sc, or compiles it here when there is none (a runtime that sent none).
func installSeccomp(sc *specs.LinuxSeccomp, prog []byte) (int, error) {
	var fd int
	var err error
	if prog != nil {
		fd, err = seccomp.InstallProgram(prog, sc)
	} else {
		fd, err = seccomp.LoadThread(sc)
	}
	if err != nil {
		return -1, oci.InConfig(err)
	}
	return fd, nil
}

// setupProcess applies what needs privileges but is not yet a drop of them.
func setupProcess(p *specs.Process, s *specs.Spec, isExec bool) error {
	// The hard limits the payload needs higher are raised while that is
	// allowed: a create's init had them raised by the runtime, an exec'd
	// process raises its own now. The exact limits go on last, before
	// execve (payloadLimits).
	if isExec {
		if err := rlimit.Raise(0, p.Rlimits); err != nil {
			return err
		}
	}
	if s != nil && s.Linux != nil && s.Linux.Personality != nil {
		if err := setPersonality(s.Linux.Personality); err != nil {
			return err
		}
	}
	// process.oomScoreAdj, the init's and an exec'd process's alike, is
	// written by the constructor before any user namespace is entered.
	// Scheduler, I/O priority and memory policy go on this thread, which
	// execs the payload, while it still has the privileges a real-time
	// policy needs.
	var mp *specs.LinuxMemoryPolicy
	if s != nil && s.Linux != nil {
		mp = s.Linux.MemoryPolicy
	}
	var fe *sched.FieldError
	if err := sched.Apply(p, mp); errors.As(err, &fe) {
		if cpus := cpusetCpus(s); cpus != "" && p.Scheduler != nil && p.Scheduler.Policy == specs.SchedDeadline && errors.Is(fe.Err, unix.EPERM) {
			// The kernel refuses SCHED_DEADLINE to a thread whose
			// affinity does not span every CPU of its root domain; runc's
			// words for it, which scripts match.
			return &oci.FieldError{File: oci.ConfigFile, Field: fe.Field, Err: fmt.Errorf("%w: process scheduler can't be used together with AllowedCPUs (linux.resources.cpu.cpus %q): SCHED_DEADLINE needs every CPU of the system", fe.Err, cpus)}
		}
		return &oci.FieldError{File: oci.ConfigFile, Field: fe.Field, Err: fe.Err}
	} else if err != nil {
		return err
	}
	return nil
}

// cpusetCpus is linux.resources.cpu.cpus, "" when unset.
func cpusetCpus(s *specs.Spec) string {
	if s == nil || s.Linux == nil || s.Linux.Resources == nil || s.Linux.Resources.CPU == nil {
		return ""
	}
	return s.Linux.Resources.CPU.Cpus
}

func setPersonality(pers *specs.LinuxPersonality) error {
	var v uintptr
	switch pers.Domain {
	case specs.PerLinux:
		v = 0x0000
	case specs.PerLinux32:
		v = 0x0008
	default:
		return &oci.FieldError{File: oci.ConfigFile, Field: "linux.personality.domain", Msg: fmt.Sprintf("unknown domain %q", pers.Domain), Err: oci.ErrInvalidConfig}
	}
	if _, _, e := unix.RawSyscall(unix.SYS_PERSONALITY, v, 0, 0); e != 0 {
		return &oci.FieldError{File: oci.ConfigFile, Field: "linux.personality", Err: e}
	}
	return nil
}

// closeLeakedFds closes every fd the init inherited that is not one the
// runtime passed on purpose: stdio, the preserved fds (--preserve-fds), the
// sync socket, exec.fifo and the console socket. A caller that leaked
// descriptors without FD_CLOEXEC (a shell's `exec 7<`, an engine's log
// pipe) would otherwise have them sit in a created container's init, where
// a process exec'd into the container reaches them through /proc/1/fd
// until start. An fd with FD_CLOEXEC set was opened by this process after
// its execve (Go opens everything close-on-exec), so it is the init's own
// and stays; the payload never gets any of them (cloexecHostFds).
func closeLeakedFds(cfg *initproto.InitConfig, syncFd int) {
	keep := map[int]bool{syncFd: true, cfg.FifoFd: true, cfg.ConsoleFd: true}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		// Best effort: cloexecHostFds still keeps them from the payload.
		return
	}
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil || n < 3+cfg.PreserveFds || keep[n] {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(n), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC != 0 {
			continue
		}
		unix.Close(n)
	}
}

// cloexecHostFds marks every fd above the preserved ones close-on-exec.
// CVE-2024-21626: nothing the runtime holds (or inherited from its own
// caller) may survive into the payload. It must run before any seccomp
// filter is loaded: a config's filter need not allow close_range (the OCI
// validation suite's default profile predates it), and the runtime's own
// housekeeping must not depend on the payload's policy.
func cloexecHostFds(preserveFds int) error {
	if err := unix.CloseRange(uint(3+preserveFds), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("close_range: %w", err)
	}
	return nil
}

// checkCwd enters process.cwd while the init is still root and no seccomp
// filter is loaded yet: a config's filter may deny getcwd (the runtime-tools
// suite's linux_seccomp test does), which would make the check impossible
// later. It reports false when root cannot enter the directory; finalize then
// enters it as the process user and checks there. The path resolves to the
// same directory for both, in the same root and mount namespace.
func checkCwd(cwd string) (bool, error) {
	if cwd == "" {
		cwd = "/"
	}
	if err := unix.Chdir(cwd); err != nil {
		return false, nil
	}
	return true, cwdInside(cwd)
}

// cwdInside checks the current directory. CVE-2024-21626: a cwd outside our
// root (a leaked host directory) reads as "(unreachable)".
func cwdInside(cwd string) error {
	if wd, err := unix.Getwd(); err != nil || !strings.HasPrefix(wd, "/") {
		return &oci.FieldError{File: oci.ConfigFile, Field: "process.cwd", Msg: fmt.Sprintf("%q is outside the container", cwd), Err: oci.ErrInvalidConfig}
	}
	return nil
}

// finalize drops privileges: bounding set, user and groups, cwd, then the
// remaining capability sets. holdAdmin keeps CAP_SYS_ADMIN on this thread
// until execve, for a seccomp filter loaded without no_new_privs
// (caps.ApplyHoldingAdmin).
func finalize(p *specs.Process, cwdChecked, holdAdmin bool) error {
	if p.Capabilities != nil {
		if err := caps.DropBounding(p.Capabilities); err != nil {
			return err
		}
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keepcaps: %w", err)
	}
	if err := setUser(&p.User); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("keepcaps: %w", err)
	}
	// A cwd root could enter (checkCwd) is kept, as runc keeps it: the
	// user may then work in a directory it could not enter itself (runc's
	// "cwd that only the runtime can access"). Only a cwd root could not
	// enter (a root-squashed mount) is entered as the user.
	if !cwdChecked {
		cwd := p.Cwd
		if cwd == "" {
			cwd = "/"
		}
		if err := unix.Chdir(cwd); err != nil {
			return &oci.FieldError{File: oci.ConfigFile, Field: "process.cwd", Msg: fmt.Sprintf("%q: %v", cwd, err), Err: err}
		}
		if err := cwdInside(cwd); err != nil {
			return err
		}
	}
	switch {
	case holdAdmin:
		if err := caps.ApplyHoldingAdmin(p.Capabilities); err != nil {
			return err
		}
	case p.Capabilities != nil:
		if err := caps.Apply(p.Capabilities); err != nil {
			return err
		}
	default:
		if err := caps.Apply(&specs.LinuxCapabilities{}); err != nil {
			return err
		}
	}
	if p.User.Umask != nil {
		unix.Umask(int(*p.User.Umask))
	}
	return nil
}

// setgroupsDenied: the user namespace was made with setgroups denied (a
// rootless runtime mapping only its own gid), where no process may ever
// change its groups; with no additionalGids asked for, there is nothing to
// change (runc skips the call the same way).
func setgroupsDenied() bool {
	b, err := os.ReadFile("/proc/self/setgroups")
	return err == nil && strings.TrimSpace(string(b)) == "deny"
}

// setUser switches to the process user on this thread only; Go's
// syscall.Setuid would broadcast to all threads, which is fine too, but the
// raw calls keep the ordering explicit: groups, gid, then uid.
func setUser(u *specs.User) error {
	gids := make([]int, 0, len(u.AdditionalGids))
	for _, g := range u.AdditionalGids {
		gids = append(gids, int(g))
	}
	if err := unix.Setgroups(gids); err != nil && !(len(gids) == 0 && setgroupsDenied()) {
		return &oci.FieldError{File: oci.ConfigFile, Field: "process.user.additionalGids", Msg: fmt.Sprintf("setgroups: %v", err), Err: err}
	}
	if err := unix.Setresgid(int(u.GID), int(u.GID), int(u.GID)); err != nil {
		return &oci.FieldError{File: oci.ConfigFile, Field: "process.user.gid", Msg: fmt.Sprintf("%d: %v", u.GID, err), Err: err}
	}
	if err := unix.Setresuid(int(u.UID), int(u.UID), int(u.UID)); err != nil {
		return &oci.FieldError{File: oci.ConfigFile, Field: "process.user.uid", Msg: fmt.Sprintf("%d: %v", u.UID, err), Err: err}
	}
	return nil
}

func writeSysctls(m map[string]string) error {
	for k, v := range m {
		p, err := oci.SysctlPath(k)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join("/proc/sys", p), []byte(v), 0); err != nil {
			return &oci.FieldError{File: oci.ConfigFile, Field: fmt.Sprintf("linux.sysctl[%q]", k), Err: err}
		}
	}
	return nil
}

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func lookPath(p *specs.Process) (string, error) {
	if len(p.Args) == 0 {
		return "", &oci.FieldError{File: oci.ConfigFile, Field: "process.args", Msg: "empty", Err: oci.ErrInvalidConfig}
	}
	name := p.Args[0]
	if strings.Contains(name, "/") {
		if err := canExec(name); err != nil {
			return "", &oci.FieldError{File: oci.ConfigFile, Field: "process.args[0]", Msg: fmt.Sprintf("%q: %v", name, err), Err: err}
		}
		return name, nil
	}
	path := defaultPath
	for _, e := range p.Env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		c := filepath.Join(dir, name)
		var st unix.Stat_t
		if unix.Stat(c, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && canExec(c) == nil {
			return c, nil
		}
	}
	return "", &oci.FieldError{File: oci.ConfigFile, Field: "process.args[0]", Msg: fmt.Sprintf("executable %q not found in $PATH (%s)", name, path)}
}

// canExec asks the kernel whether execve would pass the permission check,
// with the credentials execve uses: the effective ids and the effective
// capabilities (AT_EACCESS). Plain access(2) checks the real ids and, for
// a non-root user, without capabilities, so it refused a binary that only
// its owner may execute to a user holding CAP_DAC_OVERRIDE, which execve
// (and runc) allow.
func canExec(path string) error {
	return unix.Faccessat(unix.AT_FDCWD, path, unix.X_OK, unix.AT_EACCESS)
}

// execve executes the payload, whose filter, if any, is in place already.
func execve(path string, p *specs.Process) error {
	return execPayload(path, p, nil)
}

// execPayload is every path's last step: the payload's rlimits, then its
// filter in (nil: none, or loaded already) and execve, back to back. The
// rlimits go on after the init's last allocation: one below what its Go
// runtime needs (an address space smaller than its reservations, a
// process limit) must bind the payload only. Where a filter is loaded
// already (startContainer hooks, a notify listener) it must allow
// prlimit64, as it must allow the rest of the runtime's calls there.
func execPayload(path string, p *specs.Process, in *seccomp.Installable) error {
	lim, err := payloadLimits(p)
	if err != nil {
		return err
	}
	x, err := seccomp.PrepareExec(path, p.Args, p.Env)
	if err != nil {
		return execError(path, err)
	}
	if err := lim.Apply(); err != nil {
		return err
	}
	return execError(path, x.Run(in))
}

func execError(path string, err error) error {
	if _, bare := err.(unix.Errno); !bare {
		return err // loading the filter failed, not the exec
	}
	if errors.Is(err, unix.ENOENT) {
		// lookPath found the file: what is missing is its #! interpreter
		// (or, for a dynamic binary, its loader).
		return fmt.Errorf("exec %s: %w (is its #! interpreter or ELF loader missing from the container?)", path, err)
	}
	return fmt.Errorf("exec %s: %w", path, err)
}

// sendNamespaces hands the runtime our user and network namespaces: a
// process of ours may open its own /proc/self/ns, which no other
// unprivileged process may while we are not dumpable.
func sendNamespaces(conn *initproto.Conn) error {
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for _, ns := range []string{"user", "net"} {
		fd, err := unix.Open("/proc/self/ns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("init: opening its %s namespace for the runtime: %w", ns, err)
		}
		fds = append(fds, fd)
	}
	return conn.Send(initproto.Namespaces{}, fds...)
}
