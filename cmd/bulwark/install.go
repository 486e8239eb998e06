package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/install"
)

// installCommand registers bulwark with docker, podman, containerd or CRI-O
// in the engine's own config file (see pkg/install).
func installCommand() *cli.Command {
	return &cli.Command{
		Name: "install", Usage: "register bulwark as a runtime of docker, podman, containerd or CRI-O", ArgsUsage: "docker|podman|containerd|crio",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Usage: "engine config file (default: /etc/docker/daemon.json, /etc/containers/containers.conf, /etc/containerd/config.toml, /etc/crio/crio.conf.d/10-bulwark.conf)"},
			&cli.StringFlag{Name: "name", Value: "bulwark", Usage: "runtime name the engine will know"},
			&cli.StringFlag{Name: "binary", Usage: "bulwark binary to register (default: this one)"},
			&cli.BoolFlag{Name: "harden", Usage: "register `bulwark --harden` (a wrapper script for podman, containerd and crio; containerd and crio get it as a second handler, NAME-hardened)"},
			&cli.StringFlag{Name: "wrapper", Usage: "where --harden writes its wrapper script (default: bulwark-harden next to the binary)"},
			&cli.BoolFlag{Name: "vm", Usage: "also register NAME-vm, bulwark with VM isolation (`bulwark --isolation vm`; a wrapper script for podman, containerd and crio; docs/vm.md)"},
			&cli.StringFlag{Name: "vm-wrapper", Usage: "where --vm writes its wrapper script (default: bulwark-vm next to the binary)"},
			&cli.StringFlag{Name: "cgroup-driver", Usage: "containerd's SystemdCgroup: systemd or cgroupfs, as the kubelet's cgroupDriver (default: systemd where systemd is the init)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print the change as a diff, write nothing"},
			&cli.BoolFlag{Name: "undo", Usage: "restore the config from the backup install made"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() != 1 {
				return fmt.Errorf("install: want one engine: docker, podman, containerd or crio")
			}
			o := install.Options{Engine: install.Engine(cmd.Args().First()), Config: cmd.String("config"),
				Name: cmd.String("name"), Binary: cmd.String("binary"), Harden: cmd.Bool("harden"), Wrapper: cmd.String("wrapper"),
				VM: cmd.Bool("vm"), VMWrapper: cmd.String("vm-wrapper"),
				CgroupDriver: cmd.String("cgroup-driver")}
			if cmd.Bool("undo") {
				msg, err := install.Undo(o)
				if err != nil {
					return err
				}
				fmt.Println(msg)
				return nil
			}
			if o.Binary == "" {
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("install: cannot find this binary (use --binary): %w", err)
				}
				if o.Binary, err = filepath.EvalSymlinks(exe); err != nil {
					return fmt.Errorf("install: %w", err)
				}
			}
			c, err := install.Plan(o)
			if err != nil {
				return err
			}
			if cmd.Bool("dry-run") {
				d, err := install.Diff(c)
				if err != nil {
					return err
				}
				if d == "" {
					fmt.Printf("%s already registers bulwark; nothing to change\n", c.Path)
					return nil
				}
				fmt.Print(d)
				return nil
			}
			if err := install.Apply(c); err != nil {
				return err
			}
			fmt.Printf("registered %s as runtime %q in %s; restart the engine to use it\n", o.Binary, o.Name, c.Path)
			if o.Harden && (o.Engine == install.Containerd || o.Engine == install.CRIO) {
				fmt.Printf("registered %s as runtime %q in %s\n", c.Wrapper, o.Name+install.HardenedSuffix, c.Path)
			}
			if o.VM {
				what := o.Binary + " --isolation vm"
				if c.VMWrapper != "" {
					what = c.VMWrapper
				}
				fmt.Printf("registered %s as runtime %q in %s\n", what, o.Name+install.VMSuffix, c.Path)
			}
			return nil
		},
	}
}
