package oci

import (
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestNamespaceLookup(t *testing.T) {
	joined := specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/proc/1/ns/net"}
	withNS := func(nss ...specs.LinuxNamespace) *specs.Spec {
		return &specs.Spec{Linux: &specs.Linux{Namespaces: nss}}
	}
	tests := []struct {
		name         string
		s            *specs.Spec
		t            specs.LinuxNamespaceType
		want         specs.LinuxNamespace
		has, creates bool
	}{
		{"nil spec", nil, specs.PIDNamespace, specs.LinuxNamespace{}, false, false},
		{"nil linux", &specs.Spec{}, specs.PIDNamespace, specs.LinuxNamespace{}, false, false},
		{"no namespaces", withNS(), specs.PIDNamespace, specs.LinuxNamespace{}, false, false},
		{"other types only", withNS(specs.LinuxNamespace{Type: specs.MountNamespace}), specs.PIDNamespace, specs.LinuxNamespace{}, false, false},
		{"new", withNS(specs.LinuxNamespace{Type: specs.MountNamespace}, specs.LinuxNamespace{Type: specs.PIDNamespace}),
			specs.PIDNamespace, specs.LinuxNamespace{Type: specs.PIDNamespace}, true, true},
		{"joined", withNS(joined), specs.NetworkNamespace, joined, true, false},
		{"first of a duplicate", withNS(joined, specs.LinuxNamespace{Type: specs.NetworkNamespace}), specs.NetworkNamespace, joined, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Namespace(tt.s, tt.t)
			if got != tt.want || ok != tt.has {
				t.Errorf("Namespace() = %+v, %v; want %+v, %v", got, ok, tt.want, tt.has)
			}
			if got := HasNamespace(tt.s, tt.t); got != tt.has {
				t.Errorf("HasNamespace() = %v, want %v", got, tt.has)
			}
			if got := CreatesNamespace(tt.s, tt.t); got != tt.creates {
				t.Errorf("CreatesNamespace() = %v, want %v", got, tt.creates)
			}
		})
	}
}

func TestNamespaceEdit(t *testing.T) {
	mnt := specs.LinuxNamespace{Type: specs.MountNamespace}
	pid := specs.LinuxNamespace{Type: specs.PIDNamespace}
	net := specs.LinuxNamespace{Type: specs.NetworkNamespace}
	netJoined := specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/proc/1/ns/net"}
	tests := []struct {
		name string
		s    *specs.Spec
		edit func(*specs.Spec)
		want []specs.LinuxNamespace // nil: want s.Linux == nil
	}{
		{"set on nil linux creates it", &specs.Spec{}, func(s *specs.Spec) { SetNamespace(s, net) }, []specs.LinuxNamespace{net}},
		{"set appends a new type", &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{mnt}}},
			func(s *specs.Spec) { SetNamespace(s, pid) }, []specs.LinuxNamespace{mnt, pid}},
		{"set replaces in place", &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{mnt, netJoined, pid}}},
			func(s *specs.Spec) { SetNamespace(s, net) }, []specs.LinuxNamespace{mnt, net, pid}},
		{"remove on nil linux is a no-op", &specs.Spec{}, func(s *specs.Spec) { RemoveNamespace(s, specs.NetworkNamespace) }, nil},
		{"remove drops every entry of the type", &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{net, mnt, netJoined}}},
			func(s *specs.Spec) { RemoveNamespace(s, specs.NetworkNamespace) }, []specs.LinuxNamespace{mnt}},
		{"remove an absent type", &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{mnt}}},
			func(s *specs.Spec) { RemoveNamespace(s, specs.NetworkNamespace) }, []specs.LinuxNamespace{mnt}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.edit(tt.s)
			if tt.want == nil {
				if tt.s.Linux != nil {
					t.Fatalf("linux = %+v, want nil", tt.s.Linux)
				}
				return
			}
			if tt.s.Linux == nil || !reflect.DeepEqual(tt.s.Linux.Namespaces, tt.want) {
				t.Fatalf("namespaces = %+v, want %+v", tt.s.Linux, tt.want)
			}
		})
	}
	RemoveNamespace(nil, specs.NetworkNamespace) // must not panic
}
