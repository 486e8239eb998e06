package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/cgroups"
	"github.com/bulwark-sec/bulwark/pkg/hooks"
	"github.com/bulwark-sec/bulwark/pkg/oci"
)

// Load returns a container's state.
func (r *Runtime) Load(id string) (*State, error) {
	if err := oci.ValidateID(id); err != nil {
		return nil, err
	}
	return r.loadState(id)
}

// lockedState validates id, takes the container's lock and loads its
// state: the preamble of every command that changes a container.
func (r *Runtime) lockedState(id string) (*State, func(), error) {
	if err := oci.ValidateID(id); err != nil {
		return nil, nil, err
	}
	l, err := r.lock(id)
	if err != nil {
		return nil, nil, err
	}
	st, err := r.loadState(id)
	if err != nil {
		l.Unlock()
		return nil, nil, err
	}
	return st, l.Unlock, nil
}

// Start runs the payload of a created container.
func (r *Runtime) Start(id string) error {
	st, unlock, err := r.lockedState(id)
	if err != nil {
		return err
	}
	defer unlock()
	if s := r.Status(st); s != specs.StateCreated {
		return fmt.Errorf("container %q is %s: %w", id, s, ErrNotCreated)
	}
	fifo := filepath.Join(r.dir(id), execFifo)
	fd, err := unix.Open(fifo, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("container %q: exec fifo: %w", id, err)
	}
	defer unix.Close(fd)
	// The init opens the FIFO for writing once we are its reader, writes one
	// byte, and keeps its end open until execve closes it (O_CLOEXEC). EOF
	// after the byte therefore means the payload has been executed, which
	// the poststart hooks must follow. Poll so a dead init cannot hang start.
	buf := make([]byte, 1)
	released := false
	for {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, 100)
		if err != nil && err != unix.EINTR {
			return fmt.Errorf("container %q: exec fifo: %w", id, err)
		}
		if n > 0 && pfd[0].Revents&(unix.POLLIN|unix.POLLHUP) != 0 {
			c, rerr := unix.Read(fd, buf)
			if c == 1 {
				released = true
				continue
			}
			if c == 0 && rerr == nil {
				if released {
					break
				}
				return fmt.Errorf("container %q: init exited before start", id)
			}
		}
		if !released && !st.alive() {
			return fmt.Errorf("container %q: init exited before start", id)
		}
	}
	if err := os.Remove(fifo); err != nil {
		return fmt.Errorf("container %q: %w", id, err)
	}
	if st.Config != nil && st.Config.Hooks != nil && len(st.Config.Hooks.Poststart) > 0 {
		// The payload has started, but a short one may already have
		// exited: poststart hooks are told what start did, not a race.
		s := r.OCIState(st)
		s.Status, s.Pid = specs.StateRunning, st.Pid
		if err := hooks.RunAll("poststart", st.Config.Hooks.Poststart, s); err != nil {
			// The spec: a failing poststart hook is logged, the container runs on.
			r.warnf("%v", err)
		}
	}
	return nil
}

// Kill sends sig to the init, or with all to every process of the container.
func (r *Runtime) Kill(id string, sig unix.Signal, all bool) error {
	st, unlock, err := r.lockedState(id)
	if err != nil {
		return err
	}
	defer unlock()
	status := r.Status(st)
	// Without a PID namespace of its own, SIGKILL to the init does not take
	// the container's other processes with it (the kernel does that only
	// for a namespace's pid 1), and once the init is gone nothing would:
	// kill the whole cgroup instead, as runc does, whether the init is
	// still there or not.
	if all || sig == unix.SIGKILL && st.Config != nil && !privatePIDNS(st.Config) {
		m, err := cgroups.Load(st.Cgroup)
		if err != nil {
			return fmt.Errorf("container %q: %w", id, err)
		}
		if status == "paused" && sig == unix.SIGKILL {
			defer m.Thaw()
		}
		err = m.KillAll(sig)
		if !errors.Is(err, cgroups.ErrNoCgroup) {
			return err
		}
		// Rootless without a cgroup: the init is all that can be named
		// (with its own pid namespace, its SIGKILL takes the rest).
		if status == specs.StateStopped {
			return nil
		}
	}
	if status == specs.StateStopped || status == specs.StateCreating {
		return fmt.Errorf("container %q: %w", id, ErrNotRunning)
	}
	return signalInit(st, sig)
}

// privatePIDNS reports whether the config gives the container a new PID
// namespace (a pid entry without a path to join).
func privatePIDNS(s *specs.Spec) bool {
	if s.Linux == nil {
		return false
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.PIDNamespace {
			return ns.Path == ""
		}
	}
	return false
}

// signalInit uses a pidfd so a pid recycled since our liveness check can
// never receive the signal.
func signalInit(st *State, sig unix.Signal) error {
	pfd, err := unix.PidfdOpen(st.Pid, 0)
	if err != nil {
		return fmt.Errorf("container %q: %w", st.ID, ErrNotRunning)
	}
	defer unix.Close(pfd)
	if !st.alive() {
		return fmt.Errorf("container %q: %w", st.ID, ErrNotRunning)
	}
	if err := unix.PidfdSendSignal(pfd, sig, nil, 0); err != nil {
		return fmt.Errorf("container %q: kill: %w", st.ID, err)
	}
	return nil
}

