package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/finding"
)

// Exit codes of audit and check, as CI gates read them: 0 clean (or no
// --fail-on), 1 a finding at or above --fail-on, 2 the input or the
// command line could not be read.
const (
	exitFindings = 1
	exitBadInput = 2
)

func reportFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "json", Usage: "print the report as JSON (schema: docs/audit.md)"},
		&cli.StringFlag{Name: "fail-on", Usage: "exit 1 when a finding is at or above this severity (critical, high, medium, low, info); without it the exit status ignores findings"},
	}
}

// failOn reads --fail-on; ok is false when it is not set.
func failOn(cmd *cli.Command) (sev finding.Severity, ok bool, err error) {
	if !cmd.IsSet("fail-on") {
		return 0, false, nil
	}
	sev, err = finding.ParseSeverity(cmd.String("fail-on"))
	if err != nil {
		return 0, false, fmt.Errorf("--fail-on: %w", err)
	}
	return sev, true, nil
}

// badInput reports err and makes the command exit 2.
func badInput(err error) error {
	logError(err)
	return exitCode(exitBadInput)
}

// emitReport prints r and returns the exit status --fail-on asks for.
func emitReport(cmd *cli.Command, r *finding.Report, gate finding.Severity, gated bool) error {
	var err error
	if cmd.Bool("json") {
		err = r.WriteJSON(os.Stdout)
	} else {
		err = r.WriteTable(os.Stdout)
	}
	if err != nil {
		return err
	}
	if gated {
		if n := finding.AtOrAbove(r.Findings, gate); n > 0 {
			noun := "findings"
			if n == 1 {
				noun = "finding"
			}
			fmt.Fprintf(os.Stderr, "bulwark %s: %d %s at or above %s\n", r.Command, n, noun, gate)
			return exitCode(exitFindings)
		}
	}
	return nil
}
