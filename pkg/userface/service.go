package userface

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/containerlog"
	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/vmcontainer"
)

// Listed is one row of a person's bulwark ls.
type Listed struct {
	Name    string    `json:"name"`
	Image   string    `json:"image"` // the image, or the rootfs directory
	Command []string  `json:"command"`
	Status  string    `json:"status"` // creating, created, running, paused, stopped
	Exit    *int      `json:"exitCode,omitempty"`
	Created time.Time `json:"created"`
	Pid     int       `json:"pid,omitempty"`
	Ports   []string  `json:"exposedPorts,omitempty"`
}

// List describes every container under the state root, the person's and
// the engines' alike, by name.
func List(rt *container.Runtime) ([]Listed, error) {
	sts, err := rt.List()
	if err != nil {
		return nil, err
	}
	out := make([]Listed, 0, len(sts))
	for _, st := range sts {
		l := Listed{Name: st.ID, Image: st.Annotations[oci.AnnotationImage], Created: st.Created,
			Status: string(rt.Status(st))}
		if l.Image == "" {
			l.Image = st.Rootfs
		}
		if st.Config != nil && st.Config.Process != nil {
			l.Command = st.Config.Process.Args
		}
		// A VM container's config is QEMU's; the payload's is kept
		// beside it.
		if c, err := vmcontainer.InnerSpec(rt.StateDir(st.ID)); err == nil && c.Spec != nil && vmcontainer.IsVM(c.Spec) {
			if c.Spec.Process != nil {
				l.Command = c.Spec.Process.Args
			}
			if st.Annotations[oci.AnnotationImage] == "" && c.Spec.Root != nil {
				l.Image = oci.RootfsPath(st.Bundle, c.Spec)
			}
		}
		if p := st.Annotations[oci.AnnotationExposedPorts]; p != "" {
			l.Ports = strings.Split(p, ",")
		}
		if l.Status == string(specs.StateRunning) || l.Status == "paused" {
			l.Pid = st.Pid
		} else if b, err := os.ReadFile(filepath.Join(PathsOf(rt.Root, st.ID).Bundle, exitFile)); err == nil {
			if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				l.Exit = &n
			}
		}
		out = append(out, l)
	}
	return out, nil
}

// StatusLine is the STATUS column of bulwark ls: "running 3m2s",
// "exited (0)".
func (l Listed) StatusLine(now time.Time) string {
	switch {
	case l.Status == string(specs.StateRunning):
		return "running " + now.Sub(l.Created).Truncate(time.Second).String()
	case l.Exit != nil:
		return fmt.Sprintf("exited (%d)", *l.Exit)
	}
	return l.Status
}

// Stop sends the container its stop signal (the image's StopSignal or
// --stop-signal, else SIGTERM), waits up to timeout for it to end, then
// kills every process in it. A stopped container is left as it is.
func Stop(rt *container.Runtime, id string, timeout time.Duration) error {
	st, err := rt.Load(id)
	if err != nil {
		return err
	}
	if rt.Status(st) == specs.StateStopped {
		return nil
	}
	sig := unix.SIGTERM
	if a := st.Annotations[oci.AnnotationStopSignal]; a != "" {
		if sig, err = container.ParseSignal(a); err != nil {
			return fmt.Errorf("container %s: annotation %s: %w", id, oci.AnnotationStopSignal, err)
		}
	}
	if rt.Status(st) == "paused" {
		// A frozen process cannot act on the signal.
		_ = rt.Resume(id)
	}
	if err := rt.Kill(id, sig, false); err != nil && !errors.Is(err, container.ErrNotRunning) {
		return err
	}
	if waitStopped(rt, id, timeout) {
		return nil
	}
	if err := rt.Kill(id, unix.SIGKILL, true); err != nil && !errors.Is(err, container.ErrNotRunning) && !errors.Is(err, container.ErrNotExist) {
		return err
	}
	if !waitStopped(rt, id, 10*time.Second) {
		return fmt.Errorf("container %s: still running 10s after SIGKILL", id)
	}
	return nil
}

