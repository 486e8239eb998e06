package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"
)

func listCommand() *cli.Command {
	return &cli.Command{
		Name: "list", Usage: "list containers (runc's table; a person's: ls)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table or json"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "only ids"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			r := runtimeFrom(cmd)
			// A --root given but missing is an error, as in runc (a
			// typo must not read as "no containers"); the default one
			// missing only means nothing was created yet.
			if cmd.Root().IsSet("root") {
				if _, err := os.Stat(r.Root); err != nil {
					return fmt.Errorf("list: --root: %w", err)
				}
			}
			sts, err := r.List()
			if err != nil {
				return err
			}
			out := make([]runcState, 0, len(sts))
			for _, st := range sts {
				out = append(out, stateJSON(r, st))
			}
			if cmd.Bool("quiet") {
				for _, s := range out {
					fmt.Println(s.ID)
				}
				return nil
			}
			switch cmd.String("format") {
			case "json":
				return printCompactJSON(out)
			case "table":
				w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
				fmt.Fprintln(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER")
				for _, s := range out {
					fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), s.Owner)
				}
				return w.Flush()
			default:
				return fmt.Errorf("list: --format %q is neither table nor json", cmd.String("format"))
			}
		},
	}
}
