// Package container is the lifecycle of one container as the OCI runtime
// spec defines it (creating, created, running, paused, stopped), its state on
// disk under --root, and the lock that serialises commands on it.
//
// Threat: a runtime that loses track of a container leaks processes, mounts
// and cgroups on the host, and one that trusts a recycled pid signals the
// wrong process. State is written atomically, every pid is checked against
// its start time, and every failure path removes what it created.
package container

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/procstat"
	"github.com/bulwark-sec/bulwark/pkg/cgroups"
)

// Sentinel errors callers test with errors.Is.
var (
	ErrNotExist   = errors.New("container does not exist")
	ErrExist      = errors.New("container already exists")
	ErrRunning    = errors.New("container is not stopped")
	ErrNotRunning = errors.New("container not running")
	ErrNotCreated = errors.New("container is not in the created state")
	// ErrDamaged is a state.json that cannot be read (cut, or edited by
	// hand): delete --force removes what the id alone leads to.
	ErrDamaged = errors.New("container state unreadable")
)

// Phase is what the runtime last completed for the container; the OCI status
// is derived from it plus what the kernel says about the init process.
type Phase string

const (
	PhaseCreating Phase = "creating" // create was interrupted: only delete --force is meaningful
	PhaseCreated  Phase = "created"
)

// State is state.json in the container's directory.
type State struct {
	ID          string            `json:"id"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Pid         int               `json:"pid"`
	PidStart    uint64            `json:"pidStart"`
	Phase       Phase             `json:"phase"`
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Cgroup      cgroups.Config    `json:"cgroup"`
	Config      *specs.Spec       `json:"config"`
	Owner       string            `json:"owner"`
	// HostMounts are the IDs of the mounts the init made in the host's
	// mount table (a config without a mount namespace); delete removes them.
	HostMounts []int `json:"hostMounts,omitempty"`
	// Owns is what was made on the host for the container outside its
	// state directory (CreateOpts.Owns); delete removes it.
	Owns []Owned `json:"owns,omitempty"`
}

func (r *Runtime) dir(id string) string { return filepath.Join(r.Root, id) }

func (r *Runtime) loadState(id string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(r.dir(id), "state.json"))
	if errors.Is(err, os.ErrNotExist) {
		if _, derr := os.Stat(r.dir(id)); derr == nil {
			// The directory exists but create died before writing state:
			// report it as creating so delete --force can clean it.
			return &State{ID: id, Phase: PhaseCreating}, nil
		}
		return nil, fmt.Errorf("container %q: %w", id, ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("container %q: %w", id, err)
	}
	if s := r.cachedState(id, b); s != nil {
		return s, nil
	}
	s := new(State)
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("container %q: %s: %w: %w", id, filepath.Join(r.dir(id), "state.json"), ErrDamaged, err)
	}
	r.cacheState(s, b)
	return s, nil
}

// A foreground run reads back the state it has just written, in start and
// again in delete: decoding the whole spec each time was a few hundred
// microseconds of every run. The file is still read (another command may
// have changed it); only identical bytes are answered from memory, with a
// copy of the State so callers may change its fields.
type stateCache struct {
	mu    sync.Mutex
	bytes map[string][]byte
	state map[string]State
}

func (r *Runtime) cachedState(id string, b []byte) *State {
	c := &r.states
	c.mu.Lock()
	defer c.mu.Unlock()
	if cb, ok := c.bytes[id]; ok && bytes.Equal(cb, b) {
		s := c.state[id]
		return &s
	}
	return nil
}

func (r *Runtime) cacheState(s *State, b []byte) {
	c := &r.states
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bytes == nil {
		c.bytes, c.state = map[string][]byte{}, map[string]State{}
	}
	c.bytes[s.ID], c.state[s.ID] = b, *s
}

// saveState writes state.json atomically so a crash never leaves half a file.
func (r *Runtime) saveState(s *State) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp := filepath.Join(r.dir(s.ID), ".state.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(r.dir(s.ID), "state.json")); err != nil {
		return err
	}
	r.cacheState(s, b)
	return nil
}

// Status derives the OCI status.
func (r *Runtime) Status(s *State) specs.ContainerState {
	if s.Phase == PhaseCreating {
		return specs.StateCreating
	}
	if !s.alive() {
		return specs.StateStopped
	}
	if _, err := os.Lstat(filepath.Join(r.dir(s.ID), execFifo)); err == nil {
		return specs.StateCreated
	}
	if m, err := cgroups.Load(s.Cgroup); err == nil {
		if st, err := m.FreezerState(); err == nil && st == "FROZEN" {
			return "paused"
		}
	}
	return specs.StateRunning
}

// alive is true while the recorded init is the same process (pid and start
// time) and not a zombie.
func (s *State) alive() bool {
	if s.Pid <= 0 {
		return false
	}
	start, state, err := procStat(s.Pid)
	if err != nil || start != s.PidStart {
		return false
	}
	return state != 'Z' && state != 'X'
}

// procStat returns the start time (field 22) and state (field 3) of a pid.
func procStat(pid int) (uint64, byte, error) {
	s, err := procstat.Read(pid)
	if err != nil {
		return 0, 0, err
	}
	start, err := s.StartTime()
	return start, s.State(), err
}

// OCIState is the state as `state` prints it.
func (r *Runtime) OCIState(s *State) *specs.State {
	st := &specs.State{
		Version:     specs.Version,
		ID:          s.ID,
		Status:      r.Status(s),
		Bundle:      s.Bundle,
		Annotations: s.Annotations,
	}
	if st.Status != specs.StateStopped {
		st.Pid = s.Pid
	}
	return st
}

// lock takes an exclusive flock on the container's directory; commands on one
// container run one at a time. The caller must Unlock.
type lock struct{ fd int }

func (r *Runtime) lock(id string) (*lock, error) {
	fd, err := unix.Open(r.dir(id), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil, fmt.Errorf("container %q: %w", id, ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("container %q: %w", id, err)
	}
	for {
		err = unix.Flock(fd, unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("container %q: lock: %w", id, err)
	}
	// The holder before us may have deleted the container.
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Nlink == 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("container %q: %w", id, ErrNotExist)
	}
	return &lock{fd: fd}, nil
}

func (l *lock) Unlock() {
	if l != nil {
		unix.Close(l.fd)
	}
}
