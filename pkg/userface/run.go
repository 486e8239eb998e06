package userface

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/cleanup"
	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/seccomp"
	"github.com/bulwark-sec/bulwark/pkg/seccomp/killlog"
)

// Run runs the person's request and returns the payload's exit status:
// in the foreground to its end, or with Detach in a monitor process of its
// own (detach.go) that outlives this one, returning once the payload runs.
// Everything made on the host is the container's from create on, and its
// delete removes it; on a failure before that, Run removes it itself.
func Run(rt *container.Runtime, o *Options) (int, error) {
	if err := checkVM(o); err != nil {
		return -1, err
	}
	if o.Detach {
		if o.TTY {
			return -1, errors.New("--detach with --tty: a detached container has no terminal to keep; drop -t (bulwark logs shows its output)")
		}
		if id := os.Getenv(envMonitor); id != "" {
			return monitor(rt, o, id)
		}
		return detach(o)
	}
	return run(rt, o, nil)
}

// newName is a container id for a run without --name.
func newName() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "bw-" + hex.EncodeToString(b[:]), nil
}

// run is a run to its end; with d, as a detached container's monitor.
func run(rt *container.Runtime, o *Options, d *detached) (int, error) {
	id := o.Name
	if id == "" {
		var err error
		if id, err = newName(); err != nil {
			return -1, err
		}
	} else if err := oci.ValidateID(id); err != nil {
		return -1, fmt.Errorf("--name: %w", err)
	}
	if o.UsernsRange != "" {
		if rt.Rootless {
			return -1, errors.New("--userns-range: a rootless run maps the ranges /etc/subuid and /etc/subgid grant you; drop --userns-range")
		}
		if err := checkRange(rt, o.UsernsRange); err != nil {
			return -1, err
		}
	}
	p := pathsFor(rt, id)
	// The name is claimed before anything else is made: every path the
	// run makes is derived from it, so two runs of one name must never
	// both get past here (each would remove the other's files).
	if err := claimName(rt, id, p.Bundle); err != nil {
		return -1, err
	}
	// Held while this run lives: Remove leaves a claim alone while its
	// run may still be making things (holdClaim).
	lock, err := holdClaim(p.Bundle, false)
	if err != nil {
		os.Remove(p.Bundle)
		return -1, fmt.Errorf("--name %s: %w", id, err)
	}
	defer lock.Close()
	if d != nil {
		// A monitor holds it until it exits, by a descriptor of the same
		// open file that nothing closes: rm -f waits for the lock to know
		// the monitor is gone (waitRunEnded).
		if _, err := unix.FcntlInt(lock.Fd(), unix.F_DUPFD_CLOEXEC, 0); err != nil {
			os.Remove(p.Bundle)
			return -1, fmt.Errorf("--name %s: keeping its claim: %w", id, err)
		}
	}
	claim := []container.Owned{{Kind: container.OwnedDir, Path: p.Bundle},
		{Kind: container.OwnedSharedDir, Path: filepath.Dir(p.Bundle)}}
	var undo cleanup.Stack
	defer undo.Clean()
	// First on the stack, so undone last, after everything it guards.
	undo.Add(func() {
		for _, c := range claim {
			_ = c.Release(rt.StateDir(id))
		}
	})
	h := &host{rt: rt, stateDir: rt.StateDir(id), undo: &undo, journal: filepath.Join(p.Bundle, ownJournal)}
	if o.Image != "" {
		// The image's snapshot is mounted before the spec is made: --user
		// names are looked up in it. This changes the host; undo reverts.
		var err error
		if o, err = h.image(o, id); err != nil {
			return -1, err
		}
	}
	r, err := read(o)
	if err != nil {
		return -1, err
	}
	s, err := r.spec()
	if err != nil {
		return -1, err
	}
	// An image's layers are idmapped by the snapshot, a rootless rootfs
	// needs no idmap (its owner is the container's root).
	if o.Image != "" || rt.Rootless {
		withoutRootfsIdmap(s)
	}
	if rt.Rootless {
		withoutLimits(s, os.Stderr)
	}
	var denials *denialLog
	if o.LogDenied {
		if denials, err = logDenied(rt, id, s, o.Profile); err != nil {
			return -1, err
		}
	}
	// A VM run goes on as any other: create makes QEMU the container's
	// init (pkg/vmcontainer), in its namespaces and cgroup.
	if rt.Rootless && r.netMode != nil && r.netMode.Kind == "cni" {
		return -1, fmt.Errorf("--net %s: CNI networks make bridges and firewall rules, which need root; without root use --net pasta or --net slirp (with -p HOST:CONTAINER), host or none", r.net)
	}
	if err := r.networkNamespace(rt, s, id); err != nil {
		return -1, err
	}
	if err := oci.Validate(s, "", seccomp.Validate); err != nil {
		return -1, err
	}

	// From here on the host is changed (for an image, from h.image on).
	if err := h.prepare(s, p, o.UsernsRange == "", r.volumes); err != nil {
		return -1, err
	}
	if err := h.network(r, s, p, rt.Root, id); err != nil {
		return -1, err
	}
	var tee *stderrTee
	if d != nil {
		if err := d.startLog(p.Bundle); err != nil {
			return -1, err
		}
	} else if !o.TTY {
		if tee, err = teeStderr(); err != nil {
			return -1, err
		}
	}
	// The kernel's log from here on names what seccomp kills; without
	// it (no root, dmesg_restrict) the hint says less.
	kills, _ := killlog.Start()
	defer kills.Close()
	if denials != nil {
		if err := denials.start(); err != nil {
			return -1, err
		}
		defer denials.stop()
	}
	ro := &container.RunOpts{
		// The claim goes last, so that delete frees the name only once
		// everything derived from it is gone.
		CreateOpts: container.CreateOpts{Spec: s, Owns: append(h.owns, claim...),
			Claimed: undo.Release},
		Signals: container.NotifySignals(),
		// Kept, so that the cgroup's OOM counter can be read before delete.
		Keep: true,
	}
	if d != nil {
		ro.Started = d.started
	}
	var relay *userNetRun
	if isUserNet(r.net) {
		relay = &userNetRun{r: r, dir: p.Bundle}
		relay.wire(ro)
	}
	if h.fuse != nil {
		h.fuse.wire(ro, p.Bundle)
	}
	code, err := rt.Run(id, p.Bundle, ro)
	relay.stop()
	denials.stop()
	// The container has ended, and its snapshot's daemon ends with it:
	// reaped before delete removes the snapshot it serves, and after a
	// detached run's exit file, which `bulwark rm` after `stop` does not
	// wait for.
	const fuseGrace = 5 * time.Second
	if err != nil {
		h.fuse.stop(fuseGrace)
		tee.stop()
		return -1, h.fuse.explain(err)
	}
	out := outcome(rt, id, code, kills)
	if o.Keep || d != nil && !o.Remove {
		// bulwark rm removes it, and with it everything it owns.
		if d != nil {
			d.exited(code)
		}
		h.fuse.stop(fuseGrace)
		if tail := tee.stop(); d == nil {
			out.Tail = tail
			printHint(os.Stderr, Hint(s, o, out))
		}
		return code, nil
	}
	h.fuse.stop(fuseGrace)
	derr := rt.Delete(id, true)
	tail := tee.stop()
	if d != nil {
		d.exited(code)
	}
	if derr != nil && !errors.Is(derr, container.ErrNotExist) {
		return code, derr
	}
	out.Tail = tail
	if d == nil {
		printHint(os.Stderr, Hint(s, o, out))
	}
	return code, nil
}

