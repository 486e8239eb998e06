// Package tools is the person face's heavy half: the flows whose
// dependencies (a registry client, TLS, HTTP, decompressors, YAML, libcni) would
// otherwise be linked into the bulwark binary that every container start
// maps and re-executes. It runs only in bulwark-tools (cmd/bulwark-tools),
// one request per process, asked by pkg/userface through
// internal/toolsproto; a wing whose own dependencies are that heavy adds
// its flow here, not to pkg/userface (docs/ARCHITECTURE.md, "Two
// binaries").
//
// Threat: what these flows read is hostile (a registry, an archive, a
// config or image to audit) and is met in the packages they call
// (pkg/image/ingest, pkg/image/unpack, pkg/audit). Keeping them in their
// own process also keeps their code out of the binary a container's init
// is executed from.
//
// Never import it from pkg/userface or cmd/bulwark: TestStartPathStaysLight
// fails when its dependencies reach the bulwark binary.
package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/bulwark-sec/bulwark/internal/toolsproto"
	"github.com/bulwark-sec/bulwark/pkg/audit"
	"github.com/bulwark-sec/bulwark/pkg/finding"
	"github.com/bulwark-sec/bulwark/pkg/image"
	"github.com/bulwark-sec/bulwark/pkg/image/fetch"
	"github.com/bulwark-sec/bulwark/pkg/network/cni"
)

// Main serves the request in args (bulwark-tools' arguments) and returns
// the exit status.
func Main(args []string) int {
	return toolsproto.Serve(args, os.Stdout, serve)
}

func serve(ctx context.Context, req toolsproto.Request, progress func(string, ...any)) (any, error) {
	o := fetch.Options{Progress: progress, Timeout: req.Timeout}
	if req.Bars && (req.Op == toolsproto.OpPull || req.Op == toolsproto.OpLoad) {
		b := newBars(os.Stderr)
		defer b.wait()
		o.Progress, o.Meter = nil, b.meter
	}
	switch req.Op {
	case toolsproto.OpPull:
		return fetch.Pull(ctx, req.DataRoot, req.Arg, o)
	case toolsproto.OpLoad:
		return fetch.Load(ctx, req.DataRoot, req.Arg, os.Stdin, o)
	case toolsproto.OpAudit:
		return Audit(req.Arg, os.Stdin, req.DataRoot)
	case toolsproto.OpCNIAdd, toolsproto.OpCNIDel:
		var c cni.Call
		if err := json.Unmarshal([]byte(req.Arg), &c); err != nil {
			return nil, fmt.Errorf("%s: %w", req.Op, err)
		}
		if req.Op == toolsproto.OpCNIDel {
			return nil, cni.Del(ctx, c)
		}
		return cni.Add(ctx, c)
	}
	return nil, fmt.Errorf("bulwark%s: unknown request %q (bulwark and bulwark%s from different builds?)", toolsproto.Suffix, req.Op, toolsproto.Suffix)
}

// Audit scores what a person names before it runs: a bundle, config.json,
// docker/podman inspect JSON, Kubernetes YAML or a rootfs directory ("-"
// reads stdin), and, when no such file exists, an image in the person's
// store under dataRoot. Every error is about the input: the caller reports
// it as bad input.
func Audit(target string, stdin io.Reader, dataRoot string) (*finding.Report, error) {
	subs, format, err := audit.Load(target, stdin)
	if err != nil && target != "-" && errors.Is(err, fs.ErrNotExist) {
		sub, ierr := imageSubject(dataRoot, target)
		if ierr != nil {
			if image.IsNotFound(ierr) {
				return nil, fmt.Errorf("%w, and bulwark's image store has no image %q", err, target)
			}
			return nil, fmt.Errorf("image %s: %w", target, ierr)
		}
		subs, format, err = []audit.Subject{sub}, audit.FormatImage, nil
	}
	if err != nil {
		return nil, err
	}
	found, err := audit.Audit(subs)
	if err != nil {
		return nil, err
	}
	return finding.NewReport("audit", target, string(format), nil, found), nil
}

// imageSubject audits an image of the store as the tree its layers make,
// run as the image's own User.
func imageSubject(dataRoot, ref string) (audit.Subject, error) {
	in, err := image.Inspect(dataRoot, ref)
	if err != nil {
		return audit.Subject{}, err
	}
	user := ""
	if in.Config != nil {
		user = in.Config.Config.User
	}
	dirs := make([]string, 0, len(in.Layers))
	for _, l := range in.Layers {
		dirs = append(dirs, l.Dir)
	}
	return audit.ImageSubject(ref, dirs, user), nil
}
