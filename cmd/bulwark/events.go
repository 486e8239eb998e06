package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v3"
)

// event is one line of runc's `events` output.
type event struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data any    `json:"data,omitempty"`
}

// eventsCommand is runc's events: --stats prints one stats event and exits;
// otherwise a stats event every --interval, plus an "oom" event whenever the
// kernel's OOM killer hit the container, until the container stops.
func eventsCommand() *cli.Command {
	return &cli.Command{
		Name: "events", Usage: "print a container's resource usage (and OOM kills) as JSON lines", ArgsUsage: "ID",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "interval", Value: 5 * time.Second, Usage: "time between stats events"},
			&cli.BoolFlag{Name: "stats", Usage: "print the stats once and exit"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			id, err := needID(cmd)
			if err != nil {
				return err
			}
			interval := cmd.Duration("interval")
			if interval <= 0 {
				return fmt.Errorf("events: --interval %v: must be greater than 0", interval)
			}
			r := runtimeFrom(cmd)
			enc := json.NewEncoder(os.Stdout)
			s, err := r.Stats(id)
			if err != nil {
				return err
			}
			if cmd.Bool("stats") {
				return enc.Encode(event{Type: "stats", ID: id, Data: s})
			}
			oomKills, err := r.OOMCounter(id)
			if err != nil {
				return err
			}
			lastOOM, oomErr := oomKills()
			if oomErr != nil {
				logWarn("events: OOM events disabled: %v", oomErr)
			}
			// OOM kills are checked more often than stats are printed so an
			// "oom" event follows the kill closely; both stop with the
			// container, when its cgroup counters are gone.
			poll := min(interval, 500*time.Millisecond)
			tick := time.NewTicker(poll)
			defer tick.Stop()
			next := time.Now()
			for {
				if oomErr == nil {
					if n, err := oomKills(); err == nil && n > lastOOM {
						lastOOM = n
						if err := enc.Encode(event{Type: "oom", ID: id}); err != nil {
							return err
						}
					}
				}
				if !r.Alive(id) {
					return nil
				}
				if !time.Now().Before(next) {
					s, err := r.Stats(id)
					switch {
					case err == nil:
						if err := enc.Encode(event{Type: "stats", ID: id, Data: s}); err != nil {
							return err
						}
					case !r.Alive(id):
						return nil
					default:
						logError(errors.Join(errors.New("events"), err))
					}
					next = next.Add(interval)
				}
				select {
				case <-ctx.Done():
					return nil
				case <-tick.C:
				}
			}
		},
	}
}
