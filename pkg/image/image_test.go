package image

import (
	"testing"

	"github.com/bulwark-sec/bulwark/pkg/image/pull"
)

// The store is looked up with storedName but written with pull.Name: for
// every reference pull.Name accepts they must agree, or `run busybox`
// would miss the image `pull busybox` stored.
func TestStoredNameIsPullName(t *testing.T) {
	refs := []string{
		"busybox", "busybox:1.36", "library/busybox", "docker.io/busybox",
		"docker.io/library/busybox:1", "index.docker.io/busybox", "index.docker.io/library/busybox:musl",
		"user/app", "docker.io/user/app:v2", "library/library/x",
		"ghcr.io/org/app", "ghcr.io/org/sub/app:1.2.3", "127.0.0.1:5000/app:v1", "localhost:5000/app",
		"localhost/app", "registry.example.com:443/a/b/c:tag",
		"busybox@sha256:" + sixtyFour, "busybox:1.36@sha256:" + sixtyFour, "ghcr.io/o/a:t@sha256:" + sixtyFour,
		"127.0.0.1:5000/app@sha256:" + sixtyFour,
	}
	for _, ref := range refs {
		want, err := pull.Name(ref)
		if err != nil {
			t.Errorf("pull.Name(%q): %v (the table should hold valid references only)", ref, err)
			continue
		}
		if got := storedName(ref); got != want {
			t.Errorf("storedName(%q) = %q, pull.Name = %q", ref, got, want)
		}
	}
}

const sixtyFour = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
