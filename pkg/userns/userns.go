// Package userns hands out host uid/gid ranges for user-namespaced
// containers, one range of 65536 ids per container.
//
// Threat: two containers whose roots map to the same host ids are the same
// user to the kernel. Whatever one can reach (files it created in a shared
// volume, its processes through kill and ptrace, its keyrings, its
// per-user rlimits) the other can reach too, so a compromised container
// attacks its neighbours without any kernel bug. A range must therefore
// belong to exactly one live container, must never include host id 0, and
// must not overlap the subordinate ids /etc/subuid and /etc/subgid grant to
// users for their own rootless containers.
//
// The pool is a directory (default /var/lib/bulwark/userns) holding one
// file per allocated range, named after its index k (host ids
// Base+k*Size ... Base+(k+1)*Size-1). The file records the owner (the
// container's state directory) and the allocating process (pid and start
// time). Allocation and release hold an exclusive flock on the directory.
// A range whose owner directory is gone and whose allocating process is no
// longer alive belongs to a container that crashed or was cleaned up by
// hand: the next allocation reclaims it, and `delete --force` releases it
// explicitly.
package userns

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/procstat"
	"github.com/bulwark-sec/bulwark/pkg/safefile"
)

// Defaults of the pool: ranges start above the ids Debian gives to system
// and human users (below 100000) and go up to Base + MaxRanges*Size, well
// inside the 32-bit id space and below the ids some filesystems reserve
// near 2^32.
const (
	DefaultDir       = "/var/lib/bulwark/userns"
	DefaultBase      = 100000
	DefaultSize      = 65536
	DefaultMaxRanges = 16384
)

// ErrExhausted is returned when every range of the pool is in use.
var ErrExhausted = errors.New("no free user namespace range")

// Range is a block of host ids mapped to container ids 0..Size-1.
type Range struct {
	// Index is the pool slot; -1 for a range given explicitly by the user
	// (not recorded in the pool: `bulwark run` refuses one that overlaps the
	// pool or another container).
	Index  int    `json:"index"`
	HostID uint32 `json:"hostID"`
	Size   uint32 `json:"size"`
}

// Pool is a directory of range allocations.
type Pool struct {
	Dir       string
	Base      uint32
	Size      uint32
	MaxRanges int
	// Reserved are host id ranges never handed out (by default those of
	// /etc/subuid and /etc/subgid); each is [start, start+size).
	Reserved [][2]uint64
}

// Default returns the system pool, with /etc/subuid and /etc/subgid
// reserved (Kubernetes' kubelet and rootless engines take their ranges
// from there), and every uid and gid of /etc/passwd and /etc/group: a
// container whose range held a host account's id would own that
// account's files.
func Default() *Pool {
	p := &Pool{Dir: DefaultDir, Base: DefaultBase, Size: DefaultSize, MaxRanges: DefaultMaxRanges}
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		p.Reserved = append(p.Reserved, ReadSubIDs(f)...)
	}
	for _, f := range []string{"/etc/passwd", "/etc/group"} {
		p.Reserved = append(p.Reserved, ReadAccountIDs(f, DefaultBase)...)
	}
	return p
}

// ReadAccountIDs returns, from an /etc/passwd- or /etc/group-style file,
// the id of every entry at or above min, each as a one-id range. Accounts
// below min cannot collide with the pool, and most hosts have only those.
func ReadAccountIDs(path string, min uint64) [][2]uint64 {
	return readRanges(path, func(line string) (r [2]uint64, ok bool) {
		parts := strings.Split(line, ":")
		if len(parts) < 3 {
			return r, false
		}
		id, err := strconv.ParseUint(parts[2], 10, 32)
		if err != nil || id < min {
			return r, false
		}
		return [2]uint64{id, id + 1}, true
	})
}

// ReadSubIDs parses an /etc/subuid-style file (name:start:count per line).
// A missing or malformed file reserves nothing: it grants nothing either.
func ReadSubIDs(path string) [][2]uint64 {
	return readRanges(path, func(line string) (r [2]uint64, ok bool) {
		parts := strings.Split(strings.TrimSpace(line), ":")
		if len(parts) != 3 {
			return r, false
		}
		start, err1 := strconv.ParseUint(parts[1], 10, 32)
		n, err2 := strconv.ParseUint(parts[2], 10, 32)
		if err1 != nil || err2 != nil || n == 0 {
			return r, false
		}
		return [2]uint64{start, start + n}, true
	})
}

