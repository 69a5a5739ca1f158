// idle: one goroutine sleeps N milliseconds while the main goroutine waits for it; nothing else runs.
// The CPU time of the whole process (getrusage(RUSAGE_SELF), user + system, all threads) is taken
// over that sleep. Reported: total_seconds = wall time of the sleep; last column = CPU time / wall
// time * 100, i.e. % of one core.
package main

import (
	"fmt"
	"syscall"
	"time"
)

// cpuTime returns the user + system CPU time consumed so far by the whole process.
func cpuTime() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

func runIdle(n int64) (result, error) {
	sleep := time.Duration(n) * time.Millisecond
	done := make(chan struct{})

	cpu0, err := cpuTime()
	if err != nil {
		return result{}, err
	}
	start := time.Now()
	go func() {
		time.Sleep(sleep)
		close(done)
	}()
	<-done
	total := time.Since(start)
	cpu1, err := cpuTime()
	if err != nil {
		return result{}, err
	}

	if total < sleep {
		return result{}, fmt.Errorf("slept %v, want at least %v", total, sleep)
	}
	return result{total, float64(cpu1-cpu0) / float64(total) * 100}, nil
}
