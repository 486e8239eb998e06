package network

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParsePort(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "8080:80", want: "8080:80/tcp"},
		{in: "127.0.0.1:8080:80/udp", want: "127.0.0.1:8080:80/udp"},
		{in: "8080:80/sctp", err: "want tcp or udp"},
		{in: "80", err: "want [IP:]HOST:CONTAINER"},
		{in: "0:80", err: "host port"},
		{in: "8080:65536", err: "container port"},
		{in: "::1:8080:80", err: "want an IPv4 address"},
		{in: "host:8080:80", err: "want an IPv4 address"},
	} {
		p, err := ParsePort(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParsePort(%q) = %v, %v; want error with %q", tc.in, p, err, tc.err)
			}
			continue
		}
		if err != nil || p.String() != tc.want {
			t.Errorf("ParsePort(%q) = %v, %v; want %s", tc.in, p, err, tc.want)
		}
	}
}

func TestPortsOverlap(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"8080:80", "8080:81", true},
		{"8080:80", "8080:80/udp", false},
		{"127.0.0.1:8080:80", "8080:80", true},
		{"127.0.0.1:8080:80", "127.0.0.2:8080:80", false},
		{"8080:80", "8081:80", false},
	} {
		a, _ := ParsePort(tc.a)
		b, _ := ParsePort(tc.b)
		if got := a.overlaps(b); got != tc.want {
			t.Errorf("%s overlaps %s = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestStoreCreateRefusesBadNetworks(t *testing.T) {
	s := &Store{Dir: t.TempDir(), CNIDir: t.TempDir()}
	if _, err := s.Create(Network{Name: "front"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		n    Network
		want error
		msg  string
	}{
		{Network{Name: "front"}, ErrExist, ""},
		{Network{Name: "bridge"}, ErrExist, "reserved"},
		{Network{Name: "a/b"}, ErrInvalid, "a name is"},
		{Network{Name: "x", Driver: "vxlan"}, ErrInvalid, "--driver"},
		{Network{Name: "x", Subnet: "10.89.1.128/25"}, ErrInvalid, "overlaps network \"front\""},
		{Network{Name: "x", Subnet: "fd00::/64"}, ErrInvalid, "IPv4 CIDR"},
		{Network{Name: "x", Subnet: "10.77.0.0/24", Gateway: "10.78.0.1"}, ErrInvalid, "--gateway"},
		{Network{Name: "x", Driver: DriverMacvlan}, ErrInvalid, "--parent"},
		{Network{Name: "x", Driver: DriverMacvlan, Parent: "bulwark-nonesuch"}, ErrInvalid, "parent interface"},
		{Network{Name: "x", Parent: "lo"}, ErrInvalid, "only macvlan and ipvlan"},
	} {
		_, err := s.Create(tc.n)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Create(%+v) = %v, want %v with %q", tc.n, err, tc.want, tc.msg)
		}
	}
	ns, err := s.List()
	if err != nil || len(ns) != 2 || ns[0].Name != "bridge" || ns[1].Name != "front" || ns[1].Bridge != "bulwark1" || ns[1].Subnet != "10.89.1.0/24" {
		t.Errorf("List = %+v, %v", ns, err)
	}
}

func TestResolveRefusesBeforeAnythingIsMade(t *testing.T) {
	s := &Store{Dir: t.TempDir(), CNIDir: t.TempDir()}
	if err := os.WriteFile(filepath.Join(s.CNIDir, "broken.conflist"), []byte(`{"cniVersion": "1.0.0", "name": "broken", "plugins": [`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.CNIDir, "noplugin.conflist"), []byte(`{"cniVersion": "1.0.0", "name": "noplugin", "plugins": [{"type": "bulwark-no-such-plugin"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ flag, want string }{
		{"nonesuch", "no such network"},
		{"macvlan:bulwark-nonesuch", "parent interface \"bulwark-nonesuch\""},
		{"dedicated:bulwark-nonesuch", "interface \"bulwark-nonesuch\""},
		{"cni:absent", "cni:absent"},
		{"cni:broken", "cni:broken"},
		{"cni:noplugin", "bulwark-no-such-plugin"},
		{"cni:../x", "want the name of a config list"},
		{"tunnel:x", "want none, host, bridge"},
		{"container:", "container:NAME"},
	} {
		if _, err := s.Resolve(context.Background(), tc.flag); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Resolve(%q) = %v, want an error with %q", tc.flag, err, tc.want)
		}
	}
	for _, flag := range []string{"", "none", "host", "container:web"} {
		if _, err := s.Resolve(context.Background(), flag); err != nil {
			t.Errorf("Resolve(%q): %v", flag, err)
		}
	}
}

func TestHostsForListsTheNetworkOnly(t *testing.T) {
	ms := []Member{{ID: "a", IP: "10.89.1.2", Names: []string{"web", "a"}}, {ID: "b", IP: "10.89.1.3", Names: []string{"b"}}, {ID: "c"}}
	got := hostsFor(ms[1], ms)
	for _, want := range []string{"127.0.0.1\tlocalhost\n", "10.89.1.3\tb\n", "10.89.1.2\tweb a\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("hosts of b lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "\n") != 4 {
		t.Errorf("hosts of b has a line for a member without an address:\n%s", got)
	}
}

func TestMissingMasqChain(t *testing.T) {
	const real = `plugin type="bridge" failed (delete): running [/usr/sbin/iptables -t nat -D POSTROUTING -s 10.89.0.227 -j CNI-44b541b1b39f994cd796d264 -m comment --comment name: "bridge" id: "bulwark-76b768ac2175feb95b47070f" --wait]: exit status 2: iptables v1.8.9 (nf_tables): Chain 'CNI-44b541b1b39f994cd796d264' does not exist
Try ` + "`iptables -h'" + ` or 'iptables --help' for more information.`
	for _, tc := range []struct {
		name, msg   string
		tool, chain string
	}{
		{name: "iptables-nft", msg: real, tool: "iptables", chain: "CNI-44b541b1b39f994cd796d264"},
		{name: "ip6tables", msg: strings.ReplaceAll(real, "/usr/sbin/iptables", "/usr/sbin/ip6tables"), tool: "ip6tables", chain: "CNI-44b541b1b39f994cd796d264"},
		{name: "another chain missing", msg: strings.Replace(real, "Chain 'CNI-44b5", "Chain 'CNI-ffff", 1)},
		{name: "another table", msg: strings.Replace(real, "-t nat", "-t filter", 1)},
		{name: "a rule added, not removed", msg: strings.Replace(real, "-D POSTROUTING", "-A POSTROUTING", 1)},
		{name: "a chain outside CNI's names", msg: strings.ReplaceAll(real, "CNI-44b541b1b39f994cd796d264", "INPUT")},
		{name: "another failure", msg: "plugin type=\"bridge\" failed (delete): no such device"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tool, chain, ok := missingMasqChain(errors.New(tc.msg))
			if ok != (tc.tool != "") || tool != tc.tool || chain != tc.chain {
				t.Errorf("missingMasqChain = %q %q %v, want %q %q", tool, chain, ok, tc.tool, tc.chain)
			}
		})
	}
	if _, _, ok := missingMasqChain(nil); ok {
		t.Error("missingMasqChain(nil) matched")
	}
}

// A network record cut short (a create killed between its file's creation
// and its write, before records were written whole, or one edited by
// hand) is named by ls and create, which cannot go on past it, and
// removed by network rm.
func TestStoreCutRecordIsNamedAndRemovable(t *testing.T) {
	for _, cut := range []string{"", `{"name": "cut", "driver": "bri`} {
		s := &Store{Dir: t.TempDir(), CNIDir: t.TempDir()}
		if err := os.WriteFile(s.path("cut"), []byte(cut), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := s.List(); err == nil || !strings.Contains(err.Error(), s.path("cut")) || !strings.Contains(err.Error(), "network rm cut") {
			t.Errorf("List with a record %q: %v, want an error naming the file and network rm", cut, err)
		}
		if err := s.Remove("cut"); err != nil {
			t.Errorf("Remove of a record %q: %v", cut, err)
		}
		if _, err := os.Stat(s.path("cut")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("record %q still there after Remove: %v", cut, err)
		}
		if _, err := s.Create(Network{Name: "next"}); err != nil {
			t.Errorf("Create after the cut record's removal: %v", err)
		}
	}
}

// Create writes a record whole under its own name and nothing else.
func TestStoreCreateLeavesOnlyTheRecord(t *testing.T) {
	s := &Store{Dir: t.TempDir(), CNIDir: t.TempDir()}
	if _, err := s.Create(Network{Name: "front"}); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(s.Dir)
	if len(ents) != 1 || ents[0].Name() != "front.json" {
		t.Errorf("store holds %v, want front.json alone", ents)
	}
	if fi, err := os.Stat(s.path("front")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("front.json: %v %v, want mode 0644", fi, err)
	}
	if n, err := s.Get("front"); err != nil || n.Bridge != "bulwark1" {
		t.Errorf("Get(front) = %+v, %v", n, err)
	}
}

// A record's save killed between its write and its rename left its
// temporary file, which nothing read or removed: Detach removes it, also
// where no record was ever renamed in.
func TestDetachRemovesARecordsCutSave(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.json")
	if err := os.WriteFile(path+".tmp", []byte(`{"root":"/r","id":"c`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Detach(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the cut save is still there: %v", err)
	}
}
