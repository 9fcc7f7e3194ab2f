#include "engine/fiber/task_coroutine.h"

#include <boost/coroutine2/protected_fixedsize_stack.hpp>
#include <exception>

namespace thinp::fiber {

std::unique_ptr<Coroutine::push_type> make_task_coroutine(
    size_t stack_bytes, const std::string& name, std::function<void()> body,
    Coroutine::pull_type** yield_to, std::function<void(std::string failure)> on_finish) {
  return std::make_unique<Coroutine::push_type>(
      boost::coroutines2::protected_fixedsize_stack(stack_bytes),
      [name, yield_to, body = std::move(body),
       on_finish = std::move(on_finish)](Coroutine::pull_type& back) {
        *yield_to = &back;
        std::string failure;
        try {
          body();
        } catch (const boost::context::detail::forced_unwind&) {
          throw;  // teardown: let the stack unwind
        } catch (const std::exception& e) {
          failure = "task " + name + " threw: " + e.what();
        } catch (...) {
          failure = "task " + name + " threw a non-standard exception";
        }
        on_finish(std::move(failure));
      });
}

}  // namespace thinp::fiber