// waitStopped polls until the container is stopped or gone.
func waitStopped(rt *container.Runtime, id string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		st, err := rt.Load(id)
		if err != nil || rt.Status(st) == specs.StateStopped {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// claimGrace is how long rm -f waits for a claim whose run is ending.
const claimGrace = 2 * time.Second

// Remove deletes a stopped container (with force, a running one too) and
// everything it owns. A name whose run was killed before its container
// existed has only its claim left: Remove frees it.
func Remove(rt *container.Runtime, id string, force bool) error {
	if err := oci.ValidateID(id); err != nil {
		return err
	}
	st, err := rt.Load(id)
	if errors.Is(err, container.ErrDamaged) {
		if !force {
			return fmt.Errorf("%w (bulwark rm -f removes what can be found without it)", err)
		}
		// Delete says what it could not remove; the claim's journal
		// names what the run made, which the state named too.
		err = rt.Delete(id, true)
		b := PathsOf(rt.Root, id).Bundle
		if _, serr := os.Stat(b); serr != nil {
			return err
		}
		if cerr := removeClaim(rt, id, b, force); cerr != nil {
			return errors.Join(err, cerr)
		}
		return fmt.Errorf("%w; what its run recorded making (its files, image snapshot, networks, user namespace range) is removed", err)
	}
	if err != nil && !errors.Is(err, container.ErrNotExist) {
		return err
	}
	b := PathsOf(rt.Root, id).Bundle
	if err == nil {
		if s := rt.Status(st); s != specs.StateStopped && !force {
			return fmt.Errorf("container %s is %s: bulwark stop it first, or rm -f: %w", id, s, container.ErrRunning)
		}
		// The claim, opened before the delete removes it: its run (a
		// detached one's monitor) ends after its container, and rm -f
		// returns only once it has (waitRunEnded).
		claim, _ := os.OpenFile(b, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if claim != nil {
			defer claim.Close()
		}
		if err := rt.Delete(id, true); err != nil && !errors.Is(err, container.ErrNotExist) {
			return err
		}
		if claim != nil && force {
			waitRunEnded(claim)
		}
	}
	// A claim left after the delete is a run's that was killed before its
	// container's state recorded what it owns (a state directory with no
	// state.json yet is a container "creating" that owns nothing): what
	// the run made is in its journal.
	if _, serr := os.Stat(b); serr != nil {
		return err
	}
	return removeClaim(rt, id, b, force)
}

// waitRunEnded waits, up to claimGrace, for the run holding claim's lock
// (holdClaim) to end: a detached run's monitor whose container rm -f just
// killed would otherwise still be there when rm -f returns.
func waitRunEnded(claim *os.File) {
	for deadline := time.Now().Add(claimGrace); ; time.Sleep(20 * time.Millisecond) {
		err := unix.Flock(int(claim.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			_ = unix.Flock(int(claim.Fd()), unix.LOCK_UN)
			return
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			return
		}
	}
}

// removeClaim frees the claim b of a run that is no more, and everything
// its journal names.
func removeClaim(rt *container.Runtime, id, b string, force bool) error {
	lock, err := holdClaim(b, true)
	// A run killed a moment ago holds its claim until the kernel has
	// finished its exit (a detached run's monitor ends a moment after its
	// command): rm -f gives it that moment.
	for deadline := time.Now().Add(claimGrace); force && errors.Is(err, errClaimBusy) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		lock, err = holdClaim(b, true)
	}
	if errors.Is(err, errClaimBusy) {
		return fmt.Errorf("container %s: %w (it has no state yet): try again once it runs, or stop its bulwark run", id, err)
	}
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := releaseJournal(rt, filepath.Join(b, ownJournal), rt.StateDir(id)); err != nil {
		return err
	}
	if rt.Rootless {
		// Its private files and volumes, made before the container, are
		// plain directories under the state directory without root:
		// nothing is mounted there.
		p := pathsFor(rt, id)
		for _, d := range []string{p.Files, p.Volumes} {
			if err := os.RemoveAll(d); err != nil {
				return err
			}
			_ = os.Remove(filepath.Dir(d))
		}
	}
	if err := os.RemoveAll(b); err != nil {
		return err
	}
	_ = os.Remove(filepath.Dir(b))
	return nil
}

// Logs writes a detached container's output, what it wrote to stdout to
// stdout and what it wrote to stderr to stderr, in the order written;
// with follow, it goes on until the container has stopped and its monitor
// has written the last.
func Logs(rt *container.Runtime, id string, follow bool, stdout, stderr io.Writer) error {
	if _, err := rt.Load(id); err != nil {
		return err
	}
	bundle := PathsOf(rt.Root, id).Bundle
	path := filepath.Join(bundle, logFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("container %s has no log: only a container run with --detach keeps one", id)
	}
	w := containerlog.NewDemux(stdout, stderr)
	if b, err := os.ReadFile(path + ".1"); err == nil {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { f.Close() }()
	var stopped time.Time
	for {
		if _, err := io.Copy(w, f); err != nil {
			return err
		}
		if err := w.Flush(); err != nil || !follow {
			return err
		}
		// Rotated: finish the old file (done above), go on in the new.
		if fi, err := os.Stat(path); err == nil {
			if cur, err := f.Stat(); err == nil && !os.SameFile(fi, cur) {
				nf, err := os.Open(path)
				if err != nil {
					return err
				}
				f.Close()
				f = nf
				continue
			}
		}
		// The monitor writes the exit file after the log's last byte.
		if _, err := os.Stat(filepath.Join(bundle, exitFile)); err == nil {
			if _, err := io.Copy(w, f); err != nil {
				return err
			}
			return w.Flush()
		}
		st, err := rt.Load(id)
		if err != nil {
			return nil // removed
		}
		// A monitor that was killed writes no exit file.
		if rt.Status(st) == specs.StateStopped {
			if stopped.IsZero() {
				stopped = time.Now()
			} else if time.Since(stopped) > 2*time.Second {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}