// readRanges returns the range parse finds in each line of the file at
// path, skipping the lines it rejects; a file that cannot be opened has
// none.
func readRanges(path string, parse func(line string) ([2]uint64, bool)) [][2]uint64 {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out [][2]uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if r, ok := parse(sc.Text()); ok {
			out = append(out, r)
		}
	}
	return out
}

// record is the content of one allocation file.
type record struct {
	Owner    string `json:"owner"`
	Pid      int    `json:"pid"`
	PidStart uint64 `json:"pidStart"`
}

func (p *Pool) hostID(k int) uint64 { return uint64(p.Base) + uint64(k)*uint64(p.Size) }

func (p *Pool) reserved(k int) bool {
	lo, hi := p.hostID(k), p.hostID(k)+uint64(p.Size)
	for _, r := range p.Reserved {
		if lo < r[1] && r[0] < hi {
			return true
		}
	}
	return false
}

func (p *Pool) check() error {
	switch {
	case p.Dir == "":
		return errors.New("userns pool: empty directory")
	case p.Base == 0:
		return errors.New("userns pool: base 0 would map a container's root to the host's root")
	case p.Size == 0 || p.MaxRanges <= 0:
		return errors.New("userns pool: size and number of ranges must be positive")
	case p.hostID(p.MaxRanges) > 1<<32-1:
		return fmt.Errorf("userns pool: %d ranges of %d from %d overflow 32-bit ids", p.MaxRanges, p.Size, p.Base)
	}
	return nil
}

// lock takes the pool's exclusive lock; the caller must close the fd.
func (p *Pool) lock() (int, error) {
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		return -1, fmt.Errorf("userns pool %s: %w", p.Dir, err)
	}
	// A pool another user can write hands out the ranges that user chose.
	if err := safefile.CheckDir(p.Dir); err != nil {
		return -1, fmt.Errorf("userns pool: %w", err)
	}
	fd, err := unix.Open(p.Dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("userns pool %s: %w", p.Dir, err)
	}
	for {
		err = unix.Flock(fd, unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("userns pool %s: lock: %w", p.Dir, err)
	}
	return fd, nil
}

