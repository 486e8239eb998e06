// ids prints the process's real and effective user and group ids on one
// line ("uid=1000 euid=1000 gid=1000 egid=1000"). The escape suite runs a
// setuid-root copy of it as uid 1000: euid=0 means the set-user-id bit was
// honoured, i.e. an unprivileged user in the container became root.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Printf("uid=%d euid=%d gid=%d egid=%d\n", os.Getuid(), os.Geteuid(), os.Getgid(), os.Getegid())
}
