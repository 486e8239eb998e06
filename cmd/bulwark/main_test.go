package main

import (
	"bytes"
	"context"
	"testing"
)

// TestWholeTree sets up every command, as `bulwark --help` does: a start
// sets up only its own (keepOnlyCommand), so a duplicate flag in another
// command would otherwise go unnoticed.
func TestWholeTree(t *testing.T) {
	app := newApp()
	var out bytes.Buffer
	app.Writer = &out
	if err := app.Run(context.Background(), []string{"bulwark", "--help"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range newApp().Commands {
		if !bytes.Contains(out.Bytes(), []byte(c.Name)) {
			t.Errorf("root help does not list %q", c.Name)
		}
	}
}

func TestKeepOnlyCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		keep string // "" = the whole tree
	}{
		{[]string{"bulwark", "create", "-b", "x", "id"}, "create"},
		{[]string{"bulwark", "--root", "/r", "state", "id"}, "state"},
		{[]string{"bulwark", "--root=/r", "-log", "f", "--log-format", "json", "start", "id"}, "start"},
		{[]string{"bulwark", "--debug", "--systemd-cgroup", "--root", "/r", "delete", "--force", "id"}, "delete"},
		{[]string{"bulwark", "--root", "run", "run", "id"}, "run"}, // the first "run" is --root's value
		{[]string{"bulwark", "ls"}, "list"},
		{[]string{"bulwark", "--root"}, ""},
		{[]string{"bulwark", "--debug=true", "state", "id"}, ""},
		{[]string{"bulwark", "--help", "state"}, ""},
		{[]string{"bulwark", "-h", "state"}, ""},
		{[]string{"bulwark", "--version", "state"}, ""},
		{[]string{"bulwark", "--bogus", "state"}, ""},
		{[]string{"bulwark", "---root", "/r", "state"}, ""},
		{[]string{"bulwark", "--", "state"}, ""},
		{[]string{"bulwark", "help", "state"}, ""},
		{[]string{"bulwark", " state", "id"}, ""},
		{[]string{"bulwark", "sate", "id"}, ""},
		{[]string{"bulwark"}, ""},
	} {
		app := newApp()
		n := len(app.Commands)
		keepOnlyCommand(app, tc.args)
		switch {
		case tc.keep == "" && len(app.Commands) != n:
			t.Errorf("%q: kept %d of %d commands, want all", tc.args, len(app.Commands), n)
		case tc.keep != "" && (len(app.Commands) != 1 || app.Commands[0].Name != tc.keep):
			t.Errorf("%q: kept %d commands, want only %q", tc.args, len(app.Commands), tc.keep)
		}
	}
}

// TestKeptCommandHelp: a command set up alone prints the same help as in the
// whole tree.
func TestKeptCommandHelp(t *testing.T) {
	help := func(prune bool, name string) string {
		app := newApp()
		var out bytes.Buffer
		app.Writer = &out
		args := []string{"bulwark", "--root", "/nonexistent", name, "--help"}
		if prune {
			keepOnlyCommand(app, args)
			if len(app.Commands) != 1 {
				t.Fatalf("%s: kept %d commands", name, len(app.Commands))
			}
		}
		if err := app.Run(context.Background(), args); err != nil {
			t.Fatalf("%s --help: %v", name, err)
		}
		return out.String()
	}
	var names []string
	for _, c := range newApp().Commands {
		names = append(names, c.Name)
	}
	for _, name := range names {
		whole, alone := help(false, name), help(true, name)
		if whole != alone || whole == "" {
			t.Errorf("%s --help differs when set up alone:\n%s\n---\n%s", name, whole, alone)
		}
	}
}
