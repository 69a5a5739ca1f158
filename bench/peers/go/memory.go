// memory: N goroutines each block on a receive from one shared channel. VmRSS (from
// /proc/self/status) is read before spawning and again once all of them have started (a WaitGroup
// counts them in) and a further 100 ms has passed so that every one has reached its receive. The
// channel is then closed to release them, and the program waits for all to exit.
// Reported: total_seconds = time to spawn all N and see them all started (without the 100 ms settle);
// last column = (rss_after - rss_before) / N, in bytes per blocked goroutine.
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// vmRSS returns the resident set size of this process in bytes.
func vmRSS() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "VmRSS:") {
			fields := strings.Fields(strings.TrimPrefix(line, "VmRSS:")) // e.g. ["12345", "kB"]
			if len(fields) != 2 || fields[1] != "kB" {
				return 0, fmt.Errorf("cannot parse %q", line)
			}
			kb, err := strconv.ParseInt(fields[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("cannot parse %q: %v", line, err)
			}
			return kb * 1024, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no VmRSS line in /proc/self/status")
}

func runMemory(n int64) (result, error) {
	release := make(chan struct{})
	var started, exited sync.WaitGroup
	var released int64

	before, err := vmRSS()
	if err != nil {
		return result{}, err
	}

	start := time.Now()
	started.Add(int(n))
	exited.Add(int(n))
	for i := int64(0); i < n; i++ {
		go func() {
			started.Done()
			<-release // blocks until the channel is closed
			atomic.AddInt64(&released, 1)
			exited.Done()
		}()
	}
	started.Wait()
	total := time.Since(start)
	time.Sleep(100 * time.Millisecond) // let every goroutine reach its receive and park

	after, err := vmRSS()
	if err != nil {
		return result{}, err
	}
	if r := atomic.LoadInt64(&released); r != 0 {
		return result{}, fmt.Errorf("%d goroutines passed the receive before release", r)
	}

	close(release)
	exited.Wait()
	if r := atomic.LoadInt64(&released); r != n {
		return result{}, fmt.Errorf("%d goroutines released, want %d", r, n)
	}
	return result{total, float64(after-before) / float64(n)}, nil
}
