package cgroups

import (
	"maps"
	"strings"
	"testing"
)

func TestParseSubCgroups(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		want    map[string]string
		wantErr string
	}{
		{args: nil, want: nil},
		{args: []string{"sub"}, want: map[string]string{"": "sub"}},
		{args: []string{"memory:submem", "cpu,cpuacct:subcpu"}, want: map[string]string{"memory": "submem", "cpu": "subcpu", "cpuacct": "subcpu"}},
		{args: []string{"a", "b"}, wantErr: "missing CONTROLLER: prefix"},
		{args: []string{",cpu:x"}, wantErr: "empty controller"},
		{args: []string{"cpu:x", "cpu:y"}, wantErr: "given twice"},
	} {
		got, err := ParseSubCgroups(tc.args)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseSubCgroups(%q) = %v, want error %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !maps.Equal(got, tc.want) {
			t.Errorf("ParseSubCgroups(%q) = %v, %v; want %v", tc.args, got, err, tc.want)
		}
	}
}

func TestSubPath(t *testing.T) {
	for in, want := range map[string]string{"/": ".", "": ".", "a/b": "a/b", "/a/./b/": "a/b", "a..b": "a..b", "..": "", "a/../b": "", "../x": ""} {
		got, err := subPath(in)
		if want == "" {
			if err == nil || !strings.Contains(err.Error(), "bad sub cgroup path") {
				t.Errorf("subPath(%q) = %q, %v; want a bad sub cgroup path error", in, got, err)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("subPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
