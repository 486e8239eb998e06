package userface

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/userns"
)

// The image's config fills what the person left unsaid, as docker run
// does: a command replaces Cmd, --entrypoint replaces Entrypoint and drops
// Cmd, -e goes after the image's Env, -w, -u and --stop-signal win.
func TestApplyImageConfig(t *testing.T) {
	img := v1.Config{
		Entrypoint: []string{"/ep"}, Cmd: []string{"c1", "c2"}, Env: []string{"A=img", "B=img"},
		WorkingDir: "/w", User: "app", StopSignal: "SIGQUIT",
		ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}},
	}
	ep, empty := "/other", ""
	tests := []struct {
		name    string
		in      Options
		cfg     v1.Config
		args    []string
		env     []string
		workdir string
		user    string
		stop    string
		expose  []string
		wantErr string
	}{
		{name: "image's own", cfg: img, args: []string{"/ep", "c1", "c2"}, env: []string{"A=img", "B=img"}, workdir: "/w", user: "app", stop: "SIGQUIT", expose: []string{"53/udp", "80/tcp"}},
		{name: "command replaces Cmd", in: Options{Args: []string{"x"}}, cfg: img, args: []string{"/ep", "x"}},
		{name: "--entrypoint drops Cmd", in: Options{Entrypoint: &ep}, cfg: img, args: []string{"/other"}},
		{name: "--entrypoint with a command", in: Options{Entrypoint: &ep, Args: []string{"y"}}, cfg: img, args: []string{"/other", "y"}},
		{name: "--entrypoint \"\"", in: Options{Entrypoint: &empty, Args: []string{"sh"}}, cfg: img, args: []string{"sh"}},
		{name: "person's flags win", in: Options{Env: []string{"A=p"}, Workdir: "/p", User: "0", StopSignal: "KILL", Expose: []string{"9/tcp"}}, cfg: img,
			args: []string{"/ep", "c1", "c2"}, env: []string{"A=img", "B=img", "A=p"}, workdir: "/p", user: "0", stop: "KILL", expose: []string{"53/udp", "80/tcp", "9/tcp"}},
		{name: "nothing to run", cfg: v1.Config{}, wantErr: "no Entrypoint or Cmd"},
		{name: "bad StopSignal", cfg: v1.Config{Cmd: []string{"x"}, StopSignal: "SIGNOPE"}, wantErr: "StopSignal"},
		{name: "bad port", cfg: v1.Config{Cmd: []string{"x"}, ExposedPorts: map[string]struct{}{"http": {}}}, wantErr: "ExposedPorts"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.in
			o.Image = "example.com/x:1"
			err := applyImageConfig(&o, tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), o.Image) {
					t.Fatalf("err %v, want one naming %q and the image", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(o.Args, tc.args) {
				t.Errorf("args %q, want %q", o.Args, tc.args)
			}
			if tc.env != nil && !slices.Equal(o.Env, tc.env) {
				t.Errorf("env %q, want %q", o.Env, tc.env)
			}
			if tc.workdir != "" && o.Workdir != tc.workdir || tc.user != "" && o.User != tc.user || tc.stop != "" && o.StopSignal != tc.stop {
				t.Errorf("workdir %q user %q stop %q, want %q %q %q", o.Workdir, o.User, o.StopSignal, tc.workdir, tc.user, tc.stop)
			}
			if tc.expose != nil && !slices.Equal(o.Expose, tc.expose) {
				t.Errorf("expose %q, want %q", o.Expose, tc.expose)
			}
			if o.annotations[oci.AnnotationImage] != o.Image {
				t.Errorf("annotations %v lack the image", o.annotations)
			}
		})
	}
}

func TestParsePort(t *testing.T) {
	for in, want := range map[string]string{"80": "80/tcp", "53/UDP": "53/udp", "9/sctp": "9/sctp", "0": "", "65536": "", "http": "", "80/icmp": "", "": ""} {
		got, err := parsePort(in)
		if got != want || (err != nil) != (want == "") {
			t.Errorf("parsePort(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// An image's config is hostile input: whatever its JSON, applying it and
// making the spec never panics, a success always has a command, and
// every exposed port recorded is PORT/PROTO.
func FuzzImageConfig(f *testing.F) {
	f.Add([]byte(`{"config":{"Entrypoint":["sh","-c"],"Cmd":["x"],"Env":["A=1"],"WorkingDir":"/w","User":"1:2","StopSignal":"SIGQUIT","ExposedPorts":{"80/tcp":{}},"Volumes":{"/data":{}}}}`))
	f.Add([]byte(`{"config":{"Cmd":["x"],"User":"app","StopSignal":"99","ExposedPorts":{"0/tcp":{}}}}`))
	f.Add([]byte(`{"config":{"Env":["=","A"],"WorkingDir":"rel","Volumes":{"../x":{},"":{}}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cf, err := v1.ParseConfigFile(bytes.NewReader(b))
		if err != nil {
			return
		}
		o := Options{Image: "fuzz:1", ImageVolumes: "tmpfs"}
		if err := applyImageConfig(&o, cf.Config); err != nil {
			return
		}
		if len(o.Args) == 0 {
			t.Fatal("no error and no command")
		}
		for _, p := range o.Expose {
			if n, err := parsePort(p); err != nil || n == "" {
				t.Fatalf("exposed port %q kept: %v", p, err)
			}
		}
		if err := imageVolumes(&o, cf.Config, userns.Range{}, ""); err != nil {
			return
		}
		_, _ = Spec(&o)
	})
}
