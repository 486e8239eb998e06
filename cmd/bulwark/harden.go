package main

import (
	"fmt"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/floorns"
	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/policy"
	"github.com/bulwark-sec/bulwark/pkg/userns"
)

// hardenFrom returns the hook Create calls on each loaded config: the
// hardening floor when --harden or the policy file switches it on, and
// nothing otherwise, so that OCI mode honours the config exactly. Every
// change is logged at info level, where an engine reading --log finds it.
func hardenFrom(cmd *cli.Command) func(s *specs.Spec, bundle, stateDir string) ([]container.Owned, error) {
	on := cmd.Bool("harden")
	path := cmd.String("policy")
	explicit := cmd.IsSet("policy")
	// Rootless, the pool is root's and not ours to draw from or read: the
	// ids a rootless config maps are checked by newuidmap against what
	// /etc/subuid grants (pkg/rootless), which the pool never hands out.
	unprivileged := isRootless(cmd)
	return func(s *specs.Spec, bundle, stateDir string) ([]container.Owned, error) {
		pf, err := policy.LoadPolicyFile(path)
		if err != nil {
			return nil, err
		}
		if pf == nil && explicit {
			return nil, fmt.Errorf("--policy %s: no such file", path)
		}
		floor := on || (pf != nil && pf.Harden)
		var cfg policy.HardenConfig
		if floor {
			if pf != nil {
				cfg = pf.HardenConfig
			}
			ds, err := policy.Harden(s, cfg)
			for _, d := range ds {
				logAt("info", d.String())
			}
			if err != nil {
				return nil, err
			}
		}
		if unprivileged {
			return nil, nil
		}
		if err := checkPoolOverlap(s, floor); err != nil || !floor {
			return nil, err
		}
		owns, ds, err := floorns.Apply(s, cfg, oci.RootfsPath(bundle, s), stateDir)
		for _, d := range ds {
			logAt("info", d.String())
		}
		return owns, err
	}
}

// hardenExecFrom returns the hook Exec calls on an exec'd process: under
// the floor (switched on as for create), the process gets no more than the
// container it joins; each change is logged like create's.
func hardenExecFrom(cmd *cli.Command) func(*specs.Spec, *specs.Process) error {
	on := cmd.Bool("harden")
	path := cmd.String("policy")
	return func(container *specs.Spec, p *specs.Process) error {
		if !on {
			pf, err := policy.LoadPolicyFile(path)
			if err != nil {
				return err
			}
			if pf == nil || !pf.Harden {
				return nil
			}
		}
		for _, d := range policy.HardenExec(container, p) {
			logAt("info", d.String())
		}
		return nil
	}
}

// checkPoolOverlap compares the maps a config brings with the ranges the
// user namespace pool gave live containers: sharing host ids with one
// means owning its files. The floor refuses that; without it the config
// is run as written, with a warning.
func checkPoolOverlap(s *specs.Spec, floor bool) error {
	if s.Linux == nil {
		return nil
	}
	pool := userns.Default()
	for _, f := range []struct {
		field string
		maps  []specs.LinuxIDMapping
	}{{"linux.uidMappings", s.Linux.UIDMappings}, {"linux.gidMappings", s.Linux.GIDMappings}} {
		for i, m := range f.maps {
			owner, rg, err := pool.Overlap(uint64(m.HostID), uint64(m.Size))
			if err != nil {
				return err
			}
			if owner == "" {
				continue
			}
			fe := &oci.FieldError{File: oci.ConfigFile, Field: fmt.Sprintf("%s[%d]", f.field, i),
				Msg: fmt.Sprintf("host ids %d-%d overlap the range %d-%d the user namespace pool gave the live container %s, whose files they would own",
					m.HostID, uint64(m.HostID)+uint64(m.Size)-1, rg.HostID, uint64(rg.HostID)+uint64(rg.Size)-1, owner),
				Err: oci.ErrInvalidConfig}
			if floor {
				return fe
			}
			logWarn("%v", fe)
		}
	}
	return nil
}
