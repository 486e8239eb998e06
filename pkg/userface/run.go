package userface

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"github.com/bulwark-sec/bulwark/internal/cleanup"
	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/seccomp"
	"github.com/bulwark-sec/bulwark/pkg/seccomp/killlog"
)

// Run runs the person's request in the foreground to its end and returns
// the payload's exit status. Everything made on the host is the
// container's from create on, and its delete removes it; on a failure
// before that, Run removes it itself.
func Run(rt *container.Runtime, o *Options) (int, error) {
	id := o.Name
	if id == "" {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return -1, err
		}
		id = "bw-" + hex.EncodeToString(b[:])
	} else if err := oci.ValidateID(id); err != nil {
		return -1, fmt.Errorf("--name: %w", err)
	}
	if _, err := rt.Load(id); err == nil {
		return -1, fmt.Errorf("--name %s: %w", id, container.ErrExist)
	}
	if o.UsernsRange != "" {
		if err := checkRange(rt, o.UsernsRange); err != nil {
			return -1, err
		}
	}
	var undo cleanup.Stack
	defer undo.Clean()
	h := &host{rt: rt, stateDir: rt.StateDir(id), undo: &undo}
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
	if o.Image != "" {
		withoutRootfsIdmap(s)
	}
	if err := r.networkNamespace(rt, s, id); err != nil {
		return -1, err
	}
	if err := oci.Validate(s, "", seccomp.Validate); err != nil {
		return -1, err
	}

	// From here on the host is changed (for an image, from h.image on).
	p := PathsOf(rt.Root, id)
	if err := h.prepare(s, p, o.UsernsRange == "", r.volumes); err != nil {
		return -1, err
	}
	if err := h.network(r, s, p, rt.Root, id); err != nil {
		return -1, err
	}
	var tee *stderrTee
	if !o.TTY {
		if tee, err = teeStderr(); err != nil {
			return -1, err
		}
	}
	// The kernel's log from here on names what seccomp kills; without
	// it (no root, dmesg_restrict) the hint says less.
	kills, _ := killlog.Start()
	defer kills.Close()
	// Kept, so that the cgroup's OOM counter can be read before delete.
	code, err := rt.Run(id, p.Bundle, &container.RunOpts{
		CreateOpts: container.CreateOpts{Spec: s, Owns: h.owns},
		Signals:    container.NotifySignals(),
		Keep:       true,
	})
	if err != nil {
		tee.stop()
		return -1, err
	}
	out := outcome(rt, id, code, kills)
	derr := rt.Delete(id, true)
	tail := tee.stop()
	if derr != nil && !errors.Is(derr, container.ErrNotExist) {
		return code, derr
	}
	// Delete removed the container, and with it everything it owned.
	undo.Release()
	out.Tail = tail
	printHint(os.Stderr, Hint(s, o, out))
	return code, nil
}
