package audit

import (
	"encoding/json"
	"errors"
	"os"
	"testing"
)

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// fuzzParser checks a parser's promise: any input is judged or refused
// with an InputError, never a panic, and whatever parses can be audited.
func fuzzParser(f *testing.F, seeds []string, parse func([]byte) ([]Subject, error)) {
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		} else {
			f.Add([]byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		subs, err := parse(data)
		if err != nil {
			if !errors.Is(err, ErrInput) {
				t.Fatalf("error without ErrInput: %v", err)
			}
			return
		}
		for i := range subs {
			subs[i].Rootfs = ""
		}
		if _, err := Audit(subs); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzParseOCI(f *testing.F) {
	fuzzParser(f, []string{`{"ociVersion":"1.0.2","process":{"args":["sh"]}}`, `{"process":{},"linux":{"namespaces":[{"type":"user"}]}}`, `{"process":{"capabilities":{"bounding":["CAP_SYS_ADMIN"]}},"mounts":[{"source":"/","destination":"/h","options":["bind"]}]}`},
		func(b []byte) ([]Subject, error) { return ParseOCI("config.json", b, "") })
}

func FuzzParseDocker(f *testing.F) {
	fuzzParser(f, []string{"testdata/docker-inspect.json", `[{"HostConfig":{"Binds":["/:/h:ro"],"CapAdd":["ALL"]}}]`, `{"HostConfig":{"MaskedPaths":null}}`},
		func(b []byte) ([]Subject, error) { return ParseDocker("inspect.json", b) })
}

func FuzzParseKubernetes(f *testing.F) {
	fuzzParser(f, []string{"testdata/pod.yaml", "kind: Pod\nspec:\n  containers: [{name: a}]\n", "kind: CronJob\nspec: {jobTemplate: {spec: {template: {spec: {containers: [{name: a}]}}}}}\n"},
		func(b []byte) ([]Subject, error) { return ParseKubernetes("pod.yaml", b) })
}
