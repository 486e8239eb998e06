package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"
)

func imagesCommand() *cli.Command {
	return &cli.Command{
		Name:  "images",
		Usage: "list the images in bulwark's store",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "only IDs"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			ims, err := imagesOf(cmd).List()
			if err != nil {
				return err
			}
			switch {
			case cmd.Bool("json"):
				return printJSON(ims)
			case cmd.Bool("quiet"):
				for _, im := range ims {
					fmt.Println(shortID(im.ID))
				}
				return nil
			}
			w := tabwriter.NewWriter(os.Stdout, 8, 1, 3, ' ', 0)
			fmt.Fprintln(w, "NAME\tIMAGE ID\tPLATFORM\tSIZE\tCREATED")
			for _, im := range ims {
				names := im.Names
				if len(names) == 0 {
					names = []string{"<none>"}
				}
				for _, n := range names {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", n, shortID(im.ID), im.Platform, humanSize(im.Size), im.Created.Local().Format(time.DateTime))
				}
			}
			return w.Flush()
		},
	}
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func humanSize(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	f, suffix := float64(n), "kMGTPE"
	i := -1
	for f >= unit && i < len(suffix)-1 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f%cB", f, suffix[i])
}
