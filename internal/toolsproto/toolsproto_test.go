package toolsproto

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The test binary plays bulwark-tools too: Call executes <test binary>-tools,
// a hard link to the test binary, and TestMain serves it with echo.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "bulwark"+Suffix {
		os.Exit(Serve(os.Args[1:], os.Stdout, echo))
	}
	os.Exit(m.Run())
}

type echoed struct {
	Op, DataRoot, Arg, Stdin string
}

// echo returns what it was asked, reports two progress lines, and fails
// with its result when Arg says so.
func echo(ctx context.Context, req Request, progress func(string, ...any)) (any, error) {
	if progress != nil {
		progress("step %d", 1)
		progress("step %d", 2)
	}
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		return nil, err
	}
	r := echoed{req.Op, req.DataRoot, req.Arg, string(in)}
	if req.Arg == "fail" {
		return r, errors.New("layer 2: unexpected EOF")
	}
	return r, nil
}

func companion(t *testing.T) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(self + Suffix)
	if err := os.Link(self, self+Suffix); err != nil {
		t.Skipf("cannot link the test binary as its companion: %v", err)
	}
	t.Cleanup(func() { os.Remove(self + Suffix) })
}

func TestCall(t *testing.T) {
	companion(t)
	tests := []struct {
		name     string
		arg      string
		progress bool
		stdin    string
		wantErr  string
	}{
		{name: "result", arg: "busybox"},
		{name: "progress and stdin", arg: "-", progress: true, stdin: "archive bytes"},
		{name: "error with a partial result", arg: "fail", wantErr: "layer 2: unexpected EOF"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var lines []string
			var progress func(string)
			if tc.progress {
				progress = func(l string) { lines = append(lines, l) }
			}
			var got echoed
			err := Call(context.Background(), Request{Op: OpLoad, DataRoot: "/data", Arg: tc.arg}, strings.NewReader(tc.stdin), progress, &got)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if want := (echoed{OpLoad, "/data", tc.arg, tc.stdin}); got != want {
				t.Errorf("result %+v, want %+v", got, want)
			}
			if want := "step 1,step 2"; tc.progress && strings.Join(lines, ",") != want {
				t.Errorf("progress %q, want %q", lines, want)
			}
		})
	}
}

func TestCallNamesAMissingOrUnsafeCompanion(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(self + Suffix)
	err = Call(context.Background(), Request{Op: OpPull}, nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), self+Suffix) || !strings.Contains(err.Error(), "scripts/build.sh") {
		t.Errorf("missing companion: %v", err)
	}
	if err := os.WriteFile(self+Suffix, []byte("#!/bin/sh\n"), 0o777); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(self + Suffix)
	if err := os.Chmod(self+Suffix, 0o777); err != nil {
		t.Fatal(err)
	}
	err = Call(context.Background(), Request{Op: OpPull}, nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Errorf("world-writable companion: %v", err)
	}
}

func TestServeRefusesAPerson(t *testing.T) {
	for _, args := range [][]string{nil, {"pull", "busybox"}, {"{}"}, {"not json"}} {
		t.Run(fmt.Sprint(args), func(t *testing.T) {
			if code := Serve(args, io.Discard, echo); code != 2 {
				t.Errorf("Serve(%q) = %d, want 2", args, code)
			}
		})
	}
}
