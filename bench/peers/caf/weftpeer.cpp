// weftpeer-caf: the CAF (C++ Actor Framework 0.17) peer of weft-bench's actor benchmarks
// (see /work/shared/BENCH.md, the benchmark contract).
//
//   weftpeer-caf NAME [--workers W] [--n N]
//   weftpeer-caf --list
//
// Runs one benchmark and prints exactly one line on stdout, last:
//
//   <bench> caf <workers> <N> <total_seconds> <value>
//
// --workers W sets CAF's scheduler.max-threads to W before the actor system starts (default: CAF's
// own default, one worker per hardware thread); the caller pins the process with taskset. All the
// actors are event-based (stackless) actors spawned from behavior functions, CAF's counterpart of
// weft's stackless actors; the main thread is a scoped_actor (the driver) that only spawns and waits
// for the result. Each benchmark validates its result: a wrong result prints a message on stderr and
// exits 1; a usage error exits 2. Only the measured work is timed (std::chrono::steady_clock).

#include <caf/all.hpp>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

using namespace caf;

namespace {

// -- messages -----------------------------------------------------------------------------------

using ping_atom = atom_constant<atom("ping")>;
using pong_atom = atom_constant<atom("pong")>;
using count_atom = atom_constant<atom("count")>;  // a subtree's actor count (actor-spawn)
using stop_atom = atom_constant<atom("stop")>;    // ends an idle actor (actor-memory)
using done_atom = atom_constant<atom("done")>;    // to the driver: the benchmark's result
using fail_atom = atom_constant<atom("fail")>;    // to the driver: an actor found a wrong value

// -- helpers ------------------------------------------------------------------------------------

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

// Reports a wrong result and exits 1. _Exit, not exit or a return from main: the actor system's
// destructor would wait for actors that may never finish once a check has failed.
[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "weftpeer-caf: %s\n", why.c_str());
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(1);
}

// Returns the value of a "Key:   123 kB" line of /proc/self/status, in bytes.
int64_t proc_status_bytes(const char* key) {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr)
    fail("cannot open /proc/self/status");
  char line[256];
  size_t keylen = std::strlen(key);
  int64_t kb = -1;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, key, keylen) == 0 && line[keylen] == ':') {
      char unit[8] = "";
      if (std::sscanf(line + keylen + 1, "%" SCNd64 " %7s", &kb, unit) != 2
          || std::strcmp(unit, "kB") != 0)
        kb = -1;
      break;
    }
  }
  std::fclose(f);
  if (kb < 0)
    fail(std::string("cannot read ") + key + " from /proc/self/status");
  return kb * 1024;
}

// Waits on the driver for the benchmark's result: done (the value) or fail (exits 1).
int64_t await_result(scoped_actor& driver) {
  int64_t value = 0;
  driver->receive(
    [&](done_atom, int64_t x) { value = x; },
    [&](fail_atom, const std::string& why) { fail(why); });
  return value;
}

// What a benchmark reports: the measured wall time and the last column.
struct outcome {
  double total_seconds;
  double value;
};

// -- mailbox ------------------------------------------------------------------------------------
// 20 senders each send N/20 messages (s, s*(N/20)+j), j = 0..N/20-1, to one receiver. The receiver
// checks that each sender's values lie in its range and arrive in increasing order, that each
// sender's last value is (s+1)*(N/20)-1 and that the sum of all N is N(N-1)/2, then reports the sum
// to the driver.
// Timed: from just before spawning the senders until the driver has the receiver's report.
// Value: ns per message.

constexpr int mailbox_senders = 20;

struct receiver_state {
  int64_t last[mailbox_senders];  // last value seen from each sender (-1: none yet)
  int64_t received = 0;
  int64_t sum = 0;
};

behavior mailbox_receiver(stateful_actor<receiver_state>* self, actor driver, int64_t n) {
  for (auto& x : self->state.last)
    x = -1;
  int64_t per = n / mailbox_senders;
  return {
    [=](int32_t s, int64_t v) {
      auto& st = self->state;
      if (s < 0 || s >= mailbox_senders || v < s * per || v >= (s + 1) * per
          || v <= st.last[s]) {
        self->send(driver, fail_atom::value,
                   "mailbox: sender " + std::to_string(s) + " sent " + std::to_string(v)
                     + " out of range or order");
        self->quit();
        return;
      }
      st.last[s] = v;
      st.sum += v;
      if (++st.received < n)
        return;
      // All N received: check the ends and the sum, then report.
      std::string why;
      for (int32_t i = 0; i < mailbox_senders && why.empty(); ++i)
        if (st.last[i] != (i + 1) * per - 1)
          why = "mailbox: last value of sender " + std::to_string(i) + " is "
                + std::to_string(st.last[i]);
      if (why.empty() && st.sum != n * (n - 1) / 2)
        why = "mailbox: sum " + std::to_string(st.sum) + ", expected "
              + std::to_string(n * (n - 1) / 2);
      if (why.empty())
        self->send(driver, done_atom::value, st.sum);
      else
        self->send(driver, fail_atom::value, why);
      self->quit();
    },
  };
}

