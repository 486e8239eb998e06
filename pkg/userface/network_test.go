package userface

import (
	"strings"
	"testing"
)

func TestSpecNamesTheNetworkFlag(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		o       Options
		wantErr string
	}{
		{name: "unknown network", o: Options{Net: "nonesuch"}, wantErr: `--net nonesuch: network "nonesuch": no such network`},
		{name: "unknown mode", o: Options{Net: "tunnel:x"}, wantErr: "--net tunnel:x"},
		{name: "port without a network", o: Options{Publish: []string{"8080:80"}}, wantErr: "--publish 8080:80: --net none cannot publish ports"},
		{name: "port with the host's network", o: Options{Net: "host", Publish: []string{"8080:80"}}, wantErr: "--net host cannot publish ports"},
		{name: "malformed port", o: Options{Net: "host", Publish: []string{"http"}}, wantErr: "--publish http: want [IP:]HOST:CONTAINER"},
		{name: "netadmin with the host's network", o: Options{Net: "host", Profile: "netadmin"}, wantErr: "--net host conflicts with --profile netadmin"},
		{name: "none", o: Options{Net: "none"}},
		{name: "another container's", o: Options{Net: "container:web"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.Args, o.NetworkDir, o.CNIDir = []string{"true"}, dir, dir
			_, err := Spec(&o)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Spec = %v, want an error with %q", err, tc.wantErr)
			}
		})
	}
}
