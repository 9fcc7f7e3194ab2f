#include "sim/scheduler.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/runtime/sync.h"

namespace thinp::sim {
namespace {

using namespace std::chrono_literals;

TEST(Scheduler, RunsTasksInVirtualTimeOrder) {
  Scheduler s(1);
  std::vector<std::string> log;
  s.spawn("slow", [&] {
    s.sleep(30us);
    log.push_back("slow@" + std::to_string(s.now().count()));
  });
  s.spawn("fast", [&] {
    s.sleep(10us);
    log.push_back("fast@" + std::to_string(s.now().count()));
    s.sleep(5us);
    log.push_back("fast2@" + std::to_string(s.now().count()));
  });
  EXPECT_EQ(s.run(), RunOutcome::idle);
  EXPECT_EQ(log, (std::vector<std::string>{"fast@10000", "fast2@15000", "slow@30000"}));
  EXPECT_EQ(s.now(), 30us);
}

TEST(Scheduler, EqualTimesRunInSequenceOrder) {
  Scheduler s(1);
  std::string order;
  for (char c : std::string("abcde")) {
    s.spawn(std::string(1, c), [&, c] {
      order += c;
      s.yield();
      order += static_cast<char>(c - 'a' + 'A');
    });
  }
  EXPECT_EQ(s.run(), RunOutcome::idle);
  EXPECT_EQ(order, "abcdeABCDE");
}

// The same seed gives the same interleaving and the same random draws.
std::string random_run(uint64_t seed) {
  Scheduler s(seed);
  std::string trace;
  for (int t = 0; t < 4; ++t) {
    s.spawn("t" + std::to_string(t), [&, t] {
      for (int i = 0; i < 5; ++i) {
        s.sleep(Nanos(s.random().uniform(1000)));
        trace += std::to_string(t);
      }
    });
  }
  EXPECT_EQ(s.run(), RunOutcome::idle);
  return trace + "@" + std::to_string(s.now().count());
}

TEST(Scheduler, DeterministicForASeed) {
  EXPECT_EQ(random_run(7), random_run(7));
  EXPECT_NE(random_run(7), random_run(8));
}

TEST(Scheduler, DetectsDeadlockAndNamesBlockedTasks) {
  Scheduler s(1);
  Mutex a(s, "lock-a"), b(s, "lock-b");
  s.spawn("first", [&] {
    LockGuard ga(a);
    s.sleep(1us);
    LockGuard gb(b);
  });
  s.spawn("second", [&] {
    LockGuard gb(b);
    s.sleep(1us);
    LockGuard ga(a);
  });
  EXPECT_EQ(s.run(), RunOutcome::deadlock);
  const std::string report = s.deadlock_report();
  EXPECT_NE(report.find("first (#1) waits for lock-b"), std::string::npos) << report;
  EXPECT_NE(report.find("second (#2) waits for lock-a"), std::string::npos) << report;
  s.kill_all_tasks();  // the locks die before the scheduler
}

TEST(Scheduler, ParkedTaskWithNoWakerIsADeadlock) {
  Scheduler s(1);
  Event never(s, "never-set");
  s.spawn("waiter", [&] { never.wait(); });
  EXPECT_EQ(s.run(), RunOutcome::deadlock);
  EXPECT_EQ(s.deadlock_report(), "waiter (#1) waits for never-set");
  s.kill_all_tasks();
}

TEST(Scheduler, UnparkBeforeParkIsRemembered) {
  Scheduler s(1);
  bool done = false;
  TaskId t = s.spawn("t", [&] {
    s.unpark(s.current_task());  // a wake-up that arrives early
    s.park("early");
    done = true;
  });
  EXPECT_NE(t, kNoTask);
  EXPECT_EQ(s.run(), RunOutcome::idle);
  EXPECT_TRUE(done);
}

TEST(Scheduler, StopAndTimeLimitThenContinue) {
  Scheduler s(1);
  int ticks = 0;
  s.spawn("ticker", [&] {
    for (int i = 0; i < 10; ++i) {
      s.sleep(1ms);
      ++ticks;
    }
  });
  EXPECT_EQ(s.run({.max_time = Nanos(3500us)}), RunOutcome::time_limit);
  EXPECT_EQ(ticks, 3);
  EXPECT_EQ(s.run(), RunOutcome::idle);
  EXPECT_EQ(ticks, 10);
}

TEST(Scheduler, TaskExceptionIsReported) {
  Scheduler s(1);
  s.spawn("thrower", [] { throw std::runtime_error("boom"); });
  EXPECT_EQ(s.run(), RunOutcome::task_failed);
  EXPECT_EQ(s.failure(), "task thrower threw: boom");
}

TEST(Scheduler, TeardownUnwindsUnfinishedTasks) {
  int destroyed = 0;
  struct Sentinel {
    int* n;
    ~Sentinel() { ++*n; }
  };
  {
    Scheduler s(1);
    Mutex m(s);
    for (int i = 0; i < 3; ++i) {
      s.spawn("sleeper", [&] {
        Sentinel guard{&destroyed};
        LockGuard g(m);
        s.sleep(1s);
      });
    }
    EXPECT_EQ(s.run({.max_time = Nanos(1ms)}), RunOutcome::time_limit);
    EXPECT_EQ(destroyed, 0);
    s.kill_all_tasks();
    EXPECT_EQ(destroyed, 3);
  }
  EXPECT_EQ(destroyed, 3);
}

TEST(Sync, SemaphoreIsFifoAndCountsPermits) {
  Scheduler s(1);
  Semaphore sem(s, 2);
  std::string order;
  for (char c : std::string("abcd")) {
    s.spawn(std::string(1, c), [&, c] {
      sem.acquire();
      order += c;
      s.sleep(10us);
      sem.release();
    });
  }
  EXPECT_EQ(s.run(), RunOutcome::idle);
  EXPECT_EQ(order, "abcd");
  EXPECT_EQ(sem.available(), 2u);
  EXPECT_EQ(s.now(), 20us);  // two waves of two
}

TEST(Sync, CondVarWakesWaiters) {
  Scheduler s(1);
  Mutex m(s);
  CondVar cv(s);
  int value = 0;
  int seen = 0;
  for (int i = 0; i < 3; ++i) {
    s.spawn("waiter", [&] {
      LockGuard g(m);
      while (value == 0) cv.wait(m);
      ++seen;
    });
  }
  s.spawn("setter", [&] {
    s.sleep(5us);
    LockGuard g(m);
    value = 1;
    cv.notify_all();
  });
  EXPECT_EQ(s.run(), RunOutcome::idle);
  EXPECT_EQ(seen, 3);
}

TEST(Sync, MutexHandsOverInFifoOrder) {
  Scheduler s(1);
  Mutex m(s);
  std::string order;
  for (char c : std::string("xyz")) {
    s.spawn(std::string(1, c), [&, c] {
      for (int i = 0; i < 2; ++i) {
        LockGuard g(m);
        order += c;
        s.sleep(1us);
      }
    });
  }
  EXPECT_EQ(s.run(), RunOutcome::idle);
  EXPECT_EQ(order, "xyzxyz");
}

TEST(Sync, WaitGroupWaitsForAll) {
  Scheduler s(1);
  WaitGroup wg(s);
  int finished = 0;
  s.spawn("main", [&] {
    for (int i = 1; i <= 3; ++i) {
      wg.add();
      s.spawn("worker", [&, i] {
        s.sleep(Nanos(i * 1000));
        ++finished;
        wg.done();
      });
    }
    wg.wait();
    EXPECT_EQ(finished, 3);
    EXPECT_EQ(s.now(), Nanos(3000));
  });
  EXPECT_EQ(s.run(), RunOutcome::idle);
}

}  // namespace
}  // namespace thinp::sim
