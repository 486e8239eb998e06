package main

import (
	"context"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/container"
)

func stateCommand() *cli.Command {
	return &cli.Command{
		Name: "state", Usage: "print a container's OCI state", ArgsUsage: "ID",
		Action: func(ctx context.Context, cmd *cli.Command) error {
			id, err := needID(cmd)
			if err != nil {
				return err
			}
			r := runtimeFrom(cmd)
			st, err := r.Load(id)
			if err != nil {
				return err
			}
			return printJSON(stateJSON(r, st))
		},
	}
}

// runcState is runc's state output: the OCI state plus runc's extra fields
// (rootfs, created, owner), which engines and scripts read.
type runcState struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func stateJSON(r *container.Runtime, st *container.State) runcState {
	o := r.OCIState(st)
	owner := st.Owner
	if owner == "0" {
		owner = "root"
	}
	return runcState{OCIVersion: o.Version, ID: o.ID, Pid: o.Pid, Status: string(o.Status), Bundle: o.Bundle,
		Rootfs: st.Rootfs, Created: st.Created, Owner: owner, Annotations: o.Annotations}
}
