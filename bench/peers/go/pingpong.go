// pingpong: two goroutines pass a message back and forth over one unbuffered channel, N round trips.
// The "ping" side sends then receives, the "pong" side receives then sends; since only one of them is
// ever sending, a single unbuffered channel carries both directions safely. The message is a counter
// each side increments, so the final value must be 2N. Reported: ns per round trip = total/N.
package main

import (
	"fmt"
	"time"
)

func runPingpong(n int64) (result, error) {
	ch := make(chan int64) // unbuffered
	done := make(chan struct{})

	// pong: receive, increment, send back.
	go func() {
		for i := int64(0); i < n; i++ {
			v := <-ch
			ch <- v + 1
		}
		close(done)
	}()

	start := time.Now()
	var v int64
	for i := int64(0); i < n; i++ { // ping
		ch <- v + 1
		v = <-ch
	}
	<-done
	total := time.Since(start)

	if v != 2*n {
		return result{}, fmt.Errorf("final message = %d, want %d", v, 2*n)
	}
	return result{total, perOp(total, n)}, nil
}