// claimName makes the run's bundle directory, which fails if the name is
// taken: the one atomic step that gives a name to one run.
func claimName(rt *container.Runtime, id, bundle string) error {
	if err := os.MkdirAll(filepath.Dir(bundle), 0o700); err != nil {
		return fmt.Errorf("--name %s: %w", id, err)
	}
	if err := os.Mkdir(bundle, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("--name %s: %w (if no container of that name shows in bulwark ls, a run of it is starting, or was killed before it started: bulwark rm %s removes what it left)", id, container.ErrExist, id)
		}
		return fmt.Errorf("--name %s: %w", id, err)
	}
	if _, err := rt.Load(id); err == nil {
		os.Remove(bundle)
		return fmt.Errorf("--name %s: %w", id, container.ErrExist)
	}
	return nil
}

// errClaimBusy: the claim's run is alive.
var errClaimBusy = errors.New("a run of this name is still starting")

// holdClaim takes the lock on a claim's bundle directory that tells a live
// run from a killed one: the kernel drops it with the run's last
// descriptor, however the run ends. try fails with errClaimBusy instead of
// waiting.
func holdClaim(bundle string, try bool) (*os.File, error) {
	f, err := os.OpenFile(bundle, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	how := unix.LOCK_EX
	if try {
		how |= unix.LOCK_NB
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, errClaimBusy
		}
		return nil, fmt.Errorf("locking %s: %w", bundle, err)
	}
	return f, nil
}
