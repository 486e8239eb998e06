package main

import (
	"bytes"
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/userface"
)

// The flags reach userface.Options as given; a boolean or limit left out
// stays nil so that the profile decides.
func TestUserRunOptionsFromFlags(t *testing.T) {
	yes, no, n := true, false, int64(0)
	tests := []struct {
		name string
		args []string
		want userface.Options
	}{
		{name: "none", want: userface.Options{Profile: "default", Net: "none"}},
		{name: "repeated and aliased", args: []string{"-e", "A=1,2", "--env", "B=2", "-v", "/a:/b:ro", "--tmpfs", "/run:size=1m", "-u", "1:2", "-w", "/w", "-m", "1.5g"},
			want: userface.Options{Profile: "default", Net: "none", Env: []string{"A=1,2", "B=2"}, Volumes: []string{"/a:/b:ro"},
				Tmpfs: []string{"/run:size=1m"}, User: "1:2", Workdir: "/w", Memory: "1.5g"}},
		{name: "explicit false and zero are given", args: []string{"--read-only=false", "--writable=false", "--pids-limit", "0"},
			want: userface.Options{Profile: "default", Net: "none", ReadOnly: &no, Writable: &no, PidsLimit: &n}},
		{name: "the rest", args: []string{"--profile", "dev", "--name", "c1", "--read-only", "--cap-add", "KILL", "--cap-drop", "ALL",
			"--device", "/dev/null", "--net", "host", "--seccomp", "f.json", "-t", "--hostname", "h", "--userns-range", "200000:65536"},
			want: userface.Options{Profile: "dev", Name: "c1", ReadOnly: &yes, CapAdd: []string{"KILL"}, CapDrop: []string{"ALL"},
				Devices: []string{"/dev/null"}, Net: "host", Seccomp: "f.json", TTY: true, Hostname: "h", UsernsRange: "200000:65536"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got *userface.Options
			c := &cli.Command{Name: "run", Flags: userRunFlags(), DisableSliceFlagSeparator: true,
				Action: func(ctx context.Context, cmd *cli.Command) error {
					got = userRunOptions(cmd, "", nil)
					return nil
				}}
			if err := c.Run(context.Background(), append([]string{"run"}, tc.args...)); err != nil {
				t.Fatal(err)
			}
			// urfave gives empty slices for flags not given.
			v := reflect.ValueOf(got).Elem()
			for i := 0; i < v.NumField(); i++ {
				if f := v.Field(i); v.Type().Field(i).IsExported() && f.Kind() == reflect.Slice && f.Len() == 0 {
					f.SetZero()
				}
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

func TestSplitRootfsCommand(t *testing.T) {
	tests := []struct {
		args    []string
		rootfs  string
		argv    []string
		wantErr string
	}{
		{args: []string{"/r", "--", "sh", "-c", "x"}, rootfs: "/r", argv: []string{"sh", "-c", "x"}},
		{args: []string{"/r", "sh"}, rootfs: "/r", argv: []string{"sh"}}, // urfave ate the --
		{args: []string{"--", "/r", "--", "true"}, rootfs: "/r", argv: []string{"true"}},
		{args: []string{"/r", "--", "--"}, rootfs: "/r", argv: []string{"--"}},
		{args: nil, wantErr: "missing ROOTFS"},
		{args: []string{"--"}, wantErr: "missing ROOTFS"},
		{args: []string{"img:1", "--"}, rootfs: "img:1"}, // the image's own command
		{args: []string{"img:1"}, rootfs: "img:1"},
	}
	for _, tc := range tests {
		rootfs, argv, err := splitRootfsCommand(tc.args)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: err %v, want one saying %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil || rootfs != tc.rootfs || !slices.Equal(argv, tc.argv) {
			t.Errorf("%q: got %q %q %v, want %q %q", tc.args, rootfs, argv, err, tc.rootfs, tc.argv)
		}
	}
}

// `run --help` has no "--" and so reaches runc's run: the person's form
// and its options must still come first, runc's after.
func TestRunHelpShowsThePersonsFormFirst(t *testing.T) {
	args := []string{"bulwark", "run", "--help"}
	app := newApp(args)
	var out bytes.Buffer
	app.Writer = &out
	if err := app.Run(context.Background(), args); err != nil {
		t.Fatal(err)
	}
	h := out.String()
	order := []string{"ROOTFS|IMAGE -- COMMAND", "[runc's options] ID", "PERSON'S OPTIONS", "--profile", "--tmpfs", "--cap-add", "OPTIONS:", "--bundle"}
	at := 0
	for _, w := range order {
		i := strings.Index(h[at:], w)
		if i < 0 {
			t.Fatalf("run --help lacks %q after offset %d:\n%s", w, at, h)
		}
		at += i + len(w)
	}
}
