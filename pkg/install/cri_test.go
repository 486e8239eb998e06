package install

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// criRuntime is the part of a containerd runtime handler the CRI plugin
// reads to start a pod with it.
type criRuntime struct {
	RuntimeType string `toml:"runtime_type"`
	Options     struct {
		BinaryName    string
		SystemdCgroup bool
	} `toml:"options"`
}

type containerdFile struct {
	Version int `toml:"version"`
	OOM     int `toml:"oom_score"`
	Plugins map[string]struct {
		Containerd struct {
			DefaultRuntimeName string                `toml:"default_runtime_name"`
			Runtimes           map[string]criRuntime `toml:"runtimes"`
		} `toml:"containerd"`
	} `toml:"plugins"`
}

type crioFile struct {
	Crio struct {
		Runtime struct {
			DefaultRuntime string `toml:"default_runtime"`
			Runtimes       map[string]struct {
				Path string `toml:"runtime_path"`
				Type string `toml:"runtime_type"`
				Root string `toml:"runtime_root"`
			} `toml:"runtimes"`
		} `toml:"runtime"`
	} `toml:"crio"`
}

const bin = "/usr/local/bin/bulwark"

func TestContainerdHandlersAsTheCRIPluginReadsThem(t *testing.T) {
	const v2 = `plugins."io.containerd.grpc.v1.cri".containerd.runtimes`
	tests := []struct {
		name     string
		old      string
		opts     Options
		plugin   string
		want     map[string]criRuntime
		keepsOOM bool
	}{
		{
			name: "no file, cgroupfs", opts: Options{CgroupDriver: CgroupDriverCgroupfs},
			plugin: "io.containerd.grpc.v1.cri",
			want:   map[string]criRuntime{"bulwark": rt(bin, false)},
		},
		{
			name: "harden adds bulwark-hardened next to bulwark", opts: Options{Harden: true, CgroupDriver: CgroupDriverSystemd},
			plugin: "io.containerd.grpc.v1.cri",
			want: map[string]criRuntime{
				"bulwark":          rt(bin, true),
				"bulwark-hardened": rt("/usr/local/bin/bulwark-harden", true),
			},
		},
		{
			name: "the user's runtimes and settings stay", old: "version = 2\noom_score = -999\n[" + v2 + ".runc]\n  runtime_type = \"io.containerd.runc.v2\"\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  default_runtime_name = \"runc\"\n",
			opts:   Options{Name: "bw", Harden: true, Wrapper: "/opt/bw-harden", CgroupDriver: CgroupDriverCgroupfs},
			plugin: "io.containerd.grpc.v1.cri", keepsOOM: true,
			want: map[string]criRuntime{
				"runc":        {RuntimeType: "io.containerd.runc.v2"},
				"bw":          rt(bin, false),
				"bw-hardened": rt("/opt/bw-harden", false),
			},
		},
		{
			name: "containerd 2 schema", old: "version = 3\n", opts: Options{CgroupDriver: CgroupDriverCgroupfs},
			plugin: "io.containerd.cri.v1.runtime",
			want:   map[string]criRuntime{"bulwark": rt(bin, false)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := filepath.Join(engineDir(t), "config.toml")
			if tc.old != "" {
				if err := os.WriteFile(cfg, []byte(tc.old), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			o := tc.opts
			o.Engine, o.Config, o.Binary = Containerd, cfg, bin
			c, err := Plan(o)
			if err != nil {
				t.Fatal(err)
			}
			var f containerdFile
			if _, err := toml.Decode(string(c.New), &f); err != nil {
				t.Fatalf("written config is not TOML: %v\n%s", err, c.New)
			}
			if f.Version == 0 {
				t.Errorf("no version key: containerd 1.x would read the file as the v1 schema:\n%s", c.New)
			}
			if tc.keepsOOM && (f.OOM != -999 || f.Plugins[tc.plugin].Containerd.DefaultRuntimeName != "runc") {
				t.Errorf("the user's settings were lost:\n%s", c.New)
			}
			got := f.Plugins[tc.plugin].Containerd.Runtimes
			if len(got) != len(tc.want) {
				t.Fatalf("handlers %v, want %v:\n%s", got, tc.want, c.New)
			}
			for name, w := range tc.want {
				if got[name] != w {
					t.Errorf("handler %s = %+v, want %+v", name, got[name], w)
				}
			}
			if o.Harden && c.Wrapper == "" {
				t.Error("--harden plans no wrapper script")
			}
			// A second install over the first writes the same bytes.
			if err := Apply(c); err != nil {
				t.Fatal(err)
			}
			again, err := Plan(o)
			if err != nil {
				t.Fatal(err)
			}
			if string(again.New) != string(c.New) {
				t.Errorf("second install differs:\n%s\nvs\n%s", c.New, again.New)
			}
		})
	}
}

func rt(binary string, systemd bool) criRuntime {
	r := criRuntime{RuntimeType: "io.containerd.runc.v2"}
	r.Options.BinaryName, r.Options.SystemdCgroup = binary, systemd
	return r
}

func TestCRIOHandlersInADropIn(t *testing.T) {
	for _, harden := range []bool{false, true} {
		cfg := filepath.Join(engineDir(t), "crio.conf.d", "10-bulwark.conf")
		c, err := Plan(Options{Engine: CRIO, Config: cfg, Binary: bin, Harden: harden})
		if err != nil {
			t.Fatal(err)
		}
		var f crioFile
		if _, err := toml.Decode(string(c.New), &f); err != nil {
			t.Fatalf("written drop-in is not TOML: %v\n%s", err, c.New)
		}
		rts := f.Crio.Runtime.Runtimes
		want := map[string]string{"bulwark": bin}
		if harden {
			want["bulwark-hardened"] = "/usr/local/bin/bulwark-harden"
		}
		if len(rts) != len(want) {
			t.Fatalf("harden=%v: handlers %v, want %v", harden, rts, want)
		}
		for name, path := range want {
			if r := rts[name]; r.Path != path || r.Type != "oci" || r.Root != "/run/bulwark" {
				t.Errorf("harden=%v: handler %s = %+v, want runtime_path %s, oci, /run/bulwark", harden, name, r, path)
			}
		}
		if f.Crio.Runtime.DefaultRuntime != "" {
			t.Error("install must not change CRI-O's default runtime")
		}
		if err := Apply(c); err != nil {
			t.Fatal(err)
		}
		if _, err := Undo(Options{Engine: CRIO, Config: cfg}); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(cfg); !os.IsNotExist(err) {
			t.Errorf("undo left the drop-in it created: %v", err)
		}
	}
}

func TestCRIHandlerInstallRefusesBadInput(t *testing.T) {
	tests := []struct {
		name, engine, old, driver, want string
	}{
		{"v1 schema", "containerd", "oom_score = 1\n", "", "not a version 2"},
		{"unknown schema", "containerd", "version = 9\n", "", "version 9"},
		{"user's own bulwark handler", "containerd", "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.bulwark]\n", "", "outside bulwark's block"},
		{"user's own bulwark options", "containerd", "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.bulwark.options]\n", "", "outside bulwark's block"},
		{"user's own hardened handler", "crio", "[crio.runtime.runtimes.bulwark-hardened]\n", "", "bulwark-hardened"},
		{"unknown cgroup driver", "containerd", "", "upstart", "cgroup driver"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := filepath.Join(engineDir(t), "config.toml")
			if tc.old != "" {
				if err := os.WriteFile(cfg, []byte(tc.old), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Plan(Options{Engine: Engine(tc.engine), Config: cfg, Binary: bin, Harden: true, CgroupDriver: tc.driver})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Plan: %v, want an error containing %q", err, tc.want)
			}
			if b, _ := os.ReadFile(cfg); string(b) != tc.old {
				t.Errorf("the config changed despite the refusal: %q", b)
			}
		})
	}
}

func TestCgroupDriverFollowsTheInit(t *testing.T) {
	t.Cleanup(func() { systemdRunDir = "/run/systemd/system" })
	for _, booted := range []bool{false, true} {
		dir := t.TempDir()
		systemdRunDir = filepath.Join(dir, "run", "systemd", "system")
		if booted {
			if err := os.MkdirAll(systemdRunDir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		c, err := Plan(Options{Engine: Containerd, Config: filepath.Join(dir, "config.toml"), Binary: bin})
		if err != nil {
			t.Fatal(err)
		}
		want := "SystemdCgroup = " + map[bool]string{false: "false", true: "true"}[booted]
		if !strings.Contains(string(c.New), want) {
			t.Errorf("systemd init %v: want %q in\n%s", booted, want, c.New)
		}
	}
}