// A sender sends its whole share in its first (and only) activation, then terminates: it returns
// no behavior.
void mailbox_sender(event_based_actor* self, actor receiver, int32_t s, int64_t per) {
  for (int64_t j = 0; j < per; ++j)
    self->send(receiver, s, s * per + j);
}

outcome run_mailbox(actor_system& sys, scoped_actor& driver, int64_t n) {
  int64_t per = n / mailbox_senders;
  auto receiver = sys.spawn(mailbox_receiver, actor{driver}, n);
  auto start = clock_type::now();
  for (int32_t s = 0; s < mailbox_senders; ++s)
    sys.spawn(mailbox_sender, receiver, s, per);
  await_result(driver);
  double total = seconds_since(start);
  return {total, total * 1e9 / static_cast<double>(n)};
}

// -- actor-pingpong -----------------------------------------------------------------------------
// A sends (ping, K) to B, B answers (pong, K) to A, for K = 1..N; each side checks K. After the
// N-th pong A tells the driver. B quits after answering ping N.
// Timed: from just before spawning A until the driver is told. Value: ns per round trip.

struct counter_state {
  int64_t next = 1;  // the K expected in the next message
};

behavior pingpong_b(stateful_actor<counter_state>* self, actor driver, int64_t n) {
  return {
    [=](ping_atom, int64_t k) {
      if (k != self->state.next)
        self->send(driver, fail_atom::value,
                   "actor-pingpong: B got ping " + std::to_string(k) + ", expected "
                     + std::to_string(self->state.next));
      ++self->state.next;
      if (k >= n)
        self->quit();
      return std::make_tuple(pong_atom::value, k);  // the answer goes back to the sender, A
    },
  };
}

behavior pingpong_a(stateful_actor<counter_state>* self, actor b, actor driver, int64_t n) {
  self->send(b, ping_atom::value, int64_t{1});
  return {
    [=](pong_atom, int64_t k) {
      auto& next = self->state.next;
      if (k != next) {
        self->send(driver, fail_atom::value,
                   "actor-pingpong: A got pong " + std::to_string(k) + ", expected "
                     + std::to_string(next));
        self->quit();
        return;
      }
      if (k == n) {
        self->send(driver, done_atom::value, k);
        self->quit();
        return;
      }
      next = k + 1;
      self->send(b, ping_atom::value, next);
    },
  };
}

outcome run_actor_pingpong(actor_system& sys, scoped_actor& driver, int64_t n) {
  auto b = sys.spawn(pingpong_b, actor{driver}, n);
  auto start = clock_type::now();
  sys.spawn(pingpong_a, b, actor{driver}, n);
  int64_t trips = await_result(driver);
  double total = seconds_since(start);
  if (trips != n)
    fail("actor-pingpong: " + std::to_string(trips) + " round trips, expected "
         + std::to_string(n));
  return {total, total * 1e9 / static_cast<double>(n)};
}

// -- actor-spawn --------------------------------------------------------------------------------
// A binary tree of depth D = N, 2^D - 1 actors; the root is at level 1. An actor at level < D
// spawns two children and counts their two replies (each the size of the child's subtree) in its
// behavior, then replies 1 + their sum to its parent and quits; a leaf (level D) replies 1 at once
// and quits. The root replies to the driver; its answer must be 2^D - 1.
// Timed: from just before spawning the root until the driver has the answer.
// Value: ns per actor. The process's peak RSS (VmHWM) goes to stderr.

struct node_state {
  int replies = 0;
  int64_t sum = 0;
};

behavior tree_node(stateful_actor<node_state>* self, actor parent, int level, int depth) {
  if (level == depth) {
    self->send(parent, count_atom::value, int64_t{1});
    self->quit();
    return {};
  }
  self->spawn(tree_node, actor{self}, level + 1, depth);
  self->spawn(tree_node, actor{self}, level + 1, depth);
  return {
    [=](count_atom, int64_t subtree) {
      auto& st = self->state;
      st.sum += subtree;
      if (++st.replies == 2) {
        self->send(parent, count_atom::value, 1 + st.sum);
        self->quit();
      }
    },
  };
}

outcome run_actor_spawn(actor_system& sys, scoped_actor& driver, int64_t depth) {
  int64_t expected = (int64_t{1} << depth) - 1;
  int64_t got = 0;
  auto start = clock_type::now();
  sys.spawn(tree_node, actor{driver}, 1, static_cast<int>(depth));
  driver->receive([&](count_atom, int64_t x) { got = x; });
  double total = seconds_since(start);
  if (got != expected)
    fail("actor-spawn: the root counted " + std::to_string(got) + " actors, expected "
         + std::to_string(expected));
  std::fprintf(stderr, "peak_rss_bytes %" PRId64 "\n", proc_status_bytes("VmHWM"));
  return {total, total * 1e9 / static_cast<double>(expected)};
}

