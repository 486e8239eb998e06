package hostcheck

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/bulwark-sec/bulwark/pkg/finding"
	"github.com/bulwark-sec/bulwark/pkg/install"
)

// engines checks each installed engine's configuration: is Bulwark
// registered, is it the default runtime, and does it run with the floor.
// An engine that is not installed (no config and no binary) is skipped.
func (c *checker) engines() {
	c.docker()
	c.tomlEngine(install.Containerd, []string{"/usr/bin/containerd", "/usr/local/bin/containerd"},
		regexp.MustCompile(`runtimes\.([A-Za-z0-9_-]+)\.options\][^\[]*?BinaryName\s*=\s*"([^"]*bulwark[^"]*)"`),
		regexp.MustCompile(`(?m)^\s*default_runtime_name\s*=\s*"([^"]+)"`),
		"bulwark install --engine containerd",
		`set default_runtime_name = "bulwark" under [plugins."io.containerd.grpc.v1.cri".containerd], or select it per pod with a RuntimeClass`)
	c.tomlEngine(install.Podman, []string{"/usr/bin/podman", "/usr/local/bin/podman"},
		regexp.MustCompile(`(?m)^\s*([A-Za-z0-9_-]+)\s*=\s*\[\s*"([^"]*bulwark[^"]*)"`),
		regexp.MustCompile(`(?m)^\s*runtime\s*=\s*"([^"]+)"`),
		"bulwark install --engine podman",
		`set runtime = "bulwark" under [engine] in containers.conf`)
}

func (c *checker) installed(config string, binaries []string) bool {
	if c.exists(config) {
		return true
	}
	return slices.ContainsFunc(binaries, c.exists)
}

func isBulwark(p string) bool {
	b := filepath.Base(p)
	return b == "bulwark" || strings.HasPrefix(b, "bulwark-")
}

func (c *checker) docker() {
	cfg := install.DefaultConfig[install.Docker]
	if !c.installed(cfg, []string{"/usr/bin/dockerd", "/usr/local/bin/dockerd"}) {
		c.facts["docker"] = "not installed"
		return
	}
	var d struct {
		Runtimes map[string]struct {
			Path        string   `json:"path"`
			RuntimeArgs []string `json:"runtimeArgs"`
		} `json:"runtimes"`
		DefaultRuntime  string `json:"default-runtime"`
		UsernsRemap     string `json:"userns-remap"`
		NoNewPrivileges bool   `json:"no-new-privileges"`
	}
	raw, ok := c.read(cfg)
	if ok && raw != "" {
		if err := json.Unmarshal([]byte(raw), &d); err != nil {
			c.add("docker-config-invalid", finding.Medium, cfg, "daemon.json is not valid JSON: "+err.Error(),
				"dockerd refuses to start with it, or starts without the runtimes it lists", "fix "+cfg)
			return
		}
	}
	name, harden := "", false
	for n, r := range d.Runtimes {
		if isBulwark(r.Path) {
			name = n
			harden = slices.Contains(r.RuntimeArgs, "--harden") || strings.HasSuffix(r.Path, "-harden")
			break
		}
	}
	def := d.DefaultRuntime
	if def == "" {
		def = "runc"
	}
	c.facts["docker"] = "default runtime " + def
	switch {
	case name == "":
		c.add("docker-no-bulwark", finding.Low, cfg, "Bulwark is not registered with Docker",
			"every docker container runs under runc with Docker's defaults: 14 capabilities including NET_RAW, no no_new_privs, no user namespace",
			"bulwark install --engine docker (add --harden for the floor)")
	case def != name:
		c.add("docker-not-default", finding.Low, cfg+" (default-runtime)", "Bulwark is registered as "+name+" but the default runtime is "+def,
			"a container started without --runtime "+name+" runs under "+def+", without Bulwark's floor",
			`set "default-runtime": "`+name+`" in `+cfg)
	}
	if name != "" && !harden && c.floorOff {
		c.add("docker-floor-off", finding.Medium, cfg+" (runtimes."+name+")", "Docker starts Bulwark without the hardening floor",
			"in OCI mode Bulwark runs Docker's config as written: NET_RAW and MKNOD, no no_new_privs, no pids limit",
			`bulwark install --engine docker --harden, or {"harden": true} in /etc/bulwark/policy.json`)
	}
	if d.UsernsRemap == "" {
		c.add("docker-no-userns-remap", finding.Medium, cfg+" (userns-remap)", "dockerd does not remap users: container root is host root",
			"any escape lands as host root (CVE-2019-5736 rewrote the host's runc binary)", `set "userns-remap": "default" in `+cfg)
	}
	if !d.NoNewPrivileges {
		c.add("docker-no-new-privileges", finding.Low, cfg+" (no-new-privileges)", "containers may gain privileges through setuid binaries by default",
			`"get rid of SUID binaries" (the talk): no_new_privs makes the image's setuid files harmless`, `set "no-new-privileges": true in `+cfg)
	}
}

func (c *checker) tomlEngine(e install.Engine, binaries []string, registered, defaultRE *regexp.Regexp, installCmd, defaultFix string) {
	cfg := install.DefaultConfig[e]
	if !c.installed(cfg, binaries) {
		c.facts[string(e)] = "not installed"
		return
	}
	raw, _ := c.read(cfg)
	m := registered.FindStringSubmatch(raw)
	if m == nil {
		c.facts[string(e)] = "installed, Bulwark not registered"
		c.add(string(e)+"-no-bulwark", finding.Low, cfg, "Bulwark is not registered with "+string(e),
			"its containers run under its default runtime (runc or crun) without Bulwark's floor", installCmd)
		return
	}
	// registered's groups: the runtime's name, its path (a -harden
	// wrapper when installed with --harden).
	name, harden := m[1], strings.HasSuffix(m[2], "-harden")
	def := ""
	if d := defaultRE.FindStringSubmatch(raw); d != nil {
		def = d[1]
	}
	c.facts[string(e)] = "Bulwark registered as " + name + "; default runtime " + orDefault(def)
	if def != name {
		c.add(string(e)+"-not-default", finding.Low, cfg, "Bulwark is registered but the default runtime is "+orDefault(def),
			"containers that do not ask for Bulwark run without its floor", defaultFix)
	}
	if !harden && c.floorOff {
		c.add(string(e)+"-floor-off", finding.Medium, cfg, string(e)+" starts Bulwark without the hardening floor",
			"in OCI mode Bulwark runs the engine's config as written", installCmd+` --harden, or {"harden": true} in /etc/bulwark/policy.json`)
	}
}

func orDefault(s string) string {
	if s == "" {
		return "the engine's default"
	}
	return s
}
