// weftpeer-tbb: the oneTBB flow graph peer of weft-bench's pipeline benchmark
// (see /work/shared/BENCH.md, the benchmark contract, and README.md here).
//
//   weftpeer-tbb pipeline [--workers W] [--n N] [--stages S]
//   weftpeer-tbb --list
//
// Runs the benchmark and prints exactly one line on stdout, last:
//
//   pipeline tbb <workers> <N> <total_seconds> <ns_per_item>
//
// The pipeline is a tbb::flow::graph of S stages (default 4): an input_node (stage 1, the source)
// emits the int64 values 1..N in order; a function_node with concurrency tbb::flow::serial per map
// stage 2..S-1 (even-numbered stages v -> v*3, odd-numbered v -> v+1: S=4 is source, *3, +1, sink);
// a serial function_node (stage S, the sink) sums what it receives. BENCH.md joins consecutive
// stages by channels of capacity 64; a flow graph's function_node queues without bound instead, so
// a limiter_node of 64*(S-1) sits between the source and stage 2 and the sink decrements it once per
// value it has summed: at most 64*(S-1) values are between the source and the end of the sink, the
// capacity of the S-1 channels of the other versions (see README.md). --workers W caps TBB's
// parallelism with tbb::global_control(max_allowed_parallelism, W) (the thread that waits for the
// graph counts as one); the caller pins the CPUs with taskset. The sum is checked against the same
// maps applied to 1..N in a plain loop: a wrong sum prints a message on stderr and exits 1; a usage
// error exits 2. Timing (std::chrono::steady_clock) covers activating the source until
// wait_for_all has returned, after the sink's last value.

#include <oneapi/tbb/flow_graph.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/info.h>

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace flow = oneapi::tbb::flow;

namespace {

constexpr int64_t default_n = 10000000;
constexpr int64_t default_stages = 4;
constexpr size_t edge_capacity = 64;  // BENCH.md: channels of capacity 64

[[noreturn]] void usage(const char* why = nullptr) {
  if (why != nullptr)
    std::fprintf(stderr, "weftpeer-tbb: %s\n", why);
  std::fprintf(stderr,
               "usage: weftpeer-tbb pipeline [--workers W] [--n N] [--stages S]\n"
               "       weftpeer-tbb --list\n");
  std::exit(2);
}

int64_t parse_at_least(const char* flag, const char* s, int64_t min) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < min)
    usage((std::string(flag) + " needs an integer >= " + std::to_string(min) + ", got '" + s +
           "'").c_str());
  return v;
}

// Stage k's map (2 <= k <= S-1), with wrapping arithmetic as the checker's.
inline uint64_t stage_map(int64_t k, uint64_t v) { return k % 2 == 0 ? v * 3 : v + 1; }

struct outcome {
  double seconds;
  uint64_t sum;
  uint64_t count;
};

outcome run_pipeline(int64_t n, int64_t stages) {
  flow::graph g;
  int64_t next = 1;
  flow::input_node<int64_t> source(g, [&next, n](oneapi::tbb::flow_control& fc) -> int64_t {
    if (next > n) {
      fc.stop();
      return 0;
    }
    return next++;
  });
  flow::limiter_node<int64_t> limiter(g, edge_capacity * static_cast<size_t>(stages - 1));
  flow::make_edge(source, limiter);

  std::vector<std::unique_ptr<flow::function_node<int64_t, int64_t>>> maps;
  flow::sender<int64_t>* prev = &limiter;
  for (int64_t k = 2; k <= stages - 1; k++) {
    maps.emplace_back(new flow::function_node<int64_t, int64_t>(g, flow::serial, [k](int64_t v) {
      return static_cast<int64_t>(stage_map(k, static_cast<uint64_t>(v)));
    }));
    flow::make_edge(*prev, *maps.back());
    prev = maps.back().get();
  }

  uint64_t sum = 0, count = 0;
  flow::function_node<int64_t, flow::continue_msg> sink(
      g, flow::serial, [&sum, &count](int64_t v) -> flow::continue_msg {
        sum += static_cast<uint64_t>(v);
        count++;
        return flow::continue_msg();
      });
  flow::make_edge(*prev, sink);
  flow::make_edge(sink, limiter.decrementer());

  auto start = std::chrono::steady_clock::now();
  source.activate();
  g.wait_for_all();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return {seconds, sum, count};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--list") == 0) {
    std::printf("%-15s N=%-9" PRId64 " %s\n", "pipeline", default_n,
                "S stages (default 4: source, *3, +1, sink), 64 in flight per edge; ns per item");
    return 0;
  }
  if (argc < 2)
    usage();
  if (std::strcmp(argv[1], "pipeline") != 0)
    usage((std::string("unknown benchmark '") + argv[1] + "'").c_str());
  int64_t workers = 0;  // 0: TBB's default
  int64_t n = default_n, stages = default_stages;
  for (int i = 2; i < argc; i += 2) {
    if (i + 1 >= argc)
      usage((std::string(argv[i]) + " needs a value").c_str());
    if (std::strcmp(argv[i], "--workers") == 0)
      workers = parse_at_least("--workers", argv[i + 1], 1);
    else if (std::strcmp(argv[i], "--n") == 0)
      n = parse_at_least("--n", argv[i + 1], 1);
    else if (std::strcmp(argv[i], "--stages") == 0)
      stages = parse_at_least("--stages", argv[i + 1], 2);
    else
      usage((std::string("unknown option '") + argv[i] + "'").c_str());
  }

  std::unique_ptr<oneapi::tbb::global_control> limit;
  if (workers > 0)
    limit.reset(new oneapi::tbb::global_control(
        oneapi::tbb::global_control::max_allowed_parallelism, static_cast<size_t>(workers)));
  size_t shown = oneapi::tbb::global_control::active_value(
      oneapi::tbb::global_control::max_allowed_parallelism);

  outcome out = run_pipeline(n, stages);

  uint64_t want = 0;
  for (int64_t v = 1; v <= n; v++) {
    uint64_t x = static_cast<uint64_t>(v);
    for (int64_t k = 2; k <= stages - 1; k++)
      x = stage_map(k, x);
    want += x;
  }
  if (out.count != static_cast<uint64_t>(n) || out.sum != want) {
    std::fprintf(stderr, "weftpeer-tbb: pipeline, %" PRId64 " stages: the sink got %" PRIu64
                 " values summing to %" PRIu64 ", want %" PRId64 " summing to %" PRIu64 "\n",
                 stages, out.count, out.sum, n, want);
    return 1;
  }
  std::printf("pipeline tbb %zu %" PRId64 " %.6f %.1f\n", shown, n, out.seconds,
              out.seconds * 1e9 / static_cast<double>(n));
  std::fflush(stdout);
  return 0;
}