// Delete removes a stopped container; with force it kills a live one first.
func (r *Runtime) Delete(id string, force bool) error {
	st, unlock, err := r.lockedState(id)
	if errors.Is(err, ErrDamaged) && force {
		return r.deleteDamaged(id, err)
	}
	if err != nil {
		return err
	}
	defer unlock()
	status := r.Status(st)
	if status != specs.StateStopped && status != specs.StateCreating && !force {
		return fmt.Errorf("container %q is %s, delete it with --force: %w", id, status, ErrRunning)
	}
	err = r.destroy(st)
	r.runPoststop(st)
	return err
}

// deleteDamaged removes a container whose state cannot be read as far as
// its id leads: the processes of its cgroup at the default path, the
// cgroup and the state directory. What the state alone knew (a cgroup at
// another path, mounts in the host's table, what its maker recorded it
// owns) is named in the error, never guessed at.
func (r *Runtime) deleteDamaged(id string, damaged error) error {
	l, err := r.lock(id)
	if err != nil {
		return err
	}
	defer l.Unlock()
	err = r.destroy(&State{ID: id, Phase: PhaseCreating})
	return errors.Join(fmt.Errorf("%w: removed its state directory and its cgroup at the default path; a cgroup at another path, and mounts and resources on the host that only its state named, are left", damaged), err)
}

// runPoststop runs the poststop hooks once the container is gone: after
// delete, and after a create that failed, as runc runs them from its
// destroy. A failing poststop hook is only a warning (runtime-spec).
func (r *Runtime) runPoststop(st *State) {
	if st.Config == nil || st.Config.Hooks == nil || len(st.Config.Hooks.Poststop) == 0 {
		return
	}
	s := r.OCIState(st)
	s.Status, s.Pid = specs.StateStopped, 0
	if err := hooks.RunAll("poststop", st.Config.Hooks.Poststop, s); err != nil {
		r.warnf("%v", err)
	}
}

// destroy kills whatever is left and removes everything the container owns
// on the host: its cgroup, its mounts in the host's table, its state. It
// tolerates a half-created container, and is also how a failed create
// undoes itself, so both leave the same nothing behind.
func (r *Runtime) destroy(st *State) error {
	var errs []error
	if st.alive() {
		_ = signalInit(st, unix.SIGKILL)
	}
	cfg := st.Cgroup
	if cfg.ID == "" {
		// create died before state.json: the default path names the id.
		cfg = cgroups.Config{ID: st.ID, Systemd: r.SystemdCgroup}
	}
	if m, err := cgroups.Load(cfg); err == nil && m.Exists() {
		// The usual delete follows an init that has exited and taken its
		// pid namespace with it: the cgroup is empty, and thaw, freeze,
		// kill and thaw again of nobody cost a dozen cgroupfs writes and
		// the freezer's polling. Skipping them is safe because an empty
		// cgroup has no process left that could fork into it; any doubt
		// (a read error, a process) takes the full sweep.
		if pids, perr := m.Pids(); perr != nil || len(pids) > 0 {
			_ = m.Thaw()
			_ = m.KillAll(unix.SIGKILL)
			waitEmpty(m)
		}
		if err := m.Destroy(); err != nil {
			errs = append(errs, fmt.Errorf("cgroup: %w", err))
		}
	}
	// The init may be outside our pid namespace's reach of the cgroup
	// (e.g. create killed before the cgroup existed): wait for it to die.
	for i := 0; i < 200 && st.alive(); i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if err := unmountHostMounts(st.Rootfs, st.HostMounts); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(r.dir(st.ID)); err != nil {
		errs = append(errs, err)
	}
	// What the container's maker set up for it on the host, recorded at
	// create: removed in the order it was recorded.
	for _, o := range st.Owns {
		if err := r.Release(o, r.dir(st.ID)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// List returns the states of all containers under the root.
func (r *Runtime) List() ([]*State, error) {
	ents, err := os.ReadDir(r.Root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*State
	for _, e := range ents {
		if !e.IsDir() || oci.ValidateID(e.Name()) != nil {
			continue
		}
		st, err := r.loadState(e.Name())
		if err != nil {
			continue
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Pause freezes every process of the container.
func (r *Runtime) Pause(id string) error {
	return r.withCgroup(id, func(st *State, m *cgroups.Manager) error {
		if s := r.Status(st); s != specs.StateRunning && s != specs.StateCreated {
			return fmt.Errorf("container %q is %s: %w", id, s, ErrNotRunning)
		}
		return m.Freeze()
	})
}

// Resume thaws a paused container.
func (r *Runtime) Resume(id string) error {
	return r.withCgroup(id, func(st *State, m *cgroups.Manager) error {
		if s := r.Status(st); s != "paused" {
			return fmt.Errorf("container %q is %s, not paused", id, s)
		}
		return m.Thaw()
	})
}

func (r *Runtime) withCgroup(id string, fn func(*State, *cgroups.Manager) error) error {
	st, unlock, err := r.lockedState(id)
	if err != nil {
		return err
	}
	defer unlock()
	m, err := cgroups.Load(st.Cgroup)
	if err != nil {
		return fmt.Errorf("container %q: %w", id, err)
	}
	return fn(st, m)
}
