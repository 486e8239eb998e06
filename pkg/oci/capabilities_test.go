package oci

import "testing"

func TestCapabilityName(t *testing.T) {
	tests := []struct {
		in, want string
		known    bool
	}{
		{"CAP_NET_ADMIN", "CAP_NET_ADMIN", true},
		{"net_admin", "CAP_NET_ADMIN", true},
		{"NET_ADMIN", "CAP_NET_ADMIN", true},
		{"cap_net_admin", "CAP_NET_ADMIN", true},
		{" Net_Raw\t", "CAP_NET_RAW", true},
		{"CAP_FLY", "CAP_FLY", false},
		{"", "CAP_", false},
	}
	for _, tt := range tests {
		got := CapabilityName(tt.in)
		if got != tt.want {
			t.Errorf("CapabilityName(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if IsKnownCapability(got) != tt.known {
			t.Errorf("IsKnownCapability(%q) = %v, want %v", got, !tt.known, tt.known)
		}
	}
	if IsKnownCapability("net_admin") {
		t.Error("IsKnownCapability must take the config.json spelling only")
	}
}
