// httpd answers "ok" to every request on ADDR (default 127.0.0.1:8080). It
// prints "listening ADDR" once the socket is bound, or the errno name of a
// failed bind (EACCES for a low port without CAP_NET_BIND_SERVICE) and
// exits 1.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/bulwark-sec/bulwark/tests/payloads/internal/payload"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()
	if flag.NArg() == 1 {
		*addr = "127.0.0.1:" + flag.Arg(0)
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Println(payload.ErrnoName(err))
		os.Exit(1)
	}
	fmt.Printf("listening %s\n", l.Addr())
	err = http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "ok")
	}))
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
