#include "engine/real/reactor.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/runtime/sync.h"

namespace thinp::real {
namespace {

using std::chrono::milliseconds;

TEST(ReactorTest, RunsEveryTaskAndYieldInterleavesThem) {
  Reactor r;
  std::vector<std::string> trace;
  for (const char* name : {"a", "b"}) {
    r.spawn(name, [&, name] {
      for (int i = 1; i <= 3; ++i) {
        trace.push_back(std::string(name) + std::to_string(i));
        r.yield();
      }
    });
  }
  EXPECT_EQ(r.run(), ReactorOutcome::idle);
  EXPECT_EQ(trace, (std::vector<std::string>{"a1", "b1", "a2", "b2", "a3", "b3"}));
  EXPECT_EQ(r.live_tasks(), 0u);
}

TEST(ReactorTest, SpawnedTaskRunsOnlyAfterTheSpawnerSuspends) {
  Reactor r;
  std::vector<std::string> trace;
  r.spawn("parent", [&] {
    const TaskId child = r.spawn("child", [&] { trace.push_back("child"); });
    EXPECT_NE(child, kNoTask);
    EXPECT_NE(child, r.current_task());
    trace.push_back("parent before yield");
    r.yield();
    trace.push_back("parent after yield");
  });
  EXPECT_EQ(r.current_task(), kNoTask);
  EXPECT_EQ(r.run(), ReactorOutcome::idle);
  EXPECT_EQ(trace,
            (std::vector<std::string>{"parent before yield", "child", "parent after yield"}));
}

TEST(ReactorTest, SleepersWakeInDeadlineOrderAfterTheirDuration) {
  Reactor r;
  std::vector<int> woke;
  for (int ms : {30, 10, 20, 0}) {
    r.spawn("sleep" + std::to_string(ms), [&, ms] {
      const Nanos before = r.now();
      r.sleep(milliseconds(ms));
      EXPECT_GE(r.now() - before, Nanos(milliseconds(ms)));
      woke.push_back(ms);
    });
  }
  EXPECT_EQ(r.run(), ReactorOutcome::idle);
  EXPECT_EQ(woke, (std::vector<int>{0, 10, 20, 30}));
}

TEST(ReactorTest, MutexSerialisesHoldersAcrossSleeps) {
  Reactor r;
  Mutex m(r, "m");
  int inside = 0;
  int max_inside = 0;
  std::vector<int> order;
  for (int i = 0; i < 4; ++i) {
    r.spawn("locker" + std::to_string(i), [&, i] {
      LockGuard g(m);
      ++inside;
      max_inside = std::max(max_inside, inside);
      r.sleep(milliseconds(1));
      order.push_back(i);
      --inside;
    });
  }
  EXPECT_EQ(r.run(), ReactorOutcome::idle);
  EXPECT_EQ(max_inside, 1);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));  // FIFO hand-over
}

TEST(ReactorTest, CondVarPassesItemsFromProducerToConsumer) {
  Reactor r;
  Mutex m(r);
  CondVar cv(r);
  std::deque<int> queue;
  std::vector<int> consumed;
  r.spawn("consumer", [&] {
    LockGuard g(m);
    while (consumed.size() < 5) {
      while (queue.empty()) cv.wait(m);
      consumed.push_back(queue.front());
      queue.pop_front();
    }
  });
  r.spawn("producer", [&] {
    for (int i = 0; i < 5; ++i) {
      r.sleep(milliseconds(1));
      LockGuard g(m);
      queue.push_back(i * 10);
      cv.notify_one();
    }
  });
  EXPECT_EQ(r.run(), ReactorOutcome::idle);
  EXPECT_EQ(consumed, (std::vector<int>{0, 10, 20, 30, 40}));
}

TEST(ReactorTest, SemaphoreBoundsConcurrencyAndWaitGroupAndEventJoin) {
  Reactor r;
  Semaphore sem(r, 2);
  WaitGroup wg(r);
  Event all_done(r, "all-done");
  int active = 0;
  int max_active = 0;
  bool joined = false;
  wg.add(6);
  for (int i = 0; i < 6; ++i) {
    r.spawn("worker", [&] {
      sem.acquire();
      ++active;
      max_active = std::max(max_active, active);
      r.sleep(milliseconds(1));
      --active;
      sem.release();
      wg.done();
    });
  }
  r.spawn("joiner", [&] {
    wg.wait();
    all_done.set();
  });
  r.spawn("observer", [&] {
    all_done.wait();
    joined = true;
  });
  EXPECT_EQ(r.run(), ReactorOutcome::idle);
  EXPECT_EQ(max_active, 2);
  EXPECT_TRUE(joined);
  EXPECT_EQ(sem.available(), 2u);
}

