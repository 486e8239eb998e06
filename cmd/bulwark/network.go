package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"

	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/network"
)

func networkStore(cmd *cli.Command) *network.Store {
	s := network.Default()
	s.Dir, s.CNIDir = cmd.String("network-dir"), cmd.String("cni-dir")
	return s
}

func networkCommand() *cli.Command {
	return &cli.Command{
		Name:  "network",
		Usage: "manage the named networks of `bulwark run --net NAME` (docs/networks.md)",
		Commands: []*cli.Command{{
			Name: "ls", Aliases: []string{"list"}, Usage: "list the networks",
			Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
			Action: func(ctx context.Context, cmd *cli.Command) error {
				s := networkStore(cmd)
				ns, err := s.List()
				if err != nil {
					return err
				}
				infos := make([]*network.Info, 0, len(ns))
				for _, n := range ns {
					in, err := s.Inspect(n.Name)
					if err != nil {
						return err
					}
					infos = append(infos, in)
				}
				if cmd.Bool("json") {
					return printJSON(infos)
				}
				w := tabwriter.NewWriter(os.Stdout, 8, 1, 3, ' ', 0)
				fmt.Fprintln(w, "NAME\tDRIVER\tSUBNET\tINTERFACE\tCONTAINERS")
				for _, in := range infos {
					ifc := in.Bridge
					if ifc == "" {
						ifc = in.Parent
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", in.Name, in.Driver, in.Subnet, ifc, strconv.Itoa(len(in.Members)))
				}
				return w.Flush()
			},
		}, {
			Name: "create", Usage: "create a named network", ArgsUsage: "NAME",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "driver", Aliases: []string{"d"}, Value: network.DriverBridge, Usage: "bridge, macvlan or ipvlan"},
				&cli.StringFlag{Name: "subnet", Usage: "IPv4 CIDR (default: the next free 10.89.N.0/24; for macvlan/ipvlan the parent's)"},
				&cli.StringFlag{Name: "gateway", Usage: "gateway address in the subnet"},
				&cli.StringFlag{Name: "parent", Usage: "parent interface (macvlan, ipvlan)"},
			},
			Action: func(ctx context.Context, cmd *cli.Command) error {
				if cmd.Args().Len() != 1 {
					return errors.New("network create: want one NAME")
				}
				n, err := networkStore(cmd).Create(network.Network{
					Name: cmd.Args().First(), Driver: cmd.String("driver"), Subnet: cmd.String("subnet"),
					Gateway: cmd.String("gateway"), Parent: cmd.String("parent"),
				})
				if err != nil {
					return err
				}
				fmt.Println(n.Name)
				return nil
			},
		}, {
			Name: "rm", Aliases: []string{"remove"}, Usage: "remove named networks no container is on", ArgsUsage: "NAME...",
			Action: func(ctx context.Context, cmd *cli.Command) error {
				if cmd.Args().Len() == 0 {
					return errors.New("network rm: want at least one NAME")
				}
				var errs []error
				for _, name := range cmd.Args().Slice() {
					if err := networkStore(cmd).Remove(name); err != nil {
						errs = append(errs, err)
						continue
					}
					fmt.Println(name)
				}
				return errors.Join(errs...)
			},
		}, {
			Name: "inspect", Usage: "print networks, their CNI config and containers as JSON", ArgsUsage: "NAME...",
			Action: func(ctx context.Context, cmd *cli.Command) error {
				if cmd.Args().Len() == 0 {
					return errors.New("network inspect: want at least one NAME")
				}
				var out []*network.Info
				for _, name := range cmd.Args().Slice() {
					in, err := networkStore(cmd).Inspect(name)
					if err != nil {
						return err
					}
					out = append(out, in)
				}
				return printJSON(out)
			},
		}},
	}
}
