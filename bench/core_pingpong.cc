// How fast two CPUs pass a cache line to each other: one thread on each, taking turns to
// bump a shared counter. Each round lasts `--ms` and times every batch of 1,024 round
// trips; the round's figure is its fastest batch, which a thread losing its CPU for a
// while (other work on the machine) does not slow. Prints the median over `--rounds`
// rounds in nanoseconds per round trip (and, with --json, every round).
//
//   core_pingpong [--cpus 0,1] [--ms 200] [--rounds 5] [--json]
//
// Exit status 1 when a thread cannot be pinned or a round completes no batch (the other
// CPU never ran the second thread); 2 for a bad argument.
//
// Everything that crosses between the two cores of a benchmark (a memif ring, a veth, a
// loopback socket, the load generator's replies) pays this latency; on a virtual machine
// whose host places the two vCPUs near each other at one time and far apart at another,
// it changes several times over within seconds. bench-compare and memif_bench.py measure
// it around their runs, so that a figure can be read against the state the machine was
// in.
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

struct alignas(64) Line {
  std::atomic<uint64_t> turn{0};
};

bool Pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

[[noreturn]] void Usage(const char* why) {
  std::fprintf(stderr,
               "core_pingpong: %s\nusage: core_pingpong [--cpus A,B] [--ms N] [--rounds N] [--json]\n",
               why);
  std::exit(2);
}

long Number(const char* option, const char* text, long lo, long hi) {
  char* end = nullptr;
  long v = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || v < lo || v > hi)
    Usage((std::string(option) + ": expected a whole number from " + std::to_string(lo) + " to " +
           std::to_string(hi) + ", got '" + text + "'")
              .c_str());
  return v;
}

constexpr uint64_t kBatch = 1024;

// One timed round: the two threads alternate for `ms` milliseconds; returns the fastest
// batch's ns per round trip (two hand-overs), 0 when no batch completed, or a negative
// value when a thread could not be pinned.
double Round(int cpu_a, int cpu_b, long ms) {
  Line line;
  std::atomic<bool> stop{false};
  std::atomic<bool> pinned_b{true};
  std::thread b([&] {
    if (!Pin(cpu_b)) pinned_b = false;
    uint64_t want = 1;
    while (!stop.load(std::memory_order_relaxed)) {
      if (line.turn.load(std::memory_order_acquire) == want) {
        line.turn.store(want + 1, std::memory_order_release);
        want += 2;
      }
    }
  });
  if (!Pin(cpu_a)) {
    stop = true;
    b.join();
    return -1;
  }
  using Clock = std::chrono::steady_clock;
  const auto until = Clock::now() + std::chrono::milliseconds(ms);
  auto batch_start = Clock::now();
  double fastest = 0;
  uint64_t next = 0;
  uint64_t trips = 0;
  uint64_t spins = 0;
  for (;;) {
    if (line.turn.load(std::memory_order_acquire) == next) {
      line.turn.store(next + 1, std::memory_order_release);
      next += 2;
      // The clock once a batch: a vDSO call, no system call.
      if (++trips % kBatch == 0) {
        const auto now = Clock::now();
        const double ns = std::chrono::duration<double, std::nano>(now - batch_start).count() / kBatch;
        if (fastest == 0 || ns < fastest) fastest = ns;
        if (now >= until) break;
        batch_start = now;
      }
    } else if ((++spins & 0xfffff) == 0 && Clock::now() >= until) {
      break;  // the other thread is not running: stop on time
    }
  }
  stop = true;
  b.join();
  if (!pinned_b) return -1;
  return fastest;
}

}  // namespace

int main(int argc, char** argv) {
  int cpu_a = 0, cpu_b = 1;
  long ms = 200, rounds = 5;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) Usage((arg + " needs a value").c_str());
      return argv[++i];
    };
    if (arg == "--cpus") {
      const char* v = value();
      const char* comma = std::strchr(v, ',');
      if (comma == nullptr) Usage("--cpus: expected two CPUs as A,B");
      cpu_a = static_cast<int>(Number("--cpus", std::string(v, comma).c_str(), 0, CPU_SETSIZE - 1));
      cpu_b = static_cast<int>(Number("--cpus", comma + 1, 0, CPU_SETSIZE - 1));
      if (cpu_a == cpu_b) Usage("--cpus: the two CPUs must differ");
    } else if (arg == "--ms") {
      ms = Number("--ms", value(), 1, 60000);
    } else if (arg == "--rounds") {
      rounds = Number("--rounds", value(), 1, 1000);
    } else if (arg == "--json") {
      json = true;
    } else {
      Usage(("unknown argument '" + arg + "'").c_str());
    }
  }
  std::vector<double> ns;
  for (long r = 0; r < rounds; ++r) {
    double v = Round(cpu_a, cpu_b, ms);
    if (v < 0) {
      std::fprintf(stderr, "core_pingpong: cannot pin a thread to CPU %d or %d\n", cpu_a, cpu_b);
      return 1;
    }
    if (v == 0) {
      std::fprintf(stderr,
                   "core_pingpong: no batch of %llu round trips in %ld ms: CPU %d or %d did not "
                   "run its thread\n",
                   static_cast<unsigned long long>(kBatch), ms, cpu_a, cpu_b);
      return 1;
    }
    ns.push_back(v);
  }
  std::vector<double> sorted = ns;
  std::sort(sorted.begin(), sorted.end());
  const size_t mid = sorted.size() / 2;
  const double median = sorted.size() % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  if (json) {
    std::printf("{\"cpus\": [%d, %d], \"median_ns\": %.1f, \"rounds_ns\": [", cpu_a, cpu_b, median);
    for (size_t i = 0; i < ns.size(); ++i) std::printf("%s%.1f", i ? ", " : "", ns[i]);
    std::printf("]}\n");
  } else {
    std::printf("%.1f\n", median);
  }
  return 0;
}
