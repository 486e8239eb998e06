// Command tcpbench measures TCP throughput between two containers, the
// payload of bench/network.sh. Built static (CGO_ENABLED=0).
//
//	tcpbench serve PORT            accept connections, drain them
//	tcpbench send ADDR SECONDS     send for SECONDS, print "MB/s N"
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: tcpbench serve PORT | send ADDR SECONDS")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		l, err := net.Listen("tcp4", ":"+os.Args[2])
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println("listening", l.Addr())
		for {
			c, err := l.Accept()
			if err != nil {
				os.Exit(1)
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	case "send":
		secs, _ := strconv.Atoi(os.Args[3])
		var c net.Conn
		var err error
		for i := 0; i < 50; i++ {
			if c, err = net.Dial("tcp4", os.Args[2]); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		buf := make([]byte, 128<<10)
		var n int64
		start := time.Now()
		for time.Since(start) < time.Duration(secs)*time.Second {
			k, err := c.Write(buf)
			n += int64(k)
			if err != nil {
				fmt.Println(err)
				os.Exit(1)
			}
		}
		fmt.Printf("MB/s %.0f\n", float64(n)/time.Since(start).Seconds()/1e6)
	}
}
