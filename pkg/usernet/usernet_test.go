package usernet

import (
	"slices"
	"strings"
	"testing"

	"github.com/bulwark-sec/bulwark/pkg/network"
)

func TestPastaArgs(t *testing.T) {
	for _, c := range []struct {
		name  string
		ports []network.Port
		root  bool
		want  []string // pairs or flags that must appear, in this order
		never []string
	}{
		{"no ports", nil, false, []string{"-t none", "-u none"}, []string{"--runas"}},
		{"tcp and udp, one with a host address", []network.Port{
			{HostPort: 8080, ContainerPort: 80, Protocol: "tcp", HostIP: "127.0.0.1"},
			{HostPort: 5353, ContainerPort: 53, Protocol: "udp"},
			{HostPort: 8443, ContainerPort: 443, Protocol: "tcp"},
		}, false, []string{"-t 127.0.0.1/8080:80,8443:443", "-u 5353:53"}, []string{"--runas"}},
		{"root stays root", nil, true, []string{"--runas 0:0"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := pastaArgs(c.ports, "/run/x/pasta.pid", c.root)
			line := " " + strings.Join(args, " ") + " "
			// Always: foreground, ready through the pid file, the fds,
			// and nothing of the host's own reachable from inside.
			for _, w := range append([]string{"-f", "--pid /run/x/pasta.pid", "-T none", "-U none", "--no-map-gw",
				"--userns /proc/self/fd/5", "--netns /proc/self/fd/6"}, c.want...) {
				if !strings.Contains(line, " "+w+" ") {
					t.Errorf("pasta %s: no %q", line, w)
				}
			}
			for _, n := range c.never {
				if slices.Contains(args, n) {
					t.Errorf("pasta %s: has %q", line, n)
				}
			}
		})
	}
}
