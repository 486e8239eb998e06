package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/userface"
)

// The person's commands for detached containers (bulwark run -d).

func logsCommand() *cli.Command {
	return &cli.Command{
		Name: "logs", Usage: "print a detached container's output: its stdout to stdout, its stderr to stderr", ArgsUsage: "NAME",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "go on until the container exits"}},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			id, err := needID(cmd)
			if err != nil {
				return err
			}
			return userface.Logs(runtimeFrom(cmd), id, cmd.Bool("follow"), os.Stdout, os.Stderr)
		},
	}
}

func stopCommand() *cli.Command {
	return &cli.Command{
		Name: "stop", Usage: "stop containers: their stop signal, then SIGKILL after the timeout", ArgsUsage: "NAME...",
		Flags: []cli.Flag{&cli.IntFlag{Name: "time", Aliases: []string{"t"}, Value: 10, Usage: "seconds to wait before SIGKILL"}},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			return eachName(cmd, func(id string) error {
				return userface.Stop(runtimeFrom(cmd), id, time.Duration(cmd.Int("time"))*time.Second)
			})
		},
	}
}

func rmCommand() *cli.Command {
	return &cli.Command{
		Name: "rm", Usage: "remove stopped containers and everything they own", ArgsUsage: "NAME...",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "kill a running container first"}},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			return eachName(cmd, func(id string) error {
				return userface.Remove(runtimeFrom(cmd), id, cmd.Bool("force"))
			})
		},
	}
}

// eachName runs do for every NAME argument, printing each done, and
// reports every failure.
func eachName(cmd *cli.Command, do func(string) error) error {
	if cmd.Args().Len() == 0 {
		return fmt.Errorf("%s: missing container name", cmd.Name)
	}
	var errs []error
	for _, id := range cmd.Args().Slice() {
		if err := do(id); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Println(id)
	}
	return errors.Join(errs...)
}

func lsCommand() *cli.Command {
	return &cli.Command{
		Name: "ls", Usage: "list containers as a person reads them (runc's table: list)",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "JSON"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "only names"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error { return personList(cmd) },
	}
}

// personList is bulwark ls, and bulwark ps without a container.
func personList(cmd *cli.Command) error {
	ls, err := userface.List(runtimeFrom(cmd))
	if err != nil {
		return err
	}
	switch {
	case cmd.Bool("json"):
		return printJSON(ls)
	case cmd.Bool("quiet"):
		for _, l := range ls {
			fmt.Println(l.Name)
		}
		return nil
	}
	now := time.Now()
	w := tabwriter.NewWriter(os.Stdout, 8, 1, 3, ' ', 0)
	fmt.Fprintln(w, "NAME\tIMAGE\tCOMMAND\tSTATUS\tCREATED")
	for _, l := range ls {
		c := strings.Join(l.Command, " ")
		if len(c) > 30 {
			c = c[:29] + "…"
		}
		fmt.Fprintf(w, "%s\t%s\t%q\t%s\t%s ago\n", l.Name, l.Image, c, l.StatusLine(now), now.Sub(l.Created).Truncate(time.Second))
	}
	return w.Flush()
}