TEST(ReactorTest, DeadlockIsReportedWithEachBlockedTask) {
  Reactor r;
  Event never(r, "never-set");
  Mutex m(r, "held-forever");
  r.spawn("waiter", [&] { never.wait(); });
  r.spawn("holder", [&] {
    m.lock();
    never.wait();
  });
  r.spawn("locker", [&] { m.lock(); });
  r.spawn("finisher", [] {});
  EXPECT_EQ(r.run(), ReactorOutcome::deadlock);
  EXPECT_EQ(r.live_tasks(), 3u);
  EXPECT_EQ(r.deadlock_report(),
            "waiter (#1) waits for never-set\n"
            "holder (#2) waits for never-set\n"
            "locker (#3) waits for held-forever");
}

TEST(ReactorTest, TaskExceptionStopsTheRunWithItsMessage) {
  Reactor r;
  r.spawn("thrower", [] { throw std::runtime_error("disk on fire"); });
  EXPECT_EQ(r.run(), ReactorOutcome::task_failed);
  EXPECT_EQ(r.failure(), "task thrower threw: disk on fire");
}

TEST(ReactorTest, RequestStopReturnsAndRunContinuesLater) {
  Reactor r;
  int steps = 0;
  r.spawn("stepper", [&] {
    ++steps;
    r.request_stop();
    r.yield();
    ++steps;
  });
  EXPECT_EQ(r.run(), ReactorOutcome::stopped);
  EXPECT_EQ(steps, 1);
  EXPECT_EQ(r.run(), ReactorOutcome::idle);
  EXPECT_EQ(steps, 2);
}

TEST(ReactorTest, UnparkWhileNotParkedIsRememberedOnce) {
  Reactor r;
  int woken = 0;
  TaskId sleeper = kNoTask;
  sleeper = r.spawn("sleeper", [&] {
    r.sleep(milliseconds(5));  // the unpark below arrives during this sleep
    r.park("first");           // returns at once: the wake-up was remembered
    ++woken;
  });
  r.spawn("waker", [&] { r.unpark(sleeper); });
  EXPECT_EQ(r.run(), ReactorOutcome::idle);
  EXPECT_EQ(woken, 1);
}

// An object whose destructor records that a task's stack was unwound.
struct UnwindWitness {
  int* count;
  ~UnwindWitness() { ++*count; }
};

TEST(ReactorTest, DestroyingTheReactorUnwindsUnfinishedTasks) {
  int unwound = 0;
  {
    Reactor r;
    Mutex m(r, "m");
    Event never(r, "never");
    r.spawn("holds-lock", [&] {
      UnwindWitness w{&unwound};
      LockGuard g(m);  // unlocked during unwinding, as the current task
      never.wait();
    });
    r.spawn("waits-lock", [&] {
      UnwindWitness w{&unwound};
      r.yield();
      LockGuard g(m);
    });
    r.spawn("sleeps", [&] {
      UnwindWitness w{&unwound};
      r.sleep(std::chrono::hours(1));
    });
    r.spawn("stopper", [&] {
      r.yield();  // let the others reach their waits
      r.request_stop();
    });
    EXPECT_EQ(r.run(), ReactorOutcome::stopped);
    r.spawn("never-started", [&] { UnwindWitness w{&unwound}; });
    EXPECT_EQ(r.live_tasks(), 4u);
    r.kill_all_tasks();  // before m and never go out of scope
    EXPECT_EQ(r.live_tasks(), 0u);
  }
  EXPECT_EQ(unwound, 3);  // the three started tasks; never-started had no stack frames
}

TEST(ReactorTest, SameSeedGivesTheSameRandomStream) {
  Reactor a(ReactorOptions{.seed = 42});
  Reactor b(ReactorOptions{.seed = 42});
  Reactor c(ReactorOptions{.seed = 43});
  const uint64_t x = a.random().next_u64();
  EXPECT_EQ(x, b.random().next_u64());
  EXPECT_NE(x, c.random().next_u64());
}

TEST(ReactorTest, RingCanBeDisabledByOptionOrEnvironment) {
  Reactor by_option(ReactorOptions{.use_uring = false});
  EXPECT_FALSE(by_option.has_ring());
  EXPECT_EQ(by_option.ring_status().message(), "io_uring disabled by the caller");

  ::setenv("THINP_NO_URING", "1", 1);
  Reactor by_env;
  ::unsetenv("THINP_NO_URING");
  EXPECT_FALSE(by_env.has_ring());
  EXPECT_EQ(by_env.ring_status().message(), "io_uring disabled by THINP_NO_URING=1");

  Reactor normal;
  if (!normal.has_ring())
    GTEST_SKIP() << "io_uring unavailable: " << normal.ring_status().to_string();
  EXPECT_TRUE(normal.ring_status().ok());
}

}  // namespace
}  // namespace thinp::real
