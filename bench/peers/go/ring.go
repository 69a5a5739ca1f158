// ring: the classic thread-ring. 503 goroutines with ids 1..503 sit in a ring, goroutine k receiving
// from channel k and sending to channel k+1 (503 wraps to 1); all channels are unbuffered. Goroutine 1
// is handed the token N; a goroutine holding a token t > 0 passes t-1 to its successor, and the one
// holding 0 reports its id. So the token makes exactly N hops and the answer is N mod 503 + 1
// (N=1000 gives 498). Timing starts once the ring is built and all goroutines are waiting, and stops
// when the id arrives. Reported: ns per hop = total/N.
package main

import (
	"fmt"
	"sync"
	"time"
)

const ringSize = 503

// ringAnswer is the id that holds the token when it reaches 0, after n hops from goroutine 1.
func ringAnswer(n int64) int64 { return n%ringSize + 1 }

func runRing(n int64) (result, error) {
	if ringAnswer(1000) != 498 { // the reference value of the classic benchmark
		return result{}, fmt.Errorf("ring answer for N=1000 = %d, want 498", ringAnswer(1000))
	}

	chans := make([]chan int64, ringSize)
	for i := range chans {
		chans[i] = make(chan int64) // unbuffered
	}
	winner := make(chan int64, 1)
	var wg sync.WaitGroup
	wg.Add(ringSize)
	for i := 0; i < ringSize; i++ {
		go func(id int64, in <-chan int64, out chan<- int64) {
			defer wg.Done()
			for t := range in { // ends when the channel is closed at shutdown
				if t == 0 {
					winner <- id
					return
				}
				out <- t - 1
			}
		}(int64(i+1), chans[i], chans[(i+1)%ringSize])
	}

	start := time.Now()
	chans[0] <- n
	id := <-winner
	total := time.Since(start)

	// Shut down: the others are all blocked receiving; closing their input ends their loops.
	for _, c := range chans {
		close(c)
	}
	wg.Wait()

	if want := ringAnswer(n); id != want {
		return result{}, fmt.Errorf("token reached 0 at id %d, want %d", id, want)
	}
	return result{total, perOp(total, n)}, nil
}
