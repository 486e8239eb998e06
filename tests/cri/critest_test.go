package cri

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// mirrorRegistry serves the critest images on 127.0.0.1 and returns the
// containerd config that makes it the mirror of every registry critest
// names.
func mirrorRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	for ref, s := range critestImages(t) {
		img, err := rootfsImage(s)
		if err != nil {
			t.Fatal(err)
		}
		r, err := name.ParseReference(host+"/"+ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(r, img); err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
	}
	var b strings.Builder
	for _, reg := range []string{"docker.io", "registry.k8s.io", "k8s.gcr.io", "gcr.io"} {
		fmt.Fprintf(&b, "  [plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.%q]\n    endpoint = [\"http://%s\"]\n", reg, host)
	}
	return b.String()
}

// critestReport is the part of Ginkgo's JSON report counted here.
type critestReport []struct {
	SpecReports []struct {
		ContainerHierarchyTexts []string
		LeafNodeText            string
		State                   string
		Failure                 struct{ Message string }
	}
}

// runCritest runs critest against a fresh containerd whose default
// handler is handler and returns each spec's state by name.
func runCritest(t *testing.T, net network, handler, mirrors string) (map[string]string, map[string]string) {
	t.Helper()
	d, err := startDaemon("critest-"+handler, net, handler, mirrors, "", false)
	if err != nil {
		t.Fatalf("containerd for critest (%s): %v", handler, err)
	}
	defer d.stop()
	// The HostIpc specs leave a segment on the host each.
	defer removeCritestSegments(shmSegments())
	report := filepath.Join(d.dir, "report.json")
	// Specs run four at a time (through the ginkgo CLI next to critest):
	// most of a spec's time is waiting, and a spec that fails waits a
	// minute or more.
	args := []string{"--runtime-endpoint", "unix://" + d.sock, "--image-endpoint", "unix://" + d.sock,
		"--ginkgo.json-report", report, "--ginkgo.no-color", "--ginkgo.timeout", "40m", "--parallel", "4"}
	if f := os.Getenv("BULWARK_CRITEST_FOCUS"); f != "" {
		args = append(args, "--ginkgo.focus", f)
	}
	start := time.Now()
	r := runCmdEnv(t, 45*time.Minute, []string{"PATH=" + filepath.Dir(critestBin) + ":" + os.Getenv("PATH")}, critestBin, args...)
	os.WriteFile(filepath.Join(os.TempDir(), "critest-"+handler+".log"), []byte(r.stdout+r.stderr), 0o644)
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("critest (%s) wrote no report (exit %d):\n%s", handler, r.code, lastLines(r.stdout+r.stderr, 40))
	}
	var rep critestReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("critest report: %v", err)
	}
	states, failures := map[string]string{}, map[string]string{}
	counts := map[string]int{}
	for _, s := range rep {
		for _, sr := range s.SpecReports {
			if sr.LeafNodeText == "" {
				continue
			}
			n := strings.Join(append(sr.ContainerHierarchyTexts, sr.LeafNodeText), " ")
			states[n] = sr.State
			counts[sr.State]++
			if sr.State == "failed" || sr.State == "timedout" || sr.State == "panicked" {
				failures[n] = firstLine(sr.Failure.Message)
			}
		}
	}
	t.Logf("critest with %s as the default handler: %v in %s", handler, counts, time.Since(start).Round(time.Second))
	return states, failures
}

// firstLine is the start of a failure message on one line.
func firstLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// TestCritestPassesWithBulwarkWhatItPassesWithRunc runs Kubernetes' CRI
// validation suite twice on the same host, with runc and with bulwark as
// containerd's default handler, and fails on every spec that passes with
// runc but not with bulwark. It takes a long time, so it runs only when
// BULWARK_CRITEST=1 (scripts/test.sh critest).
func TestCritestPassesWithBulwarkWhatItPassesWithRunc(t *testing.T) {
	if os.Getenv("BULWARK_CRITEST") != "1" {
		t.Skip("critest takes long: set BULWARK_CRITEST=1 (scripts/test.sh critest)")
	}
	requireTools(t, crictlBin, critestBin, critestBusybox)
	mirrors := mirrorRegistry(t)
	runcStates, runcFail := runCritest(t, networkN(1), "runc", mirrors)
	bwStates, bwFail := runCritest(t, networkN(2), "bulwark", mirrors)
	var names []string
	for n := range runcStates {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if runcStates[n] == "passed" && bwStates[n] != "passed" {
			t.Errorf("passes with runc, %s with bulwark: %s\n    %s", bwStates[n], n, bwFail[n])
		}
		if runcStates[n] != "passed" && bwStates[n] == "passed" {
			t.Logf("passes with bulwark, %s with runc: %s\n    %s", runcStates[n], n, runcFail[n])
		}
		if runcStates[n] == "failed" && bwStates[n] == "failed" {
			t.Logf("fails with both: %s\n    runc:    %s\n    bulwark: %s", n, runcFail[n], bwFail[n])
		}
	}
}