// Allocate takes the lowest free range for owner (the container's state
// directory), reclaiming ranges of owners that are gone.
func (p *Pool) Allocate(owner string) (Range, error) {
	if err := p.check(); err != nil {
		return Range{}, err
	}
	if owner == "" {
		return Range{}, errors.New("userns pool: empty owner")
	}
	fd, err := p.lock()
	if err != nil {
		return Range{}, err
	}
	defer unix.Close(fd)
	me := record{Owner: owner, Pid: os.Getpid()}
	me.PidStart, _ = pidStart(me.Pid)
	for k := 0; k < p.MaxRanges; k++ {
		if p.reserved(k) {
			continue
		}
		path := filepath.Join(p.Dir, strconv.Itoa(k))
		if rec, err := readRecord(path); err == nil {
			if !rec.stale() {
				continue
			}
			// A crashed container's range: the owner and its allocator are gone.
			if err := os.Remove(path); err != nil {
				return Range{}, fmt.Errorf("userns pool: reclaiming range %d: %w", k, err)
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return Range{}, err
		}
		b, _ := json.Marshal(me)
		if err := writeNew(path, b); err != nil {
			return Range{}, fmt.Errorf("userns pool: recording range %d: %w", k, err)
		}
		return Range{Index: k, HostID: uint32(p.hostID(k)), Size: p.Size}, nil
	}
	return Range{}, fmt.Errorf("userns pool %s: all %d ranges in use: %w", p.Dir, p.MaxRanges, ErrExhausted)
}

// Release frees every range recorded for owner. A pool that does not exist
// holds nothing, which is not an error.
func (p *Pool) Release(owner string) error {
	if _, err := os.Stat(p.Dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	fd, err := p.lock()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ents, err := os.ReadDir(p.Dir)
	if err != nil {
		return fmt.Errorf("userns pool %s: %w", p.Dir, err)
	}
	var errs []error
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		path := filepath.Join(p.Dir, e.Name())
		rec, err := readRecord(path)
		if err != nil || rec.Owner != owner {
			continue
		}
		if err := os.Remove(path); err != nil {
			errs = append(errs, fmt.Errorf("userns pool: releasing range %s: %w", e.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// Allocated lists the ranges in use and their owners (for tests and
// debugging).
func (p *Pool) Allocated() (map[int]string, error) {
	ents, err := os.ReadDir(p.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return map[int]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[int]string{}
	for _, e := range ents {
		k, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if rec, err := readRecord(filepath.Join(p.Dir, e.Name())); err == nil {
			out[k] = rec.Owner
		}
	}
	return out, nil
}

// Overlap returns the owner and range of a live allocation of the pool
// that shares a host id with [start, start+size): a container whose own
// maps name those ids would own that container's files. Allocations this
// process made (for the container it is creating) do not count. The owner
// is "" when nothing overlaps; a missing pool holds nothing.
func (p *Pool) Overlap(start, size uint64) (string, Range, error) {
	ents, err := os.ReadDir(p.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return "", Range{}, nil
	}
	if err != nil {
		return "", Range{}, fmt.Errorf("userns pool %s: %w", p.Dir, err)
	}
	for _, e := range ents {
		k, err := strconv.Atoi(e.Name())
		if err != nil || k < 0 {
			continue
		}
		rec, err := readRecord(filepath.Join(p.Dir, e.Name()))
		if err != nil || rec.Pid == os.Getpid() || rec.stale() {
			continue
		}
		lo, hi := p.hostID(k), p.hostID(k)+uint64(p.Size)
		if start < hi && lo < start+size {
			return rec.Owner, Range{Index: k, HostID: uint32(lo), Size: p.Size}, nil
		}
	}
	return "", Range{}, nil
}

// stale: nobody can still be using the range. The allocator's liveness
// covers the window between allocation and the creation of the state
// directory.
func (r *record) stale() bool {
	if _, err := os.Stat(r.Owner); err == nil {
		return false
	}
	if r.Pid > 0 {
		if start, err := pidStart(r.Pid); err == nil && start == r.PidStart {
			return false
		}
	}
	return true
}

func readRecord(path string) (*record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := new(record)
	if err := json.Unmarshal(b, r); err != nil {
		// A torn write from a crash: treat as owned by nobody.
		return &record{Owner: "/nonexistent"}, nil
	}
	return r, nil
}

// writeNew records b at path whole or not at all, failing if path exists:
// an allocation killed between an O_EXCL create and its write left an
// empty record, which rm -f could not release (it names no owner) and
// which stayed until some later allocation reclaimed it. The record is
// written under a temporary name (not a number: the pool's readers skip
// it) and linked to its own; the pool's lock is held, so a temporary file
// there is a killed allocation's.
func writeNew(path string, b []byte) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Link(tmp, path)
}

// pidStart is field 22 of /proc/PID/stat, to tell a pid from its successor.
func pidStart(pid int) (uint64, error) {
	s, err := procstat.Read(pid)
	if err != nil {
		return 0, err
	}
	if s.Dead() {
		return 0, errors.New("zombie")
	}
	return s.StartTime()
}

// ParseRange parses --userns-range HOSTID[:SIZE] (SIZE defaults to 65536).
func ParseRange(s string) (Range, error) {
	host, size, hasSize := strings.Cut(s, ":")
	h, err := strconv.ParseUint(host, 10, 32)
	if err != nil {
		return Range{}, fmt.Errorf("host id %q: want a number", host)
	}
	n := uint64(DefaultSize)
	if hasSize {
		if n, err = strconv.ParseUint(size, 10, 32); err != nil || n == 0 {
			return Range{}, fmt.Errorf("size %q: want a positive number", size)
		}
	}
	if h == 0 {
		return Range{}, errors.New("host id 0 would make the container's root the host's root")
	}
	if h+n > 1<<32-1 {
		return Range{}, fmt.Errorf("%d+%d overflows 32-bit ids", h, n)
	}
	return Range{Index: -1, HostID: uint32(h), Size: uint32(n)}, nil
}
