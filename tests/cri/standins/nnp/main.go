// nnp stands in for the program of registry.k8s.io/e2e-test-images/nonewprivs
// that critest's NoNewPrivs specs run: installed setuid root, it prints its
// effective uid, 0 when the set-user-id bit was honoured and the container
// user's uid when no_new_privs stopped it.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Printf("Effective uid: %d\n", os.Geteuid())
}
