package install

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// TestVMRegistersASecondRuntimeName: --vm adds NAME-vm next to NAME on
// every engine, running bulwark with --isolation vm (and --harden with
// --harden), as runtimeArgs for Docker and as a wrapper for the others.
func TestVMRegistersASecondRuntimeName(t *testing.T) {
	for _, harden := range []bool{false, true} {
		for _, eng := range []Engine{Docker, Podman, Containerd, CRIO} {
			dir := t.TempDir()
			o := Options{Engine: eng, Config: filepath.Join(dir, "cfg"), Binary: bin, VM: true, Harden: harden,
				Wrapper: filepath.Join(dir, "bulwark-harden"), CgroupDriver: CgroupDriverCgroupfs}
			c, err := Plan(o)
			if err != nil {
				t.Fatalf("%s: %v", eng, err)
			}
			wantArgs := "--isolation vm"
			if harden {
				wantArgs = "--harden --isolation vm"
			}
			vmPath := bin
			switch eng {
			case Docker:
				var cfg struct {
					Runtimes map[string]struct {
						Path string   `json:"path"`
						Args []string `json:"runtimeArgs"`
					} `json:"runtimes"`
				}
				if err := json.Unmarshal(c.New, &cfg); err != nil {
					t.Fatal(err)
				}
				if got := cfg.Runtimes["bulwark-vm"]; got.Path != bin || strings.Join(got.Args, " ") != wantArgs {
					t.Errorf("docker: bulwark-vm = %+v, want %s %s", got, bin, wantArgs)
				}
				if _, ok := cfg.Runtimes["bulwark"]; !ok {
					t.Errorf("docker: the plain runtime is gone: %s", c.New)
				}
				if c.VMWrapper != "" {
					t.Errorf("docker needs no wrapper, got %s", c.VMWrapper)
				}
				continue
			case Podman:
				var cfg struct {
					Engine struct {
						Runtimes map[string][]string `toml:"runtimes"`
					} `toml:"engine"`
				}
				if _, err := toml.Decode(string(c.New), &cfg); err != nil {
					t.Fatalf("podman: %v\n%s", err, c.New)
				}
				vmPath = strings.Join(cfg.Engine.Runtimes["bulwark-vm"], " ")
			case Containerd:
				var cfg containerdFile
				if _, err := toml.Decode(string(c.New), &cfg); err != nil {
					t.Fatalf("containerd: %v\n%s", err, c.New)
				}
				vmPath = cfg.Plugins["io.containerd.grpc.v1.cri"].Containerd.Runtimes["bulwark-vm"].Options.BinaryName
			case CRIO:
				var cfg crioFile
				if _, err := toml.Decode(string(c.New), &cfg); err != nil {
					t.Fatalf("crio: %v\n%s", err, c.New)
				}
				vmPath = cfg.Crio.Runtime.Runtimes["bulwark-vm"].Path
			}
			if want := "/usr/local/bin/bulwark-vm"; vmPath != want || c.VMWrapper != want {
				t.Errorf("%s: bulwark-vm runs %q (wrapper %q), want %s", eng, vmPath, c.VMWrapper, want)
			}
			if w := string(c.VMWrapSrc); !strings.Contains(w, "exec '"+bin+"' "+wantArgs+` "$@"`) {
				t.Errorf("%s: wrapper does not exec bulwark %s:\n%s", eng, wantArgs, w)
			}
		}
	}
}
