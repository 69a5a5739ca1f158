// weftpeer-go: the Go peer of weft-bench (see /work/shared/BENCH.md, the benchmark contract).
//
// Usage:
//
//	weftpeer-go NAME [--workers W] [--n N]
//	weftpeer-go pipeline [--workers W] [--n N] [--stages S]
//	weftpeer-go --list
//
// Runs one benchmark and prints exactly one line on stdout, last:
//
//	<bench> go <workers> <N> <total_seconds> <ns_per_op>
//
// (memory prints bytes per goroutine and idle the CPU % of one core in the last column).
// --workers sets runtime.GOMAXPROCS (default: leave GOMAXPROCS as it is); the caller pins the
// process with taskset. --stages S (>= 2, default 4) sets pipeline's stage count; only pipeline
// takes it. Each benchmark validates its result; on a wrong result it prints a message
// on stderr and exits with status 1. Usage errors exit with status 2.
//
// This file holds the command line, the benchmark table and shared helpers; each benchmark lives in
// its own file (switch.go, spawn.go, pingpong.go, ring.go, skynet.go, fanin.go, memory.go, idle.go, pipeline.go).
// Standard library only.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// result is what a benchmark reports: the measured wall time and the value for the last column
// (ns per operation, or bytes per goroutine for memory, or CPU % for idle).
type result struct {
	total time.Duration
	last  float64
}

// bench describes one benchmark of the contract.
type bench struct {
	name     string
	defaultN int64
	// lastFmt formats the last column (ns_per_op and bytes: 1 decimal; CPU %: 3 decimals,
	// because an idle runtime uses a small fraction of a percent).
	lastFmt string
	run     func(n int64) (result, error)
	about   string
}

// benches is the list printed by --list, in the order of BENCH.md.
var benches = []bench{
	{"switch", 10_000_000, "%.1f", runSwitch, "two goroutines alternately yield (runtime.Gosched); N total yields; ns per switch"},
	{"spawn", 1_000_000, "%.1f", runSpawn, "spawn N trivial goroutines, then wait for all (sync.WaitGroup); ns per goroutine"},
	{"pingpong", 5_000_000, "%.1f", runPingpong, "two goroutines bounce a message over an unbuffered channel; N round trips; ns per round trip"},
	{"ring", 10_000_000, "%.1f", runRing, "thread-ring: 503 goroutines pass a decrementing token; N hops; ns per hop"},
	{"skynet", 1_000_000, "%.1f", runSkynet, "10-ary tree of goroutines, N leaves, parents sum over channels; ns per leaf"},
	{"fanin", 10_000_000, "%.1f", runFanin, "1000 producers send N int64 into one channel (cap 1024), one consumer sums; ns per message"},
	{"memory", 100_000, "%.1f", runMemory, "N goroutines blocked on a receive; VmRSS growth; bytes per goroutine"},
	{"idle", 2_000, "%.3f", runIdle, "one goroutine sleeps N ms; CPU of the whole program as % of one core"},
	{"pipeline", 10_000_000, "%.1f", runPipeline, "S stages (default 4: source, *3, +1, sink) joined by channels of capacity 64, N items; ns per item"},
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: weftpeer-go NAME [--workers W] [--n N]\n"+
		"       weftpeer-go pipeline [--workers W] [--n N] [--stages S]\n       weftpeer-go --list")
	os.Exit(2)
}

// fail reports a wrong result (or a failed measurement) and exits non-zero.
func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "weftpeer-go: "+format+"\n", args...)
	os.Exit(1)
}

// parsePositive parses a flag value that must be an integer >= 1.
func parsePositive(flag, s string) int64 {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 1 {
		fmt.Fprintf(os.Stderr, "weftpeer-go: %s needs an integer >= 1, got %q\n", flag, s)
		os.Exit(2)
	}
	return v
}

func main() {
	var name string
	var workers, n, stages int64 // 0 = not given
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		// Accept both "--flag value" and "--flag=value".
		flag, val, hasVal := strings.Cut(a, "=")
		switch flag {
		case "--list":
			for _, b := range benches {
				fmt.Println(b.name)
			}
			return
		case "-h", "--help":
			usage()
		case "--workers", "--n", "--stages":
			if !hasVal {
				if i+1 >= len(args) {
					usage()
				}
				i++
				val = args[i]
			}
			switch flag {
			case "--workers":
				workers = parsePositive(flag, val)
			case "--n":
				n = parsePositive(flag, val)
			default:
				stages = parsePositive(flag, val)
			}
		default:
			if strings.HasPrefix(a, "-") || name != "" {
				usage()
			}
			name = a
		}
	}
	if name == "" {
		usage()
	}
	var b *bench
	for i := range benches {
		if benches[i].name == name {
			b = &benches[i]
		}
	}
	if b == nil {
		fmt.Fprintf(os.Stderr, "weftpeer-go: unknown benchmark %q (try --list)\n", name)
		os.Exit(2)
	}
	if stages != 0 {
		if b.name != "pipeline" || stages < 2 {
			fmt.Fprintln(os.Stderr, "weftpeer-go: --stages S (S >= 2) is an option of pipeline only")
			os.Exit(2)
		}
		pipelineStages = stages
	}
	if workers > 0 {
		runtime.GOMAXPROCS(int(workers))
	}
	if n == 0 {
		n = b.defaultN
	}

	r, err := b.run(n)
	if err != nil {
		fail("%s: %v", b.name, err)
	}
	fmt.Printf("%s go %d %d %.6f "+b.lastFmt+"\n",
		b.name, runtime.GOMAXPROCS(0), n, r.total.Seconds(), r.last)
}

// perOp turns a total time into nanoseconds per operation.
func perOp(total time.Duration, n int64) float64 {
	return float64(total.Nanoseconds()) / float64(n)
}
