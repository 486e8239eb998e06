package userface

import (
	"context"
	"io"

	"github.com/bulwark-sec/bulwark/internal/toolsproto"
	"github.com/bulwark-sec/bulwark/pkg/finding"
	"github.com/bulwark-sec/bulwark/pkg/hostcheck"
)

// Audit scores what a person names before it runs: a bundle, config.json,
// docker/podman inspect JSON, Kubernetes YAML or a rootfs directory ("-"
// reads stdin), and, when no such file exists, an image in the person's
// store under dataRoot. Every error is about the input: the caller reports
// it as bad input. It runs in bulwark-tools (pkg/userface/tools): the
// Kubernetes YAML parser stays out of the binary containers start from.
func Audit(target string, stdin io.Reader, dataRoot string) (*finding.Report, error) {
	var r *finding.Report
	req := toolsproto.Request{Op: toolsproto.OpAudit, DataRoot: dataRoot, Arg: target}
	if err := toolsproto.Call(context.Background(), req, stdin, nil, &r); err != nil {
		return nil, err
	}
	return r, nil
}

// Check judges the host a person runs containers on.
func Check(o hostcheck.Options) (*finding.Report, error) {
	res, err := hostcheck.Check(o)
	if err != nil {
		return nil, err
	}
	if o.Root == "" || o.Root == "/" {
		vmFacts(res.Facts)
	}
	return finding.NewReport("check", o.Root, "host", res.Facts, res.Findings), nil
}
