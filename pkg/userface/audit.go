package userface

import (
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/bulwark-sec/bulwark/pkg/audit"
	"github.com/bulwark-sec/bulwark/pkg/finding"
	"github.com/bulwark-sec/bulwark/pkg/hostcheck"
	"github.com/bulwark-sec/bulwark/pkg/image"
)

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

// Check judges the host a person runs containers on.
func Check(o hostcheck.Options) (*finding.Report, error) {
	res, err := hostcheck.Check(o)
	if err != nil {
		return nil, err
	}
	return finding.NewReport("check", o.Root, "host", res.Facts, res.Findings), nil
}
