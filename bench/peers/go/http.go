//go:build ignore

// weftpeer-go-http: the Go peer of the HTTP hello benchmark (bench/http.sh): a net/http server
// that answers every request with "Hello, World!\n" (HTTP/1.1, keep-alive, one goroutine per
// connection, as net/http does), the counterpart of examples/http_hello.c (weft-http-hello).
//
// Usage:
//
//	weftpeer-go-http --port P [--workers W]
//
// Listens on 127.0.0.1:P and serves until killed. --workers W sets runtime.GOMAXPROCS(W)
// (default: leave it as is); the caller pins the process with taskset. Go 1.19+ raises the soft
// RLIMIT_NOFILE to the hard limit itself at start, as weft-http-hello does. Once listening it
// prints "listening 127.0.0.1:P" on stdout. Usage errors exit 2; a failure to listen exits 1.
//
// A separate program, not a mode of weftpeer-go (whose benchmarks print one result line and exit):
// the "ignore" build constraint keeps this file out of `go build .`; build.sh builds it by name
// (`go build http.go`). Standard library only.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
)

var body = []byte("Hello, World!\n")

func hello(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Content-Type"] = []string{"text/plain"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.Write(body)
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: weftpeer-go-http --port P [--workers W]")
	os.Exit(2)
}

// parseInt parses a flag value that must be an integer in [min, max].
func parseInt(flag, s string, min, max int64) int {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < min || v > max {
		fmt.Fprintf(os.Stderr, "weftpeer-go-http: %s needs an integer in [%d, %d], got %q\n", flag, min, max, s)
		os.Exit(2)
	}
	return int(v)
}

func main() {
	port, workers := -1, 0
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		// Accept both "--flag value" and "--flag=value".
		flag, val, hasVal := strings.Cut(args[i], "=")
		switch flag {
		case "--port", "--workers":
			if !hasVal {
				if i+1 >= len(args) {
					usage()
				}
				i++
				val = args[i]
			}
			if flag == "--port" {
				port = parseInt(flag, val, 0, 65535)
			} else {
				workers = parseInt(flag, val, 1, 1024)
			}
		default:
			usage()
		}
	}
	if port < 0 {
		usage()
	}
	if workers > 0 {
		runtime.GOMAXPROCS(workers)
	}
	// The accept backlog is net.core.somaxconn: net.Listen reads it from /proc.
	ln, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		fmt.Fprintf(os.Stderr, "weftpeer-go-http: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("listening %s\n", ln.Addr())
	srv := &http.Server{Handler: http.HandlerFunc(hello)}
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintf(os.Stderr, "weftpeer-go-http: %v\n", err)
		os.Exit(1)
	}
}
