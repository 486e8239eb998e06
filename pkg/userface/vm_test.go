package userface

import (
	"errors"
	"testing"
)

// TestCheckVMRefusesWhatTheGuestCannotGet: options that would need a host
// resource inside the guest are refused by name, before anything is made.
func TestCheckVMRefusesWhatTheGuestCannotGet(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		ok   bool
	}{
		{"namespace run untouched", Options{TTY: true, Volumes: []string{"/a:/b"}}, true},
		{"plain vm run", Options{Isolation: "vm"}, true},
		{"vm with --net none", Options{Isolation: "vm-strict", Net: "none"}, true},
		{"tty", Options{Isolation: "vm", TTY: true}, false},
		{"volume", Options{Profile: "vm", Volumes: []string{"/a:/b"}}, false},
		{"image", Options{Isolation: "vm", Image: "busybox"}, false},
		{"device", Options{Isolation: "vm", Devices: []string{"/dev/null"}}, false},
		{"host network", Options{Isolation: "vm", Net: "host"}, false},
		{"bridge network with a port", Options{Isolation: "vm", Net: "bridge", Publish: []string{"8080:80"}}, true},
		{"named network", Options{Isolation: "vm", Net: "front"}, true},
		{"another container's network", Options{Isolation: "vm", Net: "container:web"}, false},
		{"user-mode network", Options{Isolation: "vm", Net: "pasta"}, false},
		{"detach", Options{Isolation: "vm", Detach: true}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkVM(&tc.o)
			if tc.ok != (err == nil) {
				t.Fatalf("checkVM = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrVMUnsupported) {
				t.Errorf("%v does not wrap ErrVMUnsupported", err)
			}
		})
	}
}
