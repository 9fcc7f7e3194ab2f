// Facts about the build that tests may scale by.
#pragma once

namespace thinp {

// True in a sanitizer build (the `debug` preset: ASan + UBSan). Long sweeps
// in tests run fewer seeds there: the release build runs them all, and the
// sanitizer pass is for memory errors, which a few seeds already exercise.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitizedBuild = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kSanitizedBuild = true;
#else
inline constexpr bool kSanitizedBuild = false;
#endif
#else
inline constexpr bool kSanitizedBuild = false;
#endif

}  // namespace thinp
