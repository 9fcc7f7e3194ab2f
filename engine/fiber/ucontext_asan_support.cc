// Support for Boost.Context's ucontext flavour, used only by sanitizer builds.
//
// The sanitizer build defines BOOST_USE_UCONTEXT and BOOST_USE_ASAN so that
// every stack switch is announced to AddressSanitizer (with the default
// fcontext flavour ASan loses track of coroutine stacks and reports false
// errors after an exception unwinds one). Debian's libboost_context is built
// with fcontext and so lacks the one out-of-line function the ucontext headers
// declare: the per-thread pointer to the running fiber's activation record.
// It is defined here. The record for the thread's own (main) context is made
// on first use and lives as long as the thread.
#if defined(BOOST_USE_UCONTEXT)

#include <boost/context/fiber.hpp>
#include <memory>

namespace boost::context::detail {

fiber_activation_record*& fiber_activation_record::current() noexcept {
  thread_local std::unique_ptr<fiber_activation_record> main_record(new fiber_activation_record());
  thread_local fiber_activation_record* running = main_record.get();
  return running;
}

}  // namespace boost::context::detail

#endif