// -- actor-memory -------------------------------------------------------------------------------
// Spawns N idle actors, each with a behavior waiting for a stop message. VmRSS is read just before
// spawning and again 100 ms after all N have run their behavior function (CAF runs it on a worker
// after spawn returns; an atomic counter tells the driver, without a message per actor that would
// itself take memory). Then each gets a stop message, and the driver waits for the N down messages
// of its monitors.
// Timed: spawning until all N have started (not the 100 ms settle).
// Value: (VmRSS after - VmRSS before) / N, bytes per actor.

behavior idle_actor(event_based_actor* self, std::atomic<int64_t>* started) {
  started->fetch_add(1, std::memory_order_release);
  return {
    [=](stop_atom) { self->quit(); },
  };
}

outcome run_actor_memory(actor_system& sys, scoped_actor& driver, int64_t n) {
  std::atomic<int64_t> started{0};
  // The handles' array is allocated and touched before the first VmRSS read.
  std::vector<actor> actors(static_cast<size_t>(n));
  for (auto& a : actors)
    a = nullptr;
  int64_t before = proc_status_bytes("VmRSS");
  auto start = clock_type::now();
  for (auto& a : actors)
    a = sys.spawn(idle_actor, &started);
  while (started.load(std::memory_order_acquire) < n)
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  double total = seconds_since(start);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let the workers settle
  int64_t after = proc_status_bytes("VmRSS");
  // Release them all and make sure every one has ended.
  for (auto& a : actors) {
    driver->monitor(a);
    driver->send(a, stop_atom::value);
  }
  actors.clear();
  int64_t downs = 0;
  driver->receive_for(downs, n)([](const down_msg&) {});
  return {total, static_cast<double>(after - before) / static_cast<double>(n)};
}

// -- command line -------------------------------------------------------------------------------

struct bench {
  const char* name;
  int64_t default_n;
  outcome (*run)(actor_system&, scoped_actor&, int64_t);
  const char* about;
};

const bench benches[] = {
  {"mailbox", 2'000'000, run_mailbox,
   "20 senders send N/20 messages each to one receiver, which checks order and sum; ns per message"},
  {"actor-pingpong", 5'000'000, run_actor_pingpong,
   "two actors exchange (ping, K) / (pong, K), N round trips; ns per round trip"},
  {"actor-spawn", 20, run_actor_spawn,
   "binary tree of actors of depth N (2^N - 1 actors), each replying its subtree's size; ns per actor"},
  {"actor-memory", 1'000'000, run_actor_memory,
   "N idle actors waiting for a stop message; VmRSS growth; bytes per actor"},
};

[[noreturn]] void usage(const char* why = nullptr) {
  if (why != nullptr)
    std::fprintf(stderr, "weftpeer-caf: %s\n", why);
  std::fprintf(stderr, "usage: weftpeer-caf NAME [--workers W] [--n N]\n"
                       "       weftpeer-caf --list\n");
  std::exit(2);
}

// Parses a flag's value, which must be an integer >= 1.
int64_t parse_positive(const char* flag, const char* s) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < 1)
    usage((std::string(flag) + " needs an integer >= 1, got '" + s + "'").c_str());
  return v;
}

} // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--list") == 0) {
    for (const auto& b : benches)
      std::printf("%-15s N=%-9" PRId64 " %s\n", b.name, b.default_n, b.about);
    return 0;
  }
  if (argc < 2)
    usage();
  const bench* chosen = nullptr;
  for (const auto& b : benches)
    if (std::strcmp(argv[1], b.name) == 0)
      chosen = &b;
  if (chosen == nullptr)
    usage((std::string("unknown benchmark '") + argv[1] + "'").c_str());
  int64_t workers = 0;  // 0: CAF's default
  int64_t n = chosen->default_n;
  for (int i = 2; i < argc; i += 2) {
    if (i + 1 >= argc)
      usage((std::string(argv[i]) + " needs a value").c_str());
    if (std::strcmp(argv[i], "--workers") == 0)
      workers = parse_positive("--workers", argv[i + 1]);
    else if (std::strcmp(argv[i], "--n") == 0)
      n = parse_positive("--n", argv[i + 1]);
    else
      usage((std::string("unknown option '") + argv[i] + "'").c_str());
  }
  if (chosen->run == run_mailbox && n % mailbox_senders != 0)
    usage("mailbox: N must be a multiple of 20");
  if (chosen->run == run_actor_spawn && n > 30)
    usage("actor-spawn: the depth N must be at most 30");

  actor_system_config cfg;
  if (workers > 0)
    cfg.set("scheduler.max-threads", static_cast<size_t>(workers));
  actor_system sys{cfg};
  outcome out;
  {
    scoped_actor driver{sys};
    out = chosen->run(sys, driver, n);
  }
  std::printf("%s caf %zu %" PRId64 " %.6f %.1f\n", chosen->name, sys.scheduler().num_workers(),
              n, out.total_seconds, out.value);
  std::fflush(stdout);
  return 0;
}
