// SPDX-License-Identifier: GPL-2.0
//
// gorelay: Go programs as users write them, for tests/test_splice.sh.
// Their copies between two TCP connections read with splice(2):
// (*net.TCPConn).ReadFrom uses it whenever the source is a TCP connection.
//
//	gorelay relay LISTEN BACKEND PORTFILE [DELAY_MS]
//	                                        accept; dial BACKEND; (sleep
//	                                        DELAY_MS;) io.Copy both ways;
//	                                        CloseWrite at EOF
//	gorelay proxy LISTEN BACKEND PORTFILE   httputil.ReverseProxy to
//	                                        http://BACKEND (upgrades relayed)
//	gorelay upgrade LISTEN PORTFILE         HTTP server: "Upgrade: echo"
//	                                        answers 101, then echoes bytes
//
// Each runs until killed.
package main

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"time"
)

func listen(addr, portFile string) net.Listener {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := os.WriteFile(portFile+".tmp", []byte(fmt.Sprintf("%d\n", port)), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.Rename(portFile+".tmp", portFile); err != nil {
		log.Fatal(err)
	}
	return ln
}

// relay: with a delay, the client's first bytes are queued before the
// first splice() (without it, Go calls splice() as soon as it has dialled,
// usually before the client's bytes arrive).
func relay(ln net.Listener, backend string, delay time.Duration) {
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go func(client *net.TCPConn) {
			defer client.Close()
			b, err := net.Dial("tcp", backend)
			if err != nil {
				log.Print(err)
				return
			}
			back := b.(*net.TCPConn)
			defer back.Close()
			time.Sleep(delay)
			done := make(chan struct{})
			go func() {
				io.Copy(client, back) // splice() from back
				client.CloseWrite()
				close(done)
			}()
			io.Copy(back, client) // splice() from client
			back.CloseWrite()
			<-done
		}(c.(*net.TCPConn))
	}
}

func upgrade(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Upgrade") != "echo" {
		fmt.Fprintln(w, "hello")
		return
	}
	conn, brw, err := w.(http.Hijacker).Hijack()
	if err != nil {
		log.Print(err)
		return
	}
	defer conn.Close()
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	brw.Flush()
	// Echo until EOF, then half-close: bytes already buffered come first.
	io.Copy(conn, brw.Reader)
	conn.(*net.TCPConn).CloseWrite()
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("gorelay: ")
	if len(os.Args) < 2 {
		log.Fatal("usage: gorelay relay|proxy|upgrade ...")
	}
	switch os.Args[1] {
	case "relay":
		var delay time.Duration
		if len(os.Args) > 5 {
			ms, err := strconv.Atoi(os.Args[5])
			if err != nil {
				log.Fatal("bad DELAY_MS ", os.Args[5])
			}
			delay = time.Duration(ms) * time.Millisecond
		}
		relay(listen(os.Args[2], os.Args[4]), os.Args[3], delay)
	case "proxy":
		u, err := url.Parse("http://" + os.Args[3])
		if err != nil {
			log.Fatal(err)
		}
		log.Fatal(http.Serve(listen(os.Args[2], os.Args[4]), httputil.NewSingleHostReverseProxy(u)))
	case "upgrade":
		log.Fatal(http.Serve(listen(os.Args[2], os.Args[3]), http.HandlerFunc(upgrade)))
	default:
		log.Fatal("unknown mode ", os.Args[1])
	}
}
