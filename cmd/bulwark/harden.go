package main

import (
	"fmt"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/policy"
)

// hardenFrom returns the hook Create calls on each loaded config: the
// hardening floor when --harden or the policy file switches it on, and
// nothing otherwise, so that OCI mode honours the config exactly. Every
// change is logged at info level, where an engine reading --log finds it.
func hardenFrom(cmd *cli.Command) func(*specs.Spec) error {
	on := cmd.Bool("harden")
	path := cmd.String("policy")
	explicit := cmd.IsSet("policy")
	return func(s *specs.Spec) error {
		pf, err := policy.LoadPolicyFile(path)
		if err != nil {
			return err
		}
		if pf == nil && explicit {
			return fmt.Errorf("--policy %s: no such file", path)
		}
		if !on && (pf == nil || !pf.Harden) {
			return nil
		}
		var cfg policy.HardenConfig
		if pf != nil {
			cfg = pf.HardenConfig
		}
		ds, err := policy.Harden(s, cfg)
		for _, d := range ds {
			logAt("info", d.String())
		}
		return err
	}
}
