package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/bulwark-sec/bulwark/pkg/oci"
)

var helpArgs = []string{"bulwark", "--help"}

// TestWholeTree sets up every command, as `bulwark --help` does: a start
// sets up only its own (commandIn), so a duplicate flag in another command
// would otherwise go unnoticed.
func TestWholeTree(t *testing.T) {
	app := newApp(helpArgs)
	if len(app.Commands) != len(topCommands) {
		t.Fatalf("--help built %d of %d commands", len(app.Commands), len(topCommands))
	}
	var out bytes.Buffer
	app.Writer = &out
	if err := app.Run(context.Background(), helpArgs); err != nil {
		t.Fatal(err)
	}
	for _, c := range topCommands {
		if c.build().Hidden {
			continue // not for people: learn-recorder
		}
		if !bytes.Contains(out.Bytes(), []byte(c.names[0])) {
			t.Errorf("root help does not list %q", c.names[0])
		}
	}
}

func TestTopCommandNames(t *testing.T) {
	for _, c := range topCommands {
		if got := c.build().Names(); !slices.Equal(got, c.names) {
			t.Errorf("topCommands lists %q as %q", got, c.names)
		}
	}
}

func TestCommandIn(t *testing.T) {
	for _, tc := range []struct {
		args []string
		keep string // "" = the whole tree
	}{
		{[]string{"bulwark", "create", "-b", "x", "id"}, "create"},
		{[]string{"bulwark", "--root", "/r", "state", "id"}, "state"},
		{[]string{"bulwark", "--root=/r", "-log", "f", "--log-format", "json", "start", "id"}, "start"},
		{[]string{"bulwark", "--debug", "--systemd-cgroup", "--root", "/r", "delete", "--force", "id"}, "delete"},
		{[]string{"bulwark", "--root", "run", "run", "id"}, "run"}, // the first "run" is --root's value
		{[]string{"bulwark", "list"}, "list"},
		{[]string{"bulwark", "ls"}, "ls"}, // the person's table, beside runc's list
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
		app := newApp(tc.args)
		switch {
		case tc.keep == "" && len(app.Commands) != len(topCommands):
			t.Errorf("%q: built %d of %d commands, want all", tc.args, len(app.Commands), len(topCommands))
		case tc.keep != "" && (len(app.Commands) != 1 || app.Commands[0].Name != tc.keep):
			t.Errorf("%q: built %d commands, want only %q", tc.args, len(app.Commands), tc.keep)
		}
	}
}

// TestCommandAloneHelp: a command set up alone prints the same help as in
// the whole tree.
func TestCommandAloneHelp(t *testing.T) {
	help := func(alone bool, name string) string {
		args := []string{"bulwark", "--root", "/nonexistent", name, "--help"}
		app := newApp(helpArgs)
		if alone {
			app = newApp(args)
			if len(app.Commands) != 1 {
				t.Fatalf("%s: built %d commands", name, len(app.Commands))
			}
		}
		var out bytes.Buffer
		app.Writer = &out
		if err := app.Run(context.Background(), args); err != nil {
			t.Fatalf("%s --help: %v", name, err)
		}
		return out.String()
	}
	for _, c := range topCommands {
		name := c.names[0]
		whole, alone := help(false, name), help(true, name)
		if whole != alone || whole == "" {
			t.Errorf("%s --help differs when set up alone:\n%s\n---\n%s", name, whole, alone)
		}
	}
}

// The user face is told apart from runc's run by the literal "--" after
// the run verb, whatever root flags come first (a --policy value once hid
// it: the flags were listed twice and one list lacked it).
func TestIsUserRun(t *testing.T) {
	for _, tc := range []struct {
		args string
		want bool
	}{
		{"bulwark run /rootfs -- sh", true},
		{"bulwark --policy /etc/p.json run /rootfs -- sh", true},
		{"bulwark --root /x --log /l --debug run --profile strict /rootfs -- sh -c true", true},
		{"bulwark --root=/x run /rootfs -- sh", true},
		{"bulwark run -b /bundle id", false},
		{"bulwark --root /x run id", false},
		{"bulwark --policy run run id", false},
		{"bulwark exec id -- sh", false},
		{"bulwark --bogus run /rootfs -- sh", false},
		// Without "--": only what cannot be a container ID, or a flag
		// runc's run lacks, is the person's.
		{"bulwark run alpine:3", true},
		{"bulwark run example.com/app", true},
		{"bulwark run app@sha256:0123", true},
		{"bulwark run ./rootfs", true},
		{"bulwark run -d alpine:3", true},
		{"bulwark run --name web alpine", true},
		{"bulwark run -e A=1 alpine", true},
		{"bulwark run alpine", false},
		{"bulwark run -d alpine", false},
		{"bulwark run --keep alpine", false},
		{"bulwark run --rm alpine", true},
		{"bulwark run --rm=true -d alpine", true},
		{"bulwark run -b /b/c id", false},
		{"bulwark run --bundle=/b/c id", false},
		{"bulwark run --pid-file /p/f --console-socket /s -d id", false},
		{"bulwark run --help", false},
		{"bulwark run --bogus x:1", false},
		{"bulwark", false},
	} {
		args := strings.Fields(tc.args)
		if got := isUserRun(newApp(args), args); got != tc.want {
			t.Errorf("isUserRun(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

// runc's `run [-b DIR] ID` must never be taken for the person's run: with
// no "--" and no person-only flag, a first argument that is a valid
// container ID stays runc's, whatever else the arguments hold.
func FuzzIsUserRun(f *testing.F) {
	f.Add("alpine", "-b", "/x")
	f.Add("alpine:3", "", "")
	f.Add("-d", "id", "")
	f.Add("--name=x", "alpine", "")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		args := []string{"bulwark", "run", a, b, c}
		got := isUserRun(newApp(args), args)
		if !strings.HasPrefix(a, "-") && oci.ValidateID(a) == nil && b != "--" && c != "--" && got {
			t.Fatalf("isUserRun(%q) = true: runc's run of the container %q taken for the person's", args, a)
		}
		if a == "--" && !got {
			t.Fatalf("isUserRun(%q) = false with a literal --", args)
		}
	})
}
