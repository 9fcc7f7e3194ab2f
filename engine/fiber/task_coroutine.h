// The stackful coroutine that runs one task, shared by both runtimes
// (sim/scheduler.cc and engine/real/reactor.cc). Engine code never sees it.
#pragma once

#include <boost/coroutine2/coroutine.hpp>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

namespace thinp::fiber {

using Coroutine = boost::coroutines2::coroutine<void>;

// Makes a coroutine that, when first resumed, stores the way back to its
// runtime in `*yield_to` and runs `body`. When `body` returns, or throws,
// `on_finish` runs on the task's stack with "" or "task NAME threw: WHAT".
// The unwinding exception of a teardown is let through untouched, and then
// on_finish does not run. The stack is `stack_bytes` with a guard page.
std::unique_ptr<Coroutine::push_type> make_task_coroutine(
    size_t stack_bytes, const std::string& name, std::function<void()> body,
    Coroutine::pull_type** yield_to, std::function<void(std::string failure)> on_finish);

}  // namespace thinp::fiber
