package oci

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateID(t *testing.T) {
	tests := []struct {
		id      string
		ok      bool
		wantMsg string
	}{
		{id: "abc", ok: true},
		{id: "a.b-c_d+e", ok: true},
		{id: "0", ok: true},
		{id: "...", ok: true}, // not a path element with special meaning
		{id: "..a", ok: true},
		{id: strings.Repeat("x", 255), ok: true},
		{id: "", wantMsg: "must not be empty"},
		{id: ".", wantMsg: `"."`},
		{id: "..", wantMsg: `".."`},
		{id: "a/b", wantMsg: `"a/b" contains "/" at byte 1`},
		{id: "../etc", wantMsg: `contains "/"`},
		{id: "a\x00b", wantMsg: `contains "\x00" at byte 1`},
		{id: "a b", wantMsg: `contains " "`},
		{id: "ä", wantMsg: `contains "\xc3" at byte 0`},
		{id: "a:b", wantMsg: `contains ":"`},
		{id: strings.Repeat("x", 256), wantMsg: "256 bytes long, the limit is 255"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			err := ValidateID(tt.id)
			if tt.ok {
				if err != nil {
					t.Fatalf("ValidateID(%q) = %v, want nil", tt.id, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidID) {
				t.Fatalf("ValidateID(%q) = %v, want ErrInvalidID", tt.id, err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("ValidateID(%q) = %q, want it to contain %q", tt.id, err, tt.wantMsg)
			}
		})
	}
}
